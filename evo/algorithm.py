"""NSGA-II steps from pymoo's own operators, and the checkpoint as plain data.

pymoo's ask/tell keeps its state inside an Algorithm object. A generation here
is split into tasks that may run in other processes and may be retried, so
each step is a pure function of plain data: (population state, rng state) in,
(result, new rng state) out. A retried step therefore repeats exactly.

    vary    = pymoo Mating: binary tournament, SBX, PM, repair, duplicate elimination
              (generation 1: the sampling instead)
    select  = pymoo RankAndCrowding survival of survivors + offspring
              (generation 1: of the initial population alone, as NSGA2 does)

The state after `select` is all NSGA-II carries between generations: the
survivors' X, F, G, rank and crowding, the Generator's `bit_generator.state`,
n_gen and n_eval. Restoring it gives a bit-identical continuation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.config import AlgorithmConfig
from evo.strategies.base import GeneSpace

CHECKPOINT_VERSION = 1


@dataclass
class PopState:
    """The survivors of a generation. rank/crowding are NaN where pymoo never set them
    (infeasible individuals are ordered by constraint violation, not ranked)."""

    X: np.ndarray
    F: np.ndarray
    G: np.ndarray
    rank: np.ndarray
    crowding: np.ndarray

    def __len__(self) -> int:
        return len(self.X)


@dataclass
class Checkpoint:
    pop: PopState
    rng_state: dict
    n_gen: int
    n_eval: int


# ---------------------------------------------------------------------------------------------
# rng as plain data


def new_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def rng_from_state(state: dict) -> np.random.Generator:
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)


def rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


# ---------------------------------------------------------------------------------------------
# pymoo glue


class Optimizer:
    """The NSGA-II operators of one run, bound to its gene space."""

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

    def vary(self, survivors: PopState, rng: np.random.Generator) -> np.ndarray:
        """Offspring genomes of the survivors, unique among themselves and the survivors."""
        self._bind(rng)
        pop = self._population(survivors.X, survivors.F, survivors.G, survivors.rank, survivors.crowding)
        off = self.algo.mating.do(
            self.problem, pop, self.cfg.n_offsprings or self.cfg.pop_size, algorithm=self.algo, random_state=rng
        )
        return off.get("X").reshape(-1, self.space.n_var)

    def select(
        self, survivors: PopState | None, X: np.ndarray, F: np.ndarray, G: np.ndarray, rng: np.random.Generator
    ) -> PopState:
        """Environmental selection of survivors + evaluated offspring."""
        from pymoo.core.population import Population

        self._bind(rng)
        off = self._population(X, F, G)
        if survivors is None:
            merged, n_survive = off, len(off)
        else:
            prev = self._population(survivors.X, survivors.F, survivors.G, survivors.rank, survivors.crowding)
            merged, n_survive = Population.merge(prev, off), self.cfg.pop_size
        surv = self.algo.survival.do(self.problem, merged, n_survive=n_survive, algorithm=self.algo, random_state=rng)
        rank = np.array([np.nan if r is None else float(r) for r in surv.get("rank")], dtype=np.float64)
        crowd = np.array([np.nan if c is None else float(c) for c in surv.get("crowding")], dtype=np.float64)
        return PopState(
            X=surv.get("X").astype(np.float64),
            F=surv.get("F").astype(np.float64),
            G=surv.get("G").astype(np.float64),
            rank=rank,
            crowding=crowd,
        )


def pareto_mask(state: PopState) -> np.ndarray:
    """Survivors on the first front (feasible, rank 0)."""
    return (state.rank == 0) & (state.G <= 0).all(axis=1)


# ---------------------------------------------------------------------------------------------
# checkpoint <-> plain data (JSON: lists and numbers; non-finite floats as strings)


def encode_floats(a: np.ndarray) -> list:
    def one(v: float):
        v = float(v)
        return v if math.isfinite(v) else repr(v)  # 'inf', '-inf', 'nan'

    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return [one(v) for v in a]
    return [[one(v) for v in row] for row in a]


def decode_floats(v: Any, ncols: int | None = None) -> np.ndarray:
    a = np.array(v, dtype=object)
    out = np.vectorize(float, otypes=[np.float64])(a) if a.size else np.empty(0)
    if ncols is not None:
        out = out.reshape(-1, ncols)
    return out


def encode_checkpoint(ck: Checkpoint) -> dict:
    s = ck.rng_state
    return {
        "version": CHECKPOINT_VERSION,
        "n_gen": ck.n_gen,
        "n_eval": ck.n_eval,
        # 128-bit integers as strings: not every JSON reader keeps them exact
        "rng": {
            "bit_generator": s["bit_generator"],
            "state": {k: str(v) for k, v in s["state"].items()},
            "has_uint32": s["has_uint32"],
            "uinteger": str(s["uinteger"]),
        },
        "pop": {
            "X": encode_floats(ck.pop.X),
            "F": encode_floats(ck.pop.F),
            "G": encode_floats(ck.pop.G),
            "rank": encode_floats(ck.pop.rank),
            "crowding": encode_floats(ck.pop.crowding),
        },
    }


def decode_checkpoint(d: dict, n_var: int, n_obj: int, n_constr: int) -> Checkpoint:
    if d.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint version {d.get('version')} is not {CHECKPOINT_VERSION}")
    r = d["rng"]
    state = {
        "bit_generator": r["bit_generator"],
        "state": {k: int(v) for k, v in r["state"].items()},
        "has_uint32": int(r["has_uint32"]),
        "uinteger": int(r["uinteger"]),
    }
    p = d["pop"]
    pop = PopState(
        X=decode_floats(p["X"], n_var),
        F=decode_floats(p["F"], n_obj),
        G=decode_floats(p["G"], n_constr),
        rank=decode_floats(p["rank"]),
        crowding=decode_floats(p["crowding"]),
    )
    return Checkpoint(pop=pop, rng_state=state, n_gen=int(d["n_gen"]), n_eval=int(d["n_eval"]))
