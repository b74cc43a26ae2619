"""Offspring on arrays: pymoo 0.6.2's `Mating.do` (`InfillCriterion.do`) as NSGA2 runs it:
binary tournament, SBX, PM, repair, duplicate elimination, repeated until enough offspring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from evo.search.nsga.crossover import sbx
from evo.search.nsga.duplicate import key_set, row_keys, unique_rows
from evo.search.nsga.mutation import pm
from evo.search.nsga.selection import binary_tournament


@dataclass(frozen=True)
class Operators:
    """NSGA2's variation operators and their parameters (pymoo's defaults where pymoo has one)."""

    crossover_prob: float = 0.9
    crossover_eta: float = 15.0
    mutation_eta: float = 20.0
    mutation_prob_var: float | None = None  # per gene; None: min(0.5, 1 / n_var)
    mutation_prob: float = 0.9  # per individual: PM's own default
    n_max_iterations: int = 100


@dataclass
class MatingInfo:
    """What the loop did: matings run and children dropped as duplicates."""

    iterations: int = 0
    duplicates: int = 0


def mate(X: np.ndarray, F: np.ndarray, cv: np.ndarray, crowding: np.ndarray, n_offsprings: int, *,
         xl: np.ndarray, xu: np.ndarray, repair: Callable[[np.ndarray], np.ndarray], ops: Operators,
         rng: np.random.Generator, info: MatingInfo | None = None) -> np.ndarray:
    """Offspring genomes (at most n_offsprings rows) of the population (X, F, cv, crowding).

    Each round mates ceil(remaining / 2) pairs, repairs the children and drops those equal to a
    population member, to an earlier offspring or to an earlier child of the round; the last
    round's surplus is cut from the end. After `n_max_iterations` rounds the loop gives up with
    what it has, as pymoo does.
    """
    info = info if info is not None else MatingInfo()
    n_var = X.shape[1]
    pop_keys = key_set(X)
    off_keys: set = set()
    parts = []
    n_off = n_infills = 0
    while n_off < n_offsprings:
        n_remaining = n_offsprings - n_off
        n_matings = math.ceil(n_remaining / 2)
        parents = binary_tournament(F, cv, crowding, n_matings, 2, rng)
        children = sbx(np.swapaxes(X[parents], 0, 1), xl, xu, rng, prob=ops.crossover_prob, eta=ops.crossover_eta)
        children = pm(children, xl, xu, rng, eta=ops.mutation_eta, prob_var=ops.mutation_prob_var,
                      prob=ops.mutation_prob)
        children = np.asarray(repair(children), dtype=np.float64).reshape(-1, n_var)
        keep = unique_rows(children, pop_keys, off_keys)
        info.duplicates += len(children) - len(keep)
        children = children[keep]
        if n_off + len(children) > n_offsprings:
            children = children[: n_offsprings - n_off]
        off_keys.update(k for k in row_keys(children) if k is not None)
        parts.append(children)
        n_off += len(children)
        n_infills += 1
        info.iterations += 1
        if n_infills >= ops.n_max_iterations:
            break
    return np.concatenate(parts) if parts else np.empty((0, n_var))
