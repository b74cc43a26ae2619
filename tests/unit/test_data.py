"""Unit tests for evo.market: loading, validation, alignment, fingerprints, synthetic market, cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evo.market import load as evo_data
from evo.config import DataConfig, SyntheticData
from evo.market import FIELDS, DataError, Market, check_length, get_market, load_market

# ---------------------------------------------------------------------------------------------
# helpers


def ohlcv(n: int = 60, start: str = "2021-01-01", freq: str = "1h", seed: int = 0) -> pd.DataFrame:
    """A valid OHLCV frame with a `date` column; prices with 4 decimals so CSV round-trips exactly."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 4)
    open_ = np.round(np.concatenate([[100.0], close[:-1]]), 4)
    high = np.round(np.maximum(open_, close) + rng.uniform(0.01, 1, n), 4)
    low = np.round(np.minimum(open_, close) - rng.uniform(0.01, 1, n), 4)
    volume = np.round(rng.uniform(0, 1000, n), 2)
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=n, freq=freq),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def load(*paths: Path, **kw) -> Market:
    return load_market(DataConfig(paths=[str(p) for p in paths], **kw))


def assert_market_equals_frame(m: Market, df: pd.DataFrame, asset: int = 0) -> None:
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(m, f)[:, asset], df[f].to_numpy(dtype=np.float64), err_msg=f)


def assert_same_market(a: Market, b: Market) -> None:
    assert a.symbols == b.symbols
    assert a.index.equals(b.index)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert a.fingerprint == b.fingerprint


# ---------------------------------------------------------------------------------------------
# CSV / Parquet loading and fingerprints


def test_csv_values_and_shape(tmp_path):
    df = ohlcv(60)
    m = load(write_csv(df, tmp_path / "BTC.csv"))
    assert m.symbols == ("BTC",)
    assert (m.n_bars, m.n_assets) == (60, 1)
    assert m.index.equals(pd.DatetimeIndex(df["date"]))
    assert_market_equals_frame(m, df)
    for f in FIELDS:
        arr = getattr(m, f)
        assert arr.shape == (60, 1)
        assert arr.dtype == np.float64
        assert arr.flags.f_contiguous
    assert re.fullmatch(r"[0-9a-f]{64}", m.fingerprint)
    frame = m.frame(0)
    assert list(frame.columns) == list(FIELDS)
    np.testing.assert_array_equal(frame["close"].to_numpy(), df["close"].to_numpy())


@pytest.mark.parametrize("time_as_index", [False, True], ids=["date-column", "datetime-index"])
def test_csv_and_parquet_give_same_market(tmp_path, time_as_index):
    df = ohlcv(50)
    (tmp_path / "csv").mkdir()
    (tmp_path / "pq").mkdir()
    csv = write_csv(df, tmp_path / "csv" / "X.csv")
    pq = tmp_path / "pq" / "X.parquet"
    if time_as_index:
        df.set_index("date").to_parquet(pq)
    else:
        df.to_parquet(pq, index=False)
    a, b = load(csv), load(pq)
    assert_same_market(a, b)
    assert_market_equals_frame(b, df)


def test_fingerprint_independent_of_timestamp_resolution(tmp_path):
    df = ohlcv(50)
    (tmp_path / "csv").mkdir()
    (tmp_path / "pq").mkdir()
    csv = write_csv(df, tmp_path / "csv" / "X.csv")
    ns = df.assign(date=df["date"].astype("datetime64[ns]"))
    ns.to_parquet(tmp_path / "pq" / "X.parquet", index=False)
    a, b = load(csv), load(tmp_path / "pq" / "X.parquet")
    assert a.index.equals(b.index)
    assert a.fingerprint == b.fingerprint


def test_fingerprint_changes_with_tiny_close_change(tmp_path):
    df = ohlcv(50)
    base = load(write_csv(df, tmp_path / "X.csv"))
    (tmp_path / "b").mkdir()
    changed = df.copy()
    changed.loc[25, "close"] = changed.loc[25, "close"] * (1 + 1e-9)
    changed.to_parquet(tmp_path / "b" / "X.parquet", index=False)
    other = load(tmp_path / "b" / "X.parquet")
    assert other.close[25, 0] != base.close[25, 0]
    assert other.fingerprint != base.fingerprint
    # and unchanged content in another file gives the base fingerprint again
    df.to_parquet(tmp_path / "b" / "X.parquet", index=False)
    assert load(tmp_path / "b" / "X.parquet").fingerprint == base.fingerprint


def test_fingerprint_depends_on_symbol_name(tmp_path):
    df = ohlcv(50)
    assert load(write_csv(df, tmp_path / "A.csv")).fingerprint != load(write_csv(df, tmp_path / "B.csv")).fingerprint


def test_fingerprint_ignores_column_order_and_case(tmp_path):
    df = ohlcv(50)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    base = load(write_csv(df, tmp_path / "a" / "X.csv"))
    shuffled = df[["date", "volume", "close", "low", "open", "high"]]
    m1 = load(write_csv(shuffled, tmp_path / "b" / "X.csv"))
    upper = df.rename(columns={c: c.capitalize() for c in df.columns})  # Date, Open, ..., Close
    assert "Close" in upper.columns
    upper = upper[["Close", "Date", "High", "Volume", "Low", "Open"]]
    m2 = load(write_csv(upper, tmp_path / "c" / "X.csv"))
    assert_same_market(base, m1)
    assert_same_market(base, m2)


def test_unknown_extra_columns_are_ignored(tmp_path):
    df = ohlcv(50)
    (tmp_path / "a").mkdir()
    base = load(write_csv(df, tmp_path / "a" / "X.csv"))
    extra = df.assign(trades=np.arange(50), note="x")
    assert_same_market(base, load(write_csv(extra, tmp_path / "X.csv")))


# ---------------------------------------------------------------------------------------------
# time column detection


@pytest.mark.parametrize("name", ["date", "Date", "datetime", "timestamp", "TIME"])
def test_time_column_by_name_anywhere(tmp_path, name):
    df = ohlcv(55)
    cols = ["open", "high", "low", "close", "volume", "date"]  # time column last
    m = load(write_csv(df[cols].rename(columns={"date": name}), tmp_path / "X.csv"))
    assert m.index.equals(pd.DatetimeIndex(df["date"]))
    assert m.index.name == "time"
    assert_market_equals_frame(m, df)


def test_time_column_is_first_column_when_unnamed(tmp_path):
    df = ohlcv(55)
    m = load(write_csv(df.rename(columns={"date": "when"}), tmp_path / "X.csv"))
    assert m.index.equals(pd.DatetimeIndex(df["date"]))
    assert_market_equals_frame(m, df)


def test_time_column_from_pandas_index_written_to_csv(tmp_path):
    df = ohlcv(55)
    path = tmp_path / "X.csv"
    df.set_index("date").rename_axis(None).to_csv(path)  # header starts with an empty name
    m = load(path)
    assert m.index.equals(pd.DatetimeIndex(df["date"]))
    assert_market_equals_frame(m, df)


def test_named_time_column_wins_over_first_column(tmp_path):
    df = ohlcv(55)
    df2 = df.rename(columns={"date": "timestamp"})
    df2.insert(0, "bar", [f"b{i}" for i in range(55)])  # first column is not a time
    m = load(write_csv(df2, tmp_path / "X.csv"))
    assert m.index.equals(pd.DatetimeIndex(df["date"]))


def test_timezone_aware_timestamps_become_naive_utc(tmp_path):
    df = ohlcv(55)
    local = df.assign(date=df["date"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    m = load(write_csv(local, tmp_path / "X.csv"))
    assert m.index.tz is None
    assert m.index.equals(pd.DatetimeIndex(df["date"]))


# ---------------------------------------------------------------------------------------------
# multi-asset


def test_multi_asset_aligned_on_common_timestamps(tmp_path):
    a = ohlcv(80, start="2021-01-01 00:00", seed=1)
    b = ohlcv(80, start="2021-01-01 20:00", seed=2)  # overlaps a's last 60 bars
    m = load(write_csv(a, tmp_path / "AAA.csv"), write_csv(b, tmp_path / "BBB.csv"))
    assert m.symbols == ("AAA", "BBB")
    assert m.n_assets == 2
    common = pd.DatetimeIndex(a["date"]).intersection(pd.DatetimeIndex(b["date"]))
    assert len(common) == 60
    assert m.index.equals(common)
    for f in FIELDS:
        arr = getattr(m, f)
        assert arr.shape == (60, 2)
        assert arr.flags.f_contiguous
        np.testing.assert_array_equal(arr[:, 0], a[f].to_numpy()[20:])
        np.testing.assert_array_equal(arr[:, 1], b[f].to_numpy()[:60])


def test_multi_asset_order_follows_paths(tmp_path):
    a, b = ohlcv(60, seed=1), ohlcv(60, seed=2)
    pa, pb = write_csv(a, tmp_path / "AAA.csv"), write_csv(b, tmp_path / "BBB.csv")
    m = load(pb, pa)
    assert m.symbols == ("BBB", "AAA")
    np.testing.assert_array_equal(m.close[:, 0], b["close"].to_numpy())


def test_long_format_file_equals_two_files(tmp_path):
    a = ohlcv(80, start="2021-01-01 00:00", seed=1)
    b = ohlcv(80, start="2021-01-01 20:00", seed=2)
    (tmp_path / "wide").mkdir()
    two = load(write_csv(a, tmp_path / "wide" / "AAA.csv"), write_csv(b, tmp_path / "wide" / "BBB.csv"))
    long = pd.concat([b.assign(symbol="BBB"), a.assign(symbol="AAA")]).sort_values(["date", "symbol"])
    long = long[["symbol", "date", "open", "high", "low", "close", "volume"]]
    one = load(write_csv(long, tmp_path / "long.csv"))
    assert_same_market(two, one)


def test_multi_asset_without_common_timestamps(tmp_path):
    a = ohlcv(55, start="2021-01-01")
    b = ohlcv(55, start="2022-01-01")
    with pytest.raises(DataError, match="share no timestamps"):
        load(write_csv(a, tmp_path / "A.csv"), write_csv(b, tmp_path / "B.csv"))


def test_same_symbol_twice_refused(tmp_path):
    (tmp_path / "x").mkdir()
    df = ohlcv(55)
    p1, p2 = write_csv(df, tmp_path / "S.csv"), write_csv(df, tmp_path / "x" / "S.csv")
    with pytest.raises(DataError) as ei:
        load(p1, p2)
    assert str(p2) in str(ei.value)
    assert "'S' given twice" in str(ei.value)


def test_multi_asset_error_names_the_symbols_file(tmp_path):
    a, b = ohlcv(55, seed=1), ohlcv(55, seed=2)
    b.loc[9, "volume"] = -1.0
    with pytest.raises(DataError) as ei:
        load(write_csv(a, tmp_path / "AAA.csv"), write_csv(b, tmp_path / "BBB.csv"))
    msg = str(ei.value)
    assert "BBB.csv" in msg and "AAA.csv" not in msg  # the file is the symbol
    assert re.search(r"\brow 10\b", msg)
    assert "volume" in msg


# ---------------------------------------------------------------------------------------------
# validation errors


HEADER = "date,open,high,low,close,volume"


def csv_text(n: int = 6, cells: dict | None = None, header: str = HEADER, dates: list[str] | None = None) -> str:
    """n valid hourly rows; `cells` maps (1-based row, column) to a replacement cell text."""
    cols = header.split(",")
    lines = [header]
    for r in range(1, n + 1):
        row = {
            "date": dates[r - 1] if dates else f"2021-01-01 {r - 1:02d}:00:00",
            "open": "10",
            "high": "12",
            "low": "9",
            "close": "11",
            "volume": "100",
        }
        for (rr, col), v in (cells or {}).items():
            if rr == r:
                row[col] = v
        lines.append(",".join(row[c] for c in cols))
    return "\n".join(lines) + "\n"


def _hours(*h: int) -> list[str]:
    return [f"2021-01-01 {x:02d}:00:00" for x in h]


ERROR_CASES = [
    # id, file name, content (None: do not create), expected regexes
    ("missing-file", "gone.csv", None, ["file not found"]),
    ("empty-file", "m.csv", b"", ["file is empty"]),
    ("header-only", "m.csv", HEADER + "\n", ["no rows"]),
    ("garbage-binary", "m.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x81" * 40, ["cannot parse"]),
    ("unterminated-quote", "m.csv", 'date,open\n"2021-01-01,1\n2021-01-02,2\n', ["cannot parse"]),
    ("garbage-parquet", "m.parquet", b"this is not parquet at all", ["cannot parse"]),
    ("unknown-suffix", "m.json", b'{"a": 1}', ["unknown file type", r"\.json"]),
    ("missing-volume", "m.csv", csv_text(header="date,open,high,low,close"), ["missing column", "volume"]),
    ("missing-two", "m.csv", csv_text(header="date,open,close,volume"), ["missing column", "high", "low"]),
    ("no-time-column", "m.csv", csv_text(header="open,high,low,close,volume"), ["no datetime column"]),
    ("bad-timestamp", "m.csv", csv_text(dates=_hours(0, 1) + ["yesterday-ish"] + _hours(3, 4, 5)), ["'date'", "not datetimes"]),
    ("non-numeric", "m.csv", csv_text(cells={(3, "close"): "abc"}), [r"\brow 3\b", "'close'", "not a number", "abc"]),
    ("nan-price", "m.csv", csv_text(cells={(2, "close"): ""}), [r"\brow 2\b", r"\bclose\b", "nan", "finite"]),
    ("nan-literal", "m.csv", csv_text(cells={(5, "open"): "NaN"}), [r"\brow 5\b", r"\bopen\b", "finite"]),
    ("inf-price", "m.csv", csv_text(cells={(4, "high"): "inf"}), [r"\brow 4\b", r"\bhigh\b", "inf", "finite"]),
    ("zero-price", "m.csv", csv_text(cells={(2, "close"): "0"}), [r"\brow 2\b", r"\bclose\b", "positive"]),
    ("negative-price", "m.csv", csv_text(cells={(3, "low"): "-9"}), [r"\brow 3\b", r"\blow\b", "positive"]),
    ("negative-volume", "m.csv", csv_text(cells={(6, "volume"): "-1"}), [r"\brow 6\b", r"\bvolume\b", "non-negative"]),
    ("inf-volume", "m.csv", csv_text(cells={(2, "volume"): "inf"}), [r"\brow 2\b", r"\bvolume\b", "finite"]),
    ("duplicate-timestamp", "m.csv", csv_text(dates=_hours(0, 1, 2, 2, 3, 4)), [r"\brow 4\b", "duplicate timestamp"]),
    ("unsorted", "m.csv", csv_text(dates=_hours(0, 1, 3, 2, 4, 5)), [r"\brow 4\b", "unsorted", "02:00"]),
    ("missing-timestamp", "m.csv", csv_text(dates=_hours(0, 1) + [""] + _hours(3, 4, 5)), [r"\brow 3\b", "missing timestamp"]),
    ("high-below-close", "m.csv", csv_text(cells={(2, "high"): "10.5"}), [r"\brow 2\b", "high"]),
    ("low-above-open", "m.csv", csv_text(cells={(5, "low"): "10.2"}), [r"\brow 5\b", "low"]),
]


@pytest.mark.parametrize(("name", "content", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_invalid_file_raises_data_error(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    with pytest.raises(DataError) as ei:
        load(path)
    msg = str(ei.value)
    assert str(path) in msg, msg
    for pattern in expected:
        assert re.search(pattern, msg), f"{pattern!r} not in {msg!r}"


def test_valid_csv_text_helper_loads(tmp_path):
    """The error cases above differ from a valid file only in the cell they change."""
    path = tmp_path / "ok.csv"
    path.write_text(csv_text())
    m = load(path)
    assert m.n_bars == 6
    np.testing.assert_array_equal(m.close[:, 0], np.full(6, 11.0))


# ---------------------------------------------------------------------------------------------
# check_length


def test_check_length(tmp_path):
    m = load(write_csv(ohlcv(120), tmp_path / "X.csv"))
    check_length(m, 70)  # 120 >= 70 + 50
    check_length(m, 10)
    with pytest.raises(DataError) as ei:
        check_length(m, 71)
    msg = str(ei.value)
    assert "120 bars" in msg
    assert "121" in msg  # what it needs
    with pytest.raises(DataError, match="120 bars"):
        check_length(m, 200)
    check_length(m, 100, min_after_warmup=20)
    with pytest.raises(DataError):
        check_length(m, 101, min_after_warmup=20)


# ---------------------------------------------------------------------------------------------
# bar frequency


def test_explicit_freq(tmp_path):
    m = load(write_csv(ohlcv(60, freq="1D"), tmp_path / "X.csv"), freq="4h")
    assert m.freq == pd.Timedelta("4h")


@pytest.mark.parametrize("freq", ["1h", "1D", "15min"])
def test_inferred_freq_from_csv(tmp_path, freq):
    m = load(write_csv(ohlcv(60, freq=freq), tmp_path / "X.csv"))
    assert m.freq == pd.Timedelta(freq)


# ---------------------------------------------------------------------------------------------
# synthetic market


def test_synthetic_default():
    m = load_market(DataConfig())
    assert m.symbols == ("SYN",)
    assert m.n_bars == 6000
    assert m.freq == pd.Timedelta("1h")
    assert m.index[0] == pd.Timestamp("2020-01-01")
    assert (np.diff(m.index.asi8) == np.diff(m.index.asi8)[0]).all()
    assert m.index[1] - m.index[0] == pd.Timedelta("1h")
    assert m.close.shape == (6000, 1)


def _check_sane(m: Market) -> None:
    for f in ("open", "high", "low", "close"):
        v = getattr(m, f)
        assert np.isfinite(v).all(), f
        assert (v > 0).all(), f
    assert np.isfinite(m.volume).all()
    assert (m.volume >= 0).all()
    assert (m.high >= np.maximum(m.open, m.close)).all()
    assert (m.low <= np.minimum(m.open, m.close)).all()


def test_synthetic_is_deterministic_and_sane():
    spec = SyntheticData(n_bars=800, freq="1D", start="2019-06-01", symbols=["AA", "BB"], seed=11)
    a = load_market(DataConfig(synthetic=spec))
    b = load_market(DataConfig(synthetic=SyntheticData(**spec.model_dump())))
    assert_same_market(a, b)
    assert a.symbols == ("AA", "BB")
    assert a.n_bars == 800
    assert a.freq == pd.Timedelta("1D")
    assert a.index.equals(pd.date_range("2019-06-01", periods=800, freq="1D"))
    for f in FIELDS:
        assert getattr(a, f).shape == (800, 2)
        assert getattr(a, f).flags.f_contiguous
    # every symbol has its own path
    assert not np.array_equal(a.close[:, 0], a.close[:, 1])
    _check_sane(a)


def test_synthetic_seed_changes_market():
    a = load_market(DataConfig(synthetic=SyntheticData(n_bars=300, seed=1)))
    b = load_market(DataConfig(synthetic=SyntheticData(n_bars=300, seed=2)))
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(a.close, b.close)
    _check_sane(a)
    _check_sane(b)


def test_synthetic_default_is_sane():
    _check_sane(load_market(DataConfig()))


def test_synthetic_start_end_slice():
    spec = SyntheticData(n_bars=200, freq="1h", start="2020-01-01")
    full = load_market(DataConfig(synthetic=spec))
    part = load_market(DataConfig(synthetic=spec, start="2020-01-02", end="2020-01-03 05:00"))
    assert part.index[0] == pd.Timestamp("2020-01-02")
    assert part.index[-1] == pd.Timestamp("2020-01-03 05:00")
    assert part.n_bars == 24 + 6
    np.testing.assert_array_equal(part.close, full.close[24:54])
    assert part.fingerprint != full.fingerprint


# ---------------------------------------------------------------------------------------------
# start / end on files


def test_start_end_slice_file(tmp_path):
    df = ohlcv(96, start="2021-01-01")  # 4 days, hourly
    path = write_csv(df, tmp_path / "X.csv")
    m = load(path, start="2021-01-02", end="2021-01-03 00:00")
    assert m.index[0] == pd.Timestamp("2021-01-02")
    assert m.index[-1] == pd.Timestamp("2021-01-03")
    assert m.n_bars == 25  # both ends inclusive
    assert_market_equals_frame(m, df.iloc[24:49])
    only_start = load(path, start="2021-01-04")
    assert only_start.n_bars == 24
    only_end = load(path, end="2021-01-01 09:30")
    assert only_end.n_bars == 10


# ---------------------------------------------------------------------------------------------
# get_market: once per process


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty process cache, and a counter of real loads."""
    monkeypatch.setattr(evo_data, "_cache", {})
    calls = []
    real = evo_data.load_market

    def counting(cfg):
        calls.append(cfg)
        return real(cfg)

    monkeypatch.setattr(evo_data, "load_market", counting)
    return calls


def test_get_market_loads_once(tmp_path, fresh_cache):
    cfg = DataConfig(paths=[str(write_csv(ohlcv(60), tmp_path / "X.csv"))])
    m1 = get_market(cfg)
    m2 = get_market(cfg)
    m3 = get_market(DataConfig(paths=list(cfg.paths)))  # an equal config, another object
    assert m1 is m2 is m3
    assert len(fresh_cache) == 1
    assert get_market(cfg, expected_fingerprint=m1.fingerprint) is m1


def test_get_market_reloads_after_file_change(tmp_path, fresh_cache):
    path = write_csv(ohlcv(60, seed=1), tmp_path / "X.csv")
    cfg = DataConfig(paths=[str(path)])
    m1 = get_market(cfg)
    new = ohlcv(60, seed=2)
    write_csv(new, path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    m2 = get_market(cfg)
    assert m2 is not m1
    assert len(fresh_cache) == 2
    assert m2.fingerprint != m1.fingerprint
    assert_market_equals_frame(m2, new)
    assert get_market(cfg) is m2
    assert len(fresh_cache) == 2


def test_get_market_fingerprint_mismatch(tmp_path, fresh_cache):
    cfg = DataConfig(paths=[str(write_csv(ohlcv(60), tmp_path / "X.csv"))])
    m = get_market(cfg)
    wrong = "0" * 64
    with pytest.raises(DataError) as ei:
        get_market(cfg, expected_fingerprint=wrong)
    msg = str(ei.value)
    assert "changed" in msg
    assert m.fingerprint[:12] in msg
    assert wrong[:12] in msg


def test_get_market_mismatch_after_file_change(tmp_path, fresh_cache):
    path = write_csv(ohlcv(60, seed=1), tmp_path / "X.csv")
    cfg = DataConfig(paths=[str(path)])
    fp = get_market(cfg).fingerprint
    write_csv(ohlcv(60, seed=3), path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    with pytest.raises(DataError, match="changed"):
        get_market(cfg, expected_fingerprint=fp)


def test_get_market_synthetic_cached(fresh_cache):
    cfg = DataConfig(synthetic=SyntheticData(n_bars=100, seed=5))
    assert get_market(cfg) is get_market(DataConfig(synthetic=SyntheticData(n_bars=100, seed=5)))
    other = get_market(DataConfig(synthetic=SyntheticData(n_bars=100, seed=6)))
    assert len(fresh_cache) == 2
    assert other.fingerprint != get_market(cfg).fingerprint


def test_get_market_propagates_data_error(tmp_path, fresh_cache):
    with pytest.raises(DataError, match="file not found"):
        get_market(DataConfig(paths=[str(tmp_path / "none.csv")]))


def test_long_format_and_sliced_errors_count_rows_in_the_file(tmp_path):
    """Row numbers in messages are data rows of the file, not of one symbol or of the sliced range."""
    a, b = ohlcv(55, seed=1), ohlcv(55, seed=2)
    long = pd.concat([a.assign(symbol="A"), b.assign(symbol="B")], ignore_index=True)
    long.loc[55 + 3, "volume"] = -1.0  # symbol B's 4th row is the file's 59th data row
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"long\.csv \[B\]: row 59 "):
        load(path)
    bad = ohlcv(80, seed=3)
    bad.loc[70, "close"] = 0.0
    p2 = write_csv(bad, tmp_path / "S.csv")
    with pytest.raises(DataError, match=r"row 71 "):
        load_market(DataConfig(paths=[str(p2)], start=str(bad["date"].iloc[60])))


@pytest.mark.parametrize("unit, scale", [("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)])
def test_integer_timestamps_are_read_in_their_unit(tmp_path, unit, scale):
    """Epoch timestamps as integers (ms from an exchange API, say) give the same bars and bar frequency
    as the dates they stand for: read as nanoseconds, epoch ms would start in 1970 and annualise
    1000x wrong."""
    from evo.config import DataConfig
    from evo.market import load_market

    t0 = 1_609_459_200  # 2021-01-01 00:00 UTC
    rows = [f"{(t0 + 3600 * i) * scale},{100 + i % 5},{102 + i % 5},{99 + i % 5},{101 + i % 5},{1000 + i}" for i in range(400)]
    path = tmp_path / "epoch.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows))
    m = load_market(DataConfig(paths=[str(path)]))
    assert str(m.index[0]) == "2021-01-01 00:00:00" and str(m.index[-1]) == "2021-01-17 15:00:00"
    assert m.freq == pd.Timedelta("1h")
