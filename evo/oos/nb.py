"""numba kernels of the out-of-sample statistics: CSCV over phenotypes' block sums, and the risk of
the Monte Carlo resamples."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

REDUCERS = {"mean": 0, "median": 1, "worst": 2, "portfolio": 0}


@njit(cache=True, error_model="numpy", inline="always")
def sharpe_nb(s: float, q: float, n: float) -> float:
    """Per-bar Sharpe ratio (ddof 1) from a sum, a sum of squares and a count; 0 without variance."""
    mean = s / n
    var = (q - s * mean) / (n - 1)
    if var > 0:
        out = mean / np.sqrt(var)
        if np.isfinite(out):
            return out
    return 0.0


@njit(cache=True, error_model="numpy", inline="always")
def reduce_nb(col, reducer: int) -> float:
    """One symbol-reduced Sharpe ratio from the per-symbol ones (mean, median or worst)."""
    if col.shape[0] == 1:
        return col[0]
    if reducer == 1:
        return np.median(col)
    if reducer == 2:
        return col.min()
    return col.mean()


@njit(cache=True, parallel=True, error_model="numpy")
def cscv_nb(sq, counts, in_sets, reducer: int, chosen, is_sr, oos_sr, logits) -> None:
    """CSCV: sq holds the block sums and sums of squares [2, A, S, N] (A symbols, S blocks, N phenotypes),
    counts the bars per block [S], in_sets the in-sample blocks of each split [splits, S/2]. Writes per
    split the chosen phenotype (best reduced in-sample Sharpe ratio, first on ties), its in- and
    out-of-sample Sharpe ratios and the logit of its out-of-sample relative rank (average rank on ties,
    over N + 1)."""
    s = sq[0]
    q = sq[1]
    n_sym, n_blocks, n = s.shape
    tot_s = np.zeros((n_sym, n))
    tot_q = np.zeros((n_sym, n))
    for a in range(n_sym):
        for b in range(n_blocks):
            for j in range(n):
                tot_s[a, j] += s[a, b, j]
                tot_q[a, j] += q[a, b, j]
    n_total = counts.sum()
    for i in prange(in_sets.shape[0]):
        n_in = 0.0
        for k in range(in_sets.shape[1]):
            n_in += counts[in_sets[i, k]]
        n_out = n_total - n_in
        si = np.empty(n)
        qi = np.empty(n)
        rin = np.empty(n)
        rout = np.empty(n)
        sr_in = np.empty((n, n_sym))
        sr_out = np.empty((n, n_sym))
        for a in range(n_sym):
            si[:] = 0.0
            qi[:] = 0.0
            for k in range(in_sets.shape[1]):
                b = in_sets[i, k]
                for j in range(n):
                    si[j] += s[a, b, j]
                    qi[j] += q[a, b, j]
            if n_sym == 1:  # one series: no reduction
                for j in range(n):
                    rin[j] = sharpe_nb(si[j], qi[j], n_in)
                    rout[j] = sharpe_nb(tot_s[a, j] - si[j], tot_q[a, j] - qi[j], n_out)
            else:
                for j in range(n):
                    sr_in[j, a] = sharpe_nb(si[j], qi[j], n_in)
                    sr_out[j, a] = sharpe_nb(tot_s[a, j] - si[j], tot_q[a, j] - qi[j], n_out)
        if n_sym > 1:
            for j in range(n):
                rin[j] = reduce_nb(sr_in[j], reducer)
                rout[j] = reduce_nb(sr_out[j], reducer)
        best = 0
        for j in range(n):
            if rin[j] > rin[best]:
                best = j
        pick = rout[best]
        below = 0
        ties = 0
        for j in range(n):
            if rout[j] < pick:
                below += 1
            elif rout[j] == pick:
                ties += 1
        omega = (below + (ties + 1) / 2) / (n + 1)
        chosen[i] = best
        is_sr[i] = rin[best]
        oos_sr[i] = pick
        logits[i] = np.log(omega / (1 - omega))


@njit(cache=True, parallel=True, error_model="numpy")
def resampled_risk_nb(returns, idx, totals, drawdowns) -> None:
    """For each resample i (the bar indices idx[i]): totals[i], its total return, and drawdowns[i], its
    deepest drawdown (a negative fraction, vectorbt's sign), wealth starting at 1 before its first bar.

    One pass over the indices per resample, reading `returns` where they point: no resampled copy."""
    for i in prange(idx.shape[0]):
        wealth, peak, deepest = 1.0, 1.0, 0.0
        for t in range(idx.shape[1]):
            wealth *= 1.0 + returns[idx[i, t]]
            if wealth > peak:
                peak = wealth
            dd = wealth / peak - 1.0
            if dd < deepest:
                deepest = dd
        totals[i] = wealth - 1.0
        drawdowns[i] = deepest
