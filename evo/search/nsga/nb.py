"""Numba kernel of NSGA-II's survival: crowding-distance terms of many fronts in one call, arrays
in and out. It repeats the IEEE operations of pymoo 0.6.2's `calc_crowding_distance` in pymoo's
order (no fastmath), so the distances are pymoo's bit for bit, without a NumPy round trip per front.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
