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
