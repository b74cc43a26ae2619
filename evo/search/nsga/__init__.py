"""NSGA-II's generation steps on plain arrays, equal to pymoo 0.6.2's operators bit for bit
(same random draws, same arithmetic), without pymoo's per-individual objects or O(n^2) distances.

    mating.mate          tournament, SBX, PM, repair, duplicate elimination (pymoo's Mating.do)
    survival.survive     rank and crowding survival (pymoo's RankAndCrowding)
"""

from evo.search.nsga.mating import MatingInfo, Operators, mate
from evo.search.nsga.survival import Survivors, constraint_violation, pareto_rank, survive

__all__ = ["MatingInfo", "Operators", "Survivors", "constraint_violation", "mate", "pareto_rank", "survive"]
