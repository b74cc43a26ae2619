"""Numba signal kernels of the built-in families: cached indicator rows + genes in, entries/exits out.

Each family has kernels around one per-strategy function:
  <family>_row_nb      signals of one strategy over all bars
  <family>_signals_nb  a block of strategies into (n, bars) arrays (the engine's generic path)
  <family>_metrics_nb  optional fused pass: signals into a per-thread buffer, then the simulation
                       and every metric (evo.engine.nb.simulate_column_nb), strategy by strategy
                       (rsi_pullback, the default family, has one; the others use the generic path)
Every comparison is the one in the family's `reference_signals`, on the same
float64 values, so fast and reference signals are equal bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from evo.engine import enums as _engine_enums
from evo.engine import nb as _engine_nb
from evo.engine.enums import N_METRICS
from evo.engine.nb import BATCH, batch_add_nb, sharpe_batch_nb, simulate_column_nb
from evo.engine.jit import drop_stale_cache

drop_stale_cache(__file__, _engine_nb.__file__, _engine_enums.__file__)


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
def rsi_pullback_metrics_nb(values, rows, genes, volume, open_, high, low, close, params, sim, n_threads):
    """(metrics (n, N_METRICS), trade fingerprints (n,) uint64): params is one evo.engine.enums.params_dt
    record per strategy, sim the SimSettings; open/high/low are the close itself for close-only stops."""
    n = rows.shape[0]
    n_bars = close.shape[0]
    out = np.empty((n, N_METRICS))
    fps = np.empty(n, dtype=np.uint64)
    n_threads = max(1, min(n_threads, n))
    ret = np.empty((n_threads, BATCH, n_bars))  # a batch of returns per thread: see evo.engine.nb.BATCH
    means = np.empty((n_threads, BATCH))
    counts = np.empty((n_threads, BATCH), dtype=np.int64)
    slots = np.empty((n_threads, BATCH), dtype=np.int64)
    ent = np.empty((n_threads, n_bars), dtype=np.bool_)
    ext = np.empty((n_threads, n_bars), dtype=np.bool_)
    no_signals = np.empty(0, dtype=np.bool_)
    for t in prange(n_threads):
        q = 0
        for s in range(t, n, n_threads):
            rsi_pullback_row_nb(values, rows[s], genes[s], volume, ent[t], ext[t])
            fp, mean, k = simulate_column_nb(open_, high, low, close, ent[t], ext[t], no_signals, no_signals,
                                             params[s], sim, ret[t, q], out[s], False)
            fps[s] = fp
            q = batch_add_nb(ret[t], q, s, mean, k, means[t], counts[t], slots[t], sim, out)
        if q > 0:
            sharpe_batch_nb(ret[t], q, sim.start, means[t], counts[t], sim.ann_factor, out, slots[t])
    return out, fps


# The families below have no fused <family>_metrics_nb: the engine runs their
# <family>_signals_nb block by block and then its generic simulation kernel.

# ############# mean_reversion ############# #


@njit(cache=True)
def mean_reversion_row_nb(values, rows, genes, close, entries, exits):
    """rows = (ma, mstd, rsi) cache rows (ma and mstd of bb_window); genes = (bb_alpha, rsi_lower, rsi_upper).

    lower = ma - bb_alpha * mstd is vectorbt's `bb_apply_nb` expression, in its order of operations."""
    ma = values[rows[0]]
    mstd = values[rows[1]]
    rsi = values[rows[2]]
    alpha = genes[0]
    lower = genes[1]
    upper = genes[2]
    for i in range(entries.shape[0]):
        c = close[i]
        m = ma[i]
        r = rsi[i]
        entries[i] = c < m - alpha * mstd[i] and r < lower
        exits[i] = c > m or r > upper


@njit(cache=True, parallel=True)
def mean_reversion_signals_nb(values, rows, genes, close, entries, exits):
    for s in prange(entries.shape[0]):
        mean_reversion_row_nb(values, rows[s], genes[s], close, entries[s], exits[s])


# ############# trend ############# #


@njit(cache=True)
def trend_row_nb(values, rows, genes, close, entries, exits):
    """rows = (fast EMA, slow EMA, ATR) cache rows; genes = (max_vol,)."""
    fast = values[rows[0]]
    slow = values[rows[1]]
    atr = values[rows[2]]
    max_vol = genes[0]
    for i in range(entries.shape[0]):
        f = fast[i]
        sw = slow[i]
        entries[i] = f > sw and atr[i] <= max_vol * close[i]
        exits[i] = f < sw


@njit(cache=True, parallel=True)
def trend_signals_nb(values, rows, genes, close, entries, exits):
    for s in prange(entries.shape[0]):
        trend_row_nb(values, rows[s], genes[s], close, entries[s], exits[s])


# ############# breakout ############# #


@njit(cache=True)
def breakout_row_nb(values, rows, genes, close, entries, exits):
    """rows = (highest high over entry_window, lowest low over exit_window, ATR) cache rows,
    unshifted: bar i reads the channel of bar i - 1 (NaN on bar 0, as fshift(1) gives);
    genes = (atr_mult,)."""
    hh = values[rows[0]]
    ll = values[rows[1]]
    atr = values[rows[2]]
    mult = genes[0]
    n = entries.shape[0]
    if n == 0:
        return
    entries[0] = False  # no previous bar: the shifted channel is NaN
    exits[0] = False
    for i in range(1, n):
        c = close[i]
        entries[i] = c > hh[i - 1] + mult * atr[i]
        exits[i] = c < ll[i - 1]


@njit(cache=True, parallel=True)
def breakout_signals_nb(values, rows, genes, close, entries, exits):
    for s in prange(entries.shape[0]):
        breakout_row_nb(values, rows[s], genes[s], close, entries[s], exits[s])


# ############# composite ############# #


@njit(cache=True)
def composite_row_nb(values, rows, genes, close, volume, entries, exits):
    """rows = (rsi, fast, slow, bb ma, bb mstd, donchian high, donchian low, volume ma) cache rows;
    genes = (rsi_lower, rsi_upper, bb_alpha,
             e_rsi, e_trend, e_bb, e_breakout, e_volume, entry_logic,
             x_rsi, x_trend, x_bb, x_breakdown, exit_logic).

    A switch is on when its gene is >= 0.5 (genes are 0/1 integers); logic >= 0.5 is OR, else AND.
    AND over the enabled conditions starts True, OR starts False; no enabled condition gives False."""
    rsi = values[rows[0]]
    fast = values[rows[1]]
    slow = values[rows[2]]
    ma = values[rows[3]]
    mstd = values[rows[4]]
    hh = values[rows[5]]
    ll = values[rows[6]]
    vol_ma = values[rows[7]]
    rsi_lower = genes[0]
    rsi_upper = genes[1]
    alpha = genes[2]
    e_rsi = genes[3] >= 0.5
    e_trend = genes[4] >= 0.5
    e_bb = genes[5] >= 0.5
    e_brk = genes[6] >= 0.5
    e_vol = genes[7] >= 0.5
    e_or = genes[8] >= 0.5
    x_rsi = genes[9] >= 0.5
    x_trend = genes[10] >= 0.5
    x_bb = genes[11] >= 0.5
    x_brk = genes[12] >= 0.5
    x_or = genes[13] >= 0.5
    e_none = not (e_rsi or e_trend or e_bb or e_brk or e_vol)
    x_none = not (x_rsi or x_trend or x_bb or x_brk)
    for i in range(entries.shape[0]):
        c = close[i]
        r = rsi[i]
        f = fast[i]
        sw = slow[i]
        m = ma[i]
        if i > 0:
            h_prev = hh[i - 1]
            l_prev = ll[i - 1]
        else:
            h_prev = np.nan
            l_prev = np.nan
        # entry conditions
        ce0 = r < rsi_lower
        ce1 = f > sw
        ce2 = c < m - alpha * mstd[i]
        ce3 = c > h_prev
        ce4 = volume[i] > vol_ma[i]
        if e_none:
            entries[i] = False
        elif e_or:
            entries[i] = (e_rsi and ce0) or (e_trend and ce1) or (e_bb and ce2) or (e_brk and ce3) or (e_vol and ce4)
        else:
            entries[i] = (
                (not e_rsi or ce0) and (not e_trend or ce1) and (not e_bb or ce2) and (not e_brk or ce3)
                and (not e_vol or ce4)
            )
        # exit conditions
        cx0 = r > rsi_upper
        cx1 = f < sw
        cx2 = c > m
        cx3 = c < l_prev
        if x_none:
            exits[i] = False
        elif x_or:
            exits[i] = (x_rsi and cx0) or (x_trend and cx1) or (x_bb and cx2) or (x_brk and cx3)
        else:
            exits[i] = (not x_rsi or cx0) and (not x_trend or cx1) and (not x_bb or cx2) and (not x_brk or cx3)


@njit(cache=True, parallel=True)
def composite_signals_nb(values, rows, genes, close, volume, entries, exits):
    for s in prange(entries.shape[0]):
        composite_row_nb(values, rows[s], genes[s], close, volume, entries[s], exits[s])
