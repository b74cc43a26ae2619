"""Opening a run: validate everything first, then create or reopen its row.

Bad input must write nothing, so the config, the family, the market data and
the database are all checked before the first INSERT. Reopening a run checks
that the config decides the same trajectory and that the data is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from evo import strategies
from evo.config import ConfigError, RunConfig, validate
from evo.data import Market, check_length, get_market
from evo.store import RunRecord, Store, StoreError

#: bump when a metric's definition changes: old cached evaluations stop matching
METRICS_VERSION = 1


class RunError(RuntimeError):
    """A run that cannot start or continue, in one line."""


@dataclass(frozen=True)
class RunContext:
    """Plain data every step needs. Safe to send to another process."""

    run_id: int
    name: str
    db_url: str
    config: RunConfig
    fingerprint: str
    evaluation_key: str
    target: int

    @property
    def n_obj(self) -> int:
        return len(self.config.objectives)

    @property
    def n_constr(self) -> int:
        return len(self.config.constraints) + 1  # + "objectives are finite"


def evaluation_key(config: RunConfig, fingerprint: str) -> str:
    """What an evaluation depends on besides the genome: data, split, engine and its settings."""
    ev = config.evaluation
    key = {
        "data": fingerprint,
        "split": "full",
        "freq": config.data.freq,
        "engine": ev.engine,
        "init_cash": ev.init_cash,
        "fees": ev.fees,
        "slippage": ev.slippage,
        "reducer": ev.reducer,
        "metrics_version": METRICS_VERSION,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        path = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, path + ".")
        elif va != vb:
            out.append(path)
    return out


def prepare(config: RunConfig) -> Market:
    """Check that a config can run: family, bounds and data. Writes nothing."""
    family = strategies.get(config.strategy.family)
    space = family.space(config.strategy.bounds)
    market = get_market(config.data)
    check_length(market, space.max_window())
    return market


def open_store(db_url: str | None) -> Store:
    store = Store(db_url)
    store.migrate()
    return store


def start(
    config: RunConfig,
    *,
    name: str | None = None,
    db_url: str | None = None,
    generations: int | None = None,
    check_only: bool = False,
) -> tuple[RunContext, Store] | None:
    """Create the run, or reopen it when a run of that name has the same config.

    With `check_only`, do every check (config, data, database, name) and write nothing.
    """
    name = name or config.name
    if not name:
        raise ConfigError("field 'name': a run needs a name (--name or name = ... in the config)")
    config = config.with_overrides(name=name, generations=generations)
    market = prepare(config)
    store = open_store(db_url or config.storage.url)
    existing = store.get_run(name)
    if existing is None:
        if check_only:
            return None
        rec = store.create_run(
            name=name,
            config=config.model_dump(mode="json"),
            config_hash=config.identity_hash(),
            family=config.strategy.family,
            data_fingerprint=market.fingerprint,
            evaluation_key=evaluation_key(config, market.fingerprint),
            seed=config.seed,
            generations_target=config.algorithm.generations,
        )
    else:
        stored = validate(existing.config, source=f"run {name!r}")
        if existing.config_hash != config.identity_hash():
            fields = _diff(stored.identity(), config.identity())
            raise RunError(
                f"run {name!r} already exists with a different config (differs in: {', '.join(fields) or 'config'}); "
                f"use another --name, or `evo resume {name}`"
            )
        _check_data(existing, market)
        if check_only:
            return None
        rec = _retarget(store, existing, config.algorithm.generations)
    return _context(rec, store, config, market), store


def reopen(
    name: str, *, db_url: str | None = None, generations: int | None = None, check_only: bool = False
) -> tuple[RunContext, Store] | None:
    """Reopen an existing run from its stored config (what `evo resume` does)."""
    store = open_store(db_url)
    existing = store.get_run(name)
    if existing is None:
        raise RunError(f"no run named {name!r} in {store.masked_url}")
    config = validate(existing.config, source=f"run {name!r}").with_overrides(generations=generations)
    market = prepare(config)
    _check_data(existing, market)
    if check_only:
        return None
    target = generations if generations is not None else existing.generations_target
    rec = _retarget(store, existing, target)
    return _context(rec, store, config, market), store


def _check_data(run: RunRecord, market: Market) -> None:
    if run.data_fingerprint != market.fingerprint:
        raise RunError(
            f"run {run.name!r} was started on data {run.data_fingerprint[:12]} but the data is now "
            f"{market.fingerprint[:12]}; it cannot continue on changed data"
        )


def _retarget(store: Store, run: RunRecord, target: int) -> RunRecord:
    if target != run.generations_target:
        store.update_run(run.id, generations_target=target)
        run = store.get_run(run.name)
        assert run is not None
    return run


def _context(rec: RunRecord, store: Store, config: RunConfig, market: Market) -> RunContext:
    if rec.generations_target < 1:
        raise StoreError(f"run {rec.name!r} has an invalid generation target {rec.generations_target}")
    return RunContext(
        run_id=rec.id,
        name=rec.name,
        db_url=store.url,
        config=config.with_overrides(generations=rec.generations_target),
        fingerprint=market.fingerprint,
        evaluation_key=rec.evaluation_key,
        target=rec.generations_target,
    )
