"""NSGA-II's environmental selection on arrays: pymoo 0.6.2's `RankAndCrowding` survival as NSGA2
uses it (feasible individuals by non-dominated rank and crowding distance, then infeasible ones by
constraint violation), giving the same survivors in the same order with the same rank and crowding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evo.search.nsga import nb


@dataclass
class Survivors:
    """Indices of the survivors in the population they were chosen from, in pymoo's order, and
    their rank and crowding distance (NaN for infeasible ones: pymoo never ranks those)."""

    index: np.ndarray
    rank: np.ndarray
    crowding: np.ndarray


def constraint_violation(G: np.ndarray) -> np.ndarray:
    """pymoo's CV under its default configuration: the sum of the positive parts of the inequality
    constraints (`calc_cv` per individual, with its `- eps` and `+ eq_cv` kept for the zero's sign)."""
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[1] == 0:
        return np.zeros(len(G))
    return np.maximum(0.0, G - 0.0).sum(axis=1) + 0.0


def pareto_rank(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank per row (0 = first front): moocore's `pareto_rank`, which pymoo's
    `NonDominatedSorting` calls (O(n log n) for two objectives, fronts one at a time for more)."""
    from moocore import pareto_rank as moocore_rank

    return moocore_rank(np.asarray(F, dtype=np.float64))


def crowding_distance(F: np.ndarray, members: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """pymoo's crowding distance ('cd') of every member, front by front (fronts are
    `members[starts[k]:starts[k + 1]]`); aligned with `members`."""
    F = np.ascontiguousarray(F, dtype=np.float64)
    terms = nb.crowding_terms_nb(F, np.asarray(members, dtype=np.int64), np.asarray(starts, dtype=np.int64))
    cd = terms.sum(axis=1) / F.shape[1]
    sizes = np.diff(starts)
    cd[np.repeat(sizes <= 2, sizes)] = np.inf
    return cd


def rank_and_crowding(F: np.ndarray, n_survive: int, rng: np.random.Generator) -> Survivors:
    """`RankAndCrowding._do`: whole fronts while they fit, then the splitting front by crowding
    distance, descending, its ties broken by pymoo's randomized argsort."""
    rank = pareto_rank(F)
    # moocore's fronts are np.where(rank == r): ascending index within a front
    order = np.argsort(rank, kind="stable")
    ends = np.cumsum(np.bincount(rank, minlength=1))
    n_fronts = min(int(np.searchsorted(ends, n_survive)) + 1, len(ends))  # pymoo's n_stop_if_ranked
    starts = np.concatenate(([0], ends[:n_fronts]))
    members = order[: starts[-1]]
    cd = crowding_distance(F, members, starts)
    pos = np.arange(len(members))
    if starts[-1] > n_survive:
        s = starts[-2]
        n_remove = starts[-1] - n_survive
        front_cd = cd[s:]
        P = rng.permutation(len(front_cd))
        I = P[np.argsort(front_cd[P], kind="quicksort")]
        I = np.flip(I, axis=0)[:-n_remove]
        pos = np.concatenate((pos[:s], s + I))
    index = members[pos]
    return Survivors(index, rank[index].astype(np.float64), cd[pos])


def survive(F: np.ndarray, G: np.ndarray, n_survive: int, rng: np.random.Generator,
            constrained: bool) -> Survivors:
    """`Survival.do` of NSGA2's `RankAndCrowding`: with constraints, the feasible individuals are
    ranked alone and infeasible ones fill up the rest in order of constraint violation."""
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    empty = Survivors(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))
    if n == 0:
        return empty
    n_survive = min(n_survive, n)
    if not constrained:
        return rank_and_crowding(F, n_survive, rng)
    cv = constraint_violation(G)
    feasible = cv <= 0.0
    feas = np.flatnonzero(feasible)
    infeas = np.flatnonzero(~feasible)
    infeas = infeas[np.argsort(cv[infeas])]  # pymoo's default (unstable) kind, on the same values
    out = empty
    if len(feas):
        out = rank_and_crowding(F[feas], min(len(feas), n_survive), rng)
        out.index = feas[out.index]
    n_remaining = n_survive - len(out.index)
    if n_remaining > 0:
        fill = infeas[:n_remaining]
        out = Survivors(
            np.concatenate((out.index, fill)),
            np.concatenate((out.rank, np.full(len(fill), np.nan))),
            np.concatenate((out.crowding, np.full(len(fill), np.nan))),
        )
    return out
