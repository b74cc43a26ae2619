"""Block sums for CSCV from the evaluation's own pass, their float32 storage, and CSCV on stored sums.

- The engine's fused, generic and portfolio kernels give each genome's (sum, sum of squares) of bar
  returns per block in the Sharpe ratio's pass: equal to summing the returns the engine reports
  (themselves equal to vectorbt's: the parity suites), with the metrics unchanged bit for bit.
- A blob gives back the float32-rounded sums, and refuses another shape.
- CSCV on rounded sums, with the exact sums of the phenotypes rounding could have reordered, equals
  CSCV on exact sums, where near-twin phenotypes make plain rounding choose otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from evo.config import EvaluationConfig
from evo.engine import fast, nb
from evo.engine.enums import BATCH, batch_dt
from evo.flows.bench.engine import _genomes, _market
from evo.oos import cscv
from evo.store import blocks

SETTINGS = EvaluationConfig(engine="fast")


def _close(a, b):
    # the sum of squares comes from the Sharpe ratio's running sum of squared deviations: equal to a
    # direct sum up to rounding
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("family", ["rsi_pullback", "trend"])  # fused, and the generic block path
def test_evaluation_gives_the_block_sums_of_its_returns(family):
    market = _market(3000)
    arrays = market.arrays(0)
    fam, space, X = _genomes(family, 24, 3, trading=None)
    window = (500, 3000)
    edges = cscv.block_edges(window[1] - window[0], 6)
    got = np.full((len(X), 6, 2), np.nan)
    with_blocks = fast.evaluate_arrays(arrays, fam, X, space.names, SETTINGS, market.freq, window, edges=edges,
                                       blocks=got)
    plain = fast.evaluate_arrays(arrays, fam, X, space.names, SETTINGS, market.freq, window)
    np.testing.assert_array_equal(with_blocks, plain)  # the metrics keep their bits
    want = np.stack([fast.sums_by_block(fast.returns_of(arrays, fam, x, space.names, SETTINGS, market.freq, window),
                                        edges) for x in X])
    _close(got, want[..., :2])
    assert (got[..., 0] != 0).any()  # the genomes trade


def test_portfolio_evaluation_gives_the_block_sums_of_the_portfolio():
    market = _market(2000, n_assets=3)
    arrays = [market.arrays(a) for a in range(3)]
    fam, space, X = _genomes("rsi_pullback", 10, 1)
    window = (300, 2000)
    edges = cscv.block_edges(window[1] - window[0], 4)
    got = np.empty((len(X), 4, 2))
    fast.evaluate_portfolio(arrays, fam, X, space.names, SETTINGS, market.freq, window, edges=edges, blocks=got)
    want = np.stack([fast.sums_by_block(fast.portfolio_returns_of(arrays, fam, x, space.names, SETTINGS,
                                                                  market.freq, window), edges) for x in X])
    _close(got, want[..., :2])


def test_a_nan_return_counts_as_a_flat_bar_in_its_block():
    """A NaN return (a value of 0 before it) takes the block's direct sum; the Sharpe ratio's pass is the
    same with and without blocks."""
    rng = np.random.default_rng(0)
    n_bars = 40
    returns = rng.normal(0, 0.01, (BATCH, n_bars))
    returns[1, 12] = np.nan
    returns[2, 30:] = np.nan
    edges = np.array([0, 10, 25, 40])
    batch = np.zeros(BATCH, dtype=batch_dt)
    for q in range(BATCH):
        batch[q]["mean"] = np.nanmean(returns[q])
        batch[q]["count"] = np.count_nonzero(~np.isnan(returns[q]))
        batch[q]["row"] = q
    sim = fast.sim_settings(init_cash=1.0, fees=0.0, slippage=0.0, freq="1h", edges=edges)
    out = np.zeros((BATCH, 21))
    got = np.zeros((BATCH, 3, 2))
    nb.sharpe_batch_nb(returns, batch, BATCH, sim, out, got)
    plain = np.zeros_like(out)
    nb.sharpe_batch_nb(returns, batch, BATCH, fast.sim_settings(init_cash=1.0, fees=0.0, slippage=0.0, freq="1h"),
                       plain, np.zeros((BATCH, 0, 2)))
    np.testing.assert_array_equal(out, plain)
    want = fast.sums_by_block(returns, edges)[..., :2]
    _close(got, want)
    assert np.isfinite(got).all()


def test_block_edges_must_cut_the_window():
    market = _market(600)
    fam, space, X = _genomes("rsi_pullback", 2, 0)
    for edges in ([0, 100, 250], [10, 300, 500], [0, 300, 600]):
        with pytest.raises(ValueError, match="block edges"):
            fast.evaluate_arrays(market.arrays(0), fam, X, space.names, SETTINGS, market.freq, (100, 600),
                                 edges=np.array(edges), blocks=np.empty((2, 2, 2)))
    with pytest.raises(ValueError, match="block edges"):
        fast.sim_settings(init_cash=1.0, fees=0.0, slippage=0.0, freq="1h", edges=[0, 5, 3])


sums_arrays = st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(2, 20)).flatmap(lambda shape: hnp.arrays(
    np.float64, shape + (2,), elements=st.one_of(st.just(0.0), st.floats(2.0 ** -100, 1e3, width=32),
                                                 st.floats(-1e3, -(2.0 ** -100), width=32))))


@settings(max_examples=200, deadline=None)
@given(sums_arrays, st.data())
def test_blobs_give_back_the_float32_sums(sums, data):
    k, n_series, n_blocks, _ = sums.shape
    blobs = blocks.encode(sums)
    sums[..., 1] = np.abs(sums[..., 1])  # sums of squares
    blobs = blocks.encode(sums)
    got, ok = blocks.decode(blobs, n_series, n_blocks)
    assert ok.all()
    np.testing.assert_array_equal(got, blocks.rounded(sums))
    # sums to float32; sums of squares to 16 significant bits
    np.testing.assert_array_equal(got[..., 0], sums[..., 0].astype(np.float32))
    np.testing.assert_allclose(got[..., 1], sums[..., 1], rtol=2.0 ** -16, atol=0)
    np.testing.assert_array_equal(got == 0, sums == 0)
    traded = (sums != 0).any(axis=3).sum(axis=(1, 2))
    assert [len(b) for b in blobs] == (1 + n_series * ((n_blocks + 7) // 8) + 7 * traded).tolist()
    # blobs of another shape, or damaged, among good ones: those rows are refused, the others kept
    other = blocks.encode(np.zeros((1, n_series, n_blocks + 2 if n_blocks <= 18 else n_blocks - 2, 2)))[0]
    bad = data.draw(st.sampled_from([b"", other, blobs[0][:-1], blobs[0] + b"\0"]))
    got, ok = blocks.decode([bad, *blobs], n_series, n_blocks)
    assert not ok[0] and ok[1:].all() and np.isnan(got[0]).all()
    np.testing.assert_array_equal(got[1:], blocks.rounded(sums))
    _, ok = blocks.decode(blobs, n_series + 1, n_blocks)
    assert not ok.any()
    got, ok = blocks.decode([b""] * k, n_series, n_blocks)  # none stored (the vectorbt engine)
    assert not ok.any() and np.isnan(got).all()


def _twins(seed: int, n_sym: int = 1, n: int = 60, t: int = 960):
    """Returns of n strategies on n_sym symbols, each with a near-twin that differs on a few bars by a
    part in 1e9: the twins' Sharpe ratios agree to far more digits than float32 keeps."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0003, 0.01, (n, n_sym, t)) + rng.normal(0, 0.0005, (n, 1, 1))
    base[3, :, 100:500] = 0.0  # out of the market for blocks
    twin = base.copy()
    bars = rng.integers(0, t, (n, 3))
    for k in range(n):
        twin[k, :, bars[k]] *= 1 + rng.choice([-1, 1]) * 1e-9
    return np.concatenate([base, twin])


@pytest.mark.parametrize("seed,n_sym,reducer", [(0, 1, "mean"), (1, 1, "mean"), (2, 1, "mean"), (3, 1, "mean"),
                                                (4, 2, "mean"), (5, 3, "median"), (6, 2, "worst")])
def test_cscv_on_stored_sums_equals_cscv_on_exact_sums(seed, n_sym, reducer):
    exact = cscv.block_sums(_twins(seed, n_sym), 10)
    stored = exact.copy()
    stored[..., :2] = blocks.rounded(exact[..., :2])
    want = cscv.cscv(exact, reducer)
    asked = []

    def exact_of(rows):
        asked.extend(rows.tolist())
        return exact[rows]

    got = cscv.cscv(stored, reducer, exact=exact_of)
    np.testing.assert_array_equal(got.chosen, want.chosen)
    assert got.pbo == want.pbo
    assert got.degradation == pytest.approx(want.degradation, abs=1e-12)
    assert got.prob_loss == want.prob_loss
    np.testing.assert_allclose(got.is_sharpe, want.is_sharpe, rtol=1e-12)
    np.testing.assert_allclose(got.oos_sharpe, want.oos_sharpe, rtol=1e-12)
    assert 0 < got.exact_sums == len(set(asked)) < len(exact)  # a few phenotypes, not all
    # rounding alone chooses otherwise: what the exact sums are needed for
    plain = cscv.cscv(stored, reducer)
    assert (plain.chosen != want.chosen).any()
