"""Walk-forward validation: one evolution per fold, each judged on the bars right after its training window.

Fold k is an ordinary run named "NAME/wfk" whose config trains on the fold's
window (`validation.window`), so it is resumable like any run. From each
fold's final Pareto set the strategy best on the first objective (in sample)
is chosen before its test window is looked at; its returns on the test window
are then stitched into one out-of-sample series, which is what walk-forward
reports: the performance an operator re-optimising every fold would have had.
"""

from __future__ import annotations

import math

import numpy as np

from evo.config import RunConfig, codec, validate
from evo.market import Market
from evo.config.metrics import METRICS
from evo.market.windows import Fold, folds


def fold_name(name: str, fold: Fold) -> str:
    return f"{name}/wf{fold.number}"


def fold_config(config: RunConfig, name: str, fold: Fold, seed_population: list | None = None) -> RunConfig:
    d = config.model_dump(mode="json")
    d["name"] = fold_name(name, fold)
    d["validation"]["window"] = list(fold.train)
    d["algorithm"]["seed_population"] = seed_population
    return validate(d, source=f"walk-forward fold {fold.number}")


def plan(config: RunConfig, market: Market) -> list[Fold]:
    return folds(market, config.validation)


def choose(pareto: list[dict], objectives: list[dict]) -> dict:
    """The fold's strategy: best in sample on the first objective (the Pareto set is sorted that way)."""
    if not pareto:
        raise ValueError("the fold has no feasible strategy to choose")
    return pareto[0]


def fold_overfitting(verdict: dict | None) -> dict:
    """A fold's probability of backtest overfitting (and its companions) from its run's verdict: CSCV
    over the behaviours the fold's evolution tried on its training window."""
    v = verdict or {}
    return {k: v.get(k) for k in ("pbo", "pbo_degradation", "pbo_prob_loss")}


def stitch(fold_returns: list[np.ndarray], ann_factor: float) -> dict:
    """Metrics of the test windows' returns joined end to end (each fold starts from its own cash).

    prob_sharpe_positive is the probabilistic Sharpe ratio against zero (Bailey & Lopez de Prado):
    the chosen strategies were fixed before their test windows were seen, so no deflation for
    the strategies tried is due.
    """
    from scipy.stats import kurtosis, skew

    from evo.oos.verdict import deflated_sharpe

    r = np.concatenate([np.asarray(x, dtype=np.float64) for x in fold_returns]) if fold_returns else np.empty(0)
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return {"bars": int(len(r))}
    wealth = np.cumprod(1 + r)
    peak = np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:]
    std = r.std(ddof=1)
    sr_bar = r.mean() / std if std > 0 else math.nan
    sk = float(skew(r)) if std > 0 else 0.0
    ku = float(kurtosis(r, fisher=False)) if std > 0 else 3.0
    return {
        "bars": int(len(r)),
        "total_return": float(wealth[-1] - 1),
        "sharpe_ratio": float(sr_bar * math.sqrt(ann_factor)) if math.isfinite(sr_bar) else None,
        "max_drawdown": float((wealth / peak - 1).min()),
        "prob_sharpe_positive": deflated_sharpe(sr_bar, 0.0, len(r), sk, ku) if math.isfinite(sr_bar) else 0.0,
    }


def metrics_dict(row) -> dict:
    """One row of metrics by name, as JSON for people (evo.config.codec: NaN as null)."""
    return codec.encode({m: (math.nan if v is None else float(v)) for m, v in zip(METRICS, row)}, nan=None)
