"""The NSGA-II steps against pymoo's own NSGA2 (ask/tell) and against the pymoo-backed Optimizer
the project ran before, bit for bit; and the checkpoint round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo import strategies
from evo.search.algorithm import (
    Checkpoint,
    Optimizer,
    decode_checkpoint,
    encode_checkpoint,
    new_rng,
    rng_from_state,
    rng_state,
)
from evo.config import AlgorithmConfig, Constraint, Objective
from evo.search.objectives import METRICS, to_FG
from evo.search.population import Population
from evo.strategies.base import Family, Gene, GeneSpace
from tests.pymoo_reference import PymooOptimizer, nsga2_ask_tell
from tests.unit.test_nsga import assert_bits_equal

N_OBJ, N_CONSTR = 2, 2


def toy_fitness(X: np.ndarray, space) -> tuple[np.ndarray, np.ndarray]:
    """Two conflicting objectives and a constraint that cuts part of the space."""
    Z = (X - space.xl) / (space.xu - space.xl)
    f1 = Z[:, :4].sum(axis=1)
    f2 = (1 - Z[:, 2:6]).sum(axis=1) + 0.1 * np.sin(7 * Z[:, 6])
    g1 = 0.6 - Z[:, 7]  # feasible when the 8th gene is in the upper 40 %
    g2 = np.zeros(len(X))
    return np.column_stack([f1, f2]), np.column_stack([g1, g2])


# ---------------------------------------------------------------------------------------------
# test problems: fitness(X) -> (F, G)


class _Box(Family):
    """Unbounded-precision genes in a box: the gene space of a continuous test problem."""

    name = "box"
    genes = ()


def box_space(n_var: int) -> GeneSpace:
    return GeneSpace(_Box(), [Gene(f"x{i}", "float", 0.0, 1.0) for i in range(n_var)])


def zdt1(X):
    """2 objectives, no constraints."""
    f1 = X[:, 0]
    g = 1 + 9 * X[:, 1:].mean(axis=1)
    return np.column_stack([f1, g * (1 - np.sqrt(f1 / g))]), np.empty((len(X), 0))


def dtlz2_constrained(X):
    """3 objectives and 2 inequality constraints that make part of every generation infeasible."""
    g = ((X[:, 2:] - 0.5) ** 2).sum(axis=1)
    a, b = X[:, 0] * np.pi / 2, X[:, 1] * np.pi / 2
    F = (1 + g)[:, None] * np.column_stack([np.cos(a) * np.cos(b), np.cos(a) * np.sin(b), np.sin(a)])
    G = np.column_stack([0.3 - X[:, 0] - X[:, 1], g - 0.25])
    return F, G


def metric_fitness(space):
    """Metrics of genomes put through the project's own to_FG: coarse values (ties, negative zeros),
    a minimum-trades constraint and undefined Sharpe ratios (infinite F, infeasible)."""
    objectives = [Objective(metric="sharpe_ratio", direction="max"), Objective(metric="max_drawdown", direction="max")]
    constraints = [Constraint(metric="n_trades", op=">=", value=10)]

    def fitness(X):
        Z = (X - space.xl) / (space.xu - space.xl)
        m = np.zeros((len(X), len(METRICS)))
        m[:, METRICS.index("sharpe_ratio")] = np.round(2 * Z[:, :4].mean(axis=1) - 0.5, 1)
        m[:, METRICS.index("max_drawdown")] = -np.round(Z[:, 1:5].mean(axis=1) ** 2, 1)
        trades = np.floor(40 * Z[:, -1])
        m[:, METRICS.index("n_trades")] = trades
        m[trades < 3, METRICS.index("sharpe_ratio")] = np.nan
        return to_FG(m, objectives, constraints)

    return fitness


def stepwise_with_checkpoints(space, cfg: AlgorithmConfig, seed: int, n_gen: int, fitness=None,
                              n_obj=N_OBJ, n_constr=N_CONSTR, optimizer=Optimizer):
    """Our steps, with every generation's state sent through JSON and rebuilt, as a resume does."""
    fitness = fitness or (lambda X: toy_fitness(X, space))
    history = []
    survivors, rng = None, None
    for g in range(1, n_gen + 1):
        opt = optimizer(space, n_obj, n_constr, cfg)  # a fresh process would build a new one
        gen = new_rng(seed) if rng is None else rng_from_state(rng)
        X = opt.initial(gen) if survivors is None else opt.vary(survivors, gen)
        F, G = fitness(X)
        state = opt.select(survivors, Population.of(X, F=F, G=G), gen)
        ck = Checkpoint(pop=state, rng_state=rng_state(gen), n_gen=g, n_eval=0)
        text = json.dumps(encode_checkpoint(ck))
        ck2 = decode_checkpoint(json.loads(text), space.n_var, n_obj, n_constr)
        survivors, rng = ck2.pop, ck2.rng_state
        history.append({"off": X, "X": state.X, "F": state.F, "rank": state.rank, "crowding": state.crowding,
                        "checkpoint": text})
    return history, rng


def assert_runs_equal(ref, ours):
    for g, (a, b) in enumerate(zip(ref, ours, strict=True), 1):
        for k in ("off", "X", "F", "rank", "crowding"):
            assert_bits_equal(a[k], b[k], f"generation {g}: {k}")


PROBLEMS = {
    # name: (gene space for evo, pymoo's repair is the space's (else none), n_obj, n_constr, fitness)
    "zdt1, 2 objectives, unconstrained, continuous": lambda: (box_space(10), False, 2, 0, zdt1),
    "dtlz2, 3 objectives, 2 constraints, continuous": lambda: (box_space(7), False, 3, 2, dtlz2_constrained),
    "rsi_pullback grid genes, project's to_FG": lambda: (
        (s := strategies.get("rsi_pullback").space()), True, 2, 2, metric_fitness(s)),
}


@pytest.mark.parametrize("pop_size, seeds", [(24, (0, 7)), pytest.param(1000, (3,), marks=pytest.mark.slow)],
                         ids=["pop24", "pop1000"])
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_twenty_generations_equal_pymoo_nsga2_bit_for_bit(problem, pop_size, seeds):
    """The acceptance test of issue 13: survivors (X, F, rank, crowding, in order) and offspring of
    evo's steps, resumed from JSON every generation, are pymoo's NSGA2's for the same seed."""
    space, repaired, n_obj, n_constr, fitness = PROBLEMS[problem]()
    cfg = AlgorithmConfig(pop_size=pop_size)
    for seed in seeds:
        ref, ref_rng = nsga2_ask_tell(space if repaired else None, cfg, n_obj, n_constr, fitness, seed, 20,
                                      xl=space.xl, xu=space.xu)
        ours, our_rng = stepwise_with_checkpoints(space, cfg, seed, 20, fitness, n_obj, n_constr)
        assert_runs_equal(ref, ours)
        assert our_rng == ref_rng, "the generators ended in different states"
        # the run really evolved, and exercised what it claims to
        assert not np.array_equal(ref[0]["X"], ref[-1]["X"])
        if n_constr:
            infeasible = [int((fitness(h["off"])[1] > 0).any(axis=1).sum()) for h in ref]
            assert sum(infeasible[1:]) > 0, "no infeasible offspring after generation 1"
            assert np.isnan(ref[0]["rank"]).any(), "no infeasible survivor: their ordering went untested"
        if repaired:
            assert ref[-1]["dropped"] > 0, "pymoo dropped no duplicate: the elimination went untested"


@pytest.mark.parametrize("family", ["rsi_pullback", "composite"])
@pytest.mark.parametrize(
    "cfg",
    [
        AlgorithmConfig(pop_size=30),
        AlgorithmConfig(pop_size=200, sampling="random", n_offsprings=77, mutation_prob=0.3),
        AlgorithmConfig(pop_size=40, crossover_prob=0.5, seed_population=[[10.0] * 30, [20.0] * 30, [10.0] * 30]),
    ],
    ids=["lhs", "random-77-offspring", "seed-population"],
)
def test_checkpoints_equal_the_pymoo_backed_optimizers(family, cfg):
    """Every generation's checkpoint text (survivors, rank, crowding, rng state) is what the
    pymoo-backed Optimizer wrote, so checkpoints stored before issue 13 resume unchanged."""
    space = strategies.get(family).space()
    if cfg.seed_population:
        cfg = cfg.model_copy(update={"seed_population": [row[: space.n_var] for row in cfg.seed_population]})
    fitness = metric_fitness(space)
    old, old_rng = stepwise_with_checkpoints(space, cfg, 11, 12, fitness, optimizer=PymooOptimizer)
    new, new_rng = stepwise_with_checkpoints(space, cfg, 11, 12, fitness)
    assert_runs_equal(old, new)
    for g, (a, b) in enumerate(zip(old, new), 1):
        assert a["checkpoint"] == b["checkpoint"], f"generation {g}: checkpoint text differs"
    assert old_rng == new_rng
    assert np.isnan(old[0]["rank"]).any(), "no infeasible survivor: the constraint ordering went untested"


class _ThreeTrits(Family):
    name = "three_trits"
    genes = (Gene("a", "int", 0, 2), Gene("b", "int", 0, 2), Gene("c", "float", 0.0, 1.0, step=0.5))


@pytest.mark.parametrize("sampling", ["lhs", "random"])
@pytest.mark.parametrize("seeded", [False, True])
def test_initial_population_drops_duplicates_as_pymoo_does(sampling, seeded):
    """Generation 1 on a space of 27 genomes: the repaired sample repeats itself, and both
    Optimizers keep the same first copies (pymoo's Initialization does not top the sample up)."""
    space = GeneSpace(_ThreeTrits(), _ThreeTrits.genes)
    seed_pop = [[0.0, 0.0, 0.0], [2.0, 1.0, 0.5], [0.2, 0.1, 0.1]] if seeded else None
    cfg = AlgorithmConfig(pop_size=20, sampling=sampling, seed_population=seed_pop)
    for seed in range(3):
        r1, r2 = new_rng(seed), new_rng(seed)
        ref = PymooOptimizer(space, 2, 1, cfg).initial(r1)
        ours = Optimizer(space, 2, 1, cfg).initial(r2)
        assert_bits_equal(ours, ref, "initial population")
        assert rng_state(r1) == rng_state(r2)
        assert len(ours) < 20, "the sample had no duplicate: the elimination went untested"


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_steps_with_checkpoint_restores_equal_pymoo_ask_tell_bit_for_bit(seed):
    space = strategies.get("rsi_pullback").space()
    cfg = AlgorithmConfig(pop_size=20, generations=6)
    ref, _ = nsga2_ask_tell(space, cfg, N_OBJ, N_CONSTR, lambda X: toy_fitness(X, space), seed, 6)
    ours, _ = stepwise_with_checkpoints(space, cfg, seed, 6)
    assert_runs_equal(ref, ours)
    # the population really evolved and some individuals were infeasible at the start
    assert not np.array_equal(ref[0]["X"], ref[-1]["X"])
    assert np.isnan(ref[0]["rank"]).any() or (toy_fitness(ref[0]["off"], space)[1] > 0).any()


def test_checkpoint_round_trip_is_exact_for_non_finite_values():
    rng = new_rng(3)
    rng.random(5)  # advance the state
    X = rng.random((4, 3))
    pop = Population.of(
        X,
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
    pop = Population.of(np.zeros((1, 1)), F=np.zeros((1, 1)), G=np.zeros((1, 1)), rank=np.zeros(1), crowding=np.zeros(1))
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
    state = opt.select(None, Population.of(X0, F=F, G=G), gen)
    off = opt.vary(state, gen)
    assert len(off) == 16
    np.testing.assert_array_equal(space.repair(off), off)  # already on the gene grid
    rows = {tuple(r) for r in off}
    assert len(rows) == len(off)
    assert not rows & {tuple(r) for r in state.X}
