"""Warnings worth a human's attention, from one generation's stats."""

from __future__ import annotations

import numpy as np

from evo.search.population import Population
from evo.store import GenerationStats

#: below this fraction of total memory available, evaluation is close to swapping
LOW_MEMORY_FRACTION = 0.10
#: objective spread (max - min over feasible survivors) below this, relative to its scale, means convergence
CONVERGED_SPREAD = 1e-6


def warnings_for(state: Population, stats: GenerationStats, objectives, total_memory: int,
                 available_memory: int) -> list[str]:
    out = []
    if stats.n_feasible == 0:
        out.append(
            f"generation {stats.generation}: no strategy passes the constraints; the population is ranked by "
            f"constraint violation only (relax the constraints or widen the gene bounds)"
        )
    feasible = (state.G <= 0).all(axis=1)
    if feasible.sum() >= 2:
        F = state.F[feasible]
        spread = F.max(axis=0) - F.min(axis=0)
        scale = np.maximum(np.abs(F).max(axis=0), 1e-12)
        if (spread / scale < CONVERGED_SPREAD).all():
            names = ", ".join(o.metric for o in objectives)
            out.append(
                f"generation {stats.generation}: premature convergence, every survivor has the same objectives "
                f"({names}); more mutation, a larger population or wider bounds keep the search open"
            )
    if total_memory and available_memory / total_memory < LOW_MEMORY_FRACTION:
        out.append(
            f"generation {stats.generation}: memory pressure, only {available_memory / 2**20:.0f} MB of "
            f"{total_memory / 2**20:.0f} MB available; lower evaluation.memory_budget_mb or max_parallel"
        )
    return out
