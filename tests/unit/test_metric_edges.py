"""The returns, trade and drawdown metrics in the situations where their definitions branch (no trade, one
open trade, only losses, only wins, breakeven trades, a drawdown that never recovers), on real prices,
against vectorbt: the fast engine and the vectorbt engine, one asset and one shared-cash portfolio.

Each metric is computed from vectorbt's portfolio by the definitions written below, independently of the
metric table (whose reference lambdas the vectorbt engine uses), and each case asserts, on vectorbt's own
records, that the situation it is named after happened.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evo.config.metrics import METRICS
from evo.engine import simulate_portfolio, simulate_signals
from evo.engine import vbt as vbt_engine
from tests.unit.test_engine_parity import assert_parity
from tests.unit.test_engine_signals_parity import aligned, ohlcv, vbt_portfolio

#: the metrics as vectorbt defines them, spelled out here (not taken from the metric table)
VECTORBT = {
    "total_return": lambda pf: pf.total_return(),
    "sharpe_ratio": lambda pf: pf.sharpe_ratio(),
    "sortino_ratio": lambda pf: pf.sortino_ratio(),
    "max_drawdown": lambda pf: pf.max_drawdown(),
    "n_trades": lambda pf: pf.trades.count(),
    "win_rate": lambda pf: pf.trades.win_rate(),
    "exposure": lambda pf: pf.position_mask().mean(),
    "annualized_return": lambda pf: pf.annualized_return(),
    "annualized_volatility": lambda pf: pf.annualized_volatility(),
    "calmar_ratio": lambda pf: pf.calmar_ratio(),
    "omega_ratio": lambda pf: pf.omega_ratio(),
    "downside_risk": lambda pf: pf.downside_risk(),
    "profit_factor": lambda pf: pf.trades.profit_factor(),
    "expectancy": lambda pf: pf.trades.expectancy(),
    "sqn": lambda pf: pf.trades.sqn(),
    "best_trade": lambda pf: pf.trades.returns.max(),
    "worst_trade": lambda pf: pf.trades.returns.min(),
    "max_drawdown_duration": lambda pf: pf.drawdowns.max_duration() / pd.Timedelta(pf.wrapper.freq),  # in bars
    "total_fees_paid": lambda pf: pf.orders.fees.sum(),
}
SYMBOLS = [("GOOG", "1D"), ("EURUSD", "1h"), ("BTCUSD", "30D")]
CASH = 10_000.0


def test_every_metric_of_the_table_is_defined_here():
    assert list(VECTORBT) == list(METRICS)


def reference(pf) -> np.ndarray:
    return np.column_stack([np.asarray(f(pf), dtype=np.float64).reshape(-1) for f in VECTORBT.values()])


def trades(pf, col=None) -> pd.DataFrame:
    t = pd.DataFrame(pf.trades.values)
    return t if col is None else t[t.col == col]


def round_trips(close: np.ndarray, want, n: int, hold: int, first: int = 5) -> list[tuple[int, int]]:
    """Up to n non-overlapping (entry bar, exit bar) pairs, hold bars apart, whose closes satisfy want."""
    out: list[tuple[int, int]] = []
    i = first
    while i + hold < len(close) and len(out) < n:
        if want(close[i], close[i + hold]):
            out.append((i, i + hold))
            i += hold + 1
        else:
            i += 1
    return out


def signals(n_bars: int, columns: dict[str, list[tuple[int, int | None]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Entries and exits of named columns, from (entry bar, exit bar or None) pairs."""
    e = pd.DataFrame(False, index=range(n_bars), columns=list(columns))
    x = e.copy()
    for name, pairs in columns.items():
        for i, j in pairs:
            e.iloc[i, e.columns.get_loc(name)] = True
            if j is not None:
                x.iloc[j, x.columns.get_loc(name)] = True
    return e, x


def edge_columns(close: np.ndarray, short: bool) -> dict[str, list]:
    """The named situations on these prices (long, or short: a loss is a rise). With costs (fees 0.1 %,
    slippage 0.05 %) a round trip must move the price 0.4 % to win."""
    rise = (lambda a, b: b > a * 1.004)
    fall = (lambda a, b: b < a * 0.996)
    win, lose = (fall, rise) if short else (rise, fall)
    hold = 5
    n = len(close)
    return {
        "no trade": [],
        "one open trade": [(n // 2, None)],
        "only losses": round_trips(close, lose, 6, hold),
        "only wins": round_trips(close, win, 6, hold),
        "one win, then a loss": round_trips(close, win, 1, hold) + round_trips(close, lose, 1, hold, first=n // 2),
        "losses, then one open": round_trips(close, lose, 3, hold)[:3] + [(n - 10, None)],
    }


def assert_situations(pf, names: list[str], short: bool) -> None:
    """What each column is named after happened in vectorbt's records."""
    t = pd.DataFrame(pf.trades.values)
    dd = pd.DataFrame(pf.drawdowns.values)
    for col, name in enumerate(names):
        tc = t[t.col == col]
        if name == "no trade":
            assert len(tc) == 0 and pf.orders.count().iloc[col] == 0
        elif name == "one open trade":
            assert len(tc) == 1 and (tc.status == 0).all()  # TradeStatus.Open
        elif name == "only losses":
            # (a short losing more than the cash cannot be covered in full: its rest stays open)
            assert len(tc) >= 3 and (tc.pnl < 0).all()
            # never back to the initial cash: the drawdown from the first bar is still active at the end
            dc = dd[dd.col == col]
            assert (dc.status == 0).any()  # DrawdownStatus.Active
        elif name == "only wins":
            assert len(tc) >= 3 and (tc.pnl > 0).all()
        elif name == "one win, then a loss":
            assert list(np.sign(tc.pnl)) == [1, -1]
        elif name == "losses, then one open":
            assert (tc.pnl.iloc[:-1] < 0).all() and tc.status.iloc[-1] == 0
        assert (tc.direction == (1 if short else 0)).all()  # TradeDirection


@pytest.mark.parametrize("short", [False, True], ids=["long", "short"])
@pytest.mark.parametrize("symbol, freq", SYMBOLS)
def test_named_situations_on_one_asset(symbol, freq, short):
    df = ohlcv(symbol)
    close = df["Close"]
    columns = edge_columns(close.to_numpy(), short)
    e, x = signals(len(df), columns)
    e.index = x.index = df.index
    kw = dict(init_cash=CASH, fees=0.001, slippage=0.0005, freq=freq, direction="shortonly" if short else "longonly")
    pf = vbt_portfolio(close, e, x, **kw)
    assert_situations(pf, list(columns), short)
    ref = reference(pf)
    assert_parity(simulate_signals(close, e, x, **kw), ref)
    # the vectorbt engine: its metrics come from the metric table's definitions
    ours = vbt_engine.simulate(close, e.to_numpy(), x.to_numpy(), init_cash=CASH, fees=0.001, slippage=0.0005,
                               freq=freq, direction="shortonly" if short else "longonly")
    assert_parity(pd.DataFrame(ours, columns=list(METRICS)), ref)
    # the branches were taken: NaN, inf and zero where the definitions say
    got = pd.DataFrame(ref, index=list(columns), columns=list(METRICS))
    assert got.loc["no trade", ["profit_factor", "expectancy", "sqn", "best_trade", "worst_trade",
                                "max_drawdown_duration", "calmar_ratio"]].isna().all()
    assert got.loc["no trade", "total_fees_paid"] == 0 and np.isposinf(got.loc["no trade", "omega_ratio"])
    assert np.isnan(got.loc["one open trade", "sqn"])  # one trade: no standard deviation
    assert got.loc["one open trade", "best_trade"] == got.loc["one open trade", "worst_trade"]
    assert got.loc["only losses", "profit_factor"] == 0 and got.loc["only losses", "best_trade"] < 0
    assert np.isposinf(got.loc["only wins", "profit_factor"]) and got.loc["only wins", "worst_trade"] > 0
    assert got.loc["only losses", "max_drawdown_duration"] > 0


@pytest.mark.parametrize("symbol, freq", [("EURUSD", "1h"), ("GOOG", "1D")])
def test_breakeven_trades_count_but_neither_win_nor_lose(symbol, freq):
    """Without costs, a round trip between two equal closes has a P&L of exactly 0: vectorbt counts it in
    the trades (and the expectancy's weights) but neither as a win nor as a loss."""
    df = ohlcv(symbol)
    close = df["Close"].to_numpy()
    flat: list[tuple[int, int]] = []
    for i in np.flatnonzero(np.diff(close) == 0):
        if i >= 1 and len(flat) < 3 and (not flat or i > flat[-1][1]):
            flat.append((int(i), int(i) + 1))
    assert flat, "no two equal consecutive closes"
    last = flat[-1][1]
    win = round_trips(close, lambda a, b: b > a, 1, 2, first=last + 1)
    lose = round_trips(close, lambda a, b: b < a, 1, 2, first=win[0][1] + 1)
    columns = {"only breakeven": flat, "breakeven, a win and a loss": flat + win + lose}
    e, x = signals(len(df), columns)
    e.index = x.index = df.index
    kw = dict(init_cash=CASH, fees=0.0, slippage=0.0, freq=freq)
    pf = vbt_portfolio(df["Close"], e, x, **kw)
    t = trades(pf)
    assert (t[t.col == 0].pnl == 0).all() and len(t[t.col == 0]) == len(flat)
    assert sorted(np.sign(t[t.col == 1].pnl)) == sorted([0] * len(flat) + [1, -1])
    ref = reference(pf)
    assert np.isnan(ref[0, METRICS.index("profit_factor")])  # 0 / 0
    assert ref[0, METRICS.index("expectancy")] == 0
    assert_parity(simulate_signals(df["Close"], e, x, **kw), ref)


def test_named_situations_in_one_shared_cash_portfolio():
    """simulate_portfolio and the vectorbt engine's grouped portfolio, one strategy per situation, each
    trading GOOG, EURUSD and BTCUSD side by side: the metrics of the group (its value, all its trades)."""
    fr = aligned(["GOOG", "EURUSD", "BTCUSD"])
    close = fr["Close"]
    n, n_assets = close.shape
    per_symbol = [edge_columns(close[symbol].to_numpy(), short=False) for symbol in close.columns]
    cases = {
        "no trade": [[], [], []],
        "one open trade, two assets idle": [[], [(n // 2, None)], []],
        "only losses": [one["only losses"][:3] for one in per_symbol],
        "only wins": [one["only wins"][:3] for one in per_symbol],
        "open trades in every asset": [[(10, None)], [(20, None)], [(30, None)]],
    }
    e = np.zeros((len(cases), n, n_assets), bool)
    x = np.zeros_like(e)
    for s, per_asset in enumerate(cases.values()):
        for a, pairs in enumerate(per_asset):
            for i, j in pairs:
                e[s, i, a] = True
                if j is not None:
                    x[s, j, a] = True
    kw = dict(init_cash=CASH, fees=0.001, slippage=0.0005, freq="1D")
    ours = simulate_portfolio(close, e, x, **kw)
    refs = []
    for s, name in enumerate(cases):
        es = pd.DataFrame(e[s], index=close.index, columns=close.columns)
        xs = pd.DataFrame(x[s], index=close.index, columns=close.columns)
        pf = vbt_portfolio(close, es, xs, size=CASH / n_assets, size_type="value", group_by=True, cash_sharing=True,
                           **kw)
        t = trades(pf)
        if name == "no trade":
            assert len(t) == 0
        elif name.startswith("one open trade"):
            assert len(t) == 1 and t.status.iloc[0] == 0 and t.col.iloc[0] == 1
        elif name == "only losses":
            assert len(t) >= 6 and (t.pnl < 0).all() and t.col.nunique() == n_assets
        elif name == "only wins":
            assert len(t) >= 6 and (t.pnl > 0).all() and t.col.nunique() == n_assets
        else:
            assert len(t) == n_assets and (t.status == 0).all()
        refs.append(reference(pf))
        vbt_ours = vbt_engine.portfolio_metrics(vbt_engine.portfolio(
            close, es.to_numpy(), xs.to_numpy(), **kw, params=None, group_by=True, cash_sharing=True,
            size=CASH / n_assets, size_type="value"))
        assert_parity(pd.DataFrame(vbt_ours, columns=list(METRICS)), refs[-1])
    assert_parity(ours, np.vstack(refs))
