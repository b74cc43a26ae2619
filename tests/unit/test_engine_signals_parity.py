"""vectorbt's `from_signals` options in the fast engine, metric by metric against vectorbt itself.

Short selling, direction, opposite entries, size types, intrabar (OHLC) and trailing stops, and
one shared-cash portfolio over several assets: every case is simulated by `evo.engine` and by
`vbt.Portfolio.from_signals` with the same arguments, and the metrics of `evo.engine.vbt.portfolio_metrics`
must agree at rtol 1e-9. Each hand-built edge case also asserts, on vectorbt's own order records,
that the situation it is named after really happened.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evo.engine import enums, simulate_portfolio, simulate_signals
from evo.engine.vbt import portfolio_metrics
from tests.unit.test_engine_parity import assert_parity, random_walk

bt = pytest.importorskip("backtesting")
DATA = Path(bt.__file__).parent / "test"
COSTS = dict(init_cash=10_000.0, fees=0.001, slippage=0.0005)
#: our keywords that vectorbt takes per column as a (1, n) row
PER_COLUMN = ("sl_stop", "tp_stop", "size", "sl_trail", "direction", "size_type")


def ohlcv(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{name}.csv", index_col=0, parse_dates=True).astype(float)


def vbt_portfolio(close, entries, exits, **kw):
    """vectorbt's Portfolio.from_signals with our keywords: per-strategy arrays become (1, n) rows."""
    import vectorbt as vbt

    n = entries.shape[1] if np.ndim(entries) == 2 else 1
    for k in PER_COLUMN:
        v = kw.get(k)
        if v is not None and np.ndim(v) == 1:
            kw[k] = np.asarray(v).reshape(1, n) if k not in ("direction", "size_type") else [list(v)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(close, entries, exits, **kw)


def vbt_metrics(close, entries, exits, **kw) -> np.ndarray:
    return portfolio_metrics(vbt_portfolio(close, entries, exits, **kw))


def both_engines(close, entries, exits, **kw):
    """(ours, vectorbt's) metrics of the same call; asserts they agree."""
    ours = simulate_signals(close, entries, exits, **kw)
    ref = vbt_metrics(close, entries, exits, **kw)
    assert_parity(ours, ref)
    return ours, ref


def test_enum_values_are_vectorbts():
    from vectorbt.portfolio import enums as v

    pairs = [
        (enums.Direction, v.Direction),
        (enums.OppositeEntryMode, v.OppositeEntryMode),
        (enums.OrderSide, v.OrderSide),
        (enums.OrderStatus, v.OrderStatus),
        (enums.TradeDirection, v.TradeDirection),
    ]
    for ours, theirs in pairs:
        assert ours._asdict() == theirs._asdict()
    assert enums.SizeType._asdict() == {f: getattr(v.SizeType, f) for f in enums.SizeType._fields}
    import vectorbt as vbt

    assert enums.MIN_SIZE == vbt.settings.portfolio["min_size"]
    assert list(enums.Metric._fields) == list(enums.METRICS) and list(enums.Metric) == list(range(len(enums.METRICS)))


# ---------------------------------------------------------------------------------------------
# randomised signals and options on real prices


def random_case(rng, index, n_cols: int, ohlc: pd.DataFrame | None):
    """Signals and a random draw of every option, per column where vectorbt allows it."""
    n = len(index)
    p = rng.uniform(0.01, 0.08)
    sig = lambda: pd.DataFrame(rng.random((n, n_cols)) < p, index=index)  # noqa: E731
    kw = dict(entries=sig(), exits=sig())
    ls_mode = rng.random() < 0.35
    if ls_mode:
        kw.update(short_entries=sig(), short_exits=sig())
        direction = np.full(n_cols, "longonly")
    else:
        direction = rng.choice(["longonly", "shortonly", "both"], n_cols)
        kw["direction"] = direction
    uoe = rng.choice(["reversereduce", "reverse", "close", "closereduce", "ignore"])
    kw["upon_opposite_entry"] = uoe
    reverses = ls_mode or (direction == "both")
    if uoe not in ("reverse", "reversereduce"):
        reverses = np.zeros(n_cols, bool)
    size_type = rng.choice(["amount", "value", "percent"], n_cols)
    size_type[(size_type == "percent") & reverses] = "value"  # vectorbt refuses to reverse a percent size
    size = np.where(size_type == "percent", rng.uniform(0.05, 1.0, n_cols), np.inf)
    finite = rng.random(n_cols) < 0.5
    size = np.where((size_type == "value") & finite, rng.uniform(1_000, 20_000, n_cols), size)
    size = np.where((size_type == "amount") & finite, rng.uniform(0.5, 40, n_cols), size)
    kw.update(size=size, size_type=size_type)
    sl = rng.uniform(0.005, 0.12, n_cols)
    tp = rng.uniform(0.005, 0.25, n_cols)
    sl[rng.random(n_cols) < 0.3] = np.nan
    tp[rng.random(n_cols) < 0.3] = np.nan
    kw.update(sl_stop=sl, tp_stop=tp, sl_trail=rng.random(n_cols) < 0.5)
    if ohlc is not None:
        kw.update(open=ohlc["Open"], high=ohlc["High"], low=ohlc["Low"])
    kw.update(fees=float(rng.choice([0.0, 0.001, 0.004])), slippage=float(rng.choice([0.0, 0.0005, 0.002])))
    return kw


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("symbol, freq", [("GOOG", "1D"), ("EURUSD", "1h"), ("BTCUSD", "30D")])
def test_random_options_on_real_prices(symbol, freq, seed):
    df = ohlcv(symbol)
    rng = np.random.default_rng(1000 * seed + len(symbol))
    kw = random_case(rng, df.index, 40, df if seed % 3 != 2 else None)
    ours, _ = both_engines(df["Close"], kw.pop("entries"), kw.pop("exits"), init_cash=10_000.0, freq=freq, **kw)
    # every metric of the table was compared on numbers in some column, not only on NaN
    finite = np.isfinite(ours.to_numpy()).any(axis=0)
    assert finite.all(), [m for m, f in zip(ours.columns, finite) if not f]
    if len(df) > 1000:
        # the comparison covered strategies that traded, won and lost
        assert (ours["n_trades"] > 3).mean() > 0.7
        assert 0 < np.nanmean(ours["win_rate"]) < 1


@pytest.mark.long
def test_options_one_at_a_time_on_goog():
    """Each new option alone, on every column, with OHLC prices (the random test mixes them)."""
    df = ohlcv("GOOG")
    rng = np.random.default_rng(7)
    e = pd.DataFrame(rng.random((len(df), 30)) < 0.04, index=df.index)
    x = pd.DataFrame(rng.random((len(df), 30)) < 0.04, index=df.index)
    se = pd.DataFrame(rng.random((len(df), 30)) < 0.04, index=df.index)
    ohlc = dict(open=df["Open"], high=df["High"], low=df["Low"])
    cases = {
        "shortonly": dict(direction="shortonly"),
        "both": dict(direction="both"),
        "short_entries": dict(short_entries=se),
        "short_exits": dict(short_entries=se, short_exits=x.shift(3, fill_value=False)),
        "upon_opposite_entry close": dict(direction="both", upon_opposite_entry="close"),
        "upon_opposite_entry ignore": dict(short_entries=se, upon_opposite_entry="ignore"),
        "size value": dict(size=3_000.0, size_type="value"),
        "size amount": dict(size=12.0, size_type="amount"),
        "size percent": dict(size=0.3, size_type="percent", direction="shortonly"),
        "ohlc stops": dict(sl_stop=0.02, tp_stop=0.04, **ohlc),
        "close-only trailing": dict(sl_stop=0.03, sl_trail=True),
        "ohlc trailing short": dict(direction="shortonly", sl_stop=0.03, sl_trail=True, **ohlc),
        "open only": dict(sl_stop=0.02, tp_stop=0.02, open=df["Open"]),
        "high and low only": dict(sl_stop=0.02, tp_stop=0.02, high=df["High"], low=df["Low"]),
    }
    results = {}
    for name, kw in cases.items():
        ours, _ = both_engines(df["Close"], e, x, freq="1D", **COSTS, **kw)
        results[name] = ours
    # the options changed something (else parity would only repeat the long-only default)
    base = simulate_signals(df["Close"], e, x, freq="1D", **COSTS)
    for name, ours in results.items():
        assert (ours["total_return"] != base["total_return"]).mean() > 0.5, name


# ---------------------------------------------------------------------------------------------
# hand-built edge cases


def bars(rows, freq="1D") -> pd.DataFrame:
    """OHLC frame from (open, high, low, close) rows."""
    idx = pd.date_range("2022-01-03", periods=len(rows), freq=freq)
    return pd.DataFrame(rows, index=idx, columns=["Open", "High", "Low", "Close"], dtype=float)


def flags(n, *on) -> np.ndarray:
    a = np.zeros(n, bool)
    a[list(on)] = True
    return a


def cols(n, **series) -> pd.DataFrame:
    return pd.DataFrame({k: flags(n, *v) for k, v in series.items()})


def orders(pf) -> pd.DataFrame:
    return pd.DataFrame(pf.orders.values)


def test_gap_through_stops_fills_at_the_open():
    # bar: 0 enter (close 100); 3 opens 94, below a 3 % stop-loss (97); 5 short entry at 100;
    # 7 opens 106, above the short's 3 % stop-loss (103); 9 long entry; 11 opens 110, above its
    # 5 % take-profit (105); 13 long entry; 15 opens 99, above the stop 97, and trades down to 95
    df = bars([
        (100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100), (94, 95, 93, 94), (94, 101, 93, 100),
        (100, 101, 99, 100), (100, 101, 99, 100), (106, 107, 105, 106), (106, 106, 100, 100), (100, 101, 99, 100),
        (100, 101, 99, 100), (110, 111, 109, 110), (110, 110, 100, 100), (100, 101, 99, 100), (100, 101, 99, 100),
        (99, 100, 95, 96), (96, 100, 96, 100),
    ])
    n = len(df)
    e = cols(n, long_sl=[0], short_sl=[], long_tp=[9], intrabar=[13])
    se = cols(n, long_sl=[], short_sl=[5], long_tp=[], intrabar=[])
    kw = dict(short_entries=se, short_exits=np.zeros_like(se), sl_stop=[0.03, 0.03, np.nan, 0.03],
              tp_stop=[np.nan, np.nan, 0.05, np.nan], open=df["Open"], high=df["High"], low=df["Low"], freq="1D",
              init_cash=1_000.0, fees=0.001, slippage=0.001)
    both_engines(df["Close"], e, np.zeros_like(e), **kw)
    o = orders(vbt_portfolio(df["Close"], e, np.zeros_like(e), **kw))
    exit_prices = {c: o[(o.col == c) & (o.idx > o[o.col == c].idx.min())].price.iloc[0] for c in range(4)}
    assert exit_prices == {0: 94.0, 1: 106.0, 2: 110.0, 3: 97.0}  # gaps fill at the open, the rest at the level


def test_stop_and_signal_on_the_same_bar():
    """The stop takes the bar: an exit, an opposite entry (direction both) or a short entry on the
    stop's bar is not executed."""
    close = pd.Series([100, 101, 102, 96, 95, 97, 98, 99, 101, 100], dtype=float,
                      index=pd.date_range("2022-01-03", periods=10, freq="1D"))
    n = len(close)
    e = cols(n, exit_too=[0], both=[0], ls=[0], tp_and_entry=[0, 2, 5])
    x = cols(n, exit_too=[3], both=[3, 4], ls=[], tp_and_entry=[])
    se = cols(n, exit_too=[], both=[], ls=[3], tp_and_entry=[])
    kw = dict(sl_stop=[0.03, 0.03, 0.03, np.nan], tp_stop=[np.nan, np.nan, np.nan, 0.015], freq="1D", **COSTS)
    # direction mode for the first two columns, LS mode for the third: two calls, one vectorbt each
    both_engines(close, e[["exit_too", "tp_and_entry"]], x[["exit_too", "tp_and_entry"]],
                 **{**kw, "sl_stop": [0.03, np.nan], "tp_stop": [np.nan, 0.015]})
    both_engines(close, e[["both"]], x[["both"]], direction="both", **{**kw, "sl_stop": 0.03, "tp_stop": None})
    both_engines(close, e[["ls"]], x[["ls"]], short_entries=se[["ls"]], **{**kw, "sl_stop": 0.03, "tp_stop": None})
    pf = vbt_portfolio(close, e[["both"]], x[["both"]], direction="both", sl_stop=0.03, freq="1D", **COSTS)
    assets = pf.assets().to_numpy()
    assert assets[2] > 0 and assets[3] == 0 and assets[4] < 0  # stopped out on bar 3, short from bar 4
    o = orders(vbt_portfolio(close, e[["tp_and_entry"]], x[["tp_and_entry"]], tp_stop=0.015, freq="1D", **COSTS))
    assert list(o.idx[:3]) == [0, 2, 5] and o.price[1] == 102.0  # take-profit on bar 2, the entry waits for bar 5


def test_reversal_on_an_opposite_entry():
    close = random_walk(400, seed=11, freq="1D")
    rng = np.random.default_rng(12)
    e = pd.DataFrame(rng.random((400, 12)) < 0.05, index=close.index)
    x = pd.DataFrame(rng.random((400, 12)) < 0.05, index=close.index)
    for uoe in ("reversereduce", "reverse", "close", "closereduce", "ignore"):
        for size, size_type in ((np.inf, "amount"), (2_000.0, "value"), (15.0, "amount")):
            kw = dict(direction="both", upon_opposite_entry=uoe, size=size, size_type=size_type, freq="1D", **COSTS)
            both_engines(close, e, x, **kw)
            if uoe.startswith("reverse"):
                o = orders(vbt_portfolio(close, e, x, **kw))
                signed = np.where(o.side == enums.OrderSide.Sell, -o["size"], o["size"])
                pos_after = pd.Series(signed).groupby(o.col).cumsum().to_numpy()
                pos_before = pos_after - signed
                assert (np.sign(pos_before) * np.sign(pos_after) < 0).sum() > 20  # orders that flip the position


def test_sizes_that_round_to_zero_or_are_too_small():
    close = pd.Series(np.linspace(100, 110, 30), index=pd.date_range("2022-01-03", periods=30, freq="1D"))
    e = pd.DataFrame({f"c{k}": flags(30, 2, 10) for k in range(5)})
    x = pd.DataFrame({f"c{k}": flags(30, 6, 14) for k in range(5)})
    # below min_size (1e-8), close to zero (ignored), a value worth 1e-9 shares, a tiny percent,
    # and just above min_size
    kw = dict(size=[1e-9, 1e-13, 1e-7, 1e-12, 2e-8], size_type=["amount", "amount", "value", "percent", "amount"],
              freq="1D", init_cash=10_000.0, fees=0.001, slippage=0.0)
    ours, _ = both_engines(close, e, x, **kw)
    assert list(vbt_portfolio(close, e, x, **kw).orders.count()) == [0, 0, 0, 0, 4]
    assert list(ours["n_trades"]) == [0, 0, 0, 0, 2]
    # all in with almost no cash: the order would be below min_size
    poor = dict(freq="1D", init_cash=1e-7, fees=0.001, slippage=0.0)
    ours, _ = both_engines(close, e.iloc[:, :1], x.iloc[:, :1], **poor)
    assert vbt_portfolio(close, e.iloc[:, :1], x.iloc[:, :1], **poor).orders.count().item() == 0
    assert ours["n_trades"].item() == 0


def test_all_in_trading_until_the_cash_is_below_min_size():
    """The default long-only all-in call: a strategy that trades every bar loses its cash to costs
    until an all-in buy is below vectorbt's min_size (1e-8) and is rejected from then on. (The
    engine before these options kept buying dust there and disagreed with vectorbt.)"""
    close = random_walk(20_000, seed=13, freq="1h")
    e = pd.Series(np.arange(20_000) % 2 == 0, index=close.index)
    ours, _ = both_engines(close, e, ~e, init_cash=10_000.0, fees=0.001, slippage=0.0005, freq="1h")
    pf = vbt_portfolio(close, e, ~e, init_cash=10_000.0, fees=0.001, slippage=0.0005, freq="1h")
    assert pf.orders.count() < 20_000 - 1000  # orders stopped long before the last bar
    assert ours["n_trades"].item() == pf.trades.count()


def test_a_short_losing_more_than_its_cash():
    """All-in short, the price triples: the cover is filled partially, the rest cannot be covered
    (no cash left) and stays open to the end."""
    close = pd.Series(np.r_[np.full(3, 100.0), np.linspace(100, 320, 10), np.full(5, 320.0), np.linspace(320, 90, 6)],
                      index=pd.date_range("2022-01-03", periods=24, freq="1D"))
    n = len(close)
    e = cols(n, a=[1], b=[1])
    x = cols(n, a=[12, 15], b=[22])
    kw = dict(direction="shortonly", freq="1D", fees=0.002, slippage=0.001, init_cash=1_000.0)
    both_engines(close, e, x, **kw)
    pf = vbt_portfolio(close, e, x, **kw)
    assets = pf.assets().to_numpy()
    assert assets[12, 0] < 0 and assets[12, 0] > assets[11, 0]  # partially covered
    assert assets[-1, 0] == assets[12, 0]  # the second exit finds no cash: the rest stays short
    assert (pf.value().to_numpy()[:, 0] < 0).any()  # the portfolio was worth less than nothing
    assert assets[-1, 1] == 0  # covered in full once the price came back


def test_percent_sizing():
    df = ohlcv("GOOG").iloc[:800]
    rng = np.random.default_rng(3)
    e = pd.DataFrame(rng.random((800, 24)) < 0.05, index=df.index)
    x = pd.DataFrame(rng.random((800, 24)) < 0.05, index=df.index)
    size = np.tile([0.1, 0.25, 0.5, 1.0], 6)
    direction = np.repeat(["longonly", "shortonly", "longonly", "shortonly", "longonly", "shortonly"], 4)
    ours, _ = both_engines(df["Close"], e, x, size=size, size_type="percent", direction=direction,
                           sl_stop=np.repeat([np.nan, 0.04, np.nan, np.nan, 0.03, 0.03], 4), freq="1D", **COSTS)
    assert (ours["n_trades"] > 5).all()
    # percent with direction both closes instead of reversing (vectorbt refuses to reverse it)
    both_engines(df["Close"], e, x, size=0.5, size_type="percent", direction="both", upon_opposite_entry="close",
                 freq="1D", **COSTS)


def test_fees_and_slippage_on_shorts():
    df = ohlcv("EURUSD").iloc[:3000]
    rng = np.random.default_rng(4)
    e = pd.DataFrame(rng.random((3000, 20)) < 0.02, index=df.index)
    x = pd.DataFrame(rng.random((3000, 20)) < 0.02, index=df.index)
    base = dict(direction="shortonly", freq="1h", init_cash=10_000.0, sl_stop=0.004, tp_stop=0.006,
                open=df["Open"], high=df["High"], low=df["Low"])
    free, _ = both_engines(df["Close"], e, x, fees=0.0, slippage=0.0, **base)
    costly, _ = both_engines(df["Close"], e, x, fees=0.003, slippage=0.002, **base)
    assert (costly["total_return"] < free["total_return"]).all()
    both_engines(df["Close"], e, np.zeros_like(e), short_entries=x, short_exits=e.shift(5, fill_value=False),
                 fees=0.003, slippage=0.002, **{k: v for k, v in base.items() if k != "direction"})


def test_trailing_stops_with_ohlc():
    # long: enters at 100, highs climb to 120, the 5 % trailing stop is then 114; bar 8 trades down
    # through it (fills at 114), a fixed stop would have waited for 95. Short mirrors it, and a third
    # column's trailing level is gapped through at the open.
    up = [(100, 101, 99, 100), (100, 101, 99, 100), (101, 106, 100, 105), (105, 111, 104, 110), (110, 116, 109, 115),
          (115, 120, 114, 118), (118, 119, 116, 117), (117, 118, 115, 116), (116, 117, 110, 111), (111, 112, 108, 109),
          (109, 110, 105, 106), (106, 107, 100, 100), (100, 101, 90, 91), (91, 92, 80, 85)]
    df = bars(up)
    n = len(df)
    e = cols(n, trail=[1], fixed=[1])
    kw = dict(sl_stop=0.05, sl_trail=[True, False], open=df["Open"], high=df["High"], low=df["Low"], freq="1D",
              **COSTS)
    both_engines(df["Close"], e, np.zeros_like(e), **kw)
    o = orders(vbt_portfolio(df["Close"], e, np.zeros_like(e), **kw))
    assert o[(o.col == 0) & (o.idx == 8)].price.iloc[0] == pytest.approx(120 * 0.95)
    assert o[(o.col == 1) & (o.idx == 12)].price.iloc[0] == pytest.approx(100 * 0.95)
    # the mirror image for a short, plus a gap through the trailing level
    down = bars([(2 * 100 - o_, 2 * 100 - lo, 2 * 100 - hi, 2 * 100 - c) for o_, hi, lo, c in up])
    gap = bars(up[:8] + [(110, 111, 108, 109)] + up[9:])  # opens at 110, below the trailed 114
    both_engines(down["Close"], e, np.zeros_like(e), **{**kw, "direction": "shortonly", "open": down["Open"],
                                                        "high": down["High"], "low": down["Low"]})
    both_engines(gap["Close"], e, np.zeros_like(e), **{**kw, "open": gap["Open"], "high": gap["High"],
                                                       "low": gap["Low"]})
    og = orders(vbt_portfolio(gap["Close"], e, np.zeros_like(e), **{**kw, "open": gap["Open"], "high": gap["High"],
                                                                     "low": gap["Low"]}))
    assert og[(og.col == 0) & (og.idx == 8)].price.iloc[0] == 110.0


def test_trailing_and_fixed_stops_on_random_walks_with_ohlc():
    rng = np.random.default_rng(5)
    close = random_walk(3000, seed=5, freq="1h", vol=0.006)
    spread = np.abs(rng.normal(0, 0.004, (3, len(close))))
    open_ = close.shift(1).fillna(close.iloc[0]) * (1 + rng.normal(0, 0.002, len(close)))
    high = np.maximum(open_, close) * (1 + spread[0])
    low = np.minimum(open_, close) * (1 - spread[1])
    e = pd.DataFrame(rng.random((3000, 30)) < 0.01, index=close.index)
    x = pd.DataFrame(rng.random((3000, 30)) < 0.01, index=close.index)
    ours, _ = both_engines(close, e, x, direction=np.tile(["longonly", "shortonly", "both"], 10),
                           sl_stop=rng.uniform(0.003, 0.03, 30), tp_stop=rng.uniform(0.003, 0.05, 30),
                           sl_trail=np.arange(30) % 2 == 0, open=open_, high=high, low=low, freq="1h", **COSTS)
    assert (ours["n_trades"] > 10).all()


def test_percent_reversal_and_bad_options_are_refused():
    close = random_walk(50, seed=9)
    e = np.zeros((50, 2), bool)
    with pytest.raises(ValueError, match="size_type='percent' cannot reverse"):
        simulate_signals(close, e, e, direction="both", size=0.5, size_type="percent", freq="1h", **COSTS)
    with pytest.raises(ValueError, match="size_type='percent' cannot reverse"):
        simulate_signals(close, e, e, short_entries=e, size=0.5, size_type="percent", freq="1h", **COSTS)
    # vectorbt refuses it too, once a reversal happens
    import vectorbt as vbt
    from vectorbt.portfolio.enums import RejectedOrderError

    ee = pd.Series(flags(50, 2), index=close.index)
    with pytest.raises((ValueError, RejectedOrderError), match="SizeType.Percent does not support position reversal"):
        vbt.Portfolio.from_signals(close, ee, ee.shift(3, fill_value=False), direction="both", size=0.5,
                                   size_type="percent", freq="1h")
    bad = [
        (dict(direction="sideways"), "direction"),
        (dict(direction=["longonly"] * 3), "direction"),
        (dict(size_type="targetpercent"), "size_type"),
        (dict(size=-1.0), "size"),
        (dict(size=np.nan), "size"),
        (dict(size=1.5, size_type="percent"), "size"),
        (dict(upon_opposite_entry="flip"), "upon_opposite_entry"),
        (dict(open=close.iloc[:40]), "open"),
        (dict(high=close.where(close.index != close.index[5])), "high"),
        (dict(low=-close), "low"),
        (dict(sl_trail=[0.5, 2.0]), "sl_trail"),
        (dict(short_entries=np.zeros((40, 2), bool)), "short_entries"),
        (dict(short_exits=np.zeros((50, 3), bool)), "short_exits"),
    ]
    for kw, name in bad:
        with pytest.raises(ValueError, match=name):
            simulate_signals(close, e, e, freq="1h", **COSTS, **kw)


# ---------------------------------------------------------------------------------------------
# one portfolio across assets: from_signals(group_by=True, cash_sharing=True)


def vbt_group_metrics(close, entries, exits, **kw) -> np.ndarray:
    """vectorbt's grouped metrics with equal allocation as simulate_portfolio's default."""
    if "size" not in kw and "size_type" not in kw:
        kw.update(size=kw["init_cash"] / close.shape[1], size_type="value")
    pf = vbt_portfolio(close, entries, exits, group_by=True, cash_sharing=True, **kw)
    return portfolio_metrics(pf)


def aligned(names, n=None) -> dict[str, pd.DataFrame]:
    """The last n bars of each symbol side by side, on one daily index (the files share no timestamps)."""
    frames = {s: ohlcv(s) for s in names}
    n = n or min(len(f) for f in frames.values())
    idx = pd.date_range("2015-01-01", periods=n, freq="1D")
    return {f: pd.DataFrame({s: frames[s][f].to_numpy()[-n:] for s in names}, index=idx)
            for f in ("Open", "High", "Low", "Close")}


GROUP_CASES = {
    "equal allocation": dict(),
    "both, stops, trailing, OHLC": dict(direction="both", sl_stop=0.03, tp_stop=0.06, sl_trail=True, ohlc=True),
    "shortonly value": dict(direction="shortonly", size=2_000.0, size_type="value", tp_stop=0.05),
    "percent of the shared cash": dict(size=0.4, size_type="percent", sl_stop=0.04, ohlc=True),
    "all in, reversing": dict(direction="both", size=np.inf, size_type="amount"),
    "short entries, close on opposite": dict(ls=True, upon_opposite_entry="close", sl_stop=0.05),
}


def group_kwargs(case: dict, fr: dict, rng) -> dict:
    kw = {k: v for k, v in case.items() if k not in ("ohlc", "ls")}
    if case.get("ohlc"):
        kw.update(open=fr["Open"], high=fr["High"], low=fr["Low"])
    if case.get("ls"):
        c = fr["Close"]
        kw["short_entries"] = pd.DataFrame(rng.random(c.shape) < 0.05, index=c.index, columns=c.columns)
    return kw


@pytest.mark.parametrize("case", list(GROUP_CASES))
@pytest.mark.parametrize("names", [["GOOG", "EURUSD"], ["GOOG", "EURUSD", "BTCUSD"]])
def test_portfolio_on_real_prices(names, case):
    fr = aligned(names)
    c = fr["Close"]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        p = 0.2 if len(c) < 500 else 0.05
        e = pd.DataFrame(rng.random(c.shape) < p, index=c.index, columns=c.columns)
        x = pd.DataFrame(rng.random(c.shape) < p, index=c.index, columns=c.columns)
        kw = group_kwargs(GROUP_CASES[case], fr, rng)
        ours = simulate_portfolio(c, e, x, freq="1D", **COSTS, **kw)
        assert_parity(ours, vbt_group_metrics(c, e, x, freq="1D", **COSTS, **kw))
        assert ours["n_trades"].iloc[0] > 3


@pytest.mark.parametrize("seed", range(4))
def test_portfolio_on_synthetic_assets_many_strategies(seed):
    """Several strategies at once (strategies, bars, assets), each its own shared-cash portfolio."""
    rng = np.random.default_rng(100 + seed)
    n_bars, n_assets, n_strat = 2500, 6, 5
    close = pd.DataFrame({f"s{a}": random_walk(n_bars, seed=10 * seed + a, freq="1h", vol=0.004 * (a + 1))
                          for a in range(n_assets)})
    e = rng.random((n_strat, n_bars, n_assets)) < 0.02
    x = rng.random((n_strat, n_bars, n_assets)) < 0.02
    direction = rng.choice(["longonly", "shortonly", "both"], n_strat)
    sl = rng.uniform(0.005, 0.05, n_strat)
    sl[0] = np.nan
    trail = rng.random(n_strat) < 0.5
    ours = simulate_portfolio(close, e, x, direction=direction, sl_stop=sl, sl_trail=trail, freq="1h", **COSTS)
    for s in range(n_strat):
        ref = vbt_group_metrics(close, pd.DataFrame(e[s], index=close.index, columns=close.columns),
                                pd.DataFrame(x[s], index=close.index, columns=close.columns), direction=direction[s],
                                sl_stop=sl[s], sl_trail=bool(trail[s]), freq="1h", **COSTS)
        assert_parity(ours.iloc[[s]], ref)
    assert (ours["n_trades"] > 20).all()


def test_equal_allocation_buys_the_same_value_of_each_asset():
    """The default sizing (size_type='value', size=init_cash / n_assets): in vectorbt's own order records,
    every asset's entry is worth the same, whichever asset enters first, until the cash runs out."""
    fr = aligned(["GOOG", "EURUSD"], n=600)
    c = fr["Close"]
    rng = np.random.default_rng(8)
    e = pd.DataFrame(rng.random(c.shape) < 0.03, index=c.index, columns=c.columns)
    x = pd.DataFrame(rng.random(c.shape) < 0.03, index=c.index, columns=c.columns)
    e.iloc[0] = True  # both enter on the first bar, the first column first
    kw = dict(freq="1D", init_cash=10_000.0, fees=0.0, slippage=0.0)
    assert_parity(simulate_portfolio(c, e, x, **kw), vbt_group_metrics(c, e, x, **kw))
    pf = vbt_portfolio(c, e, x, size=5_000.0, size_type="value", group_by=True, cash_sharing=True, **kw)
    o = orders(pf)
    buys = o[o.side == enums.OrderSide.Buy]
    value = (buys["size"] * buys["price"]).to_numpy()
    assert len(buys) > 10 and buys.col.nunique() == 2
    np.testing.assert_allclose(value[:2], 5_000.0, rtol=1e-12)  # the second asset is not short-changed
    assert (value <= 5_000.0 * (1 + 1e-12)).all()  # never more; less only when the cash ran short
    assert np.isclose(value, 5_000.0, rtol=1e-12).mean() > 0.5


def test_portfolio_metrics_are_the_groups():
    """n_trades and win_rate count every asset's trades, exposure any asset's position: check the
    definitions on vectorbt's grouped portfolio, then parity."""
    fr = aligned(["GOOG", "EURUSD"], n=1000)
    c = fr["Close"]
    rng = np.random.default_rng(9)
    e = pd.DataFrame(rng.random(c.shape) < 0.03, index=c.index, columns=c.columns)
    x = pd.DataFrame(rng.random(c.shape) < 0.03, index=c.index, columns=c.columns)
    kw = dict(freq="1D", **COSTS)
    pf = vbt_portfolio(c, e, x, size=5_000.0, size_type="value", group_by=True, cash_sharing=True, **kw)
    per_col = pf.trades.count(group_by=False).to_numpy()
    assert np.asarray(pf.trades.count()).item() == per_col.sum()
    assert np.asarray(pf.position_mask().mean()).item() == pf.position_mask(group_by=False).any(axis=1).mean()
    ours = simulate_portfolio(c, e, x, **kw)
    assert_parity(ours, portfolio_metrics(pf))
    assert ours["n_trades"].iloc[0] == per_col.sum()


def test_portfolio_kernel_trades_from_a_window_start():
    """Signals before `start` are ignored and the portfolio starts flat there (what an out-of-sample
    window needs): equal to vectorbt on the bars from `start` on."""
    import numba

    from evo.engine import fast, nb

    fr = aligned(["GOOG", "EURUSD"])
    c = fr["Close"]
    rng = np.random.default_rng(10)
    e = rng.random(c.shape) < 0.05
    x = rng.random(c.shape) < 0.05
    e[:900] = True  # would hold positions from the first bars if they counted
    start = 1000
    params = fast.make_params(1, direction="both", size=5_000.0, size_type="value", sl_stop=0.04, sl_trail=True)
    sim = fast.sim_settings(freq="1D", start=start, **COSTS)
    prices = fast._bar_major([enums.Prices(*(fr[f].to_numpy()[:, k] for f in ("Open", "High", "Low", "Close")))
                              for k in range(c.shape[1])])
    no = np.empty((1, 0, 0), dtype=np.bool_)
    signals = fast.owned(enums.Signals(np.ascontiguousarray(e.T[None]), np.ascontiguousarray(x.T[None]), no, no))
    ours, _, _ = nb.simulate_portfolios_nb(prices, signals, fast.frozen(params), sim, numba.get_num_threads())
    w = slice(start, None)
    ref = vbt_group_metrics(c.iloc[w], e[w], x[w], direction="both", size=5_000.0, size_type="value", sl_stop=0.04,
                            sl_trail=True, open=fr["Open"].iloc[w], high=fr["High"].iloc[w], low=fr["Low"].iloc[w],
                            freq="1D", **COSTS)
    assert_parity(pd.DataFrame(ours, columns=list(enums.METRICS)), ref)
    assert ours[0, enums.Metric.n_trades] > 10


def test_portfolio_bad_input_is_refused():
    close = pd.DataFrame({"a": random_walk(50, seed=1), "b": random_walk(50, seed=2)})
    e = np.zeros((50, 2), bool)
    with pytest.raises(ValueError, match="entries"):
        simulate_portfolio(close, e[:, :1], e, freq="1h", **COSTS)
    with pytest.raises(ValueError, match="close"):
        simulate_portfolio(close["a"], e, e, freq="1h", **COSTS)
    with pytest.raises(ValueError, match="open"):
        simulate_portfolio(close, e, e, open=close.iloc[:, :1], freq="1h", **COSTS)
    with pytest.raises(ValueError, match="size_type='percent' cannot reverse"):
        simulate_portfolio(close, e, e, direction="both", size=0.5, size_type="percent", freq="1h", **COSTS)


# ---------------------------------------------------------------------------------------------
# the family path: fused and generic kernels with per-genome options


@pytest.mark.parametrize("family_name", ["rsi_pullback", "trend"])
def test_family_evaluation_with_per_genome_options_equals_vectorbt(family_name):
    """What families will evolve (direction, size, size type, trailing) through the fast engine's
    family path, against the vectorbt engine given the same records, with OHLC stops and a window."""
    from evo import strategies
    from evo.config import EvaluationConfig
    from evo.market import FIELDS, build_market
    from evo.engine import fast, vbt

    df = ohlcv("GOOG")
    df.columns = [c.lower() for c in df.columns]
    market = build_market({"GOOG": df[list(FIELDS)]}, None, "GOOG.csv")
    fam = strategies.get(family_name)
    space = fam.space()
    rng = np.random.default_rng(21)
    X = space.repair(space.xl + rng.random((60, space.n_var)) * (space.xu - space.xl))
    params = space.decode(X)
    direction = np.tile(["longonly", "shortonly", "both"], 20)
    size_type = np.where(direction == "both", "amount", rng.choice(["percent", "value", "amount"], 60))
    size = np.where(size_type == "percent", rng.uniform(0.2, 1, 60), np.where(size_type == "value", 4_000, np.inf))
    sl, tp = fam.stop_arrays(X, space.names)
    records = fast.make_params(60, direction=direction, size=size, size_type=size_type, sl_stop=sl, tp_stop=tp,
                               sl_trail=np.arange(60) % 2 == 1)
    settings = EvaluationConfig(engine="fast")
    for window in (None, (700, len(df))):
        ours = fast.evaluate_arrays(market.arrays(0), fam, X, space.names, settings, market.freq, window,
                                    params=records, ohlc_stops=True)
        ref = vbt.evaluate_asset(market.frame(0), fam, params, settings, market.freq, window, sim_params=records,
                                 ohlc_stops=True)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12, equal_nan=True)
        assert (ours[:, enums.Metric.n_trades] > 0).mean() > 0.5
