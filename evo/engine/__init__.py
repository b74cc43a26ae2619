"""Evaluation engines: strategies x market -> metrics. Heavy imports happen on first use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evo.metrics import METRICS, TABLE


@dataclass
class Evaluation:
    metrics: np.ndarray  # (n, len(METRICS)), reduced across assets
    per_asset: np.ndarray  # (n_assets, n, len(METRICS))




def reduce_assets(per_asset: np.ndarray, reducer: str, directions: dict | None = None) -> np.ndarray:
    """Combine per-asset metrics into one fitness row per strategy.

    mean, median, or worst: per metric the worst asset, i.e. the minimum of a
    metric to maximise and the maximum of one to minimise (`directions`,
    falling back to the metric table's natural direction); a metric with no direction is averaged.
    NaN propagates: a metric undefined on one asset is undefined for the strategy.
    """
    if per_asset.shape[0] == 1:
        return per_asset[0].copy()
    if reducer == "mean":
        return per_asset.mean(axis=0)
    if reducer == "median":
        return np.median(per_asset, axis=0)
    if reducer == "worst":
        d = {**{m.name: m.direction for m in TABLE}, **(directions or {})}
        out = np.empty(per_asset.shape[1:])
        for j, m in enumerate(METRICS):
            col = per_asset[:, :, j]
            out[:, j] = col.min(axis=0) if d[m] == "max" else col.max(axis=0) if d[m] == "min" else col.mean(axis=0)
        return out
    raise ValueError(f"unknown reducer {reducer!r}")


def evaluate(market, family, params: Sequence[dict], settings, window=None, directions=None) -> Evaluation:
    """Evaluate parameter sets on every symbol of `market` with `settings.engine` ("fast" or "vectorbt").

    window = (start, stop) bar indices: signals see bars before `stop`, trading happens in
    [start, stop) (an in-sample or out-of-sample window); None means every bar.
    directions: metric -> "max"/"min", what "worst" means for the worst-case reducer.
    """
    if len(params) == 0:
        empty = np.empty((0, len(METRICS)))
        return Evaluation(empty, np.empty((market.n_assets, 0, len(METRICS))))
    if settings.engine == "fast":
        from evo.engine import fast

        space = family.space()
        X = space.encode(list(params))
        per_asset = np.stack(
            [fast.evaluate_arrays(market.arrays(a), family, X, space.names, settings, market.freq, window)
             for a in range(market.n_assets)]
        )
    elif settings.engine == "vectorbt":
        from evo.engine import vbt

        per_asset = np.stack(
            [vbt.evaluate_asset(market.frame(a), family, params, settings, market.freq, window)
             for a in range(market.n_assets)]
        )
    else:  # pragma: no cover - RunConfig refuses other names
        raise ValueError(f"unknown engine {settings.engine!r}")
    return Evaluation(reduce_assets(per_asset, settings.reducer, directions), per_asset)


def simulate_signals(close, entries, exits, *, init_cash, fees, slippage, sl_stop=None, tp_stop=None, freq,
                     short_entries=None, short_exits=None, direction="longonly", upon_opposite_entry="reversereduce",
                     size=float("inf"), size_type="amount", open=None, high=None, low=None, sl_trail=False):
    """Metrics per column of `entries`, equal to vectorbt's `Portfolio.from_signals` with the same
    arguments (vectorbt's names and defaults; see `evo.engine.fast.simulate_signals`)."""
    from evo.engine.fast import simulate_signals as _simulate

    return _simulate(
        close, entries, exits, init_cash=init_cash, fees=fees, slippage=slippage, sl_stop=sl_stop, tp_stop=tp_stop,
        freq=freq, short_entries=short_entries, short_exits=short_exits, direction=direction,
        upon_opposite_entry=upon_opposite_entry, size=size, size_type=size_type, open=open, high=high, low=low,
        sl_trail=sl_trail,
    )


def simulate_portfolio(close, entries, exits, *, init_cash, fees, slippage, sl_stop=None, tp_stop=None, freq,
                       short_entries=None, short_exits=None, direction="longonly",
                       upon_opposite_entry="reversereduce", size=None, size_type=None, open=None, high=None, low=None,
                       sl_trail=False):
    """Metrics of one strategy's signals on several assets as one shared-cash portfolio, equal to vectorbt's
    `Portfolio.from_signals(..., group_by=True, cash_sharing=True)`; equal allocation (size=init_cash /
    n_assets, size_type='value') unless size or size_type is given (see `evo.engine.fast.simulate_portfolio`)."""
    from evo.engine.fast import simulate_portfolio as _simulate

    return _simulate(
        close, entries, exits, init_cash=init_cash, fees=fees, slippage=slippage, sl_stop=sl_stop, tp_stop=tp_stop,
        freq=freq, short_entries=short_entries, short_exits=short_exits, direction=direction,
        upon_opposite_entry=upon_opposite_entry, size=size, size_type=size_type, open=open, high=high, low=low,
        sl_trail=sl_trail,
    )
