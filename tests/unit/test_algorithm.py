"""The NSGA-II steps against pymoo's own ask/tell loop, and the checkpoint round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo import strategies
from evo.algorithm import (
    Checkpoint,
    Optimizer,
    decode_checkpoint,
    encode_checkpoint,
    new_rng,
    rng_from_state,
    rng_state,
)
from evo.config import AlgorithmConfig

N_OBJ, N_CONSTR = 2, 2


def toy_fitness(X: np.ndarray, space) -> tuple[np.ndarray, np.ndarray]:
    """Two conflicting objectives and a constraint that cuts part of the space."""
    Z = (X - space.xl) / (space.xu - space.xl)
    f1 = Z[:, :4].sum(axis=1)
    f2 = (1 - Z[:, 2:6]).sum(axis=1) + 0.1 * np.sin(7 * Z[:, 6])
    g1 = 0.6 - Z[:, 7]  # feasible when the 8th gene is in the upper 40 %
    g2 = np.zeros(len(X))
    return np.column_stack([f1, f2]), np.column_stack([g1, g2])


def pymoo_reference(space, cfg: AlgorithmConfig, seed: int, n_gen: int):
    """Plain pymoo NSGA2 driven by ask/tell, with the same operators."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.sampling.lhs import LHS

    class R(Repair):
        def _do(self, problem, X, **kwargs):
            return space.repair(X)

    problem = Problem(n_var=space.n_var, n_obj=N_OBJ, n_ieq_constr=N_CONSTR, xl=space.xl, xu=space.xu)
    algo = NSGA2(
        pop_size=cfg.pop_size,
        n_offsprings=cfg.n_offsprings or cfg.pop_size,
        sampling=LHS(),
        crossover=SBX(prob=cfg.crossover_prob, eta=cfg.crossover_eta),
        mutation=PM(eta=cfg.mutation_eta, prob_var=cfg.mutation_prob),
        repair=R(),
        eliminate_duplicates=True,
    )
    algo.setup(problem, seed=seed)
    history = []
    for _ in range(n_gen):
        off = algo.ask()
        F, G = toy_fitness(off.get("X"), space)
        off.set("F", F, "G", G)
        algo.tell(infills=off)
        pop = algo.pop
        history.append(
            {
                "off": off.get("X").copy(),
                "X": pop.get("X").copy(),
                "F": pop.get("F").copy(),
                "rank": np.array([np.nan if r is None else r for r in pop.get("rank")], dtype=float),
                "crowding": np.array([np.nan if c is None else c for c in pop.get("crowding")], dtype=float),
            }
        )
    return history


def stepwise_with_checkpoints(space, cfg: AlgorithmConfig, seed: int, n_gen: int):
    """Our steps, with every generation's state sent through JSON and rebuilt, as a resume does."""
    history = []
    survivors, rng = None, None
    for g in range(1, n_gen + 1):
        opt = Optimizer(space, N_OBJ, N_CONSTR, cfg)  # a fresh process would build a new one
        gen = new_rng(seed) if rng is None else rng_from_state(rng)
        X = opt.initial(gen) if survivors is None else opt.vary(survivors, gen)
        F, G = toy_fitness(X, space)
        state = opt.select(survivors, X, F, G, gen)
        ck = Checkpoint(pop=state, rng_state=rng_state(gen), n_gen=g, n_eval=0)
        blob = json.loads(json.dumps(encode_checkpoint(ck)))
        ck2 = decode_checkpoint(blob, space.n_var, N_OBJ, N_CONSTR)
        survivors, rng = ck2.pop, ck2.rng_state
        history.append({"off": X, "X": state.X, "F": state.F, "rank": state.rank, "crowding": state.crowding})
    return history


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_steps_with_checkpoint_restores_equal_pymoo_ask_tell_bit_for_bit(seed):
    space = strategies.get("rsi_pullback").space()
    cfg = AlgorithmConfig(pop_size=20, generations=6)
    ref = pymoo_reference(space, cfg, seed, 6)
    ours = stepwise_with_checkpoints(space, cfg, seed, 6)
    for g, (a, b) in enumerate(zip(ref, ours), 1):
        for k in ("off", "X", "F", "rank", "crowding"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"generation {g}: {k} differs")
    # the population really evolved and some individuals were infeasible at the start
    assert not np.array_equal(ref[0]["X"], ref[-1]["X"])
    assert np.isnan(ref[0]["rank"]).any() or (toy_fitness(ref[0]["off"], space)[1] > 0).any()


def test_checkpoint_round_trip_is_exact_for_non_finite_values():
    rng = new_rng(3)
    rng.random(5)  # advance the state
    X = rng.random((4, 3))
    from evo.algorithm import PopState

    pop = PopState(
        X=X,
        F=np.array([[0.1, np.inf], [1 / 3, -2.5], [np.inf, np.inf], [1e-300, 7.0]]),
        G=np.array([[0.0, 0.0], [-1.0, 0.0], [np.inf, 1.0], [0.0, 0.0]]),
        rank=np.array([0.0, 1.0, np.nan, 0.0]),
        crowding=np.array([np.inf, 0.25, np.nan, np.inf]),
    )
    ck = Checkpoint(pop=pop, rng_state=rng_state(rng), n_gen=9, n_eval=321)
    text = json.dumps(encode_checkpoint(ck), allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    back = decode_checkpoint(json.loads(text), 3, 2, 2)
    for k in ("X", "F", "G", "rank", "crowding"):
        np.testing.assert_array_equal(getattr(back.pop, k), getattr(pop, k))
    assert back.n_gen == 9 and back.n_eval == 321
    # the generator continues with the same numbers
    np.testing.assert_array_equal(rng_from_state(back.rng_state).random(10), rng.random(10))


def test_checkpoint_refuses_unknown_version():
    rng = new_rng(0)
    from evo.algorithm import PopState

    pop = PopState(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), np.zeros(1))
    d = encode_checkpoint(Checkpoint(pop, rng_state(rng), 1, 1))
    d["version"] = 99
    with pytest.raises(ValueError, match="version"):
        decode_checkpoint(d, 1, 1, 1)


def test_vary_produces_unique_repaired_offspring_distinct_from_survivors():
    space = strategies.get("rsi_pullback").space()
    cfg = AlgorithmConfig(pop_size=16)
    opt = Optimizer(space, N_OBJ, N_CONSTR, cfg)
    gen = new_rng(1)
    X0 = opt.initial(gen)
    F, G = toy_fitness(X0, space)
    state = opt.select(None, X0, F, G, gen)
    off = opt.vary(state, gen)
    assert len(off) == 16
    np.testing.assert_array_equal(space.repair(off), off)  # already on the gene grid
    rows = {tuple(r) for r in off}
    assert len(rows) == len(off)
    assert not rows & {tuple(r) for r in state.X}
