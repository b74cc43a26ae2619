"""Honest validation: the holdout and walk-forward windows, and the deflated Sharpe ratio verdict.

Windows are bar indices (start, stop). A strategy scored on a window sees the
bars before `stop` for its indicators and trades only in [start, stop), so an
out-of-sample score never uses a bar after the window and never the in-sample
trades.

The verdict follows Bailey & Lopez de Prado, "The Deflated Sharpe Ratio"
(2014): the best in-sample Sharpe ratio is compared with SR0, the Sharpe ratio
the best of N strategies with no edge would reach by luck (N = the distinct
strategies the run evaluated), and adjusted for the skewness and kurtosis of
its returns and the number of bars. Under that null the N Sharpe ratios
differ by estimation noise only, so SR0 uses its variance, 1/(T-1) per bar.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from evo.data import DataError, Market, timestamp

EULER_GAMMA = 0.5772156649015329
MIN_OOS_BARS = 20


def split_index(market: Market, validation) -> int | None:
    """First out-of-sample bar, or None without a holdout."""
    n = market.n_bars
    if validation.holdout_start:
        return int(market.index.searchsorted(timestamp(validation.holdout_start)))
    if validation.holdout:
        return n - int(round(n * validation.holdout))
    return None


def windows(market: Market, validation) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(in-sample window, out-of-sample window or None)."""
    split = split_index(market, validation)
    if split is None:
        return (0, market.n_bars), None
    return (0, split), (split, market.n_bars)


def check(market: Market, validation, max_window: int, min_after_warmup: int = 50) -> None:
    """Both windows must be usable: the in-sample one longer than the largest window, the holdout not empty."""
    (s0, s1), oos = windows(market, validation)
    need = max_window + min_after_warmup
    if s1 - s0 < need:
        raise DataError(
            f"the in-sample part has {s1 - s0} bars (of {market.n_bars}); the largest window ({max_window}) needs "
            f"at least {need}. Shrink validation.holdout, narrow the window bounds or give more data."
        )
    if oos is not None and oos[1] - oos[0] < MIN_OOS_BARS:
        raise DataError(
            f"the holdout has {oos[1] - oos[0]} bars; it needs at least {MIN_OOS_BARS} "
            f"(validation.holdout / holdout_start leave too little)"
        )


@dataclass(frozen=True)
class Fold:
    number: int
    train: tuple[int, int]
    test: tuple[int, int]


def folds(market: Market, validation) -> list[Fold]:
    """Walk-forward folds: the holdout part cut into `folds` consecutive test windows.

    rolling: each fold trains on as many bars as the first, just before its test window;
    anchored: each fold trains on every bar before its test window.
    """
    split = split_index(market, validation)
    if split is None:
        raise DataError("walk-forward needs validation.holdout (or holdout_start): the part cut into test windows")
    k = validation.walk_forward.folds
    edges = np.linspace(split, market.n_bars, k + 1).round().astype(int)
    out = []
    for i in range(k):
        test = (int(edges[i]), int(edges[i + 1]))
        if test[1] - test[0] < MIN_OOS_BARS:
            raise DataError(f"walk-forward fold {i + 1} has a {test[1] - test[0]}-bar test window; use fewer folds")
        start = 0 if validation.walk_forward.mode == "anchored" else test[0] - split
        out.append(Fold(i + 1, (start, test[0]), test))
    return out


# ---------------------------------------------------------------------------------------------
# the deflated Sharpe ratio


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
