"""The deflated Sharpe ratio verdict.

It follows Bailey & Lopez de Prado, "The Deflated Sharpe Ratio" (2014): the best in-sample Sharpe
ratio is compared with SR0, the Sharpe ratio the best of N strategies with no edge would reach by
luck (N = the distinct behaviours the run evaluated), and adjusted for the skewness and kurtosis of
its returns and the number of bars. Under that null the N Sharpe ratios differ by estimation noise
only, so SR0 uses its variance, 1/(T-1) per bar.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

EULER_GAMMA = 0.5772156649015329


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _norm_ppf(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def expected_max_sharpe(var_sr: float, n_trials: int) -> float:
    """SR0: the Sharpe ratio (per bar) the best of n_trials skill-less strategies reaches by chance."""
    if n_trials < 2 or var_sr <= 0:
        return 0.0
    return math.sqrt(var_sr) * (
        (1 - EULER_GAMMA) * _norm_ppf(1 - 1 / n_trials) + EULER_GAMMA * _norm_ppf(1 - 1 / (n_trials * math.e))
    )


def deflated_sharpe(sr: float, sr0: float, n_bars: int, skew: float, kurtosis: float) -> float:
    """P(true Sharpe > 0) after deflation; sr and sr0 per bar, kurtosis not excess (normal: 3)."""
    denom = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    if n_bars < 2 or denom <= 0 or not math.isfinite(sr):
        return 0.0
    return _norm_cdf((sr - sr0) * math.sqrt(n_bars - 1) / math.sqrt(denom))


@dataclass
class Verdict:
    verdict: str  # "edge" or "no evidence of edge"
    deflated_sharpe: float  # probability that the true Sharpe ratio is above zero
    sharpe_annualized: float  # of the candidate, in sample
    sharpe_per_bar: float
    expected_max_sharpe_per_bar: float  # SR0
    n_trials: int
    sharpe_std_null: float  # per bar: the estimation noise of a zero-Sharpe strategy, sqrt(1 / (T - 1))
    sharpe_std_across_trials: float  # per bar, observed (for information)
    n_bars: int
    skew: float
    kurtosis: float
    threshold: float
    candidate: str  # genome hash
    method: str = "deflated Sharpe ratio (Bailey & Lopez de Prado 2014)"

    def as_dict(self) -> dict:
        return asdict(self)


def verdict(
    candidate_returns: np.ndarray,
    candidate_sharpe_annualized: float,
    trial_sharpes_annualized: np.ndarray,
    ann_factor: float,
    threshold: float,
    candidate: str,
) -> Verdict:
    """Judge the best in-sample strategy against the number and spread of the strategies tried."""
    from scipy.stats import kurtosis, skew

    r = np.asarray(candidate_returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    trials = np.asarray(trial_sharpes_annualized, dtype=np.float64)
    trials = trials[np.isfinite(trials)] / math.sqrt(ann_factor)
    sr = candidate_sharpe_annualized / math.sqrt(ann_factor)
    # The null: none of the N strategies tried has an edge, so their Sharpe ratios differ only by
    # estimation noise, whose variance is 1/(T-1) per bar for a zero-Sharpe strategy (Lo 2002; the
    # same for strategies that are often out of the market). The spread actually observed across
    # the trials is reported too, but not used: when an edge exists it inflates that spread and
    # would hide the edge it comes from.
    var_sr = 1.0 / (len(r) - 1) if len(r) > 1 else 0.0
    observed_std = float(np.std(trials, ddof=1)) if len(trials) > 1 else 0.0
    sr0 = expected_max_sharpe(var_sr, max(len(trials), 1))
    sk = float(skew(r)) if len(r) > 2 and r.std() > 0 else 0.0
    ku = float(kurtosis(r, fisher=False)) if len(r) > 3 and r.std() > 0 else 3.0
    dsr = deflated_sharpe(sr, sr0, len(r), sk, ku) if math.isfinite(sr) else 0.0
    return Verdict(
        verdict="edge" if dsr >= threshold else "no evidence of edge",
        deflated_sharpe=dsr,
        sharpe_annualized=float(candidate_sharpe_annualized),
        sharpe_per_bar=sr,
        expected_max_sharpe_per_bar=sr0,
        n_trials=int(len(trials)),
        sharpe_std_null=math.sqrt(var_sr),
        sharpe_std_across_trials=observed_std,
        n_bars=int(len(r)),
        skew=sk,
        kurtosis=ku,
        threshold=threshold,
        candidate=candidate,
    )


#: the verdict's fields beyond the deflated Sharpe ratio (null in a verdict judged before they existed)
VERDICT_FIELDS = ("pbo", "pbo_degradation", "pbo_prob_loss", "spa_pvalue", "refused_by")


def judge(result: dict, deflated_threshold: float, pbo_max: float, spa_alpha: float) -> dict:
    """`result` with its verdict over the three tests: "edge" needs the deflated Sharpe ratio at
    `deflated_threshold` or above, PBO at `pbo_max` or below and the SPA p-value against buy-and-hold at
    `spa_alpha` or below. `refused_by` names each test that refused; a test that could not run (no
    holdout: no SPA; fewer than two behaviours: no PBO) refuses nothing and is listed in `not_run`."""
    refused, not_run = [], []
    if not result.get("deflated_sharpe", 0.0) >= deflated_threshold:
        refused.append("deflated Sharpe ratio")
    for name, key, limit in (("PBO", "pbo", pbo_max), ("SPA against buy-and-hold", "spa_pvalue", spa_alpha)):
        value = result.get(key)
        if value is None:
            not_run.append(name)
        elif not value <= limit:
            refused.append(name)
    return {**result, "verdict": "no evidence of edge" if refused else "edge", "refused_by": refused,
            "not_run": not_run, "pbo_max": pbo_max, "spa_alpha": spa_alpha}
