"""Robustness to neighbouring genes: does a strategy sit on a plateau or on a spike?

Each final Pareto member gets K seeded neighbours on the training window: every gene moves by up to
`radius` times its range (uniformly), snapped to its grid and repaired by the family; a switch or a
choice of at most three values changes to another value with probability `flip`. The report shows the
median and the worst of each objective over the neighbours and the share that stays feasible.
"""

from __future__ import annotations

import numpy as np


def neighbours(space, x: np.ndarray, k: int, radius: float, flip: float, rng: np.random.Generator) -> np.ndarray:
    """k neighbours [k, n_var] of genome x in `space` (evo.strategies GeneSpace)."""
    X = np.repeat(np.asarray(x, dtype=np.float64)[None, :], k, axis=0)
    width = space.xu - space.xl
    for j, g in enumerate(space.genes):
        if g.kind == "int" and g.high - g.low <= 2:  # a switch or a small choice: flip to another value
            values = np.arange(g.low, g.high + 1)
            change = rng.random(k) < flip
            others = [values[values != v] for v in X[:, j]]
            X[:, j] = [rng.choice(o) if c else v for o, c, v in zip(others, change, X[:, j])]
        else:
            X[:, j] += rng.uniform(-radius, radius, k) * width[j]
    return space.repair(X)


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
