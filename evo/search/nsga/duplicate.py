"""Duplicate elimination by hashing rows: pymoo's `DefaultDuplicateElimination` (a row is a
duplicate when its Euclidean distance to an earlier row of its batch, or to any row of the
populations it is checked against, is <= 1e-16) in O(n) instead of O(n^2) distances.

Equal here means equal values (-0.0 == 0.0; a row with a NaN equals nothing, as pymoo's NaN
distances count as infinite). That is pymoo's rule wherever distinct values of a gene are
farther apart than 1e-16, which snapping to a gene grid guarantees; two different continuous
genomes closer than that (it takes values within a few ulps) would count as distinct here.
"""

from __future__ import annotations

import numpy as np


def row_keys(X: np.ndarray) -> list:
    """One hashable key per row; rows with a NaN get None (never equal to anything)."""
    X = np.ascontiguousarray(X, dtype=np.float64) + 0.0  # -0.0 -> 0.0: equal values, equal bytes
    if X.shape[1] == 0:
        return [b""] * len(X)
    keys = X.view(np.dtype((np.void, 8 * X.shape[1]))).ravel().tolist()
    nan = np.isnan(X).any(axis=1)
    if nan.any():
        for i in np.flatnonzero(nan):
            keys[i] = None
    return keys


def key_set(X: np.ndarray) -> set:
    return {k for k in row_keys(X) if k is not None}


def unique_rows(X: np.ndarray, *others: set) -> np.ndarray:
    """Indices of the rows of X that equal neither an earlier row of X nor a key in `others`."""
    seen: set = set()
    keep = []
    for i, k in enumerate(row_keys(X)):
        if k is None:
            keep.append(i)
            continue
        if k in seen:
            continue
        seen.add(k)
        if any(k in o for o in others):
            continue
        keep.append(i)
    return np.asarray(keep, dtype=np.int64)
