"""The fast engine's input checks: user arrays and options into the kernels' arrays and records.

Everything a caller may get wrong is refused here, in one line that names the argument, before a
kernel runs: the kernels trust their inputs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd

from evo.engine.enums import MIN_SIZE, Direction, OppositeEntryMode, SimSettings, SizeType, map_enum, params_dt

#: vectorbt's default `returns.year_freq`; annualisation is year / bar.
YEAR = pd.Timedelta(days=365)


def ann_factor(freq) -> float:
    """Bars in a 365-day year of bars of duration `freq`."""
    td = pd.Timedelta(freq)
    if td <= pd.Timedelta(0):
        raise ValueError(f"freq must be a positive duration, got {freq!r}")
    return YEAR / td


def bar_duration(close, freq):
    """`freq`, or the frequency of close's index when freq is None."""
    if freq is None:
        freq = getattr(getattr(close, "index", None), "freq", None)
        if freq is None:
            raise ValueError("freq is required (the bar duration, e.g. '1h')")
    return freq


def frozen(x):
    """x with each of its arrays a read-only view, without a copy: an ndarray, a NamedTuple of them
    (Prices, Signals), a mapping of them (a symbol's OHLCV arrays) or a dataclass holding them (an
    IndicatorCache).

    numba compiles a kernel once per argument type, and an array's mutability is part of its type: a
    market array that arrives read-only (deserialised on a worker, or a user's read-only buffer) and a
    writable one would each compile the whole simulation. Every input array reaches a kernel through
    this, so each kernel compiles once; the arrays a kernel writes (its outputs, the signal buffers a
    family fills) are never passed through it, and signals go through `owned`."""
    if isinstance(x, np.ndarray):
        if not x.flags.writeable:
            return x
        v = x.view()
        v.flags.writeable = False
        return v
    if isinstance(x, tuple):
        items = (frozen(a) for a in x)
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    if isinstance(x, dict):
        return {k: frozen(v) for k, v in x.items()}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.replace(x, **{f.name: frozen(getattr(x, f.name)) for f in dataclasses.fields(x)})
    return x


def owned(signals):
    """Signals whose arrays are writable and C-contiguous (a copy only of one that is not): the layout of the
    signal buffers a fused family fills, so a kernel given signals simulates them with the same compiled
    column as a family's fused kernel. The other inputs go through `frozen`."""
    return type(signals)(*(np.require(a, requirements=["C", "W"]) for a in signals))


def signal_rows(a, name: str, n_bars: int) -> tuple[np.ndarray, pd.Index]:
    """(one contiguous boolean row per strategy, the strategies' labels) of signals with one row per bar."""
    if isinstance(a, pd.Series):
        cols = pd.Index([a.name if a.name is not None else 0])
        arr = a.to_numpy()[:, None]
    elif isinstance(a, pd.DataFrame):
        cols = a.columns
        arr = a.to_numpy()
    else:
        arr = np.asarray(a)
        if arr.ndim == 1:
            arr = arr[:, None]
        cols = pd.RangeIndex(arr.shape[1]) if arr.ndim == 2 else pd.RangeIndex(0)
    if arr.ndim != 2 or arr.shape[0] != n_bars:
        raise ValueError(f"{name} must have one row per bar ({n_bars}), got shape {arr.shape}")
    # the kernel walks each strategy's bars in order
    return np.ascontiguousarray(_booleans(arr, name).T), cols


def asset_signal_rows(a, name: str, n_bars: int, n_assets: int) -> np.ndarray:
    """(n_strategies, n_assets, n_bars) from (bars, assets) for one strategy or (strategies, bars, assets)."""
    arr = a.to_numpy() if isinstance(a, pd.DataFrame) else np.asarray(a)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (n_bars, n_assets):
        raise ValueError(
            f"{name} must be (bars, assets) = {(n_bars, n_assets)} or (strategies, bars, assets), got {arr.shape}"
        )
    return np.ascontiguousarray(_booleans(arr, name).transpose(0, 2, 1))


def _booleans(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype != np.bool_:
        if not np.isin(arr, [0, 1]).all():
            raise ValueError(f"{name} must be boolean")
        arr = arr.astype(np.bool_)
    return arr


def positive_prices(close, name="close") -> np.ndarray:
    """close as float64, refused unless non-empty, finite and positive."""
    c = np.asarray(close, dtype=np.float64)
    if c.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(c).all() or (c <= 0).any():
        raise ValueError(f"{name} must be finite and positive")
    return c


def ohlc(close: np.ndarray, open=None, high=None, low=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low) for the stops, shaped like close: vectorbt's stand-ins where one is not given
    (open: the close; high, low: the higher and lower of open and close)."""
    out = {}
    for name, v in (("open", open), ("high", high), ("low", low)):
        if v is None:
            continue
        a = np.asarray(v, dtype=np.float64)
        if a.shape != close.shape:
            raise ValueError(f"{name} must have the shape of close {close.shape}, got {a.shape}")
        if not np.isfinite(a).all() or (a <= 0).any():
            raise ValueError(f"{name} must be finite and positive")
        out[name] = np.ascontiguousarray(a)
    o = out.get("open", close)
    h = out.get("high", close if open is None else np.maximum(o, close))
    lo = out.get("low", close if open is None else np.minimum(o, close))
    return o, h, lo


def _per_strategy(v, n: int, name: str, dtype=np.float64) -> np.ndarray:
    """A scalar or one value per strategy, as an array of n."""
    arr = np.asarray(v, dtype=dtype).reshape(-1)
    if arr.size not in (1, n):
        raise ValueError(f"{name} must be a scalar or one value per strategy ({n}), got {arr.size} values")
    return np.broadcast_to(arr, (n,)).copy()


def _enum_per_strategy(v, n: int, name: str, enum) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind in "iu" and a.ndim == 1 and a.size in (1, n):  # codes already (a family's genes)
        bad = a[~np.isin(a, list(enum))]
        if bad.size:
            map_enum(int(bad[0]), enum, name)  # raises, naming the allowed values
        return np.broadcast_to(a.astype(np.int64), (n,)).copy()
    values = [v] if isinstance(v, (str, int, np.integer)) else list(np.asarray(v, dtype=object).reshape(-1))
    if len(values) not in (1, n):
        raise ValueError(f"{name} must be one value or one per strategy ({n}), got {len(values)} values")
    codes = np.array([map_enum(x, enum, name) for x in values], dtype=np.int64)
    return np.broadcast_to(codes, (n,)).copy()


def _stops(v, n: int, name: str) -> np.ndarray:
    if v is None:
        return np.full(n, np.nan)
    arr = _per_strategy(v, n, name)
    if (arr[~np.isnan(arr)] < 0).any() or np.isinf(arr).any():
        raise ValueError(f"{name} must be finite and >= 0 (NaN disables it)")
    return arr


def make_params(n: int, *, direction="longonly", size=np.inf, size_type="amount", sl_stop=None, tp_stop=None,
                sl_trail=False) -> np.ndarray:
    """One params_dt record per strategy from scalars or per-strategy values (vectorbt names and values)."""
    params = np.empty(n, dtype=params_dt)
    params["direction"] = _enum_per_strategy(direction, n, "direction", Direction)
    params["size_type"] = _enum_per_strategy(size_type, n, "size_type", SizeType)
    sizes = _per_strategy(size, n, "size")
    if np.isnan(sizes).any() or (sizes <= 0).any():
        raise ValueError("size must be positive (inf: all in)")
    pct = params["size_type"] == SizeType.Percent
    if (sizes[pct] > 1).any():
        raise ValueError("size must be at most 1 with size_type='percent' (a fraction of the available cash)")
    params["size"] = sizes
    params["sl_stop"] = _stops(sl_stop, n, "sl_stop")
    params["tp_stop"] = _stops(tp_stop, n, "tp_stop")
    trail = np.asarray(sl_trail).reshape(-1)
    if trail.dtype != np.bool_ and not np.isin(trail, [0, 1]).all():
        raise ValueError("sl_trail must be boolean")
    params["sl_trail"] = _per_strategy(trail.astype(np.bool_), n, "sl_trail", np.bool_)
    return params


def check_reversal(params: np.ndarray, ls_mode: bool, upon_opposite_entry: int) -> None:
    """vectorbt raises when a percent-sized position is reversed by an opposite entry; refuse it up front."""
    if upon_opposite_entry not in (OppositeEntryMode.Reverse, OppositeEntryMode.ReverseReduce):
        return
    both = np.ones(len(params), bool) if ls_mode else params["direction"] == Direction.Both
    if (both & (params["size_type"] == SizeType.Percent)).any():
        raise ValueError(
            "size_type='percent' cannot reverse a position (vectorbt refuses it): use direction 'longonly' or "
            "'shortonly', or upon_opposite_entry='close'"
        )


def block_edges(n_bars: int, n_blocks: int) -> np.ndarray:
    """Bar offsets [0, ..., n_bars] of n_blocks contiguous blocks, as equal as whole bars allow: the blocks
    whose sums of returns evaluation gives for CSCV (evo.oos.cscv)."""
    if n_blocks < 2 or n_bars < 2 * n_blocks:
        raise ValueError(f"{n_bars} bars cannot make {n_blocks} blocks of at least 2 bars")
    return (np.arange(n_blocks + 1) * n_bars) // n_blocks


def sim_settings(*, init_cash, fees, slippage, freq, upon_opposite_entry=OppositeEntryMode.ReverseReduce,
                 start: int = 0, edges=None) -> SimSettings:
    """The SimSettings record of a call, its costs and cash checked; `edges`: the block offsets whose
    sums of returns the drivers emit (None: none)."""
    for name, v in (("init_cash", init_cash), ("fees", fees), ("slippage", slippage)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0")
    if init_cash <= 0:
        raise ValueError("init_cash must be positive")
    af = ann_factor(freq)
    edges = frozen(np.ascontiguousarray(edges if edges is not None else [], dtype=np.int64).reshape(-1))
    if len(edges) == 1 or np.any(np.diff(edges) < 0) or (len(edges) and edges[0] < 0):
        raise ValueError("block edges must be none, or at least two non-decreasing offsets from 0 up")
    return SimSettings(float(init_cash), float(fees), float(slippage), MIN_SIZE, af, math.pow(af, 0.5),
                       int(upon_opposite_entry), int(start), edges)


def short_signals(short_entries, short_exits, entries: np.ndarray, direction, rows) -> tuple:
    """(short entries, short exits, direction) as the kernels take them: arrays shaped like `entries` (a
    missing one all False) when either is given, then direction has no effect (vectorbt warns; so do
    we); else arrays of last axis 0. `rows(a, name)` checks and shapes one of them."""
    if short_entries is None and short_exits is None:
        empty = np.empty(entries.shape[:-1] + (0,), dtype=np.bool_)
        return empty, empty, direction
    se = rows(short_entries, "short_entries") if short_entries is not None else np.zeros_like(entries)
    sx = rows(short_exits, "short_exits") if short_exits is not None else np.zeros_like(entries)
    for name, a in (("short_entries", se), ("short_exits", sx)):
        if a.shape != entries.shape:
            raise ValueError(f"{name} shape {a.shape} differs from entries shape {entries.shape}")
    if not (isinstance(direction, str) and direction.lower() == "longonly"):
        warnings.warn("direction has no effect if short_entries and short_exits are set", stacklevel=3)
    return se, sx, "longonly"
