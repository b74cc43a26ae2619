"""evo.search.nsga's array operators against pymoo 0.6.2's own operators, bit for bit and random draw for draw.

Every comparison runs pymoo and evo.search.nsga from two Generators in the same state and checks the
results (floats by their bits, so even the sign of a zero counts) and the Generators' states after.
"""

from __future__ import annotations

import numpy as np
import pytest

from evo import strategies
from evo.search.nsga import MatingInfo, Operators, constraint_violation, mate, survive
from evo.search.nsga.crossover import sbx
from evo.search.nsga.mutation import pm
from evo.search.nsga.selection import binary_tournament
from evo.search.nsga.survival import crowding_distance
from evo.strategies.base import Family, Gene, GeneSpace


def assert_bits_equal(a, b, msg=""):
    """Equal shape and equal float64 bits (NaN == NaN, 0.0 != -0.0)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{msg}: shapes {a.shape} != {b.shape}"
    diff = np.flatnonzero(a.view(np.int64).ravel() != b.view(np.int64).ravel())
    assert len(diff) == 0, f"{msg}: {len(diff)} values differ, first at {diff[0]}: {a.ravel()[diff[0]]!r} != {b.ravel()[diff[0]]!r}"


def twin_rngs(seed):
    return np.random.default_rng(seed), np.random.default_rng(seed)


def assert_same_stream(r1, r2):
    assert r1.bit_generator.state == r2.bit_generator.state, "the operators drew different random numbers"


def objectives(rng, n, m, kind):
    """Continuous, coarse (many ties, duplicates and negative zeros), or coarse with infinities."""
    if kind == "continuous":
        return rng.random((n, m))
    F = -rng.integers(0, 4, size=(n, m)).astype(float)  # 0 * -1: negative zeros next to none
    F[rng.random((n, m)) < 0.3] *= -1.0
    if kind == "inf":
        F[rng.random((n, m)) < 0.1] = np.inf
    return F


def pymoo_population(X, F, G, rank=None, crowding=None):
    from pymoo.core.population import Population

    pop = Population.new(X=X)
    pop.set("F", F, "G", G)
    if rank is not None:
        for ind, r, c in zip(pop, rank, crowding):
            if not np.isnan(r):
                ind.set("rank", int(r))
                ind.set("crowding", float(c))
    return pop


# ---------------------------------------------------------------------------------------------
# survival


@pytest.mark.parametrize("m", [1, 2, 3, 5, 9])
def test_crowding_distance_equals_pymoo_per_front(m):
    from pymoo.operators.survival.rank_and_crowding.metrics import get_crowding_function

    cd = get_crowding_function("cd")
    rng = np.random.default_rng(m)
    for kind in ("continuous", "coarse", "inf"):
        sizes = [1, 2, 3, 4, 9, 50, 333]
        F = objectives(rng, sum(sizes), m, kind)
        members = rng.permutation(len(F))
        starts = np.concatenate(([0], np.cumsum(sizes)))
        ours = crowding_distance(F, members, starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.concatenate([cd.do(F[members[s:e]]) for s, e in zip(starts[:-1], starts[1:])])
        assert_bits_equal(ours, ref, f"{kind}")


def test_constraint_violation_equals_pymoo():
    rng = np.random.default_rng(3)
    for n_constr in (0, 1, 2, 9):
        G = np.round(rng.normal(size=(50, n_constr)), 1) * rng.choice([-1.0, 1.0], size=(50, n_constr))
        G[rng.random(G.shape) < 0.05] = np.inf
        pop = pymoo_population(rng.random((50, 2)), rng.random((50, 2)), G)
        assert_bits_equal(constraint_violation(G), pop.get("CV")[:, 0], f"{n_constr} constraints")


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("n_constr", [0, 2])
def test_survival_equals_pymoo_rank_and_crowding(m, n_constr):
    from pymoo.core.problem import Problem
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

    rng = np.random.default_rng(10 * m + n_constr)
    for trial in range(30):
        n = int(rng.integers(1, 400))
        F = objectives(rng, n, m, ["continuous", "coarse", "inf"][trial % 3])
        G = np.round(rng.normal(size=(n, n_constr)) - [0.8, 1.2][trial % 2], 1)
        X = rng.random((n, 3))
        problem = Problem(n_var=3, n_obj=m, n_ieq_constr=n_constr, xl=0.0, xu=1.0)
        n_survive = int(rng.integers(1, n + 1))
        r1, r2 = twin_rngs(trial)
        with np.errstate(invalid="ignore"):  # pymoo's crowding of infinite objectives: inf - inf
            ref = RankAndCrowding().do(problem, pymoo_population(X, F, G), n_survive=n_survive, random_state=r1)
        ours = survive(F, G, n_survive, r2, constrained=n_constr > 0)
        assert_bits_equal(X[ours.index], ref.get("X"), "survivors")
        assert_bits_equal(ours.rank, [np.nan if r is None else r for r in ref.get("rank")], "rank")
        assert_bits_equal(ours.crowding, [np.nan if c is None else c for c in ref.get("crowding")], "crowding")
        assert_same_stream(r1, r2)


# ---------------------------------------------------------------------------------------------
# variation


class _Algorithm:
    """What pymoo's binary_tournament reads from NSGA2 (its ties draw from algorithm.random_state)."""

    tournament_type = "comp_by_dom_and_crowding"

    def __init__(self, rng):
        self.random_state = rng


def test_binary_tournament_equals_pymoo():
    from pymoo.algorithms.moo.nsga2 import binary_tournament as pymoo_tournament
    from pymoo.core.problem import Problem
    from pymoo.operators.selection.tournament import TournamentSelection

    rng = np.random.default_rng(4)
    coin_flips = 0
    for trial in range(40):
        n = int(rng.integers(2, 300))
        F = objectives(rng, n, 2, "coarse")
        G = np.round(rng.normal(size=(n, 1)) - 0.3, 0)  # many equal violations: coin flips
        crowd = rng.choice([0.0, 0.5, np.inf], size=n)
        r1, r2 = twin_rngs(trial)
        state = survive(F, G, n, np.random.default_rng(trial), True)  # ranks and crowding as NSGA2 leaves them
        F, G = F[state.index], G[state.index]
        crowd = np.where(np.isnan(state.rank), np.nan, crowd)
        pop = pymoo_population(rng.random((n, 2)), F, G, state.rank, crowd)
        problem = Problem(n_var=2, n_obj=2, n_ieq_constr=1, xl=0.0, xu=1.0)
        n_select = int(rng.integers(1, 2 * n))
        ref = TournamentSelection(func_comp=pymoo_tournament).do(
            problem, pop, n_select, 2, to_pop=False, random_state=r1, algorithm=_Algorithm(r1))
        before = r2.bit_generator.state
        ours = binary_tournament(F, constraint_violation(G), crowd, n_select, 2, r2)
        np.testing.assert_array_equal(ours, ref)
        assert_same_stream(r1, r2)
        perms = np.random.default_rng(0)
        perms.bit_generator.state = before
        for _ in range(int(np.ceil(4 * n_select / n))):
            perms.permutation(n)
        coin_flips += r2.bit_generator.state != perms.bit_generator.state
    assert coin_flips > 20, "ties were rare: the coin flips went untested"


@pytest.mark.parametrize("prob", [0.0, 0.5, 0.9, 1.0])
def test_sbx_and_pm_equal_pymoo(prob):
    from pymoo.core.population import Population
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM

    rng = np.random.default_rng(int(prob * 10))
    for trial in range(10):
        n_var, n_matings = int(rng.integers(1, 12)), int(rng.integers(1, 300))
        xl = rng.uniform(-5, 0, n_var)
        xu = xl + rng.uniform(0, 10, n_var)
        fixed = rng.random(n_var) < 0.15
        xu[fixed] = xl[fixed]  # a gene with equal bounds is never crossed or mutated
        P = xl + rng.random((2, n_matings, n_var)) * (xu - xl)
        same = rng.random(n_matings) < 0.2
        P[1, same] = P[0, same]  # identical parents: SBX leaves them alone
        eta, mut_eta = float(rng.choice([3.0, 15.0, 30.0])), float(rng.choice([5.0, 20.0]))
        prob_var = [None, 0.3][trial % 2]
        problem = Problem(n_var=n_var, n_obj=2, xl=xl, xu=xu)
        r1, r2 = twin_rngs(trial)
        parents = Population.new(X=np.concatenate([P[0], P[1]]))
        matings = parents[np.column_stack([np.arange(n_matings), n_matings + np.arange(n_matings)])]
        off = SBX(prob=prob, eta=eta)(problem, matings, random_state=r1)
        ours = sbx(P, xl, xu, r2, prob=prob, eta=eta)
        assert_bits_equal(ours, off.get("X"), "SBX")
        assert_same_stream(r1, r2)
        off = PM(eta=mut_eta, prob_var=prob_var)(problem, off, random_state=r1)
        ours = pm(ours, xl, xu, r2, eta=mut_eta, prob_var=prob_var)
        assert_bits_equal(ours, off.get("X"), "PM")
        assert_same_stream(r1, r2)


def _pymoo_mating(space, n_obj, n_constr, ops: Operators, rng):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM

    class SpaceRepair(Repair):
        def _do(self, problem, X, **kwargs):
            return space.repair(X)

    problem = Problem(n_var=space.n_var, n_obj=n_obj, n_ieq_constr=n_constr, xl=space.xl, xu=space.xu)
    algo = NSGA2(crossover=SBX(prob=ops.crossover_prob, eta=ops.crossover_eta),
                 mutation=PM(eta=ops.mutation_eta, prob_var=ops.mutation_prob_var),
                 repair=SpaceRepair(), eliminate_duplicates=True)
    algo.setup(problem, seed=0)
    algo.random_state = rng
    return problem, algo


def _state(space, n, seed):
    """A population as NSGA2 leaves it: repaired, unique, ranked, with constraint violations."""
    rng = np.random.default_rng(seed)
    X = space.repair(space.xl + rng.random((4 * n, space.n_var)) * (space.xu - space.xl))
    X = np.unique(X, axis=0)[:n]
    rng.shuffle(X)
    Z = (X - space.xl) / (space.xu - space.xl)
    F = np.round(np.column_stack([Z[:, 0], 1 - Z[:, 1]]), 1)
    G = np.round(0.4 - Z[:, -1:], 1)
    s = survive(F, G, len(X), rng, True)
    return X[s.index], F[s.index], G[s.index], s.rank, s.crowding


@pytest.mark.parametrize("n_offsprings", [1, 37, 200])
def test_mating_loop_equals_pymoo_mating_with_duplicates_and_truncation(n_offsprings):
    space = strategies.get("composite").space()  # 17 switches and windows: children repeat
    ops = Operators()
    X, F, G, rank, crowd = _state(space, 60, n_offsprings)
    for seed in range(3):
        r1, r2 = twin_rngs(seed)
        problem, algo = _pymoo_mating(space, 2, 1, ops, r1)
        ref = algo.mating.do(problem, pymoo_population(X, F, G, rank, crowd), n_offsprings,
                             algorithm=algo, random_state=r1).get("X")
        info = MatingInfo()
        ours = mate(X, F, constraint_violation(G), crowd, n_offsprings, xl=space.xl, xu=space.xu, repair=space.repair,
                    ops=ops, rng=r2, info=info)
        assert_bits_equal(ours, ref, "offspring")
        assert_same_stream(r1, r2)
        assert len(ours) == n_offsprings
    if n_offsprings == 200:
        assert info.duplicates > 0 and info.iterations > 1, "no duplicate was made: the elimination went untested"


class _TwoBits(Family):
    name = "two_bits"
    genes = (Gene("a", "int", 0, 1), Gene("b", "int", 0, 1))


def test_mating_gives_up_after_pymoos_hundred_rounds():
    space = GeneSpace(_TwoBits(), _TwoBits.genes)  # four genomes exist
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    F = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    G = np.zeros((3, 1))
    s = survive(F, G, 3, np.random.default_rng(0), True)
    ops = Operators(mutation_prob_var=0.5)
    r1, r2 = twin_rngs(1)
    problem, algo = _pymoo_mating(space, 2, 1, ops, r1)
    ref = algo.mating.do(problem, pymoo_population(X[s.index], F[s.index], G, s.rank, s.crowding), 4,
                         algorithm=algo, random_state=r1).get("X")
    info = MatingInfo()
    ours = mate(X[s.index], F[s.index], constraint_violation(G), s.crowding, 4, xl=space.xl, xu=space.xu,
                repair=space.repair, ops=ops, rng=r2, info=info)
    assert_bits_equal(ours.reshape(-1, 2), ref.reshape(-1, 2), "offspring")
    assert_same_stream(r1, r2)
    assert info.iterations == 100
    np.testing.assert_array_equal(ours, [[1.0, 0.0]])  # the one genome not yet in the population
