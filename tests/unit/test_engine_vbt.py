"""The vectorbt engine: a chunk of strategies as columns equals one vectorbt portfolio per strategy."""

from __future__ import annotations

import numpy as np
import pytest

from evo import strategies
from evo.config import DataConfig, EvaluationConfig, SyntheticData
from evo.market import load_market
from evo.engine import evaluate, reduce_assets
from evo.search.objectives import METRICS
from tests.unit.test_metric_edges import VECTORBT


@pytest.fixture(scope="module")
def market():
    return load_market(DataConfig(synthetic=SyntheticData(n_bars=1500, seed=9, symbols=["A", "B"])))


def trading_kwargs(p: dict, init_cash: float) -> dict:
    """from_signals' arguments for one genome's trading genes, as the README and Family.sim_params
    document them: direction 0/1/2 long only/short only/both; size f of the available cash (percent),
    or of the initial cash (value) with both; sl_trail 0/1. Absent genes: long only, all in."""
    direction = ["longonly", "shortonly", "both"][p.get("direction", 0)]
    kw = dict(direction=direction, sl_trail=bool(p.get("sl_trail", 0)))
    if "size" in p:
        kw.update(size=p["size"] * init_cash, size_type="value") if direction == "both" else kw.update(
            size=p["size"], size_type="percent")
    return kw


def _one_by_one(market, fam, params, settings, asset):
    """Each strategy alone, with scalar options: no column batching or broadcasting involved."""
    import vectorbt as vbt

    ohlcv = market.frame(asset)
    ohlc = {f: ohlcv[f] for f in ("open", "high", "low")} if settings.ohlc_stops else {}
    rows = []
    for p in params:
        e, x = fam.reference_signals(ohlcv, p)
        pf = vbt.Portfolio.from_signals(
            ohlcv["close"], e, x,
            init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage,
            sl_stop=p["sl_stop"], tp_stop=p["tp_stop"], freq=market.freq, **ohlc,
            **trading_kwargs(p, settings.init_cash),
        )
        rows.append([float(f(pf)) for f in VECTORBT.values()])
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("trading, ohlc_stops", [((), False), (None, True), (("direction",), True)])
def test_chunk_equals_single_strategy_portfolios(market, trading, ohlc_stops):
    fam = strategies.get("rsi_pullback", trading)
    space = fam.space({"slow_window": (20, 80)})
    rng = np.random.default_rng(5)
    params = space.decode(space.repair(space.xl + rng.random((12, space.n_var)) * (space.xu - space.xl)))
    settings = EvaluationConfig(fees=0.002, slippage=0.001, ohlc_stops=ohlc_stops)
    ev = evaluate(market, fam, params, settings)
    assert ev.per_asset.shape == (2, 12, len(METRICS))
    for a in range(2):
        ref = _one_by_one(market, fam, params, settings, a)
        np.testing.assert_allclose(ev.per_asset[a], ref, rtol=1e-12, atol=0, equal_nan=True)
    np.testing.assert_allclose(ev.metrics, ev.per_asset.mean(axis=0), rtol=0, atol=0, equal_nan=True)
    # strategies differ, trade, and hit their stops differently: the check compared something
    assert len({round(v, 12) for v in ev.metrics[:, 0]}) > 6
    assert (ev.metrics[:, METRICS.index("n_trades")] > 0).sum() >= 6


def test_reduce_assets_median_and_single_asset():
    pa = np.array([[[1.0, 5.0]], [[3.0, -1.0]], [[2.0, 0.0]]])
    np.testing.assert_array_equal(reduce_assets(pa, "median"), [[2.0, 0.0]])
    np.testing.assert_array_equal(reduce_assets(pa, "mean"), [[2.0, 4.0 / 3.0]])
    np.testing.assert_array_equal(reduce_assets(pa[:1], "median"), [[1.0, 5.0]])
    with pytest.raises(ValueError):
        reduce_assets(pa, "nope")


def test_empty_chunk(market):
    ev = evaluate(market, strategies.get("rsi_pullback"), [], EvaluationConfig())
    assert ev.metrics.shape == (0, len(METRICS))


def test_worst_case_reducer_takes_the_worst_asset_per_metric():
    from evo.search.objectives import METRICS

    rng = np.random.default_rng(0)
    pa = rng.normal(size=(3, 4, len(METRICS)))
    got = reduce_assets(pa, "worst", {"sharpe_ratio": "max", "exposure": "min"})
    j = METRICS.index
    np.testing.assert_array_equal(got[:, j("sharpe_ratio")], pa[:, :, j("sharpe_ratio")].min(axis=0))
    np.testing.assert_array_equal(got[:, j("exposure")], pa[:, :, j("exposure")].max(axis=0))  # minimised: worst is max
    np.testing.assert_array_equal(got[:, j("max_drawdown")], pa[:, :, j("max_drawdown")].min(axis=0))  # deepest
    pa[1, 2, j("sharpe_ratio")] = np.nan
    assert np.isnan(reduce_assets(pa, "worst")[2, j("sharpe_ratio")])  # undefined on one asset: undefined
