"""The reality check (Hansen's SPA against buy-and-hold) and the Monte Carlo risk: arch called right,
with the sign convention shown (a loss is a negative return), and the resampled figures reproducible and
equal to known values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import vectorbt  # noqa: F401  (the .vbt accessor)
from arch.bootstrap import SPA

from evo.oos import bootstrap


def market(seed, n=750):
    return np.random.default_rng(seed).normal(0.0002, 0.01, n)


def test_spa_equals_arch_called_on_losses():
    bench = market(1)
    rng = np.random.default_rng(2)
    models = np.stack([bench * 0.5 + rng.normal(0, 0.005, len(bench)) for _ in range(4)], axis=1)
    got = bootstrap.spa(models, bench, block=10, reps=500, seed=np.random.default_rng(9))
    # arch's convention: lower loss is better; the loss of a return r is -r
    ref = SPA(-bench, -models, block_size=10, reps=500, bootstrap="stationary", studentize=True, nested=False,
              seed=np.random.default_rng(9))
    ref.compute()
    assert got == {"spa_pvalue": ref.pvalues["consistent"], "spa_pvalue_lower": ref.pvalues["lower"],
                   "spa_pvalue_upper": ref.pvalues["upper"]}


def test_spa_finds_a_planted_edge_and_not_noise():
    bench = market(3)
    rng = np.random.default_rng(4)
    noise = np.stack([rng.normal(0.0002, 0.01, len(bench)) for _ in range(5)], axis=1)
    edge = noise.copy()
    edge[:, 2] = bench + 0.002 + rng.normal(0, 0.002, len(bench))  # beats the benchmark by 0.2 % a bar
    assert bootstrap.spa(edge, bench, block=10, reps=500, seed=1)["spa_pvalue"] < 0.01
    assert bootstrap.spa(noise, bench, block=10, reps=500, seed=1)["spa_pvalue"] > 0.2
    # the sign: a strategy that loses 0.2 % a bar to the benchmark shows no superiority at all
    worse = (bench - 0.002 + rng.normal(0, 0.002, len(bench)))[:, None]
    assert bootstrap.spa(worse, bench, block=10, reps=500, seed=1)["spa_pvalue"] > 0.5


@pytest.mark.parametrize("seed", range(4))
def test_resampled_risk_equals_vectorbts_on_each_resample(seed):
    """Each resample's total return and deepest drawdown, read through its indices, equal vectorbt's
    returns accessor on the resampled series itself; with a bar of -100 % (ruin) and a flat stretch."""
    rng = np.random.default_rng(seed)
    r = market(seed, 400)
    r[rng.integers(0, 400, 3)] = 0.0
    if seed == 3:
        r[123] = -1.0  # wealth gone: a drawdown of -100 % from then on
    idx = rng.integers(0, len(r), size=(6, 250))
    idx[0] = np.arange(250)  # one resample is the series itself
    totals, dds = bootstrap.resampled_risk(r, idx)
    for i in range(len(idx)):
        ref = pd.Series(r[idx[i]]).vbt.returns(freq="1h")
        assert totals[i] == pytest.approx(ref.total(), rel=1e-9, abs=1e-12), i
        assert dds[i] == pytest.approx(ref.max_drawdown(), rel=1e-9, abs=1e-12), i


def test_monte_carlo_is_reproducible():
    r = market(6)
    a = bootstrap.monte_carlo(r, block=20, reps=300, ruin=0.5, seed=np.random.default_rng([1, 2]))
    b = bootstrap.monte_carlo(r, block=20, reps=300, ruin=0.5, seed=np.random.default_rng([1, 2]))
    c = bootstrap.monte_carlo(r, block=20, reps=300, ruin=0.5, seed=np.random.default_rng([1, 3]))
    assert a == b
    assert a != c


def test_monte_carlo_matches_known_values():
    """250 bars of +x and 250 of -x/(1+x): with blocks of one bar (the stationary bootstrap's restart
    probability 1) a resample is a symmetric random walk in log wealth, so P(loss) = P(more down bars than
    up) = (1 - P(a tie)) / 2 exactly; the drawdowns match a long run of such walks drawn directly."""
    from scipy.stats import binom

    x, n, reps = 0.01, 500, 4000
    r = np.where(np.arange(n) % 2 == 0, x, -x / (1 + x))
    out = bootstrap.monte_carlo(r, block=1, reps=reps, ruin=0.2, seed=7)
    assert out["prob_loss"] == pytest.approx((1 - binom.pmf(n // 2, n, 0.5)) / 2, abs=4 * math.sqrt(0.25 / reps))
    steps = np.random.default_rng(0).choice([1.0, -1.0], size=(20_000, n)) * math.log(1 + x)
    log_wealth = np.cumsum(steps, axis=1)
    dd = np.expm1((log_wealth - np.maximum(np.maximum.accumulate(log_wealth, axis=1), 0.0)).min(axis=1))
    ruin = np.mean(dd <= -0.2)
    assert out["prob_ruin"] == pytest.approx(ruin, abs=4 * math.sqrt(ruin * (1 - ruin) / reps))
    assert out["max_drawdown_median"] == pytest.approx(np.median(dd), rel=0.05)
    assert out["max_drawdown_q05"] == pytest.approx(np.quantile(dd, 0.05), rel=0.05)
    flat = bootstrap.monte_carlo(np.full(100, 0.001), block=5, reps=100, ruin=0.5, seed=1)
    assert flat["prob_loss"] == 0.0 and flat["max_drawdown_median"] == 0.0
