"""NSGA-II steps equal to pymoo 0.6.2's NSGA2, and the checkpoint as plain data.

pymoo's ask/tell keeps its state inside an Algorithm object. A generation here
is split into tasks that may run in other processes and may be retried, so
each step is a pure function of plain data: (population state, rng state) in,
(result, new rng state) out. A retried step therefore repeats exactly.

    vary    = pymoo Mating: binary tournament, SBX, PM, repair, duplicate elimination
              (generation 1: pymoo's sampling, repaired, duplicates dropped)
    select  = pymoo RankAndCrowding survival of survivors + offspring
              (generation 1: of the initial population alone, as NSGA2 does)

vary and select run on arrays (evo.search.nsga), drawing the same random numbers in the
same order as pymoo's operators, so a run is pymoo's run bit for bit without
pymoo's per-individual objects and O(n^2) duplicate search.

The state after `select` is all NSGA-II carries between generations: the
survivors' X, F, G, rank and crowding, the Generator's `bit_generator.state`,
n_gen and n_eval. Restoring it gives a bit-identical continuation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.config import AlgorithmConfig, codec
from evo.search import nsga
from evo.search.nsga.duplicate import unique_rows
from evo.search.population import Population
from evo.strategies.base import GeneSpace

CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """What NSGA-II carries between generations: the survivors' X, F, G, rank and crowding (the
    population's other fields are the store's to give back), the random state, n_gen and n_eval."""

    pop: Population
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
# the steps


class Optimizer:
    """The NSGA-II operators of one run, bound to its gene space."""

    def __init__(self, space: GeneSpace, n_obj: int, n_constr: int, cfg: AlgorithmConfig):
        self.space = space
        self.cfg = cfg
        self.n_obj = n_obj
        self.n_constr = n_constr
        self.n_offsprings = cfg.n_offsprings or cfg.pop_size
        self.ops = nsga.Operators(
            crossover_prob=cfg.crossover_prob,
            crossover_eta=cfg.crossover_eta,
            mutation_eta=cfg.mutation_eta,
            mutation_prob_var=cfg.mutation_prob,
        )
        self._sampling = None

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n genomes from pymoo's own sampling operator (run once per run: not worth a copy)."""
        if self._sampling is None:
            from pymoo.core.problem import Problem
            from pymoo.operators.sampling.lhs import LHS
            from pymoo.operators.sampling.rnd import FloatRandomSampling

            problem = Problem(n_var=self.space.n_var, n_obj=self.n_obj, n_ieq_constr=self.n_constr,
                              xl=self.space.xl, xu=self.space.xu)
            self._sampling = (problem, LHS() if self.cfg.sampling == "lhs" else FloatRandomSampling())
        problem, sampling = self._sampling
        return sampling(problem, n, random_state=rng).get("X")

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """Generation 1: sample, repair, drop duplicates (after the seed population, if one is given).

        pymoo's Initialization: the sample (or the seed population followed by a sample of the
        rest) is repaired and its later copies of a genome are dropped, so it may come out short.
        """
        if not self.cfg.seed_population:
            X = self.space.repair(self._sample(self.cfg.pop_size, rng))
            return X[unique_rows(X)]
        seed = self.space.repair(np.asarray(self.cfg.seed_population, dtype=np.float64))
        seed = np.unique(seed, axis=0)[: self.cfg.pop_size] if len(seed) else seed
        rest = self.cfg.pop_size - len(seed)
        X = seed
        if rest > 0:
            X = np.vstack([seed, self.space.repair(self._sample(rest, rng))])
        X = self.space.repair(X)
        return X[unique_rows(X)]

    def vary(self, survivors: Population, rng: np.random.Generator) -> np.ndarray:
        """Offspring genomes of the survivors, unique among themselves and the survivors."""
        return nsga.mate(
            np.asarray(survivors.X, dtype=np.float64),
            np.asarray(survivors.F, dtype=np.float64),
            nsga.constraint_violation(survivors.G),
            np.asarray(survivors.crowding, dtype=np.float64),
            self.n_offsprings,
            xl=self.space.xl,
            xu=self.space.xu,
            repair=self.space.repair,
            ops=self.ops,
            rng=rng,
        ).reshape(-1, self.space.n_var)

    def select(self, parents: Population | None, offspring: Population, rng: np.random.Generator,
               copies: np.ndarray | None = None) -> Population:
        """Environmental selection of parents + evaluated offspring (their F and G set): the survivors,
        every field of each carried along, with rank and crowding set.

        `copies` marks, over parents then offspring, the individuals that only repeat an earlier one's
        behaviour (the same trades): NSGA-II ranks the others, and copies fill the population only when
        too few others remain, after all of them (ranked below the last front, crowding 0). None: every
        individual competes (pymoo's NSGA-II).
        """
        if parents is None:
            pop, n_survive = offspring, len(offspring)
        else:
            pop, n_survive = Population.merge(parents, offspring), self.cfg.pop_size
        F, G = pop.F, pop.G
        if copies is None or not copies.any():
            s = nsga.survive(F, G, n_survive, rng, constrained=self.n_constr > 0)
            return pop[s.index].set(rank=s.rank, crowding=s.crowding)
        distinct = np.flatnonzero(~copies)
        s = nsga.survive(F[distinct], G[distinct], min(n_survive, len(distinct)), rng, constrained=self.n_constr > 0)
        fill = np.flatnonzero(copies)[: max(0, n_survive - len(distinct))]
        index = np.concatenate([distinct[s.index], fill])
        last = np.nanmax(s.rank) if np.isfinite(s.rank).any() else -1.0
        rank = np.concatenate([s.rank, np.full(len(fill), last + 1.0)])
        crowding = np.concatenate([s.crowding, np.zeros(len(fill))])
        return pop[index].set(rank=rank, crowding=crowding)


def pareto_mask(state: Population) -> np.ndarray:
    """Survivors on the first front (feasible, rank 0)."""
    return (state.rank == 0) & (state.G <= 0).all(axis=1)


# ---------------------------------------------------------------------------------------------
# checkpoint <-> plain data (JSON: lists and numbers; non-finite floats as strings)


def encode_floats(a: np.ndarray) -> list:
    """A float array as nested lists, non-finite values as evo.config.codec writes them."""
    a = np.asarray(a, dtype=np.float64)
    bad = ~np.isfinite(a)
    if not bad.any():
        return a.tolist()
    out = a.astype(object)
    out[bad] = [codec.encode(v) for v in a[bad].tolist()]
    return out.tolist()


def decode_floats(v: Any, ncols: int | None = None) -> np.ndarray:
    a = np.array(v, dtype=object)
    out = np.vectorize(codec.decode, otypes=[np.float64])(a) if a.size else np.empty(0)
    if ncols == 0:  # a problem without constraints: one empty row per individual
        return np.empty((len(v), 0))
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
    pop = Population.of(
        decode_floats(p["X"], n_var),
        F=decode_floats(p["F"], n_obj),
        G=decode_floats(p["G"], n_constr),
        rank=decode_floats(p["rank"]),
        crowding=decode_floats(p["crowding"]),
    )
    return Checkpoint(pop=pop, rng_state=state, n_gen=int(d["n_gen"]), n_eval=int(d["n_eval"]))
