"""Numba signal kernels of the built-in families: cached indicator rows + genes in, entries/exits out.

Each family has three kernels around one per-strategy function:
  <family>_row_nb      signals of one strategy over all bars
  <family>_signals_nb  a block of strategies into (n, bars) arrays (tests, and the generic path)
  <family>_metrics_nb  the fused pass: signals into a per-thread buffer, then the simulation
                       and every metric (evo.engine.nb.simulate_column_nb), strategy by strategy
Every comparison is the one in the family's `reference_signals`, on the same
float64 values, so fast and reference signals are equal bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from evo.engine import nb as _engine_nb
from evo.engine.nb import N_METRICS, simulate_column_nb
from evo.jit import drop_stale_cache

drop_stale_cache(__file__, _engine_nb.__file__)


@njit(cache=True)
def rsi_pullback_row_nb(values, rows, genes, volume, entries, exits):
    """rows = (rsi, fast, slow, vol_ma) cache rows; genes = (rsi_lower, rsi_upper, vol_mult)."""
    rsi = values[rows[0]]
    fast = values[rows[1]]
    slow = values[rows[2]]
    vol_ma = values[rows[3]]
    lower = genes[0]
    upper = genes[1]
    mult = genes[2]
    for i in range(entries.shape[0]):
        r = rsi[i]
        f = fast[i]
        sw = slow[i]
        entries[i] = r < lower and f > sw and volume[i] >= mult * vol_ma[i]
        exits[i] = r > upper or f < sw


@njit(cache=True, parallel=True)
def rsi_pullback_signals_nb(values, rows, genes, volume, entries, exits):
    for s in prange(entries.shape[0]):
        rsi_pullback_row_nb(values, rows[s], genes[s], volume, entries[s], exits[s])


@njit(cache=True, parallel=True, error_model="numpy")
def rsi_pullback_metrics_nb(values, rows, genes, volume, close, sl, tp, init_cash, fees, slippage, ann_factor, n_threads,
                            start):
    n = rows.shape[0]
    n_bars = close.shape[0]
    out = np.empty((n, N_METRICS))
    n_threads = max(1, min(n_threads, n))
    ret = np.empty((n_threads, n_bars))
    ent = np.empty((n_threads, n_bars), dtype=np.bool_)
    ext = np.empty((n_threads, n_bars), dtype=np.bool_)
    for t in prange(n_threads):
        for s in range(t, n, n_threads):
            rsi_pullback_row_nb(values, rows[s], genes[s], volume, ent[t], ext[t])
            simulate_column_nb(
                close, ent[t], ext[t], sl[s], tp[s], init_cash, fees, slippage, ann_factor, ret[t], out[s], start
            )
    return out
