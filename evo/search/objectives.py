"""Metrics -> pymoo's minimisation matrix F and constraint matrix G.

pymoo minimises F and treats G <= 0 as feasible. Everything the optimiser sees
about a strategy passes through `to_FG`, so the direction and constraint rules
live here and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from evo.config.metrics import BY_NAME, METRICS, SLOT

if TYPE_CHECKING:  # pragma: no cover
    from evo.config import Constraint, Objective

__all__ = ["METRICS", "hypervolume", "ref_point", "sign", "to_FG"]


def sign(direction: str) -> float:
    """Factor that turns a metric into a quantity to minimise."""
    return -1.0 if direction == "max" else 1.0


def to_FG(
    metrics: np.ndarray,
    objectives: Sequence["Objective"],
    constraints: Sequence["Constraint"],
) -> tuple[np.ndarray, np.ndarray]:
    """Map a (n, len(METRICS)) metric matrix to (F, G).

    G has one column per user constraint plus a last column that is 1 when any
    objective is not finite (a Sharpe ratio of a strategy that never trades is
    undefined): such a strategy cannot be ranked, so it is infeasible. Its F is
    set to +inf so that it can never look better than a ranked one.
    """
    metrics = np.asarray(metrics, dtype=np.float64)
    n = metrics.shape[0]
    cols = [SLOT[o.metric] for o in objectives]
    F = metrics[:, cols] * np.array([sign(o.direction) for o in objectives])
    bad = ~np.isfinite(F)
    F[bad] = np.inf

    G = np.zeros((n, len(constraints) + 1))
    for j, c in enumerate(constraints):
        v = metrics[:, SLOT[c.metric]]
        g = (c.value - v) if c.op == ">=" else (v - c.value)
        G[:, j] = np.where(np.isfinite(g), g, np.inf)
    G[:, -1] = bad.any(axis=1).astype(np.float64)
    return F, G


def ref_point(objectives: Sequence["Objective"]) -> np.ndarray:
    """Hypervolume reference point in minimisation space."""
    return np.array(
        [
            sign(o.direction) * (o.ref if o.ref is not None else BY_NAME[o.metric].ref)
            for o in objectives
        ]
    )


def hypervolume(F: np.ndarray, G: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of the feasible points of F that dominate the reference point."""
    from pymoo.indicators.hv import HV

    feasible = (G <= 0).all(axis=1)
    pts = F[feasible]
    pts = pts[(pts < ref).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(HV(ref_point=ref)(pts))
