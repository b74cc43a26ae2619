"""Checks of a config that need more than its schema: the strategy registry (and the user's code), pandas'
calendar, the database URL rules. `evo.run.opening.prepare` runs them, with the data checks, before anything
is written; every message names its field, as the schema's own do.
"""

from __future__ import annotations

import re

import pandas as pd

from evo import strategies
from evo import market
from evo.config import ConfigError, RunConfig
from evo.config.errors import FamilyError, first_line
from evo.strategies.base import GeneSpace
from evo.store import url as urls


def _field(name: str, msg: str) -> ConfigError:
    return ConfigError(f"field '{name}': {msg}")


def timestamp(value: str, field: str) -> pd.Timestamp:
    """A config timestamp on the market's clock (evo.market.timestamp), or a ConfigError naming the field."""
    try:
        ts = market.timestamp(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise _field(field, f"{value!r} is not a timestamp ({first_line(e)})") from None
    if ts is pd.NaT:
        raise _field(field, f"{value!r} is not a timestamp")
    return ts


def duration(value: str, field: str) -> pd.Timedelta:
    """A bar frequency: a positive pandas duration such as '1h', '15min' or '1D'."""
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise _field(field, f"{value!r} is not a duration like '1h' or '1D' ({first_line(e)})") from None
    if td is pd.NaT or td <= pd.Timedelta(0):
        raise _field(field, f"{value!r} must be a positive duration")
    return td


def family_space(config: RunConfig) -> GeneSpace:
    """The run's gene space: a known (or loadable, parity-checked) family with bounds it accepts."""
    try:
        strategies.get(config.strategy.family)
    except FamilyError as e:
        raise _field("strategy.family", str(e)) from None
    try:
        family = strategies.get(config.strategy.family, config.strategy.trading)
    except ValueError as e:
        raise _field("strategy.trading", str(e)) from None
    try:
        return family.space(config.strategy.bounds)
    except ValueError as e:
        raise _field("strategy.bounds", str(e)) from None


def check(config: RunConfig) -> GeneSpace:
    """Raise ConfigError for the first field the schema alone could not judge; return the gene space."""
    space = family_space(config)
    seed = config.algorithm.seed_population
    for i, row in enumerate(seed or []):
        if len(row) != space.n_var:
            raise _field(
                "algorithm.seed_population",
                f"genome {i} has {len(row)} genes; family {config.strategy.family!r} has {space.n_var} "
                f"({', '.join(space.names)})",
            )
    d = config.data
    start = timestamp(d.start, "data.start") if d.start else None
    end = timestamp(d.end, "data.end") if d.end else None
    if start is not None and end is not None and start > end:
        raise _field("data.end", f"{d.end!r} is before data.start {d.start!r}")
    if d.freq:
        duration(d.freq, "data.freq")
    if d.synthetic is not None and not d.paths:
        s = d.synthetic
        first = timestamp(s.start, "data.synthetic.start")
        step = duration(s.freq, "data.synthetic.freq")
        try:
            last = first + step * (s.n_bars - 1)
            ok = last <= pd.Timestamp.max
        except (OverflowError, ValueError):
            ok = False
        if not ok:
            raise _field("data.synthetic.n_bars", f"{s.n_bars} bars of {s.freq} from {s.start} end after {pd.Timestamp.max}")
    v = config.validation
    if v.holdout_start:
        timestamp(v.holdout_start, "validation.holdout_start")
    ex = config.execution
    if ex.dask_address and not re.fullmatch(r"[a-z][a-z0-9+]*://[^\s/]+", ex.dask_address):
        raise _field("execution.dask_address", f"{ex.dask_address!r} is not an address like tcp://host:8786")
    if config.storage.url:
        if urls.has_secret(config.storage.url):
            raise _field(
                "storage.url",
                f"{urls.mask(config.storage.url)} holds a password; configs are stored and shown, so put "
                f"the URL in {urls.ENV} instead",
            )
        try:
            urls.check(config.storage.url)
        except urls.URLError as e:
            raise _field("storage.url", str(e)) from None
    return space
