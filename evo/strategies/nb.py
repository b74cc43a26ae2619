"""Numba signal kernels of the built-in families: cached indicator rows + genes in, entries/exits out.

Each family has one per-strategy signal function and kernels around it:
  <family>_row_nb(inputs, s, entries, exits)
                       strategy s's signals over all bars into entries/exits; inputs is the
                       family's tuple (cache values, cache rows, genes, price series); returns
                       them as the engine's Signals (evo.engine.nb.filled_nb)
  <family>_signals_nb  a block of strategies into (n, bars) arrays (the engine's generic path)
  <family>_metrics_nb  optional fused pass: the engine's driver (evo.engine.nb.simulate_columns_nb)
                       with the row function plugged in, so each strategy's signals go into a
                       per-thread buffer and straight into the simulation and every metric
                       (rsi_pullback, the default family, has one; the others use the generic path)
Every comparison is the one in the family's `reference_signals`, on the same
float64 values, so fast and reference signals are equal bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from evo.config import metrics as _metrics
from evo.engine import enums as _enums
from evo.engine import nb as _engine_nb
from evo.engine.jit import drop_stale_cache
from evo.engine.nb import filled_nb, simulate_columns_nb

# the fused kernels compile the engine's simulation (and its constants) into this file's cache
drop_stale_cache(__file__, _engine_nb.__file__, _enums.__file__, _metrics.__file__)


@njit(inline="always")
def block_signals_nb(row_fn, inputs, entries, exits):
    """Signals of a block of strategies, rows in parallel: row_fn(inputs, s, entries[s], exits[s])."""
    for s in prange(entries.shape[0]):
        row_fn(inputs, s, entries[s], exits[s])


# ############# rsi_pullback ############# #


@njit(cache=True)
def rsi_pullback_row_nb(inputs, s, entries, exits):
    """inputs = (values, rows, genes, volume): rows[s] = (rsi, fast, slow, vol_ma) cache rows;
    genes[s] = (rsi_lower, rsi_upper, vol_mult)."""
    values, rows, genes, volume = inputs
    r = rows[s]
    rsi = values[r[0]]
    fast = values[r[1]]
    slow = values[r[2]]
    vol_ma = values[r[3]]
    g = genes[s]
    lower = g[0]
    upper = g[1]
    mult = g[2]
    for i in range(entries.shape[0]):
        rv = rsi[i]
        f = fast[i]
        sw = slow[i]
        entries[i] = rv < lower and f > sw and volume[i] >= mult * vol_ma[i]
        exits[i] = rv > upper or f < sw
    return filled_nb(entries, exits)


@njit(cache=True, parallel=True)
def rsi_pullback_signals_nb(values, rows, genes, volume, entries, exits):
    block_signals_nb(rsi_pullback_row_nb, (values, rows, genes, volume), entries, exits)


@njit(cache=True, parallel=True, error_model="numpy")
def rsi_pullback_metrics_nb(values, rows, genes, volume, prices, params, sim, n_threads):
    """(metrics (n, N_METRICS), trade fingerprints (n,) uint64, block sums (n, blocks, 2) of sim.edges):
    prices is the engine's Prices (open/high/low
    are the close itself for close-only stops), params one evo.engine.enums.params_dt record per strategy,
    sim the SimSettings."""
    return simulate_columns_nb(rsi_pullback_row_nb, (values, rows, genes, volume), prices, params, sim, n_threads)


# The families below have no fused <family>_metrics_nb: the engine runs their
# <family>_signals_nb block by block and then its generic simulation kernel.

# ############# mean_reversion ############# #


@njit(cache=True)
def mean_reversion_row_nb(inputs, s, entries, exits):
    """inputs = (values, rows, genes, close): rows[s] = (ma, mstd, rsi) cache rows (ma and mstd of
    bb_window); genes[s] = (bb_alpha, rsi_lower, rsi_upper).

    lower = ma - bb_alpha * mstd is vectorbt's `bb_apply_nb` expression, in its order of operations."""
    values, rows, genes, close = inputs
    ma = values[rows[s, 0]]
    mstd = values[rows[s, 1]]
    rsi = values[rows[s, 2]]
    alpha = genes[s, 0]
    lower = genes[s, 1]
    upper = genes[s, 2]
    for i in range(entries.shape[0]):
        c = close[i]
        m = ma[i]
        r = rsi[i]
        entries[i] = c < m - alpha * mstd[i] and r < lower
        exits[i] = c > m or r > upper
    return filled_nb(entries, exits)


@njit(cache=True, parallel=True)
def mean_reversion_signals_nb(values, rows, genes, close, entries, exits):
    block_signals_nb(mean_reversion_row_nb, (values, rows, genes, close), entries, exits)


# ############# trend ############# #


@njit(cache=True)
def trend_row_nb(inputs, s, entries, exits):
    """inputs = (values, rows, genes, close): rows[s] = (fast EMA, slow EMA, ATR) cache rows;
    genes[s] = (max_vol,)."""
    values, rows, genes, close = inputs
    fast = values[rows[s, 0]]
    slow = values[rows[s, 1]]
    atr = values[rows[s, 2]]
    max_vol = genes[s, 0]
    for i in range(entries.shape[0]):
        f = fast[i]
        sw = slow[i]
        entries[i] = f > sw and atr[i] <= max_vol * close[i]
        exits[i] = f < sw
    return filled_nb(entries, exits)


@njit(cache=True, parallel=True)
def trend_signals_nb(values, rows, genes, close, entries, exits):
    block_signals_nb(trend_row_nb, (values, rows, genes, close), entries, exits)


# ############# breakout ############# #


@njit(cache=True)
def breakout_row_nb(inputs, s, entries, exits):
    """inputs = (values, rows, genes, close): rows[s] = (highest high over entry_window, lowest low over
    exit_window, ATR) cache rows, unshifted: bar i reads the channel of bar i - 1 (NaN on bar 0, as
    fshift(1) gives); genes[s] = (atr_mult,)."""
    values, rows, genes, close = inputs
    hh = values[rows[s, 0]]
    ll = values[rows[s, 1]]
    atr = values[rows[s, 2]]
    mult = genes[s, 0]
    n = entries.shape[0]
    if n == 0:
        return filled_nb(entries, exits)
    entries[0] = False  # no previous bar: the shifted channel is NaN
    exits[0] = False
    for i in range(1, n):
        c = close[i]
        entries[i] = c > hh[i - 1] + mult * atr[i]
        exits[i] = c < ll[i - 1]
    return filled_nb(entries, exits)


@njit(cache=True, parallel=True)
def breakout_signals_nb(values, rows, genes, close, entries, exits):
    block_signals_nb(breakout_row_nb, (values, rows, genes, close), entries, exits)


# ############# composite ############# #


@njit(cache=True)
def composite_row_nb(inputs, s, entries, exits):
    """inputs = (values, rows, genes, close, volume): rows[s] = (rsi, fast, slow, bb ma, bb mstd, donchian
    high, donchian low, volume ma) cache rows; genes[s] = (rsi_lower, rsi_upper, bb_alpha,
             e_rsi, e_trend, e_bb, e_breakout, e_volume, entry_logic,
             x_rsi, x_trend, x_bb, x_breakdown, exit_logic).

    A switch is on when its gene is >= 0.5 (genes are 0/1 integers); logic >= 0.5 is OR, else AND.
    AND over the enabled conditions starts True, OR starts False; no enabled condition gives False."""
    values, all_rows, all_genes, close, volume = inputs
    rows = all_rows[s]
    genes = all_genes[s]
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
    return filled_nb(entries, exits)


@njit(cache=True, parallel=True)
def composite_signals_nb(values, rows, genes, close, volume, entries, exits):
    block_signals_nb(composite_row_nb, (values, rows, genes, close, volume), entries, exits)
