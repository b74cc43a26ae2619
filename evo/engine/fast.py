"""The fast engine's Python front: checks inputs, shapes arrays for the kernels in nb.py."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from evo.metrics import METRICS

#: vectorbt's default `returns.year_freq`; annualisation is year / bar.
YEAR = pd.Timedelta(days=365)

# Concurrent calls into numba's parallel kernels from several Python threads would
# oversubscribe the cores (and the workqueue threading layer aborts on it).
kernel_lock = threading.Lock()


def ann_factor(freq) -> float:
    td = pd.Timedelta(freq)
    if td <= pd.Timedelta(0):
        raise ValueError(f"freq must be a positive duration, got {freq!r}")
    return YEAR / td


def _signals(a, name: str, n_bars: int) -> tuple[np.ndarray, pd.Index]:
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
        cols = pd.RangeIndex(arr.shape[1])
    if arr.ndim != 2 or arr.shape[0] != n_bars:
        raise ValueError(f"{name} must have one row per bar ({n_bars}), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, [0, 1]).all():
            raise ValueError(f"{name} must be boolean")
        arr = arr.astype(np.bool_)
    # one contiguous row per strategy: the kernel walks each strategy's bars in order
    return np.ascontiguousarray(arr.T), cols


def _stops(v, n: int, name: str) -> np.ndarray:
    if v is None:
        return np.full(n, np.nan)
    arr = np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1), (n,)).copy()
    if (arr[~np.isnan(arr)] < 0).any() or np.isinf(arr).any():
        raise ValueError(f"{name} must be finite and >= 0 (NaN disables it)")
    return arr


def simulate_signals(
    close,
    entries,
    exits,
    *,
    init_cash: float,
    fees: float,
    slippage: float,
    sl_stop=None,
    tp_stop=None,
    freq,
) -> pd.DataFrame:
    """Metrics of long-only, all-in strategies, equal to vectorbt's `Portfolio.from_signals`.

    close: prices, one per bar (Series or 1-D array), finite and positive.
    entries, exits: booleans, one row per bar and one column per strategy (DataFrame, Series or array).
    sl_stop, tp_stop: None, a fraction, or one fraction per strategy (NaN: no stop).
    freq: bar duration ('1h', '1D', Timedelta) for annualising Sharpe and Sortino over a 365-day year.

    Returns one row per strategy (indexed like entries' columns) with the columns
    total_return, sharpe_ratio, sortino_ratio, max_drawdown, n_trades, win_rate, exposure.
    """
    import numba

    from evo.engine import nb

    c = np.ascontiguousarray(np.asarray(close, dtype=np.float64).reshape(-1))
    if c.size == 0:
        raise ValueError("close is empty")
    if not np.isfinite(c).all() or (c <= 0).any():
        raise ValueError("close must be finite and positive")
    e, cols = _signals(entries, "entries", c.size)
    x, xcols = _signals(exits, "exits", c.size)
    if x.shape != e.shape:
        raise ValueError(f"exits shape {x.shape[::-1]} differs from entries shape {e.shape[::-1]}")
    for name, v in (("init_cash", init_cash), ("fees", fees), ("slippage", slippage)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0")
    if init_cash <= 0:
        raise ValueError("init_cash must be positive")
    if freq is None:
        freq = getattr(getattr(close, "index", None), "freq", None)
        if freq is None:
            raise ValueError("freq is required (the bar duration, e.g. '1h')")
    n = e.shape[0]
    with kernel_lock:
        out = nb.simulate_signals_nb(
            c, e, x, _stops(sl_stop, n, "sl_stop"), _stops(tp_stop, n, "tp_stop"),
            float(init_cash), float(fees), float(slippage), ann_factor(freq), numba.get_num_threads(),
        )
    return pd.DataFrame(out, index=cols, columns=list(METRICS))


#: signal buffers of one block of strategies: 2 bytes per strategy-bar. The block size is what
#: keeps memory flat as the population grows.
SIGNAL_BLOCK_BYTES = 32 * 1024 * 1024


def block_size(n_bars: int, n_items: int) -> int:
    return max(1, min(n_items, SIGNAL_BLOCK_BYTES // (2 * n_bars)))


def memory_model(n_bars: int, n_cache_rows: int, n_threads: int) -> tuple[int, int]:
    """(fixed bytes, bytes per strategy) of one fast-engine chunk on one asset: the indicator
    cache, the signal buffers of the generic path (the larger case), per-thread returns."""
    block = SIGNAL_BLOCK_BYTES // (2 * n_bars) or 1
    fixed = n_cache_rows * n_bars * 8 + 2 * block * n_bars + n_threads * n_bars * 10
    return fixed, 8 * 24  # metrics, genome, stops and cache row indices


def evaluate_arrays(arrays: dict, family, X: np.ndarray, names, settings, freq, window=None) -> np.ndarray:
    """Metrics (len(X), len(METRICS)) of genomes X on one symbol's OHLCV arrays.

    window = (start, stop): indicators and signals see bars [0, stop), the
    portfolio trades bars [start, stop) only (None: every bar).
    """
    import numba

    from evo import indicators
    from evo.engine import nb

    start, stop = window if window is not None else (0, len(arrays["close"]))
    n = len(X)
    arrays = {k: np.ascontiguousarray(v[:stop], dtype=np.float64) for k, v in arrays.items()}
    n_bars = len(arrays["close"])
    if n == 0:
        return np.empty((0, len(METRICS)))
    if not 0 <= start < n_bars:
        raise ValueError(f"window start {start} outside 0..{n_bars - 1}")
    close = arrays["close"]
    sl, tp = family.stop_arrays(X, names)
    sim = (float(settings.init_cash), float(settings.fees), float(settings.slippage), ann_factor(freq),
           numba.get_num_threads(), int(start))
    out = np.empty((n, len(METRICS)))
    with kernel_lock:
        cache = indicators.build(family.indicators, arrays, X, names)
        # strategies that read the same indicator rows run next to each other: the rows stay in cache
        order = np.lexsort(cache.rows.T[::-1]) if cache.rows.shape[1] else np.arange(n)
        try:
            sorted_cache = indicators.IndicatorCache(cache.values, cache.rows[order])
            out[order] = family.fast_metrics(sorted_cache, X[order], names, arrays, sl[order], tp[order], sim)
            return out
        except NotImplementedError:
            pass
        # generic path: signals for a block of strategies, then the simulation of that block
        b = block_size(n_bars, n)
        entries = np.empty((b, n_bars), dtype=np.bool_)
        exits = np.empty((b, n_bars), dtype=np.bool_)
        for start in range(0, n, b):
            idx = order[start : start + b]
            k = len(idx)
            view = indicators.IndicatorCache(cache.values, cache.rows[idx])
            family.fast_signals(view, X[idx], names, arrays, entries[:k], exits[:k])
            out[idx] = nb.simulate_signals_nb(close, entries[:k], exits[:k], sl[idx], tp[idx], *sim)
    return out


def returns_of(arrays: dict, family, x: np.ndarray, names, settings, freq, window=None) -> np.ndarray:
    """The per-bar returns of one genome over its window (what its metrics were computed from)."""
    from evo import indicators
    from evo.engine import nb

    start, stop = window if window is not None else (0, len(arrays["close"]))
    arrays = {k: np.ascontiguousarray(v[:stop], dtype=np.float64) for k, v in arrays.items()}
    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_bars = len(arrays["close"])
    with kernel_lock:
        cache = indicators.build(family.indicators, arrays, X, names)
        entries = np.empty((1, n_bars), dtype=np.bool_)
        exits = np.empty((1, n_bars), dtype=np.bool_)
        family.fast_signals(cache, X, names, arrays, entries, exits)
    sl, tp = family.stop_arrays(X, names)
    buf = np.empty(n_bars)
    out = np.empty(nb.N_METRICS)
    nb.simulate_column_nb(
        arrays["close"], entries[0], exits[0], sl[0], tp[0], float(settings.init_cash), float(settings.fees),
        float(settings.slippage), ann_factor(freq), buf, out, int(start),
    )
    return buf[start:].copy()
