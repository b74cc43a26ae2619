"""The fast engine's Python front: checks inputs, shapes arrays and records for the kernels in nb.py."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd

from evo.engine.enums import (
    BATCH,
    MIN_SIZE,
    Direction,
    OppositeEntryMode,
    SimSettings,
    SizeType,
    map_enum,
    params_dt,
)
from evo.config.metrics import METRICS

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
        cols = pd.RangeIndex(arr.shape[1]) if arr.ndim == 2 else pd.RangeIndex(0)
    if arr.ndim != 2 or arr.shape[0] != n_bars:
        raise ValueError(f"{name} must have one row per bar ({n_bars}), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, [0, 1]).all():
            raise ValueError(f"{name} must be boolean")
        arr = arr.astype(np.bool_)
    # one contiguous row per strategy: the kernel walks each strategy's bars in order
    return np.ascontiguousarray(arr.T), cols


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


def sim_settings(*, init_cash, fees, slippage, freq, upon_opposite_entry=OppositeEntryMode.ReverseReduce,
                 start: int = 0) -> SimSettings:
    for name, v in (("init_cash", init_cash), ("fees", fees), ("slippage", slippage)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0")
    if init_cash <= 0:
        raise ValueError("init_cash must be positive")
    return SimSettings(float(init_cash), float(fees), float(slippage), MIN_SIZE, ann_factor(freq),
                       int(upon_opposite_entry), int(start))


def _close(close, name="close") -> np.ndarray:
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


def _freq_of(close, freq):
    if freq is None:
        freq = getattr(getattr(close, "index", None), "freq", None)
        if freq is None:
            raise ValueError("freq is required (the bar duration, e.g. '1h')")
    return freq


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
    short_entries=None,
    short_exits=None,
    direction="longonly",
    upon_opposite_entry="reversereduce",
    size=np.inf,
    size_type="amount",
    open=None,
    high=None,
    low=None,
    sl_trail=False,
) -> pd.DataFrame:
    """Metrics of signal strategies, equal to vectorbt's `Portfolio.from_signals` (same names and defaults).

    close: prices, one per bar (Series or 1-D array), finite and positive.
    entries, exits: booleans, one row per bar and one column per strategy (DataFrame, Series or array).
    short_entries, short_exits: like entries; when given, entries/exits trade the long side only,
        these the short side, and `direction` has no effect.
    direction: 'longonly' (default), 'shortonly' or 'both' (entries go long, exits go short),
        one or one per strategy.
    upon_opposite_entry: 'reversereduce' (default; as 'reverse': close and open the other side),
        'close', 'closereduce' or 'ignore'.
    size, size_type: per order, 'amount' of the asset (default, size=inf: all in), 'value' in cash,
        or 'percent' of the available cash (0 < size <= 1); one or one per strategy.
    sl_stop, tp_stop: None, a fraction, or one fraction per strategy (NaN: no stop).
    sl_trail: a trailing stop-loss (one or one per strategy).
    open, high, low: prices like close; when given, stops fill within the bar (at the level, or at
        the open when the bar opens beyond it).
    freq: bar duration ('1h', '1D', Timedelta) for annualising Sharpe and Sortino over a 365-day year.

    Returns one row per strategy (indexed like entries' columns) with the columns
    total_return, sharpe_ratio, sortino_ratio, max_drawdown, n_trades, win_rate, exposure.
    """
    import numba

    from evo.engine import nb

    c = np.ascontiguousarray(_close(close).reshape(-1))
    e, cols = _signals(entries, "entries", c.size)
    x, _ = _signals(exits, "exits", c.size)
    if x.shape != e.shape:
        raise ValueError(f"exits shape {x.shape[::-1]} differs from entries shape {e.shape[::-1]}")
    n = e.shape[0]
    ls_mode = short_entries is not None or short_exits is not None
    if ls_mode:
        se = _signals(short_entries, "short_entries", c.size)[0] if short_entries is not None else np.zeros_like(e)
        sx = _signals(short_exits, "short_exits", c.size)[0] if short_exits is not None else np.zeros_like(e)
        for name, a in (("short_entries", se), ("short_exits", sx)):
            if a.shape != e.shape:
                raise ValueError(f"{name} shape {a.shape[::-1]} differs from entries shape {e.shape[::-1]}")
        if not (isinstance(direction, str) and direction.lower() == "longonly"):
            warnings.warn("direction has no effect if short_entries and short_exits are set", stacklevel=2)
            direction = "longonly"
    else:
        se = sx = np.empty((0, 0), dtype=np.bool_)
    params = make_params(n, direction=direction, size=size, size_type=size_type, sl_stop=sl_stop, tp_stop=tp_stop,
                         sl_trail=sl_trail)
    uoe = map_enum(upon_opposite_entry, OppositeEntryMode, "upon_opposite_entry")
    check_reversal(params, ls_mode, uoe)
    sim = sim_settings(init_cash=init_cash, fees=fees, slippage=slippage, freq=_freq_of(close, freq),
                       upon_opposite_entry=uoe)
    o, h, lo = ohlc(c, open, high, low)
    with kernel_lock:
        out, _ = nb.simulate_signals_nb(o, h, lo, c, e, x, se, sx, params, sim, numba.get_num_threads())
    return pd.DataFrame(out, index=cols, columns=list(METRICS))


def _asset_signals(a, name: str, n_bars: int, n_assets: int) -> np.ndarray:
    """(n_strategies, n_assets, n_bars) from (bars, assets) for one strategy or (strategies, bars, assets)."""
    arr = a.to_numpy() if isinstance(a, pd.DataFrame) else np.asarray(a)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (n_bars, n_assets):
        raise ValueError(
            f"{name} must be (bars, assets) = {(n_bars, n_assets)} or (strategies, bars, assets), got {arr.shape}"
        )
    if arr.dtype != np.bool_:
        if not np.isin(arr, [0, 1]).all():
            raise ValueError(f"{name} must be boolean")
        arr = arr.astype(np.bool_)
    return np.ascontiguousarray(arr.transpose(0, 2, 1))


def simulate_portfolio(
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
    short_entries=None,
    short_exits=None,
    direction="longonly",
    upon_opposite_entry="reversereduce",
    size=None,
    size_type=None,
    open=None,
    high=None,
    low=None,
    sl_trail=False,
) -> pd.DataFrame:
    """Metrics of one strategy's signals on several assets traded as ONE portfolio with shared cash,
    equal to vectorbt's `Portfolio.from_signals(..., group_by=True, cash_sharing=True)` (all columns
    one group, orders column by column within a bar).

    close (and open, high, low): (bars, assets). entries, exits (and short_entries, short_exits):
    (bars, assets) for one strategy, or (strategies, bars, assets) for several, one portfolio each.
    Other arguments as `simulate_signals`, one value or one per strategy, the same for each of its assets.
    Equal allocation by default: size=init_cash / n_assets with size_type='value', so every asset's
    entry buys (or sells short) the same cash value whatever the order in which the assets enter;
    a buy the remaining cash cannot pay for is filled partially.

    Returns one row per strategy with the group's total_return, sharpe_ratio, sortino_ratio,
    max_drawdown (of the portfolio value), n_trades (all assets' trades), win_rate (of those) and
    exposure (the fraction of bars ending with a position in any asset).
    """
    import numba

    from evo.engine import nb

    c = _close(close)
    if c.ndim != 2:
        raise ValueError(f"close must be (bars, assets), got shape {c.shape}")
    n_bars, n_assets = c.shape
    e = _asset_signals(entries, "entries", n_bars, n_assets)
    x = _asset_signals(exits, "exits", n_bars, n_assets)
    if x.shape != e.shape:
        raise ValueError(f"exits has {x.shape[0]} strategies, entries {e.shape[0]}")
    n = e.shape[0]
    ls_mode = short_entries is not None or short_exits is not None
    if ls_mode:
        se = _asset_signals(short_entries, "short_entries", n_bars, n_assets) if short_entries is not None \
            else np.zeros_like(e)
        sx = _asset_signals(short_exits, "short_exits", n_bars, n_assets) if short_exits is not None \
            else np.zeros_like(e)
        if se.shape != e.shape or sx.shape != e.shape:
            raise ValueError("short_entries and short_exits must have as many strategies as entries")
        if not (isinstance(direction, str) and direction.lower() == "longonly"):
            warnings.warn("direction has no effect if short_entries and short_exits are set", stacklevel=2)
            direction = "longonly"
    else:
        se = sx = np.empty((0, 0, 0), dtype=np.bool_)
    if size is None and size_type is None:
        size, size_type = float(init_cash) / n_assets, "value"
    params = make_params(n, direction=direction, size=np.inf if size is None else size,
                         size_type="amount" if size_type is None else size_type, sl_stop=sl_stop, tp_stop=tp_stop,
                         sl_trail=sl_trail)
    uoe = map_enum(upon_opposite_entry, OppositeEntryMode, "upon_opposite_entry")
    check_reversal(params, ls_mode, uoe)
    sim = sim_settings(init_cash=init_cash, fees=fees, slippage=slippage, freq=_freq_of(close, freq),
                       upon_opposite_entry=uoe)
    o, h, lo = ohlc(c, open, high, low)
    # one contiguous row per asset
    prices = [np.ascontiguousarray(a.T) for a in (o, h, lo, c)]
    with kernel_lock:
        out, _ = nb.simulate_portfolios_nb(*prices, e, x, se, sx, params, sim, numba.get_num_threads())
    return pd.DataFrame(out, columns=list(METRICS))


#: signal buffers of one block of strategies: 2 bytes per strategy-bar. The block size is what
#: keeps memory flat as the population grows.
SIGNAL_BLOCK_BYTES = 32 * 1024 * 1024


def block_size(n_bars: int, n_items: int, n_assets: int = 1) -> int:
    return max(1, min(n_items, SIGNAL_BLOCK_BYTES // (2 * n_bars * n_assets)))


def memory_model(n_bars: int, n_cache_rows: int, n_threads: int, portfolio_assets: int = 0) -> tuple[int, int]:
    """(fixed bytes, bytes per strategy) of one fast-engine chunk: the indicator cache, the signal
    buffers of the generic path (the larger case), per-thread returns (a batch) and signals. A
    portfolio over `portfolio_assets` symbols holds every symbol's indicator cache at once."""
    assets = max(1, portfolio_assets)
    block = block_size(n_bars, SIGNAL_BLOCK_BYTES, assets)
    fixed = (assets * n_cache_rows * n_bars * 8 + 2 * block * assets * n_bars + 2 * block * n_bars
             + n_threads * n_bars * (8 * BATCH + 2))
    return fixed, 8 * 24 + params_dt.itemsize  # metrics, genome, stops, cache row indices, params record


def _window_arrays(arrays: dict, stop: int) -> dict:
    return {k: np.ascontiguousarray(v[:stop], dtype=np.float64) for k, v in arrays.items()}


def _setup(arrays: dict, family, X: np.ndarray, names, settings, freq, window, *, params=None, ohlc_stops=None,
           upon_opposite_entry="reversereduce", portfolio_assets: int = 0):
    """What every evaluation of genomes needs: the window's arrays, the per-genome records, the settings."""
    start, stop = window if window is not None else (0, len(arrays["close"]))
    arrays = _window_arrays(arrays, stop)
    n_bars = len(arrays["close"])
    if not 0 <= start < n_bars:
        raise ValueError(f"window start {start} outside 0..{n_bars - 1}")
    if params is None:
        params = family.sim_params(X, names, settings.init_cash, portfolio_assets)
    elif params.dtype != params_dt or params.shape != (len(X),):
        raise ValueError(f"params must be {len(X)} records of evo.engine.enums.params_dt")
    uoe = map_enum(upon_opposite_entry, OppositeEntryMode, "upon_opposite_entry")
    check_reversal(params, False, uoe)
    sim = sim_settings(init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage, freq=freq,
                       upon_opposite_entry=uoe, start=start)
    ohlc_stops = settings.ohlc_stops if ohlc_stops is None else ohlc_stops
    return arrays, params, sim, ohlc_stops


def _prices(arrays: dict, ohlc_stops: bool) -> tuple:
    """(open, high, low, close) for the stops: from the bar's range, or the close four times (close-only stops)."""
    close = arrays["close"]
    return (arrays["open"], arrays["high"], arrays["low"], close) if ohlc_stops else (close, close, close, close)


def _signals_of(family, cache, idx, X, names, arrays, entries, exits) -> None:
    """Signals of the genomes X[idx] into entries/exits[:len(idx)], from the rows of the whole cache."""
    from evo.engine import indicators

    k = len(idx)
    view = indicators.IndicatorCache(cache.values, cache.rows[idx])
    family.fast_signals(view, X[idx], names, arrays, entries[:k], exits[:k])


def evaluate_arrays(arrays: dict, family, X: np.ndarray, names, settings, freq, window=None, *, params=None,
                    ohlc_stops: bool | None = None, upon_opposite_entry="reversereduce",
                    fingerprints: np.ndarray | None = None) -> np.ndarray:
    """Metrics (len(X), len(METRICS)) of genomes X on one symbol's OHLCV arrays.

    window = (start, stop): indicators and signals see bars [0, stop), the
    portfolio trades bars [start, stop) only (None: every bar).
    params: one params_dt record per genome (direction, size, size_type, stops, trailing);
    None: the family's own (`family.sim_params`, from the genomes' trading genes). ohlc_stops: stops
    fill within the bar from the open, high and low, else from the close only (None: settings.ohlc_stops).
    fingerprints: an array of len(X) that receives each genome's trade fingerprint (int64), computed in
    the same pass (evo.engine.nb.order_hash_nb).
    """
    import numba

    from evo.engine import indicators
    from evo.engine import nb

    n = len(X)
    if n == 0:
        return np.empty((0, len(METRICS)))
    arrays, params, sim, ohlc_stops = _setup(arrays, family, X, names, settings, freq, window, params=params,
                                             ohlc_stops=ohlc_stops, upon_opposite_entry=upon_opposite_entry)
    prices = _prices(arrays, ohlc_stops)
    n_threads = numba.get_num_threads()
    out = np.empty((n, len(METRICS)))
    fps = np.empty(n, dtype=np.uint64)
    no_signals = np.empty((0, 0), dtype=np.bool_)
    with kernel_lock:
        cache = indicators.build(family.indicators, arrays, X, names)
        # strategies that read the same indicator rows run next to each other: the rows stay in cache
        order = np.lexsort(cache.rows.T[::-1]) if cache.rows.shape[1] else np.arange(n)
        if family.fused:
            sorted_cache = indicators.IndicatorCache(cache.values, cache.rows[order])
            out[order], fps[order] = family.fast_metrics(sorted_cache, X[order], names, arrays, prices, params[order],
                                                         sim, n_threads)
        else:
            # signals for a block of strategies, then the simulation of that block
            b = block_size(len(arrays["close"]), n)
            entries = np.empty((b, len(arrays["close"])), dtype=np.bool_)
            exits = np.empty_like(entries)
            for first in range(0, n, b):
                idx = order[first : first + b]
                k = len(idx)
                _signals_of(family, cache, idx, X, names, arrays, entries, exits)
                out[idx], fps[idx] = nb.simulate_signals_nb(*prices, entries[:k], exits[:k], no_signals, no_signals,
                                                            params[idx], sim, n_threads)
    if fingerprints is not None:
        fingerprints[:] = fps.view(np.int64)
    return out


def evaluate_portfolio(arrays_list: list[dict], family, X: np.ndarray, names, settings, freq, window=None, *,
                       params=None, ohlc_stops: bool | None = None, upon_opposite_entry="reversereduce",
                       fingerprints: np.ndarray | None = None) -> np.ndarray:
    """Metrics (len(X), len(METRICS)) of genomes X, each trading all the symbols (`arrays_list`, one
    OHLCV dict each, on common bars) as ONE portfolio with shared cash: vectorbt's
    from_signals(..., group_by=True, cash_sharing=True) with equal allocation by value
    (`family.sim_params(..., portfolio_assets=n_assets)`). window, params, ohlc_stops as
    `evaluate_arrays`; fingerprints: an (n_assets, len(X)) array receiving each symbol's trade
    fingerprint within the portfolio.
    """
    import numba

    from evo.engine import nb

    from evo.engine import indicators

    n, n_assets = len(X), len(arrays_list)
    if n == 0:
        return np.empty((0, len(METRICS)))
    first, params, sim, ohlc_stops = _setup(arrays_list[0], family, X, names, settings, freq, window, params=params,
                                            ohlc_stops=ohlc_stops, upon_opposite_entry=upon_opposite_entry,
                                            portfolio_assets=n_assets)
    stop = len(first["close"])
    windows = [_window_arrays(a, stop) for a in arrays_list]
    per_asset = [_prices(w, ohlc_stops) for w in windows]
    # (assets, bars) views of bar-major arrays: a bar's prices on every symbol are adjacent, as the
    # portfolio kernel reads them (bar by bar, symbol by symbol)
    prices = [np.stack([p[k] for p in per_asset], axis=1).T for k in range(4)]
    out = np.empty((n, len(METRICS)))
    fps = np.empty((n, n_assets), dtype=np.uint64)
    no_signals = np.empty((0, 0, 0), dtype=np.bool_)
    # block by block: every symbol's signals of a block of genomes (from every symbol's cache), then its
    # portfolios, while the block's signals are still in the processor's caches
    b = block_size(stop, n, n_assets)
    entries = np.empty((b, n_assets, stop), dtype=np.bool_)
    exits = np.empty_like(entries)
    one_entries = np.empty((b, stop), dtype=np.bool_)
    one_exits = np.empty_like(one_entries)
    with kernel_lock:
        caches = [indicators.build(family.indicators, w, X, names) for w in windows]
        # the same genomes give the same rows on every symbol: those reading the same rows run together
        rows = caches[0].rows
        order = np.lexsort(rows.T[::-1]) if rows.shape[1] else np.arange(n)
        for start in range(0, n, b):
            idx = order[start : start + b]
            k = len(idx)
            for a, (cache, w) in enumerate(zip(caches, windows)):
                _signals_of(family, cache, idx, X, names, w, one_entries, one_exits)
                entries[:k, a] = one_entries[:k]
                exits[:k, a] = one_exits[:k]
            out[idx], fps[idx] = nb.simulate_portfolios_nb(*prices, entries[:k], exits[:k], no_signals, no_signals,
                                                           params[idx], sim, numba.get_num_threads())
    if fingerprints is not None:
        fingerprints[:] = fps.T.view(np.int64)
    return out


def returns_of(arrays: dict, family, x: np.ndarray, names, settings, freq, window=None) -> np.ndarray:
    """The per-bar returns of one genome over its window (what its metrics were computed from)."""
    from evo.engine import nb
    from evo.engine.enums import N_METRICS

    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    arrays, params, sim, ohlc_stops = _setup(arrays, family, X, names, settings, freq, window)
    from evo.engine import indicators

    n_bars = len(arrays["close"])
    with kernel_lock:
        cache = indicators.build(family.indicators, arrays, X, names)
        entries = np.empty((1, n_bars), dtype=np.bool_)
        exits = np.empty((1, n_bars), dtype=np.bool_)
        family.fast_signals(cache, X, names, arrays, entries, exits)
    buf = np.empty(n_bars)
    out = np.empty(N_METRICS)
    no_signals = np.empty(0, dtype=np.bool_)
    nb.simulate_column_nb(*_prices(arrays, ohlc_stops), entries[0], exits[0], no_signals, no_signals, params[0], sim,
                          buf, out)
    return buf[sim.start:].copy()


def portfolio_returns_of(arrays_list: list[dict], family, x: np.ndarray, names, settings, freq, window=None
                         ) -> np.ndarray:
    """The per-bar returns of one genome's shared-cash portfolio over all symbols (reducer 'portfolio')."""
    from evo.engine import nb
    from evo.engine.enums import N_METRICS

    from evo.engine import indicators

    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_assets = len(arrays_list)
    first, params, sim, ohlc_stops = _setup(arrays_list[0], family, X, names, settings, freq, window,
                                            portfolio_assets=n_assets)
    stop = len(first["close"])
    windows = [_window_arrays(a, stop) for a in arrays_list]
    per_asset = [_prices(w, ohlc_stops) for w in windows]
    prices = [np.ascontiguousarray(np.stack([p[k] for p in per_asset])) for k in range(4)]
    entries = np.empty((n_assets, stop), dtype=np.bool_)
    exits = np.empty_like(entries)
    with kernel_lock:
        for a, w in enumerate(windows):
            cache = indicators.build(family.indicators, w, X, names)
            family.fast_signals(cache, X, names, w, entries[a : a + 1], exits[a : a + 1])
    buf = np.empty(stop)
    no_signals = np.empty((0, 0), dtype=np.bool_)
    nb.simulate_group_nb(*prices, entries, exits, no_signals, no_signals, params[0], sim, buf,
                         np.empty(N_METRICS), np.empty(n_assets, dtype=np.uint64))
    return buf[sim.start:].copy()
