"""Numba kernels of the fast engine: one pass per strategy from signals to every metric.

Arrays in, arrays out. The rules are vectorbt's `Portfolio.from_signals`
defaults for a long-only strategy that goes all in: orders fill at the bar's
close with slippage and fees; an entry while in a position and an exit while
flat do nothing; an entry and an exit on the same bar cancel out; a stop is
checked before the bar's signals, with its level set from the entry bar's
close, and with only close prices it fills at the close of the bar that
crosses it, without slippage (vectorbt's StopLimit exit on a bar whose
open/high/low are the close). The metric definitions and the order of
floating-point operations follow vectorbt's post-simulation accounting
(`cash_flow_nb`, `returns_1d_nb`, `sharpe_ratio_1d_nb`, and the Rust engine's
drawdown, which compounds wealth from 100 bar by bar), so the results agree
with vectorbt's default engine to the last bit in the tests we run, and to
~1e-14 where they do not.

Metric columns, in `evo.objectives.METRICS` order:
    0 total_return  1 sharpe_ratio  2 sortino_ratio  3 max_drawdown
    4 n_trades      5 win_rate      6 exposure
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

N_METRICS = 7
_REL_TOL = 1e-9  # vectorbt.utils.math_ tolerances
_ABS_TOL = 1e-12


@njit(cache=True, error_model="numpy")
def is_close_nb(a: float, b: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return False
    if np.isinf(a) or np.isinf(b):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


@njit(cache=True, error_model="numpy")
def add_nb(a: float, b: float) -> float:
    """a + b, snapped to 0 when the two cancel within tolerance (as vectorbt does)."""
    if is_close_nb(a, -b):
        return 0.0
    return a + b


@njit(cache=True, error_model="numpy")
def _stop_hit_price_nb(entry_price: float, stop: float, close: float, below: bool) -> float:
    """Fill price of a long stop on a close-only bar, or NaN if not hit (vectorbt get_stop_price_nb)."""
    if below:
        level = entry_price * (1 - stop)
        if close <= level:  # open == close on close-only data: "hit before open" fills at the open
            return close
    else:
        level = entry_price * (1 + stop)
        if level <= close:
            return close
    return np.nan


@njit(cache=True, error_model="numpy")
def _return_nb(prev: float, now: float) -> float:
    if prev == 0:
        if now == 0:
            return 0.0
        return np.inf * np.sign(now)
    r = (now - prev) / prev
    if prev < 0:
        r *= -1
    return r


@njit(cache=True, error_model="numpy")
def simulate_column_nb(
    close: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    sl_stop: float,
    tp_stop: float,
    init_cash: float,
    fees: float,
    slippage: float,
    ann_factor: float,
    returns: np.ndarray,
    out: np.ndarray,
    start: int = 0,
) -> None:
    """Simulate one strategy over bars [start, len(close)) and write its N_METRICS metrics into `out`.

    Signals before `start` are ignored: the portfolio starts flat with init_cash
    at `start` (an out-of-sample window whose indicators were warmed up on the
    bars before it). `returns` is a scratch buffer of len(close): the only O(T)
    memory used.
    """
    n = close.shape[0]
    # the simulation's own balance (what orders can spend)
    cash = init_cash
    pos = 0.0
    # the order records' accounting, as vectorbt rebuilds it after the simulation
    rec_cash = init_cash  # cash_nb: init + cumulative cash flows
    profit_cash = 0.0  # total_profit_nb: cumulative order cash
    stop_entry = np.nan
    sl_now = np.nan
    tp_now = np.nan
    entry_size = 0.0
    entry_gross = 0.0
    entry_fees = 0.0
    n_orders = 0
    n_trades = 0
    n_wins = 0
    n_in_market = 0
    prev_value = init_cash
    r_sum = 0.0
    down_sum = 0.0
    n_r = 0
    wealth = 100.0  # vectorbt's default (Rust) drawdown compounds from 100 bar by bar
    peak = np.nan  # running max of cum * 100, and the lowest value since it was set
    trough = np.nan
    worst_dd = 0.0

    for i in range(start, n):
        c = close[i]
        # Which order this bar asks for. A stop comes first; otherwise an entry and an exit
        # on the same bar cancel out (ConflictMode.Ignore), an entry in a position and an
        # exit while flat do nothing.
        do_sell = False
        do_buy = False
        price = c
        slip = slippage
        if pos > 0:
            stop_price = np.nan
            if not np.isnan(sl_now):
                stop_price = _stop_hit_price_nb(stop_entry, sl_now, c, True)
            if np.isnan(stop_price) and not np.isnan(tp_now):
                stop_price = _stop_hit_price_nb(stop_entry, tp_now, c, False)
            if not np.isnan(stop_price):
                do_sell = True
                price = stop_price
                slip = 0.0
            else:
                do_sell = exits[i] and not entries[i]
        else:
            do_buy = entries[i] and not exits[i]

        if do_sell:
            # execute_order_nb treats near-zero balances as zero
            cash_x = 0.0 if is_close_nb(cash, 0.0) else cash
            pos_x = 0.0 if is_close_nb(pos, 0.0) else pos
            # sell_nb, LongOnly, the whole position
            adj_price = price * (1 - slip)
            size = pos_x
            if pos_x > 0 and not is_close_nb(size, 0.0):
                acq_cash = size * adj_price
                fees_paid = acq_cash * fees
                final_acq_cash = add_nb(acq_cash, -fees_paid)
                if final_acq_cash >= 0:
                    cash = cash_x + final_acq_cash
                    pos = add_nb(pos_x, -size)
                    n_orders += 1
                    order_cash = size * adj_price - fees_paid
                    rec_cash = add_nb(rec_cash, add_nb(0.0, order_cash))
                    profit_cash = add_nb(profit_cash, order_cash)
                    # close the trade (get_exit_trades_nb + get_trade_stats_nb)
                    exit_size = entry_size if is_close_nb(size, entry_size) else size
                    e_price = entry_gross / entry_size
                    e_fees = (exit_size / entry_size) * entry_fees
                    val_diff = add_nb(exit_size * adj_price, -(exit_size * e_price))
                    pnl = val_diff - e_fees - fees_paid
                    n_trades += 1
                    if pnl > 0:
                        n_wins += 1
                    entry_size = 0.0
                    entry_gross = 0.0
                    entry_fees = 0.0
                    if pos == 0:
                        stop_entry = np.nan
                        sl_now = np.nan
                        tp_now = np.nan
        elif do_buy:
            cash_x = 0.0 if is_close_nb(cash, 0.0) else cash
            pos_x = 0.0 if is_close_nb(pos, 0.0) else pos
            if pos_x == 0 and cash_x != 0:
                # buy_nb with size=inf: spend all cash, fees included
                adj_price = price * (1 + slip)
                max_req_cash = cash_x / (1 + fees)
                if max_req_cash > 0:
                    size = max_req_cash / adj_price
                    fees_paid = cash_x - max_req_cash
                    cash = add_nb(cash_x, -cash_x)
                    pos = add_nb(pos_x, size)
                    n_orders += 1
                    order_cash = size * adj_price + fees_paid
                    rec_cash = add_nb(rec_cash, add_nb(0.0, -order_cash))
                    profit_cash = add_nb(profit_cash, -order_cash)
                    entry_size = size
                    entry_gross = size * adj_price
                    entry_fees = fees_paid
                    # StopEntryPrice.Close: levels are set from this bar's close
                    stop_entry = c
                    sl_now = sl_stop
                    tp_now = tp_stop

        if pos != 0:
            n_in_market += 1
            value = rec_cash + c * pos
        else:
            value = rec_cash + c * 0.0
        # an unchanged value (flat, no order) returns exactly 0: skip the division
        r = 0.0 if value == prev_value else _return_nb(prev_value, value)
        returns[i] = r
        prev_value = value
        # one-pass parts of the metrics, summed in the same order as vectorbt's nanmean loops
        if not np.isnan(r):
            r_sum += r
            n_r += 1
            if r < 0:
                down_sum += r * r
            wealth *= r + 1
        x = wealth
        # drawdown x / peak - 1 is monotonic in x for a fixed peak (correct rounding), so the
        # lowest point of each peak's stretch gives the same minimum as dividing on every bar
        if np.isnan(peak) or x > peak:
            if not np.isnan(peak):
                dd = trough / peak - 1
                if dd < worst_dd:
                    worst_dd = dd
            peak = x
            trough = x
        elif x < trough:
            trough = x
    if not np.isnan(peak):
        dd = trough / peak - 1
        if dd < worst_dd:
            worst_dd = dd

    if entry_size > 0 and not is_close_nb(entry_size, 0.0):
        # the open trade is valued at the last close, without exit fees
        exit_size = entry_size
        e_price = entry_gross / entry_size
        e_fees = 1.0 * entry_fees
        val_diff = add_nb(exit_size * close[n - 1], -(exit_size * e_price))
        pnl = val_diff - e_fees
        n_trades += 1
        if pnl > 0:
            n_wins += 1

    # total_return from total_profit_nb (no orders: exactly 0)
    if n_orders == 0:
        out[0] = 0.0
    else:
        out[0] = (profit_cash + pos * close[n - 1]) / init_cash
    mean = r_sum / n_r if n_r > 0 else np.nan
    out[1] = _sharpe_nb(returns[start:], mean, n_r, ann_factor)
    out[2] = _sortino_nb(mean, down_sum, n_r, n - start, ann_factor)
    out[3] = worst_dd
    out[4] = n_trades
    out[5] = n_wins / n_trades if n_trades > 0 else np.nan
    out[6] = n_in_market / (n - start)


@njit(cache=True, error_model="numpy")
def _sharpe_nb(r: np.ndarray, mean: float, k: int, ann_factor: float) -> float:
    """vectorbt sharpe_ratio: nanmean / nanstd(ddof=1), inf when std is 0."""
    if r.shape[0] < 2:
        return np.nan
    if k - 1 <= 0:
        return np.nan
    ssd = 0.0  # numba's nanvar: a second pass around the mean
    for v in r:
        if not np.isnan(v):
            d = v - mean
            ssd += d * d
    # vectorbt's Rust engine divides once (numba's nanstd multiplies back: ssd / k * k / (k - 1))
    std = np.sqrt(ssd / (k - 1))
    if std == 0.0:
        return np.inf
    return mean / std * np.sqrt(ann_factor)


@njit(cache=True, error_model="numpy")
def _sortino_nb(mean: float, down_sum: float, k: int, n: int, ann_factor: float) -> float:
    """vectorbt sortino_ratio_1d_nb with required_return 0."""
    if n < 2:
        return np.nan
    avg = mean * ann_factor
    downside = np.sqrt(down_sum / k if k > 0 else np.nan) * np.sqrt(ann_factor)
    if downside == 0.0:
        return np.inf
    return avg / downside


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_signals_nb(
    close: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    sl_stop: np.ndarray,
    tp_stop: np.ndarray,
    init_cash: float,
    fees: float,
    slippage: float,
    ann_factor: float,
    n_threads: int,
    start: int = 0,
) -> np.ndarray:
    """Metrics (n_strategies, N_METRICS) of signals shaped (n_strategies, n_bars), one row per strategy,
    simulated over bars [start, n_bars).

    Strategies are spread round-robin over `n_threads` (numba.get_num_threads(),
    passed in because reading it inside a kernel defeats the compile cache); each
    thread owns one returns buffer, so memory is O(threads x bars), not O(strategies x bars).
    """
    n_strat, n_bars = entries.shape
    out = np.empty((n_strat, N_METRICS))
    n_threads = max(1, min(n_threads, n_strat))
    buffers = np.empty((n_threads, n_bars))
    for t in prange(n_threads):
        for s in range(t, n_strat, n_threads):
            simulate_column_nb(
                close, entries[s], exits[s], sl_stop[s], tp_stop[s],
                init_cash, fees, slippage, ann_factor, buffers[t], out[s], start,
            )
    return out
