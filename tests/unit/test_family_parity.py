"""Every family: fast signal kernel == vectorbt reference signals, and fast engine == vectorbt engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evo import indicators, strategies
from evo.config import DataConfig, EvaluationConfig, SyntheticData
from evo.data import FIELDS, build_market, load_market
from evo.engine import evaluate


def random_params(family, n, seed):
    space = family.space()
    rng = np.random.default_rng(seed)
    return space, space.decode(space.repair(space.xl + rng.random((n, space.n_var)) * (space.xu - space.xl)))


def goog_market():
    bt = pytest.importorskip("backtesting")
    df = pd.read_csv(Path(bt.__file__).parent / "test" / "GOOG.csv", index_col=0, parse_dates=True)
    df.columns = [c.lower() for c in df.columns]
    return build_market({"GOOG": df[list(FIELDS)].astype(float)}, None, "GOOG.csv")


MARKETS = {
    "synthetic hourly, two symbols": lambda: load_market(
        DataConfig(synthetic=SyntheticData(n_bars=4000, seed=21, symbols=["A", "B"]))
    ),
    "GOOG daily": goog_market,
}


@pytest.mark.parametrize("name", strategies.names())
@pytest.mark.parametrize("market_name", list(MARKETS))
def test_fast_signals_equal_reference_signals(name, market_name):
    market = MARKETS[market_name]()
    fam = strategies.get(name)
    space, params = random_params(fam, 60, seed=1)
    X = space.encode(params)
    for a in range(market.n_assets):
        arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(a).items()}
        cache = indicators.build(fam.indicators, arrays, X, space.names)
        e = np.empty((len(X), market.n_bars), bool)
        x = np.empty_like(e)
        fam.fast_signals(cache, X, space.names, arrays, e, x)
        E, Xr = fam.reference_signals(market.frame(a), params)
        np.testing.assert_array_equal(e, E.to_numpy().T)
        np.testing.assert_array_equal(x, Xr.to_numpy().T)
        assert e.sum() > 0 and x.sum() > 0


@pytest.mark.parametrize("name", strategies.names())
@pytest.mark.parametrize("market_name", list(MARKETS))
def test_fast_engine_equals_vectorbt_engine(name, market_name):
    market = MARKETS[market_name]()
    fam = strategies.get(name)
    _, params = random_params(fam, 80, seed=2)
    settings = dict(init_cash=10_000.0, fees=0.001, slippage=0.0005)
    fast = evaluate(market, fam, params, EvaluationConfig(engine="fast", **settings))
    ref = evaluate(market, fam, params, EvaluationConfig(engine="vectorbt", **settings))
    np.testing.assert_array_equal(np.isnan(fast.per_asset), np.isnan(ref.per_asset))
    np.testing.assert_allclose(fast.per_asset, ref.per_asset, rtol=1e-9, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(fast.metrics, ref.metrics, rtol=1e-9, atol=1e-12, equal_nan=True)
    n_trades = fast.per_asset[..., 4]
    assert (n_trades > 0).mean() > 0.5  # the strategies traded: the comparison was not of empty books


@pytest.mark.parametrize("name", strategies.names())
def test_generic_block_path_equals_fused_path(name, monkeypatch):
    """Families without a fused kernel go through fast_signals + the simulation kernel, block by block."""
    from evo.engine import fast

    market = MARKETS["synthetic hourly, two symbols"]()
    fam = strategies.get(name)
    space, params = random_params(fam, 50, seed=3)
    X = space.encode(params)
    settings = EvaluationConfig(engine="fast")
    fused = fast.evaluate_arrays(market.arrays(0), fam, X, space.names, settings, market.freq)

    def no_fused(*a, **k):
        raise NotImplementedError

    monkeypatch.setattr(type(fam), "fast_metrics", no_fused)
    monkeypatch.setattr(fast, "SIGNAL_BLOCK_BYTES", 2 * market.n_bars * 7)  # blocks of 7 strategies
    generic = fast.evaluate_arrays(market.arrays(0), fam, X, space.names, settings, market.freq)
    np.testing.assert_array_equal(generic, fused)
