"""pymoo's own NSGA2, as references for evo.search.algorithm: the pymoo-backed Optimizer the project ran
before issue 13 (kept verbatim but for its name), and pymoo's ask/tell loop on a given problem."""

from __future__ import annotations

import math

import numpy as np

from evo.search.population import Population as EvoPopulation
from evo.config import AlgorithmConfig
from evo.strategies.base import GeneSpace


class PymooOptimizer:
    """evo.search.algorithm.Optimizer before issue 13: pymoo's NSGA2 objects driven step by step."""

    def __init__(self, space: GeneSpace, n_obj: int, n_constr: int, cfg: AlgorithmConfig):
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.core.repair import Repair
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.sampling.lhs import LHS
        from pymoo.operators.sampling.rnd import FloatRandomSampling

        class _SpaceRepair(Repair):
            def _do(self, problem, X, **kwargs):
                return space.repair(X)

        self.space = space
        self.cfg = cfg
        self.problem = Problem(n_var=space.n_var, n_obj=n_obj, n_ieq_constr=n_constr, xl=space.xl, xu=space.xu)
        self.algo = NSGA2(
            pop_size=cfg.pop_size,
            n_offsprings=cfg.n_offsprings or cfg.pop_size,
            sampling=LHS() if cfg.sampling == "lhs" else FloatRandomSampling(),
            crossover=SBX(prob=cfg.crossover_prob, eta=cfg.crossover_eta),
            mutation=PM(eta=cfg.mutation_eta, prob_var=cfg.mutation_prob),
            repair=_SpaceRepair(),
            eliminate_duplicates=True,
        )
        self.algo.setup(self.problem, seed=0)  # the Generator is replaced on every step

    # the pymoo operators read algorithm.random_state as well as their argument
    def _bind(self, rng: np.random.Generator) -> None:
        self.algo.random_state = rng

    def _population(self, X, F=None, G=None, rank=None, crowding=None):
        from pymoo.core.population import Population

        pop = Population.new(X=np.asarray(X, dtype=np.float64))
        if F is not None:
            pop.set("F", np.asarray(F, dtype=np.float64), "G", np.asarray(G, dtype=np.float64))
            for ind in pop:
                ind.evaluated.update(("F", "G", "H"))
        if rank is not None:
            for ind, r, c in zip(pop, rank, crowding):
                if not math.isnan(r):
                    ind.set("rank", int(r))
                    ind.set("crowding", float(c))
        return pop

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """Generation 1: sample, repair, drop duplicates (after the seed population, if one is given)."""
        from pymoo.core.initialization import Initialization
        from pymoo.core.population import Population

        self._bind(rng)
        if not self.cfg.seed_population:
            pop = self.algo.initialization.do(self.problem, self.cfg.pop_size, algorithm=self.algo, random_state=rng)
            return pop.get("X")
        seed = self.space.repair(np.asarray(self.cfg.seed_population, dtype=np.float64))
        seed = np.unique(seed, axis=0)[: self.cfg.pop_size] if len(seed) else seed
        rest = self.cfg.pop_size - len(seed)
        X = seed
        if rest > 0:
            sampled = self.algo.initialization.sampling(self.problem, rest, random_state=rng).get("X")
            X = np.vstack([seed, self.space.repair(sampled)])
        init = Initialization(Population.new(X=X), repair=self.algo.repair,
                              eliminate_duplicates=self.algo.eliminate_duplicates)
        return init.do(self.problem, len(X), algorithm=self.algo, random_state=rng).get("X")

    def vary(self, survivors: EvoPopulation, rng: np.random.Generator) -> np.ndarray:
        """Offspring genomes of the survivors, unique among themselves and the survivors."""
        self._bind(rng)
        pop = self._population(survivors.X, survivors.F, survivors.G, survivors.rank, survivors.crowding)
        off = self.algo.mating.do(
            self.problem, pop, self.cfg.n_offsprings or self.cfg.pop_size, algorithm=self.algo, random_state=rng
        )
        return off.get("X").reshape(-1, self.space.n_var)

    def select(
        self, survivors: EvoPopulation | None, offspring: EvoPopulation, rng: np.random.Generator
    ) -> EvoPopulation:
        """Environmental selection of survivors + evaluated offspring."""
        from pymoo.core.population import Population

        self._bind(rng)
        off = self._population(offspring.X, offspring.F, offspring.G)
        if survivors is None:
            merged, n_survive = off, len(off)
        else:
            prev = self._population(survivors.X, survivors.F, survivors.G, survivors.rank, survivors.crowding)
            merged, n_survive = Population.merge(prev, off), self.cfg.pop_size
        surv = self.algo.survival.do(self.problem, merged, n_survive=n_survive, algorithm=self.algo, random_state=rng)
        rank = np.array([np.nan if r is None else float(r) for r in surv.get("rank")], dtype=np.float64)
        crowd = np.array([np.nan if c is None else float(c) for c in surv.get("crowding")], dtype=np.float64)
        return EvoPopulation.of(
            surv.get("X").astype(np.float64),
            F=surv.get("F").astype(np.float64),
            G=surv.get("G").astype(np.float64),
            rank=rank,
            crowding=crowd,
        )



def nsga2_ask_tell(space: GeneSpace | None, cfg: AlgorithmConfig, n_obj: int, n_constr: int, fitness, seed: int,
                   n_gen: int, xl=None, xu=None):
    """pymoo's NSGA2 run by ask/tell with the operators an evo run configures: per generation the
    offspring and the survivors (X, F, rank, crowding), and in `dropped` the number of genomes
    pymoo's duplicate elimination threw away. `space=None`: pymoo's default repair (none) on
    the box [xl, xu]."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.duplicate import DefaultDuplicateElimination
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.sampling.lhs import LHS
    from pymoo.operators.sampling.rnd import FloatRandomSampling

    class SpaceRepair(Repair):
        def _do(self, problem, X, **kwargs):
            return space.repair(X)

    dropped = [0]

    class CountingElimination(DefaultDuplicateElimination):
        def do(self, pop, *args, **kwargs):
            out = super().do(pop, *args, **kwargs)
            dropped[0] += len(pop) - len(out)
            return out

    if space is not None:
        xl, xu = space.xl, space.xu
    problem = Problem(n_var=len(xl), n_obj=n_obj, n_ieq_constr=n_constr, xl=xl, xu=xu)
    algo = NSGA2(
        pop_size=cfg.pop_size,
        n_offsprings=cfg.n_offsprings or cfg.pop_size,
        sampling=LHS() if cfg.sampling == "lhs" else FloatRandomSampling(),
        crossover=SBX(prob=cfg.crossover_prob, eta=cfg.crossover_eta),
        mutation=PM(eta=cfg.mutation_eta, prob_var=cfg.mutation_prob),
        repair=SpaceRepair() if space is not None else None,
        eliminate_duplicates=CountingElimination(),
    )
    algo.setup(problem, seed=seed)
    history = []
    for _ in range(n_gen):
        off = algo.ask()
        F, G = fitness(off.get("X"))
        off.set("F", F)
        if n_constr:
            off.set("G", G)
        algo.tell(infills=off)
        pop = algo.pop
        history.append(
            {
                "off": off.get("X").copy(),
                "X": pop.get("X").copy(),
                "F": pop.get("F").copy(),
                "rank": np.array([np.nan if r is None else r for r in pop.get("rank")], dtype=float),
                "crowding": np.array([np.nan if c is None else c for c in pop.get("crowding")], dtype=float),
                "dropped": dropped[0],
            }
        )
    return history, algo.random_state.bit_generator.state
