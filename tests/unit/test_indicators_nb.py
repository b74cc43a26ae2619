"""evo.engine.indicators.nb equals vectorbt's indicators (default engine), warm-up and NaN handling included."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from evo.engine import indicators
from evo.engine.indicators import nb

WINDOWS = [1, 2, 3, 5, 14, 20, 50, 200]
SERIES = ["random_walk", "goog", "with_nans", "flat_and_trend"]
RTOL, ATOL = 1e-9, 1e-12


def test_reference_is_vectorbts_default_rust_engine():
    """The kernels follow the arithmetic of vectorbt's default engine, which is Rust whenever
    vectorbt-rust is installed (a pinned dependency). Under engine="numba" the simple rolling
    mean rounds differently, and RSI on a flat stretch longer than the window becomes NaN
    instead of finite: test_rsi[flat_and_trend-200-False] would then fail."""
    from vectorbt._engine import resolve_engine

    assert resolve_engine() == "rust", "vectorbt-rust missing or version-mismatched: reference is not the default"


def _ohlc_from_close(close: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """High and low around a close-to-close bar, so true range uses all three of its terms."""
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, close.size))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, close.size))
    return high, low


def _random_walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    high, low = _ohlc_from_close(close, rng)
    return high, low, close


def _goog() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    backtesting = pytest.importorskip("backtesting")
    path = os.path.join(os.path.dirname(backtesting.__file__), "test", "GOOG.csv")
    df = pd.read_csv(path, index_col=0)
    return tuple(np.ascontiguousarray(df[c].to_numpy(dtype=np.float64)) for c in ("High", "Low", "Close"))


def _with_nans() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    high, low, close = _random_walk(3000, seed=7)
    # leading NaNs, single NaNs, short gaps, and a gap longer than the largest window
    for a in (high, low, close):
        a[:3] = np.nan
        a[400] = np.nan
        a[1000:1006] = np.nan
        a[1500:1760] = np.nan
    close[2100] = np.nan  # only the close: TR of the next bar falls back to high - low
    high[2300] = np.nan  # only the high: that bar's TR is NaN
    low[2500] = np.nan
    return high, low, close


def _flat_and_trend() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    high, low, close = _random_walk(3000, seed=11)
    # a flat stretch (no gains, no losses: RSI 0/0, zero std) and a strictly rising one
    # (no losses: RSI exactly 100), both longer than the largest window
    close[800:1100] = close[799]
    high[800:1100] = close[799]
    low[800:1100] = close[799]
    close[1800:2100] = close[1799] * np.cumprod(np.full(300, 1.002))
    high[1800:2100] = close[1800:2100]
    low[1800:2100] = close[1799:2099]
    return high, low, close


@pytest.fixture(scope="module", params=SERIES)
def hlc(request):
    return {
        "random_walk": lambda: _random_walk(3000, seed=3),
        "goog": _goog,
        "with_nans": _with_nans,
        "flat_and_trend": _flat_and_trend,
    }[request.param]()


def assert_same(ours: np.ndarray, theirs, *, allow_all_nan: bool = False) -> None:
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.dtype == np.float64 and ours.shape == theirs.shape
    if allow_all_nan:
        assert np.isnan(theirs).all()
    else:
        assert np.isfinite(theirs).any(), "vectorbt's output is all NaN: the comparison would be vacuous"
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="NaN masks differ")
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, equal_nan=True)


@pytest.mark.parametrize("ewm", [False, True])
@pytest.mark.parametrize("window", WINDOWS)
def test_ma(hlc, window, ewm):
    close = hlc[2]
    assert_same(nb.ma_nb(close, window, ewm), vbt.MA.run(pd.Series(close), window=window, ewm=ewm).ma)


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("ewm", [False, True])
@pytest.mark.parametrize("window", WINDOWS)
def test_mstd(hlc, window, ewm, ddof):
    close = hlc[2]
    theirs = vbt.MSTD.run(pd.Series(close), window=window, ewm=ewm, ddof=ddof).mstd
    # one observation has no sample std: vectorbt is all NaN there, and so must we be
    assert_same(nb.mstd_nb(close, window, ewm, ddof), theirs, allow_all_nan=window <= ddof)


def test_mstd_default_ddof_is_zero(hlc):
    close = pd.Series(hlc[2])
    assert_same(nb.mstd_nb(hlc[2], 20, False), vbt.MSTD.run(close, window=20).mstd)
    bb = vbt.BBANDS.run(close)  # window=20, ewm=False, alpha=2, ddof=0
    middle, upper, lower = nb.bbands_nb(hlc[2], 20, False, 2.0)
    for ours, theirs in zip((middle, upper, lower), (bb.middle, bb.upper, bb.lower)):
        assert_same(ours, theirs)


@pytest.mark.parametrize("ewm", [False, True])
@pytest.mark.parametrize("window", WINDOWS)
def test_rsi(hlc, window, ewm):
    close = hlc[2]
    assert_same(nb.rsi_nb(close, window, ewm), vbt.RSI.run(pd.Series(close), window=window, ewm=ewm).rsi)


@pytest.mark.parametrize(("alpha", "ddof"), [(2.0, 0), (1.5, 1)])
@pytest.mark.parametrize("ewm", [False, True])
@pytest.mark.parametrize("window", WINDOWS)
def test_bbands(hlc, window, ewm, alpha, ddof):
    close = hlc[2]
    bb = vbt.BBANDS.run(pd.Series(close), window=window, ewm=ewm, alpha=alpha, ddof=ddof)
    middle, upper, lower = nb.bbands_nb(close, window, ewm, alpha, ddof)
    assert_same(middle, bb.middle)
    # no sample std of one observation: both bands all NaN, in vectorbt as here
    assert_same(upper, bb.upper, allow_all_nan=window <= ddof)
    assert_same(lower, bb.lower, allow_all_nan=window <= ddof)


@pytest.mark.parametrize("ewm", [False, True])
@pytest.mark.parametrize("window", WINDOWS)
def test_atr(hlc, window, ewm):
    high, low, close = hlc
    res = vbt.ATR.run(pd.Series(high), pd.Series(low), pd.Series(close), window=window, ewm=ewm)
    tr, atr = nb.atr_nb(high, low, close, window, ewm)
    assert_same(tr, res.tr)
    assert_same(atr, res.atr)


@pytest.mark.parametrize("window", WINDOWS)
def test_rolling_max_min(hlc, window):
    close = hlc[2]
    assert_same(nb.rolling_max_nb(close, window), pd.Series(close).vbt.rolling_max(window))
    assert_same(nb.rolling_min_nb(close, window), pd.Series(close).vbt.rolling_min(window))


def test_the_edge_series_exercise_the_edges():
    """The inputs reach the cases they are meant to test, so those tests are not vacuous."""
    high, low, close = _with_nans()
    rsi = nb.rsi_nb(close, 14, False)
    assert np.isnan(rsi[1000:1020]).all() and np.isfinite(rsi[1100:1200]).all()  # a gap, then recovery
    tr = nb.true_range_nb(high, low, close)
    assert np.isfinite(tr[2101]) and tr[2101] == high[2101] - low[2101]
    assert np.isnan(tr[2300]) and np.isnan(tr[2500])
    ewm_ma = nb.ma_nb(close, 20, True)
    assert np.isfinite(ewm_ma[1000:1006]).all()  # EWM carries its value over a gap
    _, _, close = _flat_and_trend()
    assert (np.diff(close[800:1100]) == 0).all() and (np.diff(close[1800:2100]) > 0).all()
    # flat window: gains and losses both average 0, RSI is 0/0 ...
    assert np.isnan(nb.rsi_nb(close, 14, False)[815:1100]).all()
    # ... unless the running sum kept a residual (window 200 here): then vectorbt's default
    # engine returns a finite, meaningless RSI, and test_rsi holds us to it
    assert np.isfinite(nb.rsi_nb(close, 200, False)[1001:1100]).all()
    np.testing.assert_allclose(nb.rsi_nb(close, 50, False)[1900:2100], 100.0, rtol=1e-12)
    # vectorbt's rolling std of a constant window is not 0 but a rounding residual (~1e-6 here)
    flat_std = nb.mstd_nb(close, 50, False)[900:1100]
    assert (flat_std < 1e-5).all()


def test_rsi_warm_up_starts_after_the_first_difference():
    close = _random_walk(100, seed=1)[2]
    for ewm in (False, True):
        rsi = nb.rsi_nb(close, 14, ewm)
        assert np.isnan(rsi[:14]).all() and np.isfinite(rsi[14:]).all()


def test_comparison_detects_a_difference():
    """assert_same fails on a value off by more than the tolerance and on a moved NaN."""
    close = _random_walk(500, seed=2)[2]
    theirs = vbt.MA.run(pd.Series(close), window=5).ma.to_numpy()
    ours = nb.ma_nb(close, 5, False)
    assert_same(ours, theirs)
    off = ours.copy()
    off[300] *= 1 + 1e-8
    with pytest.raises(AssertionError):
        assert_same(off, theirs)
    shifted = ours.copy()
    shifted[3] = 0.0  # warm-up one bar short
    with pytest.raises(AssertionError):
        assert_same(shifted, theirs)
    with pytest.raises(AssertionError):
        assert_same(np.full_like(ours, np.nan), np.full_like(theirs, np.nan))


def test_window_below_one_is_refused():
    with pytest.raises(ValueError):
        nb.ma_nb(np.ones(5), 0, False)
    with pytest.raises(ValueError):
        nb.rolling_max_nb(np.ones(5), 0)


#: each indicator kind as vectorbt computes it (the Indicator docstring), from high, low, close and a window
VECTORBT_KINDS = {
    "sma": lambda h, lo, c, w: vbt.MA.run(c, window=w, ewm=False).ma,
    "ema": lambda h, lo, c, w: vbt.MA.run(c, window=w, ewm=True).ma,
    "mstd": lambda h, lo, c, w: vbt.MSTD.run(c, window=w, ewm=False).mstd,
    "ema_std": lambda h, lo, c, w: vbt.MSTD.run(c, window=w, ewm=True).mstd,
    "rsi": lambda h, lo, c, w: vbt.RSI.run(c, window=w, ewm=False).rsi,
    "ema_rsi": lambda h, lo, c, w: vbt.RSI.run(c, window=w, ewm=True).rsi,
    "atr": lambda h, lo, c, w: vbt.ATR.run(h, lo, c, window=w).atr,
    "sma_atr": lambda h, lo, c, w: vbt.ATR.run(h, lo, c, window=w, ewm=False).atr,
    "max": lambda h, lo, c, w: c.vbt.rolling_max(w),
    "min": lambda h, lo, c, w: c.vbt.rolling_min(w),
}


def test_the_cache_computes_every_kind_as_vectorbt():
    """Every kind of evo.engine.enums.IndicatorKind, through the cache (the kind's code in the kernel),
    equals vectorbt's indicator of that name; an unknown kind is refused when declared."""
    from evo.engine import indicators
    from evo.engine.enums import IndicatorKind

    assert set(VECTORBT_KINDS) == set(IndicatorKind._fields)
    high, low, close = (pd.Series(a) for a in _random_walk(600, seed=5))
    X = np.array([[5.0], [14.0], [5.0]])
    arrays = {"high": high.to_numpy(), "low": low.to_numpy(), "close": close.to_numpy()}
    for kind, ref in VECTORBT_KINDS.items():
        cache = indicators.build((indicators.Indicator(kind, "w"),), arrays, X, ["w"])
        assert cache.rows[0, 0] == cache.rows[2, 0] != cache.rows[1, 0]  # one row per distinct window
        for s, w in enumerate((5, 14, 5)):
            assert_same(cache.values[cache.rows[s, 0]], ref(high, low, close, w))
    with pytest.raises(ValueError, match="unknown indicator kind 'wma'"):
        indicators.Indicator("wma", "w")


def _counting_fill(monkeypatch):
    """Count the rows fill_rows_nb computes."""
    from evo.engine.indicators import nb

    computed = []
    real = nb.fill_rows_nb

    def counted(kinds, sources, windows, series, high, low, close, out):
        computed.append(len(windows))
        real(kinds, sources, windows, series, high, low, close, out)

    monkeypatch.setattr(nb, "fill_rows_nb", counted)
    return computed


def test_kept_rows_are_reused_and_equal_new_ones(monkeypatch):
    """A later evaluation on the same bars computes only the windows not met yet; its rows equal those
    of a process that kept nothing, bit for bit. Other bars (a changed close) get rows of their own."""
    monkeypatch.setenv("EVO_INDICATOR_CACHE_MB", "64")
    indicators.ROWS.clear()
    computed = _counting_fill(monkeypatch)
    high, low, close = _random_walk(700, seed=8)
    arrays = {"high": high, "low": low, "close": close, "volume": np.abs(close)}
    inds = (indicators.Indicator("rsi", "a"), indicators.Indicator("sma", "b"), indicators.Indicator("sma", "c", "volume"))
    X1 = np.array([[5.0, 10, 7], [9, 10, 7], [5, 30, 3]])
    X2 = np.array([[5.0, 30, 7], [12, 10, 8]])
    first = indicators.build(inds, arrays, X1, ["a", "b", "c"])
    assert computed == [6]  # rsi 5, 9; sma 10, 30; volume sma 7, 3
    second = indicators.build(inds, arrays, X2, ["a", "b", "c"])
    assert computed == [6, 2]  # only rsi 12 and volume sma 8 are new
    monkeypatch.setenv("EVO_INDICATOR_CACHE_MB", "0")  # keeps nothing: every row computed afresh
    for X, kept in ((X1, first), (X2, second)):
        fresh = indicators.build(inds, arrays, X, ["a", "b", "c"])
        for s in range(len(X)):
            for j in range(len(inds)):
                np.testing.assert_array_equal(kept.values[kept.rows[s, j]], fresh.values[fresh.rows[s, j]])
    monkeypatch.setenv("EVO_INDICATOR_CACHE_MB", "64")
    computed.clear()
    other = dict(arrays, close=close * 1.01)
    changed = indicators.build(inds, other, X2, ["a", "b", "c"])
    assert computed == [6]  # other bars: nothing kept applies
    np.testing.assert_array_equal(changed.values[changed.rows[0, 0]],
                                  indicators.build(inds[:1], {"close": close * 1.01}, X2[:, :1], ["a"]).values[0])


def test_kept_rows_stay_within_the_budget(monkeypatch):
    """Rows of all series together stay within EVO_INDICATOR_CACHE_MB; the series used least recently
    make room first, and an evaluation whose rows alone exceed it keeps nothing."""
    indicators.ROWS.clear()
    computed = _counting_fill(monkeypatch)
    n = 2**14  # a row: 128 KiB
    monkeypatch.setenv("EVO_INDICATOR_CACHE_MB", str(1.0))  # 8 rows
    ind = (indicators.Indicator("sma", "w"),)
    markets = [{"close": _random_walk(n, seed=k)[2]} for k in range(3)]
    X = np.array([[5.0], [6], [7], [8]])
    indicators.build(ind, markets[0], X, ["w"])
    indicators.build(ind, markets[1], X, ["w"])
    indicators.build(ind, markets[0], X, ["w"])  # both fit: nothing new
    assert computed == [4, 4]
    indicators.build(ind, markets[2], X, ["w"])  # market 1, the least recently used, makes room
    indicators.build(ind, markets[0], X, ["w"])
    assert computed == [4, 4, 4]
    held = sum(b.nbytes() for b in indicators.ROWS._blocks.values())
    assert held <= 2**20, held
    indicators.build(ind, markets[1], X, ["w"])
    assert computed == [4, 4, 4, 4]
    wide = np.arange(5.0, 14.0)[:, None]  # 9 rows: more than the budget on their own
    before = sum(b.nbytes() for b in indicators.ROWS._blocks.values())
    cache = indicators.build(ind, markets[1], wide, ["w"])
    assert computed[-1] == 9 and cache.values.shape[0] == 9
    assert sum(b.nbytes() for b in indicators.ROWS._blocks.values()) == before
