"""Numba kernels of NSGA-II's survival: Pareto ranks and crowding-distance terms, arrays in and out.

Both give what pymoo 0.6.2 computes (moocore's `pareto_rank`, pymoo's `calc_crowding_distance`)
bit for bit: a rank is defined by the points alone, so any correct algorithm agrees, and the
crowding terms repeat pymoo's IEEE operations in its order (no fastmath).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def _dominates(F: np.ndarray, q: int, p: int) -> bool:
    """q dominates p (minimisation): no worse in every objective, better in one."""
    better = False
    for j in range(F.shape[1]):
        if F[q, j] > F[p, j]:
            return False
        if F[q, j] < F[p, j]:
            better = True
    return better


@njit(cache=True, error_model="numpy")
def pareto_rank_nb(F: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank of every row of F (0 = not dominated), for F with >= 2 columns.

    `order` is the lexicographic order of the rows (first column first), so a point can only be
    dominated by points before it. Points go to fronts in that order, each to the first front
    none of whose members dominates it; fronts are found by binary search because a point
    dominated by a member of front k is dominated by a member of every front before k
    (Zhang et al. 2015, ENS-BS). With two objectives the last member of a front, the one with the
    smallest second objective, decides alone, which makes the whole sort O(n log n) (Jensen 2003).
    Duplicated points share a rank, as in moocore.
    """
    n, m = F.shape
    rank = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)  # per front: its most recently added member
    prev = np.empty(n, dtype=np.int64)  # per point: the member added to its front before it
    n_fronts = 0
    for t in range(n):
        p = order[t]
        lo, hi = 0, n_fronts
        while lo < hi:
            mid = (lo + hi) // 2
            dominated = False
            if m == 2:
                q = last[mid]
                dominated = F[q, 1] < F[p, 1] or (F[q, 1] == F[p, 1] and F[q, 0] != F[p, 0])
            else:
                q = last[mid]
                while q >= 0:
                    if _dominates(F, q, p):
                        dominated = True
                        break
                    q = prev[q]
            if dominated:
                lo = mid + 1
            else:
                hi = mid
        if lo == n_fronts:
            n_fronts += 1
            prev[p] = -1
        else:
            prev[p] = last[lo]
        last[lo] = p
        rank[p] = lo
    return rank


@njit(cache=True, error_model="numpy")
def crowding_terms_nb(F: np.ndarray, members: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per point and objective, pymoo's crowding term: distance to the previous plus distance to
    the next neighbour along the objective, each divided by the objective's range in the front.

    Fronts are `members[starts[k]:starts[k + 1]]` (rows of F, in pymoo's order within the front).
    The crowding distance is the row sum of the terms (NumPy's own `sum(axis=1)`, whose order of
    addition pymoo's result depends on) over the number of objectives; fronts of one or two
    points have infinite distance and are left out here (their rows are NaN).
    """
    n_obj = F.shape[1]
    T = np.full((len(members), n_obj), np.nan)
    for k in range(len(starts) - 1):
        s, e = starts[k], starts[k + 1]
        size = e - s
        if size <= 2:
            continue
        col = np.empty(size)
        for j in range(n_obj):
            for i in range(size):
                col[i] = F[members[s + i], j]
            I = np.argsort(col, kind="mergesort")  # stable, as pymoo sorts
            lo = col[I[0]]
            hi = col[I[size - 1]]
            norm = hi - lo  # pymoo: max - min of the column (equal up to the sign of a zero)
            if norm == 0.0:
                norm = np.nan
            for i in range(size):
                here = col[I[i]]
                before = col[I[i - 1]] if i > 0 else -np.inf
                after = col[I[i + 1]] if i < size - 1 else np.inf
                d_last = (here - before) / norm
                d_next = (after - here) / norm
                if np.isnan(d_last):
                    d_last = 0.0
                if np.isnan(d_next):
                    d_next = 0.0
                T[s + I[i], j] = d_last + d_next
    return T
