"""Neighbouring genes: a genome's seeded neighbours, and the robust fitness over a genome and its neighbours.

A genome's neighbours are a function of the genome and the run's seed alone (never of its place in a
population or of the generation), so the same genome has the same neighbours in every generation, in
a resumed run and in the final report, and each neighbour is a genome the cache keeps like any other.
With `algorithm.robustness.aggregate`, the objectives (and constraints) a genome competes with in NSGA-II
are `aggregate` over itself and its neighbours (`robust_FG`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: the stream of a genome's neighbours among the per-genome generators seeded by the run (evo.oos.scoring)
NEIGHBOURS_STREAM = 4


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


def genome_rng(seed: int, genome_hash: str, stream: int) -> np.random.Generator:
    """The generator of one per-genome quantity (`stream`), seeded by the run's seed and the genome."""
    return np.random.default_rng([seed, stream, int(genome_hash[:15], 16)])


def neighbours_of(space, X: np.ndarray, hashes: Sequence[str], robustness, seed: int) -> np.ndarray:
    """The neighbours of each genome of X, `robustness.neighbours` per genome one after another:
    [len(X) * K, n_var]. Each genome's own are seeded by `seed` and its hash only."""
    k = robustness.neighbours
    if len(X) == 0 or k == 0:
        return np.empty((0, space.n_var))
    return np.concatenate([neighbours(space, x, k, robustness.radius, robustness.flip,
                                      genome_rng(seed, h, NEIGHBOURS_STREAM)) for x, h in zip(X, hashes)])


def robust_FG(F: np.ndarray, G: np.ndarray, near: np.ndarray, aggregate: str) -> tuple[np.ndarray, np.ndarray]:
    """The F and G a genome competes with: `aggregate` over itself and its neighbours.

    F, G: pymoo's matrices (evo.search.objectives.to_FG) of a pool of genomes; near [n, K + 1]: for each
    competing genome, its own row in the pool, then its K neighbours' rows. An undefined objective is +inf
    in F (to_FG), the worst value, so it counts as the worst in both aggregates.

    - objectives: "worst" is the largest F over the K + 1 (the worst in each objective's own direction),
      "median" the median of F.
    - feasible only if the genome itself is feasible (each constraint met, each objective defined), each
      constraint's aggregate over the K + 1 is met ("worst": by every one of them; "median": by the
      median), and each aggregated objective is defined.
    """
    if aggregate not in ("worst", "median"):
        raise ValueError(f"unknown robust aggregate {aggregate!r}")
    reduce = np.max if aggregate == "worst" else np.median
    Fa = reduce(F[near], axis=1)
    Fa[~np.isfinite(Fa)] = np.inf  # the median of +inf beside a finite value is +inf; NaN never enters
    own = G[near[:, 0]]
    Ga = np.maximum(own, reduce(G[near], axis=1))
    Ga[:, -1] = np.maximum(own[:, -1], (~np.isfinite(Fa)).any(axis=1).astype(np.float64))
    return Fa, Ga
