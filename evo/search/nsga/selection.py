"""Parent selection on arrays: pymoo 0.6.2's `TournamentSelection(func_comp=binary_tournament)`
as NSGA2 uses it (tournament type 'comp_by_dom_and_crowding'), with the same random draws."""

from __future__ import annotations

import math

import numpy as np


def binary_tournament(F: np.ndarray, cv: np.ndarray, crowding: np.ndarray, n_select: int, n_parents: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Indices (n_select, n_parents) of the tournament winners.

    Contestants come from concatenated random permutations of the population. If either of
    two is infeasible the smaller constraint violation wins; otherwise the dominating one, else
    the larger crowding distance. Ties go to a coin flip: pymoo draws `choice([a, b])` per tie,
    tournament by tournament, which is the same stream as one `integers(0, 2)` per tie in order.
    """
    n = len(F)
    pressure = 2
    n_random = n_select * n_parents * pressure
    n_perms = math.ceil(n_random / n)
    P = np.concatenate([rng.permutation(n) for _ in range(n_perms)])[:n_random]
    P = np.reshape(P, (n_select * n_parents, pressure))
    a, b = P[:, 0], P[:, 1]

    a_cv, b_cv = cv[a], cv[b]
    infeasible = (a_cv > 0.0) | (b_cv > 0.0)
    Fa, Fb = F[a], F[b]
    a_better = (Fa < Fb).any(axis=1)
    b_better = (Fb < Fa).any(axis=1)
    # the feasible pairs that dominance does not decide go to crowding (larger is better)
    undecided = ~infeasible & (a_better == b_better)
    cd_a, cd_b = crowding[a], crowding[b]
    with np.errstate(invalid="ignore"):
        a_wins = np.where(infeasible, a_cv < b_cv, np.where(undecided, cd_a > cd_b, a_better))
        b_wins = np.where(infeasible, a_cv > b_cv, np.where(undecided, cd_a < cd_b, b_better))
    tie = ~a_wins & ~b_wins
    coin = rng.integers(0, 2, size=int(tie.sum()), dtype=np.int64)
    a_wins[tie] = coin == 0

    S = np.where(a_wins, a, b)
    return np.reshape(S, (n_select, n_parents))
