"""The vectorbt engine: `Portfolio.from_signals` over a whole chunk of strategies as columns.

This is the reference: `portfolio_metrics` defines what every metric means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from evo.config.metrics import TABLE

if TYPE_CHECKING:  # a family is passed in: the engine sits below the strategies
    from evo.strategies.base import Family

Params = Mapping[str, Any]


def portfolio_metrics(pf) -> np.ndarray:
    """(n_columns, len(METRICS)) from a vectorbt Portfolio, in slot order: each metric as the metric
    table defines it (evo.config.metrics)."""
    return np.column_stack([np.asarray(m.reference(pf), dtype=np.float64).reshape(-1) for m in TABLE])


def _per_column(values: np.ndarray | None, n: int) -> np.ndarray | float:
    # a (1, n) row broadcasts per column in vectorbt; NaN disables a stop
    if values is None:
        return np.nan
    return np.asarray(values, dtype=np.float64).reshape(1, n)


def params_kwargs(params: np.ndarray) -> dict:
    """vectorbt's from_signals arguments for per-column evo.engine.enums.params_dt records."""
    n = len(params)
    return dict(
        direction=params["direction"].reshape(1, n),
        size=params["size"].reshape(1, n),
        size_type=params["size_type"].reshape(1, n),
        sl_stop=params["sl_stop"].reshape(1, n),
        tp_stop=params["tp_stop"].reshape(1, n),
        sl_trail=params["sl_trail"].reshape(1, n),
    )


def portfolio(
    close: pd.Series | pd.DataFrame,
    entries: pd.DataFrame | np.ndarray,
    exits: pd.DataFrame | np.ndarray,
    *,
    init_cash: float,
    fees: float,
    slippage: float,
    freq: pd.Timedelta | str,
    sl_stop: np.ndarray | None = None,
    tp_stop: np.ndarray | None = None,
    params: np.ndarray | None = None,
    ohlc: dict | pd.DataFrame | None = None,
    upon_opposite_entry: str = "reversereduce",
    **kwargs,
):
    """vectorbt's `Portfolio.from_signals` of entries/exits columns. params (one params_dt record per
    column) replaces sl_stop and tp_stop with each column's direction, size, size type, stops and
    trailing; ohlc (open, high, low) lets the stops fill within the bar; kwargs go to from_signals
    (group_by, cash_sharing)."""
    import vectorbt as vbt

    entries = np.asarray(entries, dtype=bool)
    n = entries.shape[1]
    kw = params_kwargs(params) if params is not None else dict(
        sl_stop=_per_column(sl_stop, n), tp_stop=_per_column(tp_stop, n)
    )
    if ohlc is not None:
        kw.update(open=ohlc["open"], high=ohlc["high"], low=ohlc["low"])
    return vbt.Portfolio.from_signals(
        close,
        entries,
        np.asarray(exits, dtype=bool),
        init_cash=init_cash,
        fees=fees,
        slippage=slippage,
        freq=freq,
        upon_opposite_entry=upon_opposite_entry,
        **kw,
        **kwargs,
    )


def simulate(close, entries, exits, **kwargs) -> np.ndarray:
    """Metrics of entries/exits columns: `portfolio_metrics(portfolio(...))`."""
    return portfolio_metrics(portfolio(close, entries, exits, **kwargs))


def fingerprints(pf, n_columns: int) -> np.ndarray:
    """(n_columns,) int64 trade fingerprints of a portfolio's columns, from its order records: equal to
    the fast engine's (evo.engine.nb.order_hash_nb over each column's orders in bar order)."""
    from evo.engine import nb

    o = pf.orders.values
    return nb.order_fingerprints_nb(
        o["col"].astype(np.int64), o["idx"].astype(np.int64), o["side"].astype(np.int64),
        o["size"].astype(np.float64), n_columns,
    ).view(np.int64)


def _records(family: Family, params: Sequence[Params], settings, sim_params, portfolio_assets: int = 0):
    if sim_params is not None:
        return sim_params
    space = family.space()
    return family.sim_params(space.encode(list(params)), space.names, settings.init_cash, portfolio_assets)


def evaluate_asset(ohlcv: pd.DataFrame, family: Family, params: Sequence[Params], settings, freq, window=None, *,
                   sim_params: np.ndarray | None = None, ohlc_stops: bool | None = None,
                   upon_opposite_entry: str = "reversereduce", fingerprints_out: np.ndarray | None = None
                   ) -> np.ndarray:
    """Metrics of every parameter set on one symbol: (len(params), len(METRICS)).

    window = (start, stop): signals from bars [0, stop), the portfolio trades [start, stop).
    sim_params, ohlc_stops, upon_opposite_entry: as evo.engine.fast.evaluate_arrays (default: the
    family's records from the genomes' genes, settings.ohlc_stops). fingerprints_out: an array of
    len(params) receiving each one's trade fingerprint.
    """
    start, stop = window if window is not None else (0, len(ohlcv))
    ohlcv = ohlcv.iloc[:stop]
    entries, exits = family.reference_signals(ohlcv, list(params))
    ohlc_stops = settings.ohlc_stops if ohlc_stops is None else ohlc_stops
    pf = portfolio(
        ohlcv["close"].iloc[start:],
        entries.to_numpy()[start:],
        exits.to_numpy()[start:],
        init_cash=settings.init_cash,
        fees=settings.fees,
        slippage=settings.slippage,
        freq=freq,
        params=_records(family, params, settings, sim_params),
        ohlc=ohlcv.iloc[start:] if ohlc_stops else None,
        upon_opposite_entry=upon_opposite_entry,
    )
    if fingerprints_out is not None:
        fingerprints_out[:] = fingerprints(pf, len(params))
    return portfolio_metrics(pf)


def evaluate_portfolio(frames: Sequence[pd.DataFrame], family: Family, params: Sequence[Params], settings, freq,
                       window=None, *, sim_params: np.ndarray | None = None, ohlc_stops: bool | None = None,
                       upon_opposite_entry: str = "reversereduce", fingerprints_out: np.ndarray | None = None
                       ) -> np.ndarray:
    """Metrics (len(params), len(METRICS)) of each parameter set trading every symbol (`frames`, on
    common bars) as one portfolio: one `from_signals` with a column per (parameter set, symbol), grouped
    per parameter set with shared cash, sized by the family's records (equal allocation by value).
    fingerprints_out: an (n_symbols, len(params)) array receiving each symbol's trade fingerprint."""
    n, n_assets = len(params), len(frames)
    start, stop = window if window is not None else (0, len(frames[0]))
    signals = [family.reference_signals(f.iloc[:stop], list(params)) for f in frames]
    # column s * n_assets + a: parameter set s on symbol a
    wide = lambda arrays: np.stack(arrays, axis=2)[start:].reshape(stop - start, n * n_assets)  # noqa: E731
    entries = wide([e.to_numpy() for e, _ in signals])
    exits = wide([x.to_numpy() for _, x in signals])
    prices = {f: np.tile(np.column_stack([fr[f].to_numpy(dtype=np.float64)[start:stop] for fr in frames]), n)
              for f in ("open", "high", "low", "close")}
    index = frames[0].index[start:stop]
    records = np.repeat(_records(family, params, settings, sim_params, n_assets), n_assets)
    ohlc_stops = settings.ohlc_stops if ohlc_stops is None else ohlc_stops
    pf = portfolio(
        pd.DataFrame(prices["close"], index=index), entries, exits,
        init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage, freq=freq, params=records,
        ohlc={f: pd.DataFrame(prices[f], index=index) for f in ("open", "high", "low")} if ohlc_stops else None,
        upon_opposite_entry=upon_opposite_entry, group_by=np.repeat(np.arange(n), n_assets), cash_sharing=True,
    )
    if fingerprints_out is not None:
        fingerprints_out[:] = fingerprints(pf, n * n_assets).reshape(n, n_assets).T
    return portfolio_metrics(pf)
