"""The vectorbt engine: `Portfolio.from_signals` over a whole chunk of strategies as columns.

This is the reference: `portfolio_metrics` defines what every metric means.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from evo.metrics import TABLE
from evo.strategies.base import Family, Params


def portfolio_metrics(pf) -> np.ndarray:
    """(n_columns, len(METRICS)) from a vectorbt Portfolio, in slot order: each metric as the metric
    table defines it (evo.metrics)."""
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


def simulate(
    close: pd.Series,
    entries: pd.DataFrame | np.ndarray,
    exits: pd.DataFrame | np.ndarray,
    *,
    init_cash: float,
    fees: float,
    slippage: float,
    sl_stop: np.ndarray | None,
    tp_stop: np.ndarray | None,
    freq: pd.Timedelta | str,
    params: np.ndarray | None = None,
    ohlc: pd.DataFrame | None = None,
    upon_opposite_entry: str = "reversereduce",
) -> np.ndarray:
    """Metrics of entries/exits columns. params (one params_dt record per column) replaces sl_stop and
    tp_stop with each column's direction, size, size type, stops and trailing; ohlc (open, high, low
    columns) lets the stops fill within the bar."""
    import vectorbt as vbt

    entries = np.asarray(entries, dtype=bool)
    n = entries.shape[1]
    kw = params_kwargs(params) if params is not None else dict(
        sl_stop=_per_column(sl_stop, n), tp_stop=_per_column(tp_stop, n)
    )
    if ohlc is not None:
        kw.update(open=ohlc["open"], high=ohlc["high"], low=ohlc["low"])
    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        np.asarray(exits, dtype=bool),
        init_cash=init_cash,
        fees=fees,
        slippage=slippage,
        freq=freq,
        upon_opposite_entry=upon_opposite_entry,
        **kw,
    )
    return portfolio_metrics(pf)


def evaluate_asset(ohlcv: pd.DataFrame, family: Family, params: Sequence[Params], settings, freq, window=None, *,
                   sim_params: np.ndarray | None = None, ohlc_stops: bool = False,
                   upon_opposite_entry: str = "reversereduce") -> np.ndarray:
    """Metrics of every parameter set on one symbol: (len(params), len(METRICS)).

    window = (start, stop): signals from bars [0, stop), the portfolio trades [start, stop).
    sim_params, ohlc_stops, upon_opposite_entry: as evo.engine.fast.evaluate_arrays (default: the
    family's long-only all-in stops, filled from the close).
    """
    start, stop = window if window is not None else (0, len(ohlcv))
    ohlcv = ohlcv.iloc[:stop]
    entries, exits = family.reference_signals(ohlcv, list(params))
    sl, tp = family.stops(params)
    return simulate(
        ohlcv["close"].iloc[start:],
        entries.to_numpy()[start:],
        exits.to_numpy()[start:],
        init_cash=settings.init_cash,
        fees=settings.fees,
        slippage=settings.slippage,
        sl_stop=sl,
        tp_stop=tp,
        freq=freq,
        params=sim_params,
        ohlc=ohlcv.iloc[start:] if ohlc_stops else None,
        upon_opposite_entry=upon_opposite_entry,
    )
