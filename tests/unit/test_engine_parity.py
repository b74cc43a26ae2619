"""`evo.engine.simulate_signals` against vectorbt's `Portfolio.from_signals`, metric by metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evo.engine import simulate_signals
from evo.engine.vbt import portfolio_metrics
from evo.search.objectives import METRICS

RTOL, ATOL = 1e-9, 1e-12


def vbt_metrics(close, entries, exits, *, init_cash, fees, slippage, sl_stop=None, tp_stop=None, freq):
    import vectorbt as vbt

    n = entries.shape[1]

    def stop(v):
        if v is None:
            return np.nan
        return np.broadcast_to(np.asarray(v, dtype=float).reshape(-1), (n,)).reshape(1, n)

    pf = vbt.Portfolio.from_signals(
        close, entries, exits, init_cash=init_cash, fees=fees, slippage=slippage,
        sl_stop=stop(sl_stop), tp_stop=stop(tp_stop), freq=freq,
    )
    return portfolio_metrics(pf)


def assert_parity(ours: pd.DataFrame, ref: np.ndarray) -> None:
    assert list(ours.columns) == list(METRICS)
    got = ours.to_numpy()
    assert got.shape == ref.shape
    for j, m in enumerate(METRICS):
        a, b = got[:, j], ref[:, j]
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{m}: NaN positions differ")
        np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b), err_msg=f"{m}: +inf positions differ")
        np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b), err_msg=f"{m}: -inf positions differ")
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=m)


def random_walk(n, seed, freq="1h", vol=0.01, start="2021-01-01"):
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq=freq)
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0.0001, vol, n))), index=idx)


def random_signals(index, n_cols, p, seed):
    rng = np.random.default_rng(seed)
    e = pd.DataFrame(rng.random((len(index), n_cols)) < p, index=index)
    x = pd.DataFrame(rng.random((len(index), n_cols)) < p, index=index)
    return e, x


CASES = {
    "no costs": dict(fees=0.0, slippage=0.0),
    "fees": dict(fees=0.001, slippage=0.0),
    "fees and slippage": dict(fees=0.002, slippage=0.001),
    "stop-loss": dict(fees=0.001, slippage=0.0005, sl_stop=0.02),
    "take-profit": dict(fees=0.001, slippage=0.0005, tp_stop=0.03),
    "both stops per column": dict(fees=0.001, slippage=0.0005, sl_stop="per-column", tp_stop="per-column"),
}


@pytest.fixture(scope="module")
def hourly():
    close = random_walk(5000, seed=1)
    e, x = random_signals(close.index, 200, 0.02, seed=2)
    return close, e, x


@pytest.mark.parametrize("case", list(CASES))
def test_random_signals_hourly(hourly, case):
    close, e, x = hourly
    kw = dict(CASES[case])
    rng = np.random.default_rng(3)
    for k in ("sl_stop", "tp_stop"):
        if kw.get(k) == "per-column":
            v = rng.uniform(0.005, 0.08, e.shape[1])
            v[::7] = np.nan  # some strategies without that stop
            kw[k] = v
    ours = simulate_signals(close, e, x, init_cash=10_000, freq="1h", **kw)
    ref = vbt_metrics(close, e, x, init_cash=10_000, freq="1h", **kw)
    assert_parity(ours, ref)
    # the comparison covered trading strategies, stops that fire, wins and losses
    assert (ours["n_trades"] > 5).mean() > 0.9
    assert 0 < np.nanmean(ours["win_rate"]) < 1
    if "sl_stop" in kw or "tp_stop" in kw:
        no_stop = simulate_signals(close, e, x, init_cash=10_000, freq="1h", fees=kw["fees"], slippage=kw["slippage"])
        assert (no_stop["total_return"] != ours["total_return"]).mean() > 0.5


def test_index_follows_entries_columns(hourly):
    close, e, x = hourly
    e2 = e.iloc[:, :3].set_axis(["a", "b", "c"], axis=1)
    out = simulate_signals(close, e2, x.iloc[:, :3], init_cash=1000, fees=0.0, slippage=0.0, freq="1h")
    assert list(out.index) == ["a", "b", "c"]


def test_edge_cases_where_vectorbt_gives_nan_or_inf():
    close = random_walk(300, seed=4, freq="1D")
    n = close.size
    cols = {
        "never trades": (np.zeros(n, bool), np.zeros(n, bool)),
        "enters on the last bar": (np.eye(1, n, n - 1, dtype=bool)[0], np.zeros(n, bool)),
        "always in": (np.ones(n, bool), np.zeros(n, bool)),
        "entry and exit on every bar": (np.ones(n, bool), np.ones(n, bool)),
        "alternating": (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1),
        "one closed trade": (np.eye(1, n, 10, dtype=bool)[0], np.eye(1, n, 20, dtype=bool)[0]),
    }
    e = pd.DataFrame({k: v[0] for k, v in cols.items()}, index=close.index)
    x = pd.DataFrame({k: v[1] for k, v in cols.items()}, index=close.index)
    for kw in (dict(fees=0.0, slippage=0.0), dict(fees=0.01, slippage=0.01, sl_stop=0.05, tp_stop=0.05)):
        ours = simulate_signals(close, e, x, init_cash=100.0, freq="1D", **kw)
        assert_parity(ours, vbt_metrics(close, e, x, init_cash=100.0, freq="1D", **kw))
    # what those edge cases are, so the parity above is known to have covered them
    base = simulate_signals(close, e, x, init_cash=100.0, freq="1D", fees=0.0, slippage=0.0)
    assert np.isnan(base.loc["never trades", "win_rate"]) and np.isinf(base.loc["never trades", "sharpe_ratio"])
    assert base.loc["never trades", "total_return"] == 0.0
    assert base.loc["entry and exit on every bar", "n_trades"] == 0
    assert base.loc["always in", "exposure"] == 1.0
    assert base.loc["enters on the last bar", "n_trades"] == 1


def test_real_daily_prices_goog():
    bt = pytest.importorskip("backtesting")
    from pathlib import Path

    goog = pd.read_csv(Path(bt.__file__).parent / "test" / "GOOG.csv", index_col=0, parse_dates=True)
    close = goog["Close"].astype(float)
    e, x = random_signals(close.index, 150, 0.03, seed=5)
    kw = dict(fees=0.001, slippage=0.0005, sl_stop=np.random.default_rng(6).uniform(0.01, 0.1, 150), tp_stop=0.06)
    ours = simulate_signals(close, e, x, init_cash=10_000, freq="1D", **kw)
    assert_parity(ours, vbt_metrics(close, e, x, init_cash=10_000, freq="1D", **kw))
    assert (ours["n_trades"] > 10).all()


def test_intraday_many_bars():
    close = random_walk(30_000, seed=7, freq="5min", vol=0.002)
    e, x = random_signals(close.index, 40, 0.005, seed=8)
    kw = dict(fees=0.0005, slippage=0.0002, sl_stop=0.01, tp_stop=0.015)
    ours = simulate_signals(close, e, x, init_cash=50_000, freq="5min", **kw)
    assert_parity(ours, vbt_metrics(close, e, x, init_cash=50_000, freq="5min", **kw))
    # annualisation from the bar frequency: 5-minute bars, 365-day year
    daily = simulate_signals(close, e, x, init_cash=50_000, freq="1D", **kw)
    ratio = ours["sharpe_ratio"] / daily["sharpe_ratio"]
    np.testing.assert_allclose(ratio, np.sqrt(24 * 12), rtol=1e-12)


def test_bad_input_is_refused():
    close = random_walk(50, seed=9)
    e = np.zeros((50, 2), bool)
    with pytest.raises(ValueError, match="one row per bar"):
        simulate_signals(close, e[:40], e[:40], init_cash=1, fees=0, slippage=0, freq="1h")
    with pytest.raises(ValueError, match="finite and positive"):
        simulate_signals(close.where(close.index != close.index[3]), e, e, init_cash=1, fees=0, slippage=0, freq="1h")
    with pytest.raises(ValueError, match="sl_stop"):
        simulate_signals(close, e, e, init_cash=1, fees=0, slippage=0, sl_stop=-0.1, freq="1h")
    with pytest.raises(ValueError, match="fees"):
        simulate_signals(close, e, e, init_cash=1, fees=-0.1, slippage=0, freq="1h")
