"""Every family: fast signal kernel == vectorbt reference signals, and fast engine == vectorbt engine.

User families (`package.module:ClassName`) run the same two parity tests, and are refused at load
time when their kernel differs from their reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evo.config.errors import FamilyError

from evo import strategies
from evo.engine import indicators
from evo.config import DataConfig, EvaluationConfig, SyntheticData
from evo.market import FIELDS, build_market, load_market
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

    with pytest.raises(FamilyError) as info:
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
    with pytest.raises(FamilyError, match="BrokenSmaCross"):
        strategies.get(BROKEN_USER_FAMILY)


def test_config_refuses_a_broken_user_family():
    from evo.config import ConfigError, validate
    from evo.run.preflight import check

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

    with pytest.raises(FamilyError) as info:
        strategies.get(spec)
    msg = str(info.value)
    assert expected in msg and spec in msg and "\n" not in msg
    from evo.run.preflight import check

    with pytest.raises(ConfigError, match="strategy.family") as cinfo:
        check(validate({"strategy": {"family": spec}}))
    assert expected in str(cinfo.value) and "\n" not in str(cinfo.value)


def test_unknown_builtin_family_is_a_key_error():
    with pytest.raises(FamilyError, match="composite"):
        strategies.get("no_such_family")


# ---------------------------------------------------------------------------------------------
# the trading genes, OHLC stops and one portfolio across assets (issue 14), through evo.engine.evaluate


def real_market(symbols, n=None):
    """backtesting.py's CSVs side by side: the last n bars of each on one daily index (the files share
    no timestamps), as one market."""
    bt = pytest.importorskip("backtesting")
    frames = {s: pd.read_csv(Path(bt.__file__).parent / "test" / f"{s}.csv", index_col=0, parse_dates=True)
              for s in symbols}
    n = n or min(len(f) for f in frames.values())
    idx = pd.date_range("2015-01-01", periods=n, freq="1D")
    aligned = {}
    for s, f in frames.items():
        f = f.iloc[-n:].copy()
        f.columns = [c.lower() for c in f.columns]
        f.index = idx
        aligned[s] = f[list(FIELDS)].astype(float)
    return build_market(aligned, None, "backtesting.py CSVs")


#: short windows for the 3-symbol market (BTCUSD has 156 monthly bars)
SHORT = {"rsi_pullback": {"rsi_window": (5, 10), "fast_window": (3, 10), "slow_window": (12, 30), "vol_window": (5, 10)},
         "trend": {"fast_window": (3, 10), "slow_window": (12, 30), "atr_window": (5, 12)},
         "composite": {"rsi_window": (5, 10), "fast_window": (3, 10), "slow_window": (12, 30), "bb_window": (10, 20),
                       "dc_entry_window": (10, 20), "dc_exit_window": (5, 15), "vol_window": (5, 10)}}

PORTFOLIO_MARKETS = {
    "GOOG+EURUSD daily": lambda: real_market(["GOOG", "EURUSD"]),
    "GOOG+EURUSD+BTCUSD, 156 bars": lambda: real_market(["GOOG", "EURUSD", "BTCUSD"]),
    "synthetic, four symbols": lambda: load_market(
        DataConfig(synthetic=SyntheticData(n_bars=3000, seed=23, symbols=["A", "B", "C", "D"]))
    ),
}


def trading_population(fam, n, seed, bounds=None):
    """Random genomes, every direction, size and trailing value among them."""
    space = fam.space(bounds)
    rng = np.random.default_rng(seed)
    X = space.xl + rng.random((n, space.n_var)) * (space.xu - space.xl)
    if "direction" in space.names:
        X[:, space.index("direction")] = np.arange(n) % 3
    if "sl_trail" in space.names:
        X[:, space.index("sl_trail")] = (np.arange(n) // 3) % 2
    return space, space.decode(space.repair(X))


def vbt_trading_kwargs(p: dict, init_cash: float, n_assets: int = 0) -> dict:
    """vectorbt's from_signals arguments for one genome's trading genes, written from the documentation
    (README, Family.sim_params), not from the code under test."""
    direction = ["longonly", "shortonly", "both"][p.get("direction", 0)]
    kw = dict(direction=direction, sl_trail=bool(p.get("sl_trail", 0)), sl_stop=p["sl_stop"], tp_stop=p["tp_stop"])
    f = p.get("size")
    if n_assets:  # equal allocation by value
        kw.update(size=init_cash / n_assets * (1.0 if f is None else f), size_type="value")
    elif f is not None:
        kw.update(size=f * init_cash, size_type="value") if direction == "both" else kw.update(size=f,
                                                                                              size_type="percent")
    return kw


def assert_same(ours, ref):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("ohlc_stops", [True, False])
@pytest.mark.parametrize("name", strategies.names())
def test_trading_genes_fast_equal_vectorbt_with_a_window(name, ohlc_stops):
    """Every direction, size and trailing switch the families evolve, both engines, on GOOG, in sample
    and on a later window; the per-asset fingerprints agree too."""
    market = goog_market()
    fam = strategies.get(name)
    assert set(fam.trading_genes) == {"direction", "size", "sl_trail"}
    _, params = trading_population(fam, 60, seed=4)
    settings = dict(init_cash=10_000.0, fees=0.001, slippage=0.0005, ohlc_stops=ohlc_stops)
    for window in (None, (900, market.n_bars)):
        fast = evaluate(market, fam, params, EvaluationConfig(engine="fast", **settings), window)
        ref = evaluate(market, fam, params, EvaluationConfig(engine="vectorbt", **settings), window)
        assert_same(fast.per_asset, ref.per_asset)
        np.testing.assert_array_equal(fast.asset_fingerprints, ref.asset_fingerprints)
        np.testing.assert_array_equal(fast.fingerprints, ref.fingerprints)
        n_trades = fast.metrics[:, 4]
        for d in range(3):  # each direction traded
            assert (n_trades[[p["direction"] == d for p in params]] > 0).mean() > 0.5
    # the genes change the trading: the same signal genes traded long only, all in, give other metrics
    plain = strategies.get(name, trading=())
    plain_params = [{k: v for k, v in p.items() if k not in ("direction", "size", "sl_trail")} for p in params]
    base = evaluate(market, plain, plain_params, EvaluationConfig(engine="fast", **settings))
    changed = (base.metrics[:, 0] != fast.metrics[:, 0]) | (base.fingerprints != fast.fingerprints)
    assert changed.mean() > 0.5


def test_user_family_trading_genes_are_declared_and_refused_otherwise():
    """SmaCross declares direction only: it evolves it (parity with vectorbt) and refuses the others."""
    fam = strategies.get(USER_FAMILY)
    assert fam.trading_genes == ("direction",)
    market = goog_market()
    _, params = trading_population(fam, 30, seed=6)
    fast = evaluate(market, fam, params, EvaluationConfig(engine="fast"))
    ref = evaluate(market, fam, params, EvaluationConfig(engine="vectorbt"))
    assert_same(fast.metrics, ref.metrics)
    np.testing.assert_array_equal(fast.fingerprints, ref.fingerprints)
    with pytest.raises(ValueError, match=r"does not support the trading gene\(s\) \['size'\]"):
        strategies.get(USER_FAMILY, trading=["direction", "size"])
    from evo.config import ConfigError, validate
    from evo.run.preflight import check

    with pytest.raises(ConfigError, match="field 'strategy.trading'.*sl_trail"):
        check(validate({"strategy": {"family": USER_FAMILY, "trading": ["sl_trail"]}}))


def vbt_grouped(market, fam, p, settings, window):
    """vectorbt's grouped portfolio of one genome over every symbol: from_signals(group_by=True,
    cash_sharing=True), its signals from reference_signals, its sizing as documented."""
    import vectorbt as vbt

    start, stop = window or (0, market.n_bars)
    frames = [market.frame(a).iloc[:stop] for a in range(market.n_assets)]
    sig = [fam.reference_signals(f, p) for f in frames]
    cols = list(market.symbols)
    frame = lambda series: pd.DataFrame({s: x.iloc[start:].to_numpy() for s, x in zip(cols, series)},  # noqa: E731
                                        index=frames[0].index[start:])
    ohlc = {f: frame([fr[f] for fr in frames]) for f in ("open", "high", "low")} if settings.ohlc_stops else {}
    return vbt.Portfolio.from_signals(
        frame([fr["close"] for fr in frames]), frame([e for e, _ in sig]), frame([x for _, x in sig]),
        init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage, freq=market.freq,
        group_by=True, cash_sharing=True, **ohlc, **vbt_trading_kwargs(p, settings.init_cash, market.n_assets),
    )


@pytest.mark.parametrize("name", ["rsi_pullback", "trend", "composite"])
@pytest.mark.parametrize("market_name", [pytest.param(m, marks=pytest.mark.slow) if "synthetic" in m else m
                                         for m in PORTFOLIO_MARKETS])
def test_portfolio_reducer_equals_vectorbts_grouped_portfolio(market_name, name):
    """reducer 'portfolio' through evo.engine.evaluate, both engines, against vectorbt's own grouped
    portfolio of each genome (one from_signals per genome)."""
    from evo.engine.vbt import fingerprints, portfolio_metrics

    market = PORTFOLIO_MARKETS[market_name]()
    fam = strategies.get(name)
    short = market.n_bars < 500
    _, params = trading_population(fam, 12, seed=8, bounds=SHORT[name] if short else None)
    window = None if short else (market.n_bars // 3, market.n_bars)
    settings = dict(init_cash=10_000.0, fees=0.001, slippage=0.0005, reducer="portfolio")
    fast = evaluate(market, fam, params, EvaluationConfig(engine="fast", **settings), window)
    vec = evaluate(market, fam, params, EvaluationConfig(engine="vectorbt", **settings), window)
    pfs = [vbt_grouped(market, fam, p, EvaluationConfig(**settings), window) for p in params]
    ref = np.vstack([portfolio_metrics(pf) for pf in pfs])
    assert fast.per_asset.shape == (1, len(params), ref.shape[1])
    assert_same(fast.metrics, ref)
    assert_same(vec.metrics, ref)
    ref_fps = np.column_stack([fingerprints(pf, market.n_assets) for pf in pfs])
    np.testing.assert_array_equal(fast.asset_fingerprints, ref_fps)
    np.testing.assert_array_equal(vec.asset_fingerprints, ref_fps)
    np.testing.assert_array_equal(fast.fingerprints, vec.fingerprints)
    assert (fast.metrics[:, 4] > 0).mean() > 0.5
    # every symbol traded in some portfolio, and positions in several symbols shared the cash at once
    traded = np.array([[(pf.orders.values["col"] == a).any() for a in range(market.n_assets)] for pf in pfs])
    assert traded.any(axis=0).all()
    assert any(((pf.assets().to_numpy() != 0).sum(axis=1) >= 2).any() for pf in pfs)


def test_the_returns_behind_the_verdict_are_vectorbts():
    """fast.returns_of / portfolio_returns_of (what the verdict and walk-forward read) follow the same
    trading genes and OHLC stops: equal to vectorbt's Portfolio.returns(), one symbol and grouped."""
    from evo.engine import fast

    market = PORTFOLIO_MARKETS["synthetic, four symbols"]()
    fam = strategies.get("composite")
    space, params = trading_population(fam, 6, seed=12)
    X = space.encode(params)
    settings = EvaluationConfig()
    window = (1000, market.n_bars)
    traded = 0
    for x, p in zip(X, params):
        grouped = fast.portfolio_returns_of([market.arrays(a) for a in range(market.n_assets)], fam, x, space.names,
                                            settings, market.freq, window)
        ref = vbt_grouped(market, fam, p, EvaluationConfig(reducer="portfolio"), window).returns().to_numpy()
        np.testing.assert_allclose(grouped, ref, rtol=1e-9, atol=1e-12)
        one = fast.returns_of(market.arrays(1), fam, x, space.names, settings, market.freq, window)
        import vectorbt as vbt

        frame = market.frame(1)
        e, xs = fam.reference_signals(frame, p)
        w = slice(*window)
        pf = vbt.Portfolio.from_signals(frame["close"].iloc[w], e.iloc[w], xs.iloc[w], init_cash=settings.init_cash,
                                        fees=settings.fees, slippage=settings.slippage, freq=market.freq,
                                        open=frame["open"].iloc[w], high=frame["high"].iloc[w],
                                        low=frame["low"].iloc[w], **vbt_trading_kwargs(p, settings.init_cash))
        np.testing.assert_allclose(one, pf.returns().to_numpy(), rtol=1e-9, atol=1e-12)
        traded += (grouped != 0).sum() > 50 and (one != 0).sum() > 50
    assert traded >= 3
