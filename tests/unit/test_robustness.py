"""Neighbouring genes: within the radius, on the grid, switches flipped at their rate, reproducible; the
spread is the median and the worst in each objective's direction."""

from __future__ import annotations

import numpy as np
import pytest

from evo import strategies
from evo.config import validate
from evo.config.metrics import METRICS, SLOT
from evo.oos import robustness


def space():
    return strategies.get("rsi_pullback").space()


def test_neighbours_stay_within_the_radius_on_the_grid_and_reproduce():
    sp = space()
    rng = np.random.default_rng(1)
    x = sp.repair((sp.xl + rng.random((1, sp.n_var)) * (sp.xu - sp.xl)))[0]
    a = robustness.neighbours(sp, x, 400, 0.05, 0.3, np.random.default_rng(5))
    b = robustness.neighbours(sp, x, 400, 0.05, 0.3, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    snapped = a.copy()
    sp.snap(snapped)
    np.testing.assert_array_equal(a, sp.repair(snapped))  # on the grid and valid for the family
    for j, g in enumerate(sp.genes):
        step = 1.0 if g.kind == "int" else (g.step or 0.0)
        if g.kind == "int" and g.high - g.low <= 2:
            changed = np.mean(a[:, j] != x[j])
            assert changed == pytest.approx(0.3, abs=0.08), g.name  # flipped at its rate
        else:
            # within radius x range, plus half a grid step of snapping (the family's repair may move more)
            moved = np.abs(a[:, j] - x[j])
            assert np.mean(moved <= 0.05 * (g.high - g.low) + step / 2 + 1e-9) > 0.95, g.name
            assert moved.max() > 0 or g.high - g.low < 20 * step, g.name  # it does move


def test_spread_is_median_and_worst_in_each_direction():
    cfg = validate({"objectives": [{"metric": "sharpe_ratio", "direction": "max"},
                                   {"metric": "max_drawdown", "direction": "max"},
                                   {"metric": "n_trades", "direction": "min"}],
                    "constraints": [{"metric": "n_trades", "op": ">=", "value": 5}]})
    m = np.full((5, len(METRICS)), 0.0)
    m[:, SLOT["sharpe_ratio"]] = [1.0, 2.0, -3.0, 0.5, np.nan]
    m[:, SLOT["max_drawdown"]] = [-0.1, -0.2, -0.05, -0.3, -0.1]
    m[:, SLOT["n_trades"]] = [10, 3, 7, 20, 8]
    s = robustness.spread(m, cfg.objectives, cfg.constraints)
    assert s["objectives"]["sharpe_ratio"] == {"median": 0.75, "worst": -3.0}
    assert s["objectives"]["max_drawdown"] == {"median": -0.1, "worst": -0.3}
    assert s["objectives"]["n_trades"] == {"median": 8.0, "worst": 20.0}
    assert s["feasible"] == 3 / 5  # one below 5 trades, one with an undefined Sharpe ratio


def test_robust_FG_is_the_worst_or_median_over_a_genome_and_its_neighbours_and_feasibility_follows():
    from evo.search.neighbours import robust_FG

    inf = np.inf
    # a pool of 5 genomes, 2 objectives (minimised), 1 user constraint + "objectives defined"
    F = np.array([[-1.0, 0.2], [-3.0, 0.1], [-2.0, 0.4], [inf, 0.3], [-0.5, 0.1]])
    G = np.array([[-1.0, 0.0], [2.0, 0.0], [-4.0, 0.0], [-2.0, 1.0], [-1.0, 0.0]])
    near = np.array([[0, 1, 2], [2, 0, 4], [4, 3, 0], [1, 0, 2]])  # own row first, then 2 neighbours
    Fw, Gw = robust_FG(F, G, near, "worst")
    np.testing.assert_array_equal(Fw, [[-1.0, 0.4], [-0.5, 0.4], [inf, 0.3], [-1.0, 0.4]])
    # feasible only if itself and every neighbour meets every constraint and every objective is defined
    np.testing.assert_array_equal((Gw <= 0).all(axis=1), [False, True, False, False])
    Fm, Gm = robust_FG(F, G, near, "median")
    np.testing.assert_array_equal(Fm, [[-2.0, 0.2], [-1.0, 0.2], [-0.5, 0.2], [-2.0, 0.2]])
    # the genome itself feasible, and the median of each constraint met: row 3's own constraint fails
    np.testing.assert_array_equal(Gm[:, 0], [-1.0, -1.0, -1.0, 2.0])
    np.testing.assert_array_equal((Gm <= 0).all(axis=1), [True, True, True, False])
    # an undefined objective in the middle of the sorted values makes the median undefined: infeasible
    Fu, Gu = robust_FG(F, G, np.array([[3, 0, 3]]), "median")
    assert Fu[0, 0] == inf and Gu[0, -1] == 1.0


def test_aggregate_needs_neighbours_and_report_only_keeps_the_identity():
    from evo.config import ConfigError

    with pytest.raises(ConfigError, match=r"^field 'algorithm.robustness': aggregate = 'median' needs neighbours >= 1"):
        validate({"algorithm": {"robustness": {"neighbours": 0, "aggregate": "median"}}})
    plain = validate({})
    assert "aggregate" not in plain.identity()["algorithm"]["robustness"]  # runs stored before it resume
    robust = validate({"algorithm": {"robustness": {"aggregate": "worst"}}})
    assert robust.identity_hash() != plain.identity_hash()


def test_a_genomes_neighbours_depend_on_the_genome_and_the_seed_only():
    from evo.search.neighbours import neighbours_of

    sp = space()
    cfg = validate({"algorithm": {"robustness": {"neighbours": 4, "aggregate": "worst"}}}).algorithm.robustness
    rng = np.random.default_rng(3)
    X = sp.repair(sp.xl + rng.random((3, sp.n_var)) * (sp.xu - sp.xl))
    h = sp.hashes(X)
    alone = neighbours_of(sp, X[2:], h[2:], cfg, 42)
    np.testing.assert_array_equal(neighbours_of(sp, X, h, cfg, 42)[8:], alone)  # not its place in a population
    assert not np.array_equal(neighbours_of(sp, X[2:], h[2:], cfg, 43), alone)  # the run's seed
