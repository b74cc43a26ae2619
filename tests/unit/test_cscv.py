"""CSCV and the probability of backtest overfitting, against the paper's definition written here as a
plain loop over itertools.combinations, against vectorbt's returns, and on strategies whose PBO is known:
pure noise (PBO about one half) and one genuinely dominant strategy (PBO about zero)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from evo.oos import cscv


def paper_cscv(returns: np.ndarray, n_blocks: int, reducer: str = "mean"):
    """Bailey et al. (2017), section 2, straight from the return matrix [N, A, T]: per split, the best
    in-sample Sharpe ratio (symbols reduced), its out-of-sample rank among all N (average rank on
    ties, relative rank rank / (N + 1)), the logit; PBO, the OOS-on-IS slope and P(OOS Sharpe < 0)."""
    n, a, t = returns.shape
    edges = [t * k // n_blocks for k in range(n_blocks + 1)]
    blocks = [np.arange(edges[k], edges[k + 1]) for k in range(n_blocks)]

    def sharpe(bars):
        out = np.empty((n, a))
        for i in range(n):
            for s in range(a):
                r = returns[i, s, bars]
                sd = r.std(ddof=1)
                out[i, s] = r.mean() / sd if sd > 0 else 0.0
        red = {"mean": lambda x: x.mean(axis=1), "median": lambda x: np.median(x, axis=1),
               "worst": lambda x: x.min(axis=1)}[reducer]
        return red(out)

    logits, is_sr, oos_sr = [], [], []
    for combo in combinations(range(n_blocks), n_blocks // 2):
        ins = np.concatenate([blocks[k] for k in combo])
        outs = np.concatenate([blocks[k] for k in range(n_blocks) if k not in combo])
        r_in, r_out = sharpe(ins), sharpe(outs)
        best = int(np.argmax(r_in))
        rank = np.sum(r_out < r_out[best]) + (np.sum(r_out == r_out[best]) + 1) / 2
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
        is_sr.append(r_in[best])
        oos_sr.append(r_out[best])
    logits, is_sr, oos_sr = map(np.array, (logits, is_sr, oos_sr))
    slope = np.polyfit(is_sr, oos_sr, 1)[0]
    return float(np.mean(logits <= 0)), float(slope), float(np.mean(oos_sr < 0)), logits


@pytest.mark.parametrize("reducer,n_sym", [("mean", 1), ("mean", 3), ("median", 3), ("worst", 2)])
def test_cscv_equals_the_papers_definition(reducer, n_sym):
    rng = np.random.default_rng(7)
    n, t, s = 9, 123, 6
    r = rng.normal(0.0002, 0.01, (n, n_sym, t)) + rng.normal(0, 0.002, (n, 1, 1))
    r[3] = 0.0  # a flat strategy (no variance anywhere) and one flat in some blocks
    r[5, :, :40] = 0.0
    pbo, slope, loss, logits = paper_cscv(r, s, reducer)
    got = cscv.cscv(cscv.block_sums(r, s), reducer)
    assert np.allclose(got.logits, logits, rtol=0, atol=1e-12)
    assert got.pbo == pytest.approx(pbo, abs=1e-12)
    assert got.degradation == pytest.approx(slope, abs=1e-12)
    assert got.prob_loss == pytest.approx(loss, abs=1e-12)


def test_block_sharpe_equals_vectorbts_on_each_block():
    """The Sharpe ratio from a block's sums equals vectorbt's Sharpe ratio of the strategy's returns
    on those bars, and over a union of blocks (an in-sample half)."""
    rng = np.random.default_rng(3)
    idx = pd.date_range("2020-01-01", periods=400, freq="1D")
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.02, 400))), index=idx)
    entries = pd.Series(rng.random(400) < 0.1, index=idx)
    exits = pd.Series(rng.random(400) < 0.1, index=idx)
    rets = vbt.Portfolio.from_signals(close, entries, exits, fees=0.001, freq="1D").returns()
    sums = cscv.block_sums(rets.to_numpy()[None, :], 8)[0]
    edges = cscv.block_edges(400, 8)
    for k in range(8):
        block = rets.iloc[edges[k]:edges[k + 1]]
        want = block.vbt.returns(freq="1D").sharpe_ratio()
        got = cscv.sharpe_from_sums(*sums[k].T) * math.sqrt(365)
        assert got == pytest.approx(want, rel=1e-9)
    half = [0, 2, 5, 7]
    union = pd.concat([rets.iloc[edges[k]:edges[k + 1]] for k in half])
    got = cscv.sharpe_from_sums(*sums[half].sum(axis=0)) * math.sqrt(365)
    assert got == pytest.approx(union.vbt.returns(freq="1D").sharpe_ratio(), rel=1e-9)


def test_pure_noise_overfits_half_the_time():
    """200 strategies of pure noise: the in-sample best is a coin flip out of sample, PBO about 1/2
    (10 blocks, 252 splits, keep the 50 seeds cheap)."""
    pbos = []
    for seed in range(50):
        r = np.random.default_rng(seed).normal(0, 0.01, (200, 300))
        pbos.append(cscv.cscv(cscv.block_sums(r, 10)).pbo)
    assert abs(np.mean(pbos) - 0.5) <= 0.1


def test_a_dominant_strategy_does_not_overfit():
    rng = np.random.default_rng(11)
    r = rng.normal(0, 0.01, (200, 1600))
    r[17] += 0.004  # a Sharpe ratio of 0.4 per bar: best in sample and out of sample on every split
    got = cscv.cscv(cscv.block_sums(r, 16))
    assert got.pbo <= 0.05
    assert np.mean(got.chosen == 17) > 0.95
    assert got.prob_loss == 0.0


def test_blocks_are_checked():
    with pytest.raises(ValueError):
        cscv.splits(5)
    with pytest.raises(ValueError):
        cscv.block_edges(10, 8)
