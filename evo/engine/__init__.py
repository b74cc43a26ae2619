"""Evaluation engines: strategies x market -> metrics. Heavy imports happen on first use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evo.config.metrics import METRICS, TABLE


@dataclass
class Evaluation:
    """What evaluating n genomes on a market gives: fitness rows, per-asset rows and trade fingerprints."""

    metrics: np.ndarray  # (n, len(METRICS)): per-asset metrics reduced across assets, or the portfolio's
    per_asset: np.ndarray  # (n_assets, n, len(METRICS)); with reducer "portfolio" (1, n, ...): the portfolio
    #: (n,) int64: each genome's trade fingerprint over all assets (the per-asset ones chained in asset order):
    #: equal for genomes whose orders (bars, sides, sizes) are equal, different otherwise (almost surely)
    fingerprints: np.ndarray
    asset_fingerprints: np.ndarray  # (n_assets, n) int64: the fingerprint of each asset's orders
    #: (n, series, blocks, 2): each genome's sum and sum of squares of bar returns on each block of the
    #: window, per symbol (the portfolio: its one series), when asked for and the engine gives them
    blocks: np.ndarray | None = None


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


def evaluate(market, family, params: Sequence[dict], settings, window=None, directions=None, edges=None
             ) -> Evaluation:
    """Evaluate parameter sets on every symbol of `market` with `settings.engine` ("fast" or "vectorbt").

    window = (start, stop) bar indices: signals see bars before `stop`, trading happens in
    [start, stop) (an in-sample or out-of-sample window); None means every bar.
    directions: metric -> "max"/"min", what "worst" means for the worst-case reducer.
    edges: block offsets [0, ..., window bars]: the fast engine then also gives each genome's block sums
    (Evaluation.blocks, computed in the same pass; the vectorbt engine gives none).
    settings.reducer "portfolio" trades all symbols as one portfolio with shared cash (equal
    allocation by value); the others backtest each symbol on its own and reduce the metrics.
    """
    n, n_assets = len(params), market.n_assets
    portfolio = settings.reducer == "portfolio"
    per_asset = np.empty((1 if portfolio else n_assets, n, len(METRICS)))
    fps = np.empty((n_assets, n), dtype=np.int64)
    blocks = None
    if n == 0:
        return Evaluation(np.empty((0, len(METRICS))), per_asset, np.empty(0, dtype=np.int64), fps)
    if settings.engine == "fast":
        from evo.engine import fast

        space = family.space()
        X = space.encode(list(params))
        if edges is not None:
            blocks = np.empty((n, per_asset.shape[0], len(edges) - 1, 2))
        if portfolio:
            per_asset[0] = fast.evaluate_portfolio([market.arrays(a) for a in range(n_assets)], family, X,
                                                   space.names, settings, market.freq, window, fingerprints=fps,
                                                   edges=edges, blocks=None if blocks is None else blocks[:, 0])
        for a in range(0 if portfolio else n_assets):
            per_asset[a] = fast.evaluate_arrays(market.arrays(a), family, X, space.names, settings, market.freq,
                                                window, fingerprints=fps[a], edges=edges,
                                                blocks=None if blocks is None else blocks[:, a])
    elif settings.engine == "vectorbt":
        from evo.engine import vbt

        if portfolio:
            per_asset[0] = vbt.evaluate_portfolio([market.frame(a) for a in range(n_assets)], family, params,
                                                  settings, market.freq, window, fingerprints_out=fps)
        for a in range(0 if portfolio else n_assets):
            per_asset[a] = vbt.evaluate_asset(market.frame(a), family, params, settings, market.freq, window,
                                              fingerprints_out=fps[a])
    else:  # pragma: no cover - RunConfig refuses other names
        raise ValueError(f"unknown engine {settings.engine!r}")
    from evo.engine.nb import combine_fingerprints_nb

    metrics = per_asset[0].copy() if portfolio else reduce_assets(per_asset, settings.reducer, directions)
    combined = combine_fingerprints_nb(fps.view(np.uint64)).view(np.int64)
    return Evaluation(metrics, per_asset, combined, fps, blocks)


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
