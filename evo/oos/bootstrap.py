"""Resampling the holdout: Hansen's test for superior predictive ability against buy-and-hold, and the
Monte Carlo risk of each strategy, both on arch's stationary bootstrap (Politis & Romano 1994)."""

from __future__ import annotations

import numpy as np


def spa(strategy_returns: np.ndarray, benchmark_returns: np.ndarray, *, block: int, reps: int, seed) -> dict:
    """Hansen's SPA test (2005) of strategies' bar returns [T, k] against a benchmark's [T].

    arch compares losses, lower being better: a strategy's loss on a bar is its negative return. The
    null is that no strategy beats the benchmark; a small p-value is evidence that one does. Returns
    the lower, consistent and upper p-values."""
    from arch.bootstrap import SPA

    models = -np.asarray(strategy_returns, dtype=np.float64)
    if models.ndim == 1:
        models = models[:, None]
    test = SPA(-np.asarray(benchmark_returns, dtype=np.float64), models, block_size=block, reps=reps,
               bootstrap="stationary", studentize=True, nested=False, seed=seed)
    test.compute()
    p = test.pvalues
    return {"spa_pvalue": float(p["consistent"]), "spa_pvalue_lower": float(p["lower"]),
            "spa_pvalue_upper": float(p["upper"])}


def resampled_risk(returns: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total return, deepest drawdown as a negative fraction, vectorbt's sign) of each resample of the
    bar returns `returns` [T] at the bar indices idx [k, n], wealth starting at 1 before its first bar
    (evo.oos.nb.resampled_risk_nb)."""
    from evo.oos.nb import resampled_risk_nb

    idx = np.ascontiguousarray(idx, dtype=np.int64)
    totals, dds = np.empty(len(idx)), np.empty(len(idx))
    resampled_risk_nb(np.ascontiguousarray(returns, dtype=np.float64), idx, totals, dds)
    return totals, dds


def monte_carlo(returns: np.ndarray, *, block: int, reps: int, ruin: float, seed, bins: int = 20) -> dict:
    """Risk of a strategy's bar returns under a stationary bootstrap: P(total return < 0), the median and
    the 5 % quantile (the deep tail) of the maximum drawdown, and P(drawdown deeper than `ruin`), with a
    histogram of the drawdowns for the report. The same seed gives the same numbers."""
    from arch.bootstrap import StationaryBootstrap

    r = np.nan_to_num(np.asarray(returns, dtype=np.float64), nan=0.0)
    if len(r) < 2:
        return {"bars": int(len(r)), "resamples": 0}
    bs = StationaryBootstrap(block, r, seed=seed)
    totals = np.empty(reps)
    dds = np.empty(reps)
    step = max(1, 4_000_000 // len(r))  # resamples per batch: bounded memory on long windows
    done = 0
    while done < reps:
        k = min(step, reps - done)
        idx = np.stack([bs.update_indices() for _ in range(k)])  # arch's resampled bar indices
        totals[done:done + k], dds[done:done + k] = resampled_risk(r, idx)
        done += k
    counts, edges = np.histogram(dds, bins=bins)
    return {
        "bars": int(len(r)),
        "resamples": int(reps),
        "prob_loss": float(np.mean(totals < 0)),
        "max_drawdown_median": float(np.median(dds)),
        "max_drawdown_q05": float(np.quantile(dds, 0.05)),
        "prob_ruin": float(np.mean(dds <= -ruin)),
        "drawdown_histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
    }

