"""The fast engine's Python front: shapes the checked inputs (evo.engine.inputs) into the arrays and
records of the kernels in nb.py, and evaluates a family's genomes block by block."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from evo.config.metrics import METRICS
from evo.engine.enums import BATCH, OppositeEntryMode, Prices, Signals, Workspace, map_enum, params_dt, trade_dt
from evo.engine.inputs import (  # noqa: F401  (ann_factor, make_params, sim_settings: the engine's API)
    ann_factor,
    asset_signal_rows,
    bar_duration,
    check_reversal,
    frozen,
    make_params,
    owned,
    ohlc,
    positive_prices,
    short_signals,
    signal_rows,
    sim_settings,
)

# Concurrent calls into numba's parallel kernels from several Python threads would
# oversubscribe the cores (and the workqueue threading layer aborts on it).
kernel_lock = threading.Lock()


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
    freq: bar duration ('1h', '1D', Timedelta) for annualising over a 365-day year.

    Returns one row per strategy (indexed like entries' columns) with a column per metric of the
    metric table (evo.config.metrics), named as there.
    """
    import numba

    from evo.engine import nb

    c = np.ascontiguousarray(positive_prices(close).reshape(-1))
    e, cols = signal_rows(entries, "entries", c.size)
    x, _ = signal_rows(exits, "exits", c.size)
    if x.shape != e.shape:
        raise ValueError(f"exits shape {x.shape[::-1]} differs from entries shape {e.shape[::-1]}")
    n = e.shape[0]
    se, sx, direction = short_signals(short_entries, short_exits, e, direction,
                                      lambda a, name: signal_rows(a, name, c.size)[0])
    params = make_params(n, direction=direction, size=size, size_type=size_type, sl_stop=sl_stop, tp_stop=tp_stop,
                         sl_trail=sl_trail)
    uoe = map_enum(upon_opposite_entry, OppositeEntryMode, "upon_opposite_entry")
    check_reversal(params, se.shape[-1] > 0, uoe)
    sim = sim_settings(init_cash=init_cash, fees=fees, slippage=slippage, freq=bar_duration(close, freq),
                       upon_opposite_entry=uoe)
    o, h, lo = ohlc(c, open, high, low)
    with kernel_lock:
        out, _, _ = nb.simulate_signals_nb(frozen(Prices(o, h, lo, c)), owned(Signals(e, x, se, sx)),
                                           frozen(params), sim, numba.get_num_threads())
    return pd.DataFrame(out, index=cols, columns=list(METRICS))


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

    Returns one row per strategy with the group's metrics, a column per metric of the metric table:
    of the portfolio's value and returns, of all assets' trades (and fees), exposure being the
    fraction of bars ending with a position in any asset.
    """
    import numba

    from evo.engine import nb

    c = positive_prices(close)
    if c.ndim != 2:
        raise ValueError(f"close must be (bars, assets), got shape {c.shape}")
    n_bars, n_assets = c.shape
    e = asset_signal_rows(entries, "entries", n_bars, n_assets)
    x = asset_signal_rows(exits, "exits", n_bars, n_assets)
    if x.shape != e.shape:
        raise ValueError(f"exits has {x.shape[0]} strategies, entries {e.shape[0]}")
    n = e.shape[0]
    se, sx, direction = short_signals(short_entries, short_exits, e, direction,
                                      lambda a, name: asset_signal_rows(a, name, n_bars, n_assets))
    if size is None and size_type is None:
        size, size_type = float(init_cash) / n_assets, "value"
    params = make_params(n, direction=direction, size=np.inf if size is None else size,
                         size_type="amount" if size_type is None else size_type, sl_stop=sl_stop, tp_stop=tp_stop,
                         sl_trail=sl_trail)
    uoe = map_enum(upon_opposite_entry, OppositeEntryMode, "upon_opposite_entry")
    check_reversal(params, se.shape[-1] > 0, uoe)
    sim = sim_settings(init_cash=init_cash, fees=fees, slippage=slippage, freq=bar_duration(close, freq),
                       upon_opposite_entry=uoe)
    o, h, lo = ohlc(c, open, high, low)
    # one contiguous row per asset
    prices = _bar_major([Prices(*(a[:, k] for a in (o, h, lo, c))) for k in range(n_assets)])
    with kernel_lock:
        out, _, _ = nb.simulate_portfolios_nb(prices, owned(Signals(e, x, se, sx)), frozen(params), sim,
                                              numba.get_num_threads())
    return pd.DataFrame(out, columns=list(METRICS))


#: signal buffers of one block of strategies: 2 bytes per strategy-bar. The block size is what
#: keeps memory flat as the population grows.
SIGNAL_BLOCK_BYTES = 32 * 1024 * 1024


def block_size(n_bars: int, n_items: int, n_assets: int = 1) -> int:
    return max(1, min(n_items, SIGNAL_BLOCK_BYTES // (2 * n_bars * n_assets)))


def memory_model(n_bars: int, n_cache_rows: int, n_threads: int, portfolio_assets: int = 0) -> tuple[int, int]:
    """(fixed bytes, bytes per strategy) of one fast-engine chunk: the indicator cache, the signal
    buffers of the generic path (the larger case), each thread's scratch (a batch of returns, signals
    and a trade log per asset), and per strategy its metrics, genome, stops, cache row indices and
    params record. A portfolio over `portfolio_assets` symbols holds every symbol's indicator cache at once."""
    assets = max(1, portfolio_assets)
    block = block_size(n_bars, SIGNAL_BLOCK_BYTES, assets)
    per_thread = n_bars * (8 * BATCH + assets * (2 + trade_dt.itemsize))
    fixed = assets * n_cache_rows * n_bars * 8 + 2 * block * assets * n_bars + 2 * block * n_bars + n_threads * per_thread
    # a metrics row, and about 17 words of genome, stops and cache row indices
    return fixed, 8 * (len(METRICS) + 17) + params_dt.itemsize


def _window_arrays(arrays: dict, stop: int) -> dict:
    return frozen({k: np.ascontiguousarray(v[:stop], dtype=np.float64) for k, v in arrays.items()})


def _setup(arrays: dict, family, X: np.ndarray, names, settings, freq, window, *, params=None, ohlc_stops=None,
           upon_opposite_entry="reversereduce", portfolio_assets: int = 0, edges=None):
    """What every evaluation of genomes needs: the window's arrays, the per-genome records, the settings
    (with `edges`, block offsets within the window, checked to cut exactly its bars)."""
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
    if edges is not None and (len(edges) < 2 or edges[0] != 0 or edges[-1] != n_bars - start):
        raise ValueError(f"block edges must cut the window's {n_bars - start} bars from 0, got {list(edges)}")
    sim = sim_settings(init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage, freq=freq,
                       upon_opposite_entry=uoe, start=start, edges=edges)
    ohlc_stops = settings.ohlc_stops if ohlc_stops is None else ohlc_stops
    return arrays, frozen(params), sim, ohlc_stops


def _prices(arrays: dict, ohlc_stops: bool) -> Prices:
    """The Prices of one symbol for the stops: from the bar's range, or the close four times (close-only stops)."""
    close = arrays["close"]
    return frozen(Prices(arrays["open"], arrays["high"], arrays["low"], close) if ohlc_stops else Prices(*(close,) * 4))


def _bar_major(per_asset: list[Prices]) -> Prices:
    """One Prices of (assets, bars) views of bar-major arrays, from each symbol's: a bar's prices on every
    symbol are adjacent, as the portfolio kernel reads them (bar by bar, symbol by symbol)."""
    return frozen(Prices(*(np.stack([p[k] for p in per_asset], axis=1).T for k in range(4))))


def _signals_of(family, cache, idx, X, names, arrays, entries, exits) -> None:
    """Signals of the genomes X[idx] into entries/exits[:len(idx)], from the rows of the whole cache."""
    from evo.engine import indicators

    k = len(idx)
    view = indicators.IndicatorCache(cache.values, cache.rows[idx])
    family.fast_signals(view, X[idx], names, arrays, entries[:k], exits[:k])


def evaluate_arrays(arrays: dict, family, X: np.ndarray, names, settings, freq, window=None, *, params=None,
                    ohlc_stops: bool | None = None, upon_opposite_entry="reversereduce",
                    fingerprints: np.ndarray | None = None, edges=None, blocks: np.ndarray | None = None
                    ) -> np.ndarray:
    """Metrics (len(X), len(METRICS)) of genomes X on one symbol's OHLCV arrays.

    window = (start, stop): indicators and signals see bars [0, stop), the
    portfolio trades bars [start, stop) only (None: every bar).
    params: one params_dt record per genome (direction, size, size_type, stops, trailing);
    None: the family's own (`family.sim_params`, from the genomes' trading genes). ohlc_stops: stops
    fill within the bar from the open, high and low, else from the close only (None: settings.ohlc_stops).
    fingerprints: an array of len(X) that receives each genome's trade fingerprint (int64), computed in
    the same pass (evo.engine.nb.order_hash_nb).
    edges, blocks: block offsets [0, ..., window bars] and a (len(X), len(edges) - 1, 2) array that
    receives each genome's sum and sum of squares of bar returns on each block (a NaN return counts as
    0), computed in the Sharpe ratio's pass (evo.engine.nb.sharpe_batch_nb): what CSCV needs.
    """
    import numba

    from evo.engine import indicators, nb

    n = len(X)
    if n == 0:
        return np.empty((0, len(METRICS)))
    arrays, params, sim, ohlc_stops = _setup(arrays, family, X, names, settings, freq, window, params=params,
                                             ohlc_stops=ohlc_stops, upon_opposite_entry=upon_opposite_entry,
                                             edges=edges)
    prices = _prices(arrays, ohlc_stops)
    n_threads = numba.get_num_threads()
    out = np.empty((n, len(METRICS)))
    fps = np.empty(n, dtype=np.uint64)
    sums = np.empty((n, max(len(sim.edges) - 1, 0), 2))
    with kernel_lock:
        cache = indicators.build(family.indicators, arrays, X, names)
        # strategies that read the same indicator rows run next to each other: the rows stay in cache
        order = np.lexsort(cache.rows.T[::-1]) if cache.rows.shape[1] else np.arange(n)
        if family.fused:
            sorted_cache = indicators.IndicatorCache(cache.values, cache.rows[order])
            out[order], fps[order], sums[order] = family.fast_metrics(sorted_cache, X[order], names, arrays, prices,
                                                                      params[order], sim, n_threads)
        else:
            # signals for a block of strategies, then the simulation of that block
            b = block_size(len(arrays["close"]), n)
            entries = np.empty((b, len(arrays["close"])), dtype=np.bool_)
            exits = np.empty_like(entries)
            no_signals = np.empty((b, 0), dtype=np.bool_)
            for first in range(0, n, b):
                idx = order[first : first + b]
                k = len(idx)
                _signals_of(family, cache, idx, X, names, arrays, entries, exits)
                signals = owned(Signals(entries[:k], exits[:k], no_signals[:k], no_signals[:k]))
                out[idx], fps[idx], sums[idx] = nb.simulate_signals_nb(prices, signals, frozen(params[idx]), sim,
                                                                       n_threads)
    if fingerprints is not None:
        fingerprints[:] = fps.view(np.int64)
    if blocks is not None:
        blocks[:] = sums
    return out


def evaluate_portfolio(arrays_list: list[dict], family, X: np.ndarray, names, settings, freq, window=None, *,
                       params=None, ohlc_stops: bool | None = None, upon_opposite_entry="reversereduce",
                       fingerprints: np.ndarray | None = None, edges=None, blocks: np.ndarray | None = None
                       ) -> np.ndarray:
    """Metrics (len(X), len(METRICS)) of genomes X, each trading all the symbols (`arrays_list`, one
    OHLCV dict each, on common bars) as ONE portfolio with shared cash: vectorbt's
    from_signals(..., group_by=True, cash_sharing=True) with equal allocation by value
    (`family.sim_params(..., portfolio_assets=n_assets)`). window, params, ohlc_stops as
    `evaluate_arrays`; fingerprints: an (n_assets, len(X)) array receiving each symbol's trade
    fingerprint within the portfolio; edges, blocks: as `evaluate_arrays`, of the portfolio's returns.
    """
    import numba

    from evo.engine import indicators, nb

    n, n_assets = len(X), len(arrays_list)
    if n == 0:
        return np.empty((0, len(METRICS)))
    first, params, sim, ohlc_stops = _setup(arrays_list[0], family, X, names, settings, freq, window, params=params,
                                            ohlc_stops=ohlc_stops, upon_opposite_entry=upon_opposite_entry,
                                            portfolio_assets=n_assets, edges=edges)
    stop = len(first["close"])
    windows = [_window_arrays(a, stop) for a in arrays_list]
    prices = _bar_major([_prices(w, ohlc_stops) for w in windows])
    out = np.empty((n, len(METRICS)))
    fps = np.empty((n, n_assets), dtype=np.uint64)
    sums = np.empty((n, max(len(sim.edges) - 1, 0), 2))
    # block by block: every symbol's signals of a block of genomes (from every symbol's cache), then its
    # portfolios, while the block's signals are still in the processor's caches
    b = block_size(stop, n, n_assets)
    entries = np.empty((b, n_assets, stop), dtype=np.bool_)
    exits = np.empty_like(entries)
    no_signals = np.empty((b, 0, 0), dtype=np.bool_)
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
            signals = owned(Signals(entries[:k], exits[:k], no_signals[:k], no_signals[:k]))
            out[idx], fps[idx], sums[idx] = nb.simulate_portfolios_nb(prices, signals, frozen(params[idx]), sim,
                                                                      numba.get_num_threads())
    if fingerprints is not None:
        fingerprints[:] = fps.T.view(np.int64)
    if blocks is not None:
        blocks[:] = sums
    return out


def _workspace(close: np.ndarray) -> Workspace:
    """A Workspace for one strategy simulated outside the kernels' drivers, as drive_nb lays one out: signal
    buffers shaped like `close` (bars, or (columns, bars) for a group) and a trade log per column."""
    n_bars = close.shape[-1]
    n_cols = close.size // n_bars
    return Workspace(np.empty(n_bars), np.empty(close.shape, dtype=np.bool_), np.empty(close.shape, dtype=np.bool_),
                     np.empty((n_cols, n_bars), dtype=trade_dt), np.empty(len(METRICS)),
                     np.empty(n_cols, dtype=np.uint64))


def returns_of(arrays: dict, family, x: np.ndarray, names, settings, freq, window=None) -> np.ndarray:
    """The per-bar returns of one genome over its window (what its metrics were computed from)."""
    from evo.engine import indicators, nb

    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    arrays, params, sim, ohlc_stops = _setup(arrays, family, X, names, settings, freq, window)
    n_bars = len(arrays["close"])
    with kernel_lock:
        cache = indicators.build(family.indicators, arrays, X, names)
        entries = np.empty((1, n_bars), dtype=np.bool_)
        exits = np.empty((1, n_bars), dtype=np.bool_)
        family.fast_signals(cache, X, names, arrays, entries, exits)
    prices = _prices(arrays, ohlc_stops)
    ws = _workspace(prices.close)
    no_signals = np.empty(0, dtype=np.bool_)
    nb.simulate_column_nb(prices, owned(Signals(entries[0], exits[0], no_signals, no_signals)), params[0], sim, ws)
    return ws.returns[sim.start:].copy()


def portfolio_returns_of(arrays_list: list[dict], family, x: np.ndarray, names, settings, freq, window=None
                         ) -> np.ndarray:
    """The per-bar returns of one genome's shared-cash portfolio over all symbols (reducer 'portfolio')."""
    from evo.engine import indicators, nb

    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_assets = len(arrays_list)
    first, params, sim, ohlc_stops = _setup(arrays_list[0], family, X, names, settings, freq, window,
                                            portfolio_assets=n_assets)
    stop = len(first["close"])
    windows = [_window_arrays(a, stop) for a in arrays_list]
    prices = _bar_major([_prices(w, ohlc_stops) for w in windows])
    entries = np.empty((n_assets, stop), dtype=np.bool_)
    exits = np.empty_like(entries)
    with kernel_lock:
        for a, w in enumerate(windows):
            cache = indicators.build(family.indicators, w, X, names)
            family.fast_signals(cache, X, names, w, entries[a : a + 1], exits[a : a + 1])
    ws = _workspace(prices.close)
    no_signals = np.empty((0, 0), dtype=np.bool_)
    nb.simulate_group_nb(prices, owned(Signals(entries, exits, no_signals, no_signals)), params[0], sim, ws)
    return ws.returns[sim.start:].copy()


def sums_by_block(returns: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(sum, sum of squares, count) of returns [..., bars] on each block [edges[k], edges[k + 1]):
    shape [..., blocks, 3]. A NaN return (no value to return from) counts as a flat bar, 0."""
    r = np.nan_to_num(np.asarray(returns, dtype=np.float64), nan=0.0)
    out = np.empty(r.shape[:-1] + (len(edges) - 1, 3))
    out[..., 0] = np.add.reduceat(r, edges[:-1], axis=-1)
    out[..., 1] = np.add.reduceat(r * r, edges[:-1], axis=-1)
    out[..., 2] = np.diff(edges)
    return out


def block_sums_of(arrays: dict, family, X: np.ndarray, names, settings, freq, window, edges: np.ndarray
                  ) -> np.ndarray:
    """sums_by_block of each genome's per-bar returns over its window ([len(X), blocks, 3]), from the
    evaluation's own pass (evaluate_arrays with edges): what CSCV needs of a phenotype whose sums were
    not kept when it was evaluated."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    edges = np.asarray(edges, dtype=np.int64)
    out = np.empty((len(X), len(edges) - 1, 3))
    if len(X):
        evaluate_arrays(arrays, family, X, names, settings, freq, window, edges=edges, blocks=out[..., :2])
    out[..., 2] = np.diff(edges)
    return out
