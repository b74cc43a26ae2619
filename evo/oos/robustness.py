"""Robustness to neighbouring genes: does a strategy sit on a plateau or on a spike?

Each final Pareto member gets K seeded neighbours on the training window: every gene moves by up to
`radius` times its range (uniformly), snapped to its grid and repaired by the family; a switch or a
choice of at most three values changes to another value with probability `flip`. The report shows the
median and the worst of each objective over the neighbours and the share that stays feasible.
"""

from __future__ import annotations

import numpy as np

from evo.search.neighbours import neighbours  # noqa: F401  (moved: evolution draws them too)


def spread(metrics: np.ndarray, objectives, constraints) -> dict:
    """The neighbours' median and worst (in each objective's direction) of each objective, and the share
    of them that is feasible (every constraint met, every objective finite)."""
    from evo.config.metrics import SLOT
    from evo.search.objectives import to_FG

    _, G = to_FG(metrics, objectives, constraints)
    out = {}
    for o in objectives:
        v = metrics[:, SLOT[o.metric]]
        v = v[np.isfinite(v)]
        out[o.metric] = {
            "median": float(np.median(v)) if len(v) else None,
            "worst": (float(v.min() if o.direction == "max" else v.max())) if len(v) else None,
        }
    return {"neighbours": int(len(metrics)), "feasible": float(np.mean((G <= 0).all(axis=1))) if len(metrics) else None,
            "objectives": out}
