"""The population: one record of individuals, every per-individual fact a column of it.

In the style of pymoo's `Population` (`pop.get("F", "rank")`), but columnar: each field is one array
with a row per individual, so a generation of 10,000 costs a handful of array operations instead of
10,000 objects. Selecting rows (`pop[index]`) keeps every field of those rows together, which is how
survivors carry their own genome hashes, trade fingerprints and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from evo.config.metrics import N_METRICS


@dataclass(frozen=True, eq=False)
class Population:
    """Individuals as columns; row i of every field is individual i.

    F and G are pymoo's (minimised objectives, constraints feasible at <= 0). rank and crowding are
    NaN where NSGA-II never set them (infeasible individuals are ordered by constraint violation).
    metrics has a column per metric of the metric table, in its order. hash, trades and per_asset
    are object arrays: None where unknown (a trade fingerprint stored by an older evo) or absent
    (per-asset metrics of a one-symbol market).
    """

    X: np.ndarray  # (n, n_var) genes
    hash: np.ndarray  # (n,) genome hashes
    trades: np.ndarray  # (n,) trade fingerprints
    F: np.ndarray  # (n, n_obj)
    G: np.ndarray  # (n, n_constr)
    rank: np.ndarray  # (n,)
    crowding: np.ndarray  # (n,)
    metrics: np.ndarray  # (n, N_METRICS)
    per_asset: np.ndarray  # (n,) of (n_assets, N_METRICS) arrays
    evaluated: np.ndarray  # (n,) bool: evaluated in this generation (False: its metrics came from the store)

    @classmethod
    def of(cls, X: np.ndarray, **given: Any) -> "Population":
        """Individuals with genes X; fields not given start unknown (NaN, None, False, no columns)."""
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        out = {
            "hash": np.full(n, None, dtype=object),
            "trades": np.full(n, None, dtype=object),
            "F": np.empty((n, 0)),
            "G": np.empty((n, 0)),
            "rank": np.full(n, np.nan),
            "crowding": np.full(n, np.nan),
            "metrics": np.full((n, N_METRICS), np.nan),
            "per_asset": np.full(n, None, dtype=object),
            "evaluated": np.zeros(n, dtype=bool),
        }
        for k, v in given.items():
            out[k] = _column(k, v, n)
        return cls(X=X, **out)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index) -> "Population":
        """The individuals at `index` (an index array, a boolean mask or a slice), every field alike."""
        return Population(**{f: getattr(self, f)[index] for f in FIELDS})

    def get(self, *names: str):
        """One field, or a tuple of several (pymoo's `pop.get("F", "rank")`)."""
        got = tuple(getattr(self, n) for n in names)
        return got[0] if len(got) == 1 else got

    def set(self, **given: Any) -> "Population":
        """A copy with these fields replaced (each a column of len(self) rows)."""
        return replace(self, **{k: _column(k, v, len(self)) for k, v in given.items()})

    @staticmethod
    def merge(*pops: "Population") -> "Population":
        """The individuals of each population in turn (pymoo's `Population.merge`)."""
        return Population(**{f: np.concatenate([getattr(p, f) for p in pops]) for f in FIELDS})


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Population))
_OBJECT_FIELDS = frozenset({"hash", "trades", "per_asset"})


def _objects(values, nested: bool) -> np.ndarray:
    """A 1-d object array holding each value as it is: `nested` values (arrays) one by one, as np.array
    would turn equal-shaped arrays into one block."""
    values = list(values)
    out = np.empty(len(values), dtype=object)
    if nested:
        for i, v in enumerate(values):
            out[i] = v
    else:
        out[:] = values
    return out


def _column(name: str, v, n: int) -> np.ndarray:
    if name in _OBJECT_FIELDS:
        v = v if isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 1 else _objects(v, nested=name == "per_asset")
    elif name == "evaluated":
        v = np.asarray(v, dtype=bool)
    else:
        v = np.asarray(v, dtype=np.float64)
    if len(v) != n:
        raise ValueError(f"population field {name!r} has {len(v)} rows, not {n}")
    return v
