"""Every family: fast signal kernel == vectorbt reference signals, and fast engine == vectorbt engine.

User families (`package.module:ClassName`) run the same two parity tests, and are refused at load
time when their kernel differs from their reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evo import indicators, strategies
from evo.config import DataConfig, EvaluationConfig, SyntheticData
from evo.data import FIELDS, build_market, load_market
from evo.engine import evaluate

#: a user family loaded by import path (tests/user_families.py), verified when it is first loaded
USER_FAMILY = "tests.user_families:SmaCross"
BROKEN_USER_FAMILY = "tests.user_families:BrokenSmaCross"


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


@pytest.mark.parametrize("name", strategies.names() + [USER_FAMILY])
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


@pytest.mark.parametrize("name", strategies.names() + [USER_FAMILY])
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

    monkeypatch.setattr(type(fam), "fused", False)  # the declared capability decides the path
    monkeypatch.setattr(fast, "SIGNAL_BLOCK_BYTES", 2 * market.n_bars * 7)  # blocks of 7 strategies
    generic = fast.evaluate_arrays(market.arrays(0), fam, X, space.names, settings, market.freq)
    np.testing.assert_array_equal(generic, fused)


# ---------------------------------------------------------------------------------------------
# user families: the parity check at load time


def test_user_family_is_verified_once_and_not_listed(monkeypatch):
    fam = strategies.get(USER_FAMILY)
    assert fam.name == "sma_cross" and USER_FAMILY not in strategies.names()

    def fail(*a, **k):
        raise AssertionError("the parity check ran again")

    monkeypatch.setattr(strategies, "check_parity", fail)
    assert type(strategies.get(USER_FAMILY)) is type(fam)  # cached per process


def test_broken_user_family_is_refused_naming_it_and_the_differing_bar():
    import ast
    import re

    with pytest.raises(ImportError) as info:
        strategies.get(BROKEN_USER_FAMILY)
    msg = str(info.value)
    assert BROKEN_USER_FAMILY in msg and "\n" not in msg
    m = re.search(r"genome (\{.*?\}) at bar (\d+) \(.*?\) in (entries|exits): fast (\w+), reference (\w+)", msg)
    assert m, msg
    # the reported bar really is the first difference of that genome's fast and reference signals
    from tests.user_families import BrokenSmaCross

    fam = BrokenSmaCross()
    space = fam.space()
    params = ast.literal_eval(m.group(1))
    X = space.encode([params])
    frame = strategies.check_frame(space)
    arrays = {f: np.ascontiguousarray(frame[f].to_numpy()) for f in FIELDS}
    cache = indicators.build(fam.indicators, arrays, X, space.names)
    e = np.zeros((1, len(frame)), bool)
    x = np.zeros_like(e)
    fam.fast_signals(cache, X, space.names, arrays, e, x)
    E, Xr = fam.reference_signals(frame, params)
    got, ref = (e[0], E.to_numpy()) if m.group(3) == "entries" else (x[0], Xr.to_numpy())
    bar = int(m.group(2))
    assert np.flatnonzero(got != ref)[0] == bar
    assert (str(got[bar]), str(ref[bar])) == (m.group(4), m.group(5))
    # not cached: asking again checks (and refuses) again
    with pytest.raises(ImportError, match="BrokenSmaCross"):
        strategies.get(BROKEN_USER_FAMILY)


def test_config_refuses_a_broken_user_family():
    from evo.config import ConfigError, validate
    from evo.preflight import check

    with pytest.raises(ConfigError, match="strategy.family") as info:
        check(validate({"strategy": {"family": BROKEN_USER_FAMILY}}))
    assert "BrokenSmaCross" in str(info.value) and "bar" in str(info.value)
    # and accepts the correct one, with bounds checked against its genes
    cfg = validate({"strategy": {"family": USER_FAMILY, "bounds": {"slow_window": [30, 60]}}})
    assert check(cfg).names and cfg.strategy.family == USER_FAMILY
    with pytest.raises(ConfigError, match="strategy.bounds"):
        check(validate({"strategy": {"family": USER_FAMILY, "bounds": {"rsi_window": [5, 10]}}}))


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("tests.no_such_module:Family", "cannot import module 'tests.no_such_module'"),
        ("no_such_package.mod:Family", "cannot import module 'no_such_package.mod'"),
        ("tests.user_families:NoSuchClass", "has no attribute 'NoSuchClass'"),
        ("tests.user_families:NotAFamily", "not a subclass of evo.strategies.Family"),
        ("tests.user_families:NoKernelSmaCross", "no fast_signals kernel"),
        ("tests.user_families:", "expected 'package.module:ClassName'"),
        (":SmaCross", "expected 'package.module:ClassName'"),
    ],
)
def test_unloadable_user_family_gives_a_one_line_error(spec, expected):
    from evo.config import ConfigError, validate

    with pytest.raises(ImportError) as info:
        strategies.get(spec)
    msg = str(info.value)
    assert expected in msg and spec in msg and "\n" not in msg
    from evo.preflight import check

    with pytest.raises(ConfigError, match="strategy.family") as cinfo:
        check(validate({"strategy": {"family": spec}}))
    assert expected in str(cinfo.value) and "\n" not in str(cinfo.value)


def test_unknown_builtin_family_is_a_key_error():
    with pytest.raises(KeyError, match="composite"):
        strategies.get("no_such_family")
