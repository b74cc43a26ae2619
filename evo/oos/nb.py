"""numba kernels of the out-of-sample statistics: CSCV over phenotypes' block sums, and the risk of
the Monte Carlo resamples."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

REDUCERS = {"mean": 0, "median": 1, "worst": 2, "portfolio": 0}

#: what CSCV finds on one split (cscv_nb)
split_dt = np.dtype([("chosen", np.int64), ("is_sr", np.float64), ("oos_sr", np.float64), ("logit", np.float64),
                     ("unsure", np.bool_)], align=True)


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


@njit(cache=True, error_model="numpy", inline="always")
def slack_nb(big: float, c) -> float:
    """How far a Sharpe ratio from rounded sums may be from the exact one, `big` the largest |Sharpe
    ratio| of its symbols: c[0] * (1 + big)^3 + c[1] * big * (1 + big^2), for sums rounded within c[0] and
    sums of squares within c[1] (with a margin; see evo.oos.cscv.ROUNDING_SLACK)."""
    a = 1.0 + big
    return c[0] * a * a * a + c[1] * big * (1.0 + big * big)


@njit(cache=True, error_model="numpy", inline="always")
def phenotype_slack_nb(j: int, sr, q, tot_q, inside: bool, exact, c) -> float:
    """slack_nb of phenotype j's reduced Sharpe ratio on one side of a split: sr[j, a] its symbols' Sharpe
    ratios there, q[j, a] their in-sample sums of squares (tot_q[a, j] - q[j, a] out of sample). 0 for
    exact sums, or a side flat on every symbol (its sums are zeros in any precision)."""
    if exact[j]:
        return 0.0
    big = 0.0
    flat = True
    for a in range(sr.shape[1]):
        big = max(big, abs(sr[j, a]))
        side = q[j, a] if inside else tot_q[a, j] - q[j, a]
        flat = flat and side == 0.0
    return 0.0 if flat else slack_nb(big, c)


@njit(cache=True, parallel=True, error_model="numpy")
def cscv_nb(sq, counts, in_sets, reducer: int, exact, c, out, involved) -> None:
    """CSCV: sq holds the block sums and sums of squares [2, A, S, N] (A symbols, S blocks, N phenotypes),
    counts the bars per block [S], in_sets the in-sample blocks of each split [splits, S/2]. Writes into
    out (a split_dt record per split) the chosen phenotype (best reduced in-sample Sharpe ratio, first on ties), its in- and
    out-of-sample Sharpe ratios and the logit of its out-of-sample relative rank (average rank on ties,
    over N + 1).

    Sums not marked `exact` are rounded (float32 storage): each of their Sharpe ratios may be off by
    phenotype_slack_nb. `unsure` is set when that could change split i's outcome: another phenotype
    within the slacks of the chosen one in sample, or enough phenotypes within the slacks of its
    out-of-sample Sharpe ratio (or tied with it, not both exact) to move its relative rank across the
    median; then involved[j] is set for each of those phenotypes and the chosen one whose sums are not
    exact (their exact sums settle the split: evo.oos.cscv.cscv)."""
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
        # the largest |Sharpe ratio| of any phenotype and symbol: it bounds every phenotype's slack
        big_in = 0.0
        big_out = 0.0
        # the symbols' Sharpe ratios and in-sample sums of squares, for the slacks (one symbol: rin, rout
        # and qi themselves)
        sr_in = rin.reshape((n, 1))
        sr_out = rout.reshape((n, 1))
        q_in = qi.reshape((n, 1))
        if n_sym == 1:  # one series: no reduction
            si[:] = 0.0
            qi[:] = 0.0
            for k in range(in_sets.shape[1]):
                b = in_sets[i, k]
                for j in range(n):
                    si[j] += s[0, b, j]
                    qi[j] += q[0, b, j]
            for j in range(n):
                rin[j] = sharpe_nb(si[j], qi[j], n_in)
                rout[j] = sharpe_nb(tot_s[0, j] - si[j], tot_q[0, j] - qi[j], n_out)
            for j in range(n):
                big_in = max(big_in, abs(rin[j]))
                big_out = max(big_out, abs(rout[j]))
        else:
            sr_in = np.empty((n, n_sym))
            sr_out = np.empty((n, n_sym))
            q_in = np.empty((n, n_sym))
            for a in range(n_sym):
                si[:] = 0.0
                qi[:] = 0.0
                for k in range(in_sets.shape[1]):
                    b = in_sets[i, k]
                    for j in range(n):
                        si[j] += s[a, b, j]
                        qi[j] += q[a, b, j]
                for j in range(n):
                    x = sharpe_nb(si[j], qi[j], n_in)
                    y = sharpe_nb(tot_s[a, j] - si[j], tot_q[a, j] - qi[j], n_out)
                    sr_in[j, a] = x
                    sr_out[j, a] = y
                    q_in[j, a] = qi[j]
                    big_in = max(big_in, abs(x))
                    big_out = max(big_out, abs(y))
            for j in range(n):
                rin[j] = reduce_nb(sr_in[j], reducer)
                rout[j] = reduce_nb(sr_out[j], reducer)
        best = 0
        second = -np.inf  # the best in-sample Sharpe ratio of the others
        for j in range(1, n):
            if rin[j] > rin[best]:
                second = rin[best]
                best = j
            elif rin[j] > second:
                second = rin[j]
        pick = rout[best]
        slack_best_in = phenotype_slack_nb(best, sr_in, q_in, tot_q, True, exact, c)
        slack_best_out = phenotype_slack_nb(best, sr_out, q_in, tot_q, False, exact, c)
        # no phenotype's slack exceeds slack_nb(big): only those within these reaches need a closer look
        reach_in = rin[best] - (slack_best_in + slack_nb(big_in, c))
        reach_out = slack_best_out + slack_nb(big_out, c)
        below = 0
        ties = 0
        low = 0  # below the pick's reach, and within or below it
        high = 0
        for j in range(n):
            x = rout[j]
            below += x < pick
            ties += x == pick
            low += x < pick - reach_out
            high += x <= pick + reach_out
        twice = 2.0 * below + ties + 1.0  # twice the rank: (N + 1) is the median
        near = high - low - 1  # the chosen one is within its own reach
        close_in = second >= reach_in
        if close_in or (near > 0 and abs(twice - (n + 1)) <= 2.0 * near):
            # a closer look, with each phenotype's own slack
            near = 0  # phenotypes whose side of the pick (below, tied, above) rounding may have decided
            close_in = False
            for j in range(n):
                if j == best:
                    continue
                x = rout[j]
                if rin[j] >= reach_in and rin[j] >= rin[best] - (
                        slack_best_in + phenotype_slack_nb(j, sr_in, q_in, tot_q, True, exact, c)):
                    close_in = True
                if abs(x - pick) <= reach_out:
                    if x == pick:
                        if not (exact[j] and exact[best]):
                            near += 1
                    elif abs(x - pick) <= slack_best_out + phenotype_slack_nb(j, sr_out, q_in, tot_q, False,
                                                                              exact, c):
                        near += 1
        omega = (below + (ties + 1) / 2) / (n + 1)
        o = out[i]
        o["chosen"] = best
        o["is_sr"] = rin[best]
        o["oos_sr"] = pick
        o["logit"] = np.log(omega / (1 - omega))
        # the rank (below + (ties + 1) / 2) moves by at most `near` either way: is it still on its side?
        unsure_out = near > 0 and abs(twice - (n + 1)) <= 2.0 * near
        o["unsure"] = close_in or unsure_out
        if o["unsure"]:  # rare: name the phenotypes whose exact sums would settle it
            if not exact[best]:
                involved[best] = True
            for j in range(n):
                if j == best or exact[j]:
                    continue
                x = rout[j]
                if close_in and rin[j] >= rin[best] - (
                        slack_best_in + phenotype_slack_nb(j, sr_in, q_in, tot_q, True, exact, c)):
                    involved[j] = True
                if unsure_out and abs(x - pick) <= slack_best_out + phenotype_slack_nb(
                        j, sr_out, q_in, tot_q, False, exact, c):
                    involved[j] = True


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
