"""Metrics -> F (minimise) and G (<= 0 feasible), and the hypervolume."""

from __future__ import annotations

import numpy as np
import pytest

from evo.config import Constraint, Objective
from evo.search.objectives import METRICS, hypervolume, ref_point, to_FG


def row(**kw):
    r = np.zeros(len(METRICS))
    for k, v in kw.items():
        r[METRICS.index(k)] = v
    return r


def test_directions_and_constraints():
    objs = [Objective(metric="sharpe_ratio", direction="max"), Objective(metric="exposure", direction="min")]
    cons = [Constraint(metric="n_trades", op=">=", value=10), Constraint(metric="max_drawdown", op="<=", value=-0.05)]
    M = np.array([row(sharpe_ratio=1.5, exposure=0.3, n_trades=12, max_drawdown=-0.2),
                  row(sharpe_ratio=-0.5, exposure=0.1, n_trades=4, max_drawdown=-0.01)])
    F, G = to_FG(M, objs, cons)
    np.testing.assert_array_equal(F, [[-1.5, 0.3], [0.5, 0.1]])
    # n_trades >= 10 -> 10 - n ; max_drawdown <= -0.05 -> dd + 0.05 ; last column: non-finite objectives
    np.testing.assert_allclose(G, [[-2.0, -0.15, 0.0], [6.0, 0.04, 0.0]])


def test_non_finite_objective_is_infeasible_and_worst():
    objs = [Objective(metric="sharpe_ratio", direction="max")]
    cons = [Constraint(metric="win_rate", op=">=", value=0.4)]
    M = np.array([row(sharpe_ratio=np.nan, win_rate=np.nan), row(sharpe_ratio=np.inf, win_rate=0.5), row(sharpe_ratio=1.0, win_rate=0.5)])
    F, G = to_FG(M, objs, cons)
    assert F[0, 0] == np.inf and F[1, 0] == np.inf and F[2, 0] == -1.0
    assert G[0, 0] == np.inf  # a NaN constraint metric violates without bound
    np.testing.assert_array_equal(G[:, -1], [1.0, 1.0, 0.0])


def test_hypervolume_of_a_known_front():
    objs = [Objective(metric="sharpe_ratio", direction="max"), Objective(metric="max_drawdown", direction="max")]
    ref = ref_point(objs)
    np.testing.assert_array_equal(ref, [-0.0, 1.0])
    # points (sharpe, dd): (2, -0.5) and (1, -0.2) -> F: (-2, 0.5), (-1, 0.2)
    F = np.array([[-2.0, 0.5], [-1.0, 0.2], [-3.0, 1.5]])  # the last one is beyond the reference in dd
    G = np.zeros((3, 1))
    # union of boxes [-2,0]x[0.5,1] and [-1,0]x[0.2,1]: 2*0.5 + 1*0.3
    assert hypervolume(F, G, ref) == pytest.approx(1.3, abs=1e-12)
    G[0, 0] = 1.0  # infeasible points do not count
    assert hypervolume(F, G, ref) == pytest.approx(0.8, abs=1e-12)
    assert hypervolume(F[:0], G[:0], ref) == 0.0
