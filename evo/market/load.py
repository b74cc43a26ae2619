"""Market data: load and validate OHLCV files (or the synthetic market), fingerprint them, once per process.

A `Market` holds aligned (bars x symbols) float64 arrays. Tasks never receive
it as a parameter: they receive the `DataConfig` and call `get_market`, which
loads once per process and checks the fingerprint the run was started with.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evo.config import SYMBOL_MAX, DataConfig, SyntheticData, check_text
from evo.config.errors import DataError, first_line

FIELDS = ("open", "high", "low", "close", "volume")
_TIME_COLUMNS = ("date", "datetime", "timestamp", "time")


@dataclass(frozen=True, eq=False)
class Market:
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray  # (n_bars, n_symbols), Fortran order: one contiguous column per symbol
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    freq: pd.Timedelta
    fingerprint: str

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    def arrays(self, asset: int) -> dict[str, np.ndarray]:
        """One symbol's OHLCV as contiguous 1-D arrays (what the fast engine takes)."""
        return {f: getattr(self, f)[:, asset] for f in FIELDS}

    def frame(self, asset: int) -> pd.DataFrame:
        """One symbol's OHLCV as a DataFrame (what `reference_signals` takes)."""
        return pd.DataFrame({f: getattr(self, f)[:, asset] for f in FIELDS}, index=self.index)


# ---------------------------------------------------------------------------------------------
# loading


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".txt") or suffix == ".gz":
            df = pd.read_csv(path)
        else:
            raise DataError(f"{path}: unknown file type {suffix!r} (use .csv or .parquet)")
    except DataError:
        raise
    except Exception as e:  # pandas raises many types for malformed input
        raise DataError(f"{path}: cannot parse: {first_line(e)}") from None
    if len(df) == 0:
        raise DataError(f"{path}: no rows")
    return df


def _to_ohlcv(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Parse and validate one symbol's rows; messages give the 1-based data row of the file."""
    # a file read with a default index keeps each row's position in the file, also for one
    # symbol of a long file; a Parquet file with a datetime index is counted from its top
    file_rows = np.arange(1, len(df) + 1) if isinstance(df.index, pd.DatetimeIndex) else np.asarray(df.index) + 1
    df = df.rename(columns={c: str(c).strip().lower() for c in df.columns})
    if not isinstance(df.index, pd.DatetimeIndex):
        tcol = next((c for c in _TIME_COLUMNS if c in df.columns), None)
        if tcol is None:
            first = df.columns[0]
            if first in FIELDS:
                raise DataError(f"{source}: no datetime column (expected one of {list(_TIME_COLUMNS)} or a first column of timestamps)")
            tcol = first
        col = df[tcol]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            idx = _epoch(col, source, tcol, file_rows)
        else:
            try:
                idx = pd.to_datetime(col, utc=False, format="mixed")
            except (ValueError, TypeError, OverflowError) as e:
                raise DataError(f"{source}: column {tcol!r} is not datetimes: {first_line(e)}") from None
        df = df.drop(columns=[tcol])
        df.index = pd.DatetimeIndex(idx, name="time")
    missing = [f for f in FIELDS if f not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; have {list(df.columns)}")
    out = pd.DataFrame(index=df.index)
    for f in FIELDS:
        col = pd.to_numeric(df[f], errors="coerce")
        bad = col.isna() & df[f].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{source}: row {file_rows[row]}: column {f!r} is not a number: {df[f].iloc[row]!r}")
        out[f] = col.astype(np.float64)
    if out.index.tz is not None:
        out.index = out.index.tz_convert("UTC").tz_localize(None)
    validate_ohlcv(out, source, rows=file_rows)
    return out


#: epoch timestamps by magnitude: [low, high) of each unit, from 1973 to 5138
_EPOCH_UNITS = (("s", 1e8, 1e11), ("ms", 1e11, 1e14), ("us", 1e14, 1e17), ("ns", 1e17, 2**63))


def _epoch(col: pd.Series, source: str, tcol: str, file_rows: np.ndarray) -> pd.Series:
    """Numeric timestamps as epoch seconds, milliseconds, microseconds or nanoseconds, judged by their
    magnitude (every value in the same unit), or a DataError saying why not."""
    v = col.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {file_rows[row]}: missing timestamp in column {tcol!r}")
    for unit, lo, hi in _EPOCH_UNITS:
        inside = (v >= lo) & (v < hi)
        if inside.all():
            if unit == "ns":
                return pd.Series(pd.to_datetime(col.astype(np.int64), unit="ns"), index=col.index)
            return pd.Series(pd.to_datetime(v, unit=unit), index=col.index)
        if inside.any():
            row = int(np.flatnonzero(~inside)[0])
            raise DataError(
                f"{source}: row {file_rows[row]}: timestamp {col.iloc[row]!r} in column {tcol!r} is not in the "
                f"unit of the others (epoch {unit}); give every timestamp in one unit"
            )
    raise DataError(
        f"{source}: column {tcol!r} holds numbers such as {col.iloc[0]!r} that are not epoch seconds, milliseconds, "
        f"microseconds or nanoseconds after 1973; give dates like 2021-01-31 or epoch timestamps"
    )


def validate_ohlcv(df: pd.DataFrame, source: str, rows: np.ndarray | None = None) -> None:
    """Sorted unique timestamps, finite positive prices, finite non-negative volume, sane high/low.

    `rows` maps positions to the 1-based data row in the file, for the messages.
    """
    idx = df.index
    rownum = (lambda i: int(rows[i])) if rows is not None else (lambda i: i + 1)
    if idx.hasnans:
        raise DataError(f"{source}: row {rownum(int(np.flatnonzero(idx.isna())[0]))}: missing timestamp")
    dup = idx.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(f"{source}: row {rownum(row)}: duplicate timestamp {idx[row]}")
    if not idx.is_monotonic_increasing:
        row = int(np.flatnonzero(np.diff(idx.asi8) < 0)[0]) + 1
        raise DataError(f"{source}: row {rownum(row)}: timestamp {idx[row]} is before the previous row (unsorted)")
    for f in FIELDS:
        v = df[f].to_numpy()
        bad = ~np.isfinite(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: row {rownum(row)} ({idx[row]}): {f} is {v[row]} (must be finite)")
        bad = (v < 0) if f == "volume" else (v <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            need = "non-negative" if f == "volume" else "positive"
            raise DataError(f"{source}: row {rownum(row)} ({idx[row]}): {f} is {v[row]} (must be {need})")
    o, h, lo, c = (df[f].to_numpy() for f in ("open", "high", "low", "close"))
    bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {rownum(row)} ({idx[row]}): high/low do not contain open and close")


def _symbol_frames(cfg: DataConfig) -> dict[str, pd.DataFrame]:
    frames: dict[str, pd.DataFrame] = {}
    for p in cfg.paths:
        path = Path(p)
        raw = _read_file(path)
        cols = {str(c).strip().lower(): c for c in raw.columns}
        if "symbol" in cols:  # long format: one file, many symbols
            for sym, part in raw.groupby(cols["symbol"], sort=True):
                sym = _symbol(f"{sym}", path)
                if sym in frames:
                    raise DataError(f"{path}: symbol {sym!r} given twice")
                frames[sym] = _to_ohlcv(part.drop(columns=[cols["symbol"]]), f"{path} [{sym}]")
        else:
            sym = _symbol(path.stem, path)
            if sym in frames:
                raise DataError(f"{path}: symbol {sym!r} given twice")
            frames[sym] = _to_ohlcv(raw, str(path))
    return frames


def loaded_frames(obj, source: str) -> dict[str, pd.DataFrame]:
    """Validated per-symbol OHLCV frames from what a data loader returned: {symbol: DataFrame}, or one
    DataFrame with a `symbol` column (each frame a datetime index or a time column, as a file has)."""
    if isinstance(obj, pd.DataFrame):
        cols = {str(c).strip().lower(): c for c in obj.columns}
        if "symbol" not in cols:
            raise DataError(f"{source}: returned one DataFrame without a 'symbol' column; return {{symbol: DataFrame}}")
        obj = {str(sym): part.drop(columns=[cols["symbol"]]) for sym, part in obj.groupby(cols["symbol"], sort=True)}
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, pd.DataFrame) for v in obj.values()):
        raise DataError(f"{source}: expected {{symbol: DataFrame}} of OHLCV bars, got {type(obj).__name__}")
    return {_symbol(str(sym), Path(source)): _to_ohlcv(df, f"{source} [{sym}]") for sym, df in obj.items()}


def _symbol(name: str, path: Path) -> str:
    """A symbol name that prints safely (it appears in tables, logs and the HTML report)."""
    try:
        return check_text(name, f"symbol {name!r}", SYMBOL_MAX)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None


def timestamp(value: str) -> pd.Timestamp:
    """A config timestamp on the market's clock: naive UTC, in nanoseconds (1677-09-21 to 2262-04-11);
    evo.run.preflight has refused the others."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        return ts
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return ts.as_unit("ns")  # OutOfBoundsDatetime (a ValueError) outside the nanosecond range


def _slice(df: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    if cfg.start:
        df = df[df.index >= timestamp(cfg.start)]
    if cfg.end:
        df = df[df.index <= timestamp(cfg.end)]
    return df


def _infer_freq(index: pd.DatetimeIndex, source: str) -> pd.Timedelta:
    if len(index) < 2:
        raise DataError(f"{source}: need at least 2 bars to infer the bar frequency")
    return pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))), unit="ns")


def fingerprint(index: pd.DatetimeIndex, symbols: tuple[str, ...], arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the content (timestamps, symbols, OHLCV values), independent of file format."""
    h = hashlib.sha256()
    h.update(json.dumps(list(symbols)).encode())
    # pandas keeps s/ms/us/ns resolutions apart: hash nanoseconds so the file format cannot matter
    h.update(np.ascontiguousarray(index.as_unit("ns").asi8).tobytes())
    for f in FIELDS:
        h.update(np.ascontiguousarray(arrays[f], dtype="<f8").tobytes(order="F"))
    return h.hexdigest()


def build_market(frames: dict[str, pd.DataFrame], freq: str | None, source: str) -> Market:
    """Align validated per-symbol frames on their common timestamps."""
    if not frames:
        raise DataError(f"{source}: no market data")
    empty = [s for s, df in frames.items() if len(df) == 0]
    if empty:
        raise DataError(f"{source}: no bars left for {empty} (check data.start / data.end)")
    symbols = tuple(frames)
    index = frames[symbols[0]].index
    for sym in symbols[1:]:
        index = index.intersection(frames[sym].index)
    if len(index) == 0:
        raise DataError(f"{source}: the symbols {list(symbols)} share no timestamps")
    arrays = {
        f: np.asfortranarray(np.column_stack([frames[s].loc[index, f].to_numpy() for s in symbols]))
        for f in FIELDS
    }
    td = pd.Timedelta(freq) if freq else _infer_freq(index, source)
    return Market(
        index=pd.DatetimeIndex(index, name="time"),
        symbols=symbols,
        freq=td,
        fingerprint=fingerprint(index, symbols, arrays),
        **arrays,
    )


def load_market(cfg: DataConfig) -> Market:
    """Load and validate the market a DataConfig describes."""
    if cfg.paths:
        frames = {s: _slice(df, cfg) for s, df in _symbol_frames(cfg).items()}
        source = cfg.paths[0] if len(cfg.paths) == 1 else f"{len(cfg.paths)} files"
        return build_market(frames, cfg.freq, source)
    assert cfg.synthetic is not None
    from evo.market.synthetic import synthetic_frames

    frames = synthetic_frames(cfg.synthetic)
    for sym, df in frames.items():
        validate_ohlcv(df, f"synthetic market [{sym}]")
    frames = {s: _slice(df, cfg) for s, df in frames.items()}
    return build_market(frames, cfg.freq or cfg.synthetic.freq, "synthetic market")


def check_length(market: Market, max_window: int, min_after_warmup: int = 50) -> None:
    """The largest window must leave bars to trade on."""
    need = max_window + min_after_warmup
    if market.n_bars < need:
        raise DataError(
            f"market has {market.n_bars} bars; the largest window ({max_window}) needs at least {need} "
            f"({min_after_warmup} after warm-up). Narrow the window bounds or give more data."
        )


# ---------------------------------------------------------------------------------------------
# one load per process

_cache: dict[str, Market] = {}
_cache_lock = threading.Lock()
#: markets this process has loaded from files or generated (a Dask worker shows 0: it is sent them)
loads = 0
#: markets by fingerprint that another process sent this one (`install`): a Dask worker's
_installed: dict[str, Market] = {}


def install(market: Market) -> None:
    """Keep a market sent from the flow's process, so `get_market` finds it by fingerprint without
    reading any file (at most 4 kept, the oldest dropped)."""
    with _cache_lock:
        if market.fingerprint not in _installed and len(_installed) >= 4:
            _installed.pop(next(iter(_installed)))
        _installed[market.fingerprint] = market


def installs() -> int:
    """Markets this process holds because they were sent to it."""
    return len(_installed)


def _cache_key(cfg: DataConfig) -> str:
    stats = []
    for p in cfg.paths:
        try:
            st = Path(p).stat()
            stats.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((p, None, None))
    return json.dumps([cfg.model_dump(mode="json"), stats], sort_keys=True)


def get_market(cfg: DataConfig, expected_fingerprint: str | None = None) -> Market:
    """The market for `cfg`, loaded at most once per process (and again if a file changed).

    With `expected_fingerprint`, refuse data whose content differs from what
    the run was started on.
    """
    if expected_fingerprint is not None:
        sent = _installed.get(expected_fingerprint)
        if sent is not None:
            return sent
    key = _cache_key(cfg)
    with _cache_lock:
        market = _cache.get(key)
        if market is None:
            global loads
            market = load_market(cfg)
            loads += 1
            if len(_cache) >= 4:
                _cache.pop(next(iter(_cache)))
            _cache[key] = market
    if expected_fingerprint is not None and market.fingerprint != expected_fingerprint:
        raise DataError(
            f"market data changed: fingerprint {market.fingerprint[:12]} differs from the run's "
            f"{expected_fingerprint[:12]}"
        )
    return market
