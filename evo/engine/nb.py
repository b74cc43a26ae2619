"""Numba kernels of the fast engine: one pass per strategy (or per portfolio) from signals to every metric.

Arrays and the NamedTuples/records of evo.engine.enums in, arrays out. The rules are vectorbt's
`Portfolio.from_signals` at its defaults, with a few of its options per strategy:

* Orders fill at the bar's close with slippage and fees (price=inf, val_price=inf). One order
  per column and bar; no accumulation: an entry while in a position of that side and an exit
  while flat do nothing. An entry and an exit of one side on the same bar cancel out, and so do
  a long and a short entry (ConflictMode.Ignore, DirectionConflictMode.Ignore).
* direction (per strategy): entries/exits trade long (longonly), short (shortonly), or entries go
  long and exits go short (both). With short_entries/short_exits, entries/exits are the long side
  and direction has no effect. An entry of the other side while in a position closes it and
  opens the other side (upon_opposite_entry=ReverseReduce), or closes, or is ignored.
* size and size_type (per strategy): an amount of the asset, a value in cash at the close, or
  a fraction of the available cash (percent); size=inf goes all in. Orders below min_size
  (1e-8) are rejected; a buy that costs more than the cash is filled partially.
* sl_stop, tp_stop (per strategy, NaN: none) and sl_trail: checked before the bar's signals,
  levels set from the entry bar's close (StopEntryPrice.Close); a trailing stop-loss follows
  the highest high (lowest low for a short) seen after the entry bar. A stop fills at its level,
  or at the open when the bar opens beyond it, without slippage (StopExitPrice.StopLimit); with
  close prices only, open/high/low are the close.

The accounting, the metric definitions and the order of floating-point operations follow
vectorbt's default (Rust) engine and its record reductions: the order execution (`buy`, `sell`,
`execute_order`), the exit-trade records and their P&L and returns, `cash_flow`, `total_profit`,
`returns` and the returns statistics, the drawdown, which compounds wealth from 100 bar by bar, and
the drawdown records of the value. So the results agree with vectorbt to the last bit in the tests
we run, and to ~1e-14 where they do not.

One simulation core serves a column and a shared-cash group: `watch_nb` checks one column's stops on
a bar, `trade_bar_nb` turns its stop or signals into an order and executes it against a balance
record; `simulate_column_nb` wraps them in loops that skip flat and holding stretches cheaply,
`simulate_group_nb` visits the group's columns bar by bar. `drive_nb` owns the parallel loop over
strategies, the per-thread buffers and the batched Sharpe pass; a kernel plugs into it the function
that gives a strategy's signals (precomputed ones, or a family's signal function, see
evo/strategies/nb.py).

A metrics row has the slots of evo.engine.enums.Metric (the metric table, evo.config.metrics). Beside it
each column gets a trade fingerprint: a 64-bit hash of its filled orders (order_hash_nb), chained
as they fill, which the vectorbt engine recomputes from its order records (order_fingerprints_nb).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from evo.config import metrics as _metrics
from evo.engine import enums as _enums
from evo.engine.enums import (
    BATCH,
    FINGERPRINT_SEED,
    N_METRICS,
    Acc,
    ColumnBar,
    Direction,
    ExecState,
    Metric,
    OppositeEntryMode,
    Order,
    OrderResult,
    OrderSide,
    OrderStatus,
    Signals,
    SizeType,
    Stops,
    TradeDirection,
    TradeState,
    TradeStats,
    Workspace,
    batch_dt,
    state_dt,
    trade_dt,
)
from evo.engine.jit import drop_stale_cache

# numba caches this module's kernels keyed on this file only; the enums and the metric slots (from the
# metric table) are compiled in as constants
drop_stale_cache(__file__, _enums.__file__, _metrics.__file__)

_REL_TOL = 1e-9  # vectorbt.utils.math_ tolerances
_ABS_TOL = 1e-12

# splitmix64's constants (Steele, Lea, Flood 2014), as numba compile-time constants
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: an order size's mantissa is hashed to 32 bits: sizes equal to ~1e-9 (the engines' parity
#: tolerance) hash the same, different trades' sizes differ far more
_SIZE_BITS = 4294967296.0


@njit(cache=True, error_model="numpy", inline="always")
def is_close_nb(a: float, b: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return False
    if np.isinf(a) or np.isinf(b):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


@njit(cache=True, error_model="numpy", inline="always")
def is_zero_nb(a: float) -> bool:
    """is_close_nb(a, 0): for b = 0 the relative tolerance never wins (1e-9 |a| < |a|), and NaN and
    infinity compare False: one comparison."""
    return abs(a) <= _ABS_TOL


@njit(cache=True, error_model="numpy", inline="always")
def is_close_or_less_nb(a: float, b: float) -> bool:
    if is_close_nb(a, b):
        return True
    return a < b


@njit(cache=True, error_model="numpy", inline="always")
def is_less_nb(a: float, b: float) -> bool:
    if is_close_nb(a, b):
        return False
    return a < b


@njit(cache=True, error_model="numpy", inline="always")
def add_nb(a: float, b: float) -> float:
    """a + b, snapped to 0 when the two cancel within tolerance (as vectorbt does)."""
    if np.sign(a) != np.sign(b):
        if is_close_nb(abs(a), abs(b)):
            return 0.0
    elif is_zero_nb(a + b):
        return 0.0
    return a + b


@njit(cache=True, error_model="numpy", inline="always")
def _return_nb(prev: float, now: float) -> float:
    if prev == 0:
        if now == 0:
            return 0.0
        return np.inf * np.sign(now)
    r = (now - prev) / prev
    if prev < 0:
        r *= -1
    return r


# ############# Orders ############# #


@njit(cache=True, error_model="numpy", inline="always")
def _not_filled_nb(status: int) -> OrderResult:
    return OrderResult(np.nan, np.nan, np.nan, -1, status)


# buy_nb and sell_nb are called, not inlined: numba's IR inlining copies them into every order site of the
# column and group simulators, which multiplied the simulation kernels' compile time without changing
# their speed (measured with `evo bench --baseline`)
@njit(cache=True, error_model="numpy")
def buy_nb(state: ExecState, size: float, price: float, direction: int, fees: float, slippage: float,
           min_size: float, percent: float):
    """vectorbt's buy (lock_cash=False, fixed_fees=0, max_size=inf, no granularity, partial fills allowed)."""
    adj_price = price * (1 + slippage)
    cash_limit = state.cash
    if not np.isnan(percent):
        cash_limit = min(cash_limit, percent * cash_limit)
    if direction == Direction.LongOnly or direction == Direction.Both:
        if cash_limit == 0:
            return state, _not_filled_nb(OrderStatus.Rejected)
    elif state.position == 0:
        return state, _not_filled_nb(OrderStatus.Rejected)
    if direction == Direction.ShortOnly:
        adj_size = min(-state.position, size)
    else:
        adj_size = size
    if adj_size == 0:
        return state, _not_filled_nb(OrderStatus.Ignored)
    req_cash = adj_size * adj_price
    req_fees = req_cash * fees
    total_req_cash = req_cash + req_fees
    if is_close_or_less_nb(total_req_cash, cash_limit):
        final_size = adj_size
        fees_paid = req_fees
        final_req_cash = total_req_cash
    else:
        # not enough cash: spend all of it, fees included
        max_req_cash = add_nb(cash_limit, -0.0) / (1 + fees)
        if max_req_cash <= 0:
            return state, _not_filled_nb(OrderStatus.Rejected)
        final_size = max_req_cash / adj_price
        fees_paid = cash_limit - max_req_cash
        final_req_cash = cash_limit
    if is_zero_nb(adj_size):
        return state, _not_filled_nb(OrderStatus.Ignored)
    if is_less_nb(final_size, min_size):
        return state, _not_filled_nb(OrderStatus.Rejected)
    new_cash = add_nb(state.cash, -final_req_cash)
    new_position = add_nb(state.position, final_size)
    if state.position < 0:
        short_size = final_size if new_position < 0 else abs(state.position)
        avg_entry_price = state.debt / abs(state.position)
        debt_diff = short_size * avg_entry_price
        new_debt = add_nb(state.debt, -debt_diff)
        new_free_cash = add_nb(state.free_cash + 2 * debt_diff, -final_req_cash)
    else:
        new_debt = state.debt
        new_free_cash = add_nb(state.free_cash, -final_req_cash)
    return (ExecState(new_cash, new_position, new_debt, new_free_cash),
            OrderResult(final_size, adj_price, fees_paid, OrderSide.Buy, OrderStatus.Filled))


@njit(cache=True, error_model="numpy")
def sell_nb(state: ExecState, size: float, price: float, direction: int, fees: float, slippage: float,
            min_size: float, percent: float):
    """vectorbt's sell (lock_cash=False, fixed_fees=0, max_size=inf, no granularity, partial fills allowed)."""
    adj_price = price * (1 - slippage)
    if direction == Direction.LongOnly:
        size_limit = min(state.position, size)
    elif np.isinf(size) and not np.isnan(percent):
        # all in: the position, then as much short as the free cash covers
        long_size = max(state.position, 0.0)
        long_cash = long_size * adj_price * (1 - fees)
        total_free_cash = add_nb(state.free_cash, long_cash)
        if total_free_cash <= 0:
            if state.position <= 0:
                return state, _not_filled_nb(OrderStatus.Rejected)
            max_size_limit = long_size
        else:
            max_short_size = add_nb(total_free_cash, -0.0) / (adj_price * (1 + fees))
            max_size_limit = add_nb(long_size, max_short_size)
            if max_size_limit <= 0:
                return state, _not_filled_nb(OrderStatus.Rejected)
        size_limit = max_size_limit
    else:
        size_limit = size
    if not np.isnan(percent):
        size_limit = percent * size_limit
    if direction == Direction.LongOnly and state.position == 0:
        return state, _not_filled_nb(OrderStatus.Rejected)
    if is_zero_nb(size_limit):
        return state, _not_filled_nb(OrderStatus.Ignored)
    if is_less_nb(size_limit, min_size):
        return state, _not_filled_nb(OrderStatus.Rejected)
    acq_cash = size_limit * adj_price
    fees_paid = acq_cash * fees
    final_acq_cash = add_nb(acq_cash, -fees_paid)
    if final_acq_cash < 0:
        return state, _not_filled_nb(OrderStatus.Rejected)
    new_cash = state.cash + final_acq_cash
    new_position = add_nb(state.position, -size_limit)
    if new_position < 0:
        short_size = size_limit if state.position < 0 else abs(new_position)
        short_value = short_size * adj_price
        new_debt = state.debt + short_value
        new_free_cash = add_nb(state.free_cash, add_nb(final_acq_cash, -2 * short_value))
    else:
        new_debt = state.debt
        new_free_cash = state.free_cash + final_acq_cash
    return (ExecState(new_cash, new_position, new_debt, new_free_cash),
            OrderResult(size_limit, adj_price, fees_paid, OrderSide.Sell, OrderStatus.Filled))


@njit(cache=True, error_model="numpy", inline="always")
def execute_order_nb(state: ExecState, order: Order, val_price: float, fees: float, min_size: float):
    """vectorbt's execute_order for a signed order size (positive buys, negative sells).

    Balances within tolerance of zero are zero from here on, whether the order fills or not."""
    exec_state = ExecState(
        0.0 if is_zero_nb(state.cash) else state.cash,
        0.0 if is_zero_nb(state.position) else state.position,
        0.0 if is_zero_nb(state.debt) else state.debt,
        0.0 if is_zero_nb(state.free_cash) else state.free_cash,
    )
    if np.isnan(order.size):
        return exec_state, _not_filled_nb(OrderStatus.Ignored)
    order_size = order.size
    size_type = order.size_type
    direction = order.direction
    if size_type == SizeType.Value:
        order_size /= val_price
        size_type = SizeType.Amount
    if size_type == SizeType.Amount and direction != Direction.LongOnly and order_size < 0 and np.isinf(order_size):
        # an infinite short means 100 % of the free cash
        order_size = -1.0
        size_type = SizeType.Percent
    percent = np.nan
    if size_type == SizeType.Percent:
        percent = abs(order_size)
        order_size = np.sign(order_size) * np.inf
    if order_size > 0:
        return buy_nb(exec_state, order_size, order.price, direction, fees, order.slippage, min_size, percent)
    return sell_nb(exec_state, -order_size, order.price, direction, fees, order.slippage, min_size, percent)


# ############# Trade fingerprints ############# #


@njit(cache=True, error_model="numpy", inline="always")
def splitmix64_nb(x):
    """splitmix64's finaliser: a bijective mix of 64 bits (uint64 arithmetic wraps)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@njit(cache=True, error_model="numpy", inline="always")
def order_hash_nb(h, bar: int, side: int, size: float):
    """The fingerprint `h` (uint64) extended by one filled order: its bar (from the window's first
    bar), its side (OrderSide) and its size (a positive amount, to 32 bits of mantissa). Chained,
    so the order of the orders counts."""
    m, e = math.frexp(size)
    q = np.uint64(np.int64(np.floor(m * _SIZE_BITS + 0.5)))
    h = splitmix64_nb(h ^ np.uint64(bar))
    h = splitmix64_nb(h ^ (np.uint64(side) + np.uint64(e + 2048) * np.uint64(4)))
    return splitmix64_nb(h ^ q)


@njit(cache=True, error_model="numpy")
def order_fingerprints_nb(col, idx, side, size, n_cols):
    """(n_cols,) uint64 fingerprints of order records (vectorbt's `pf.orders.values` fields), each
    column's orders taken in bar order: what the kernels compute while they simulate."""
    out = np.full(n_cols, FINGERPRINT_SEED, dtype=np.uint64)
    order = np.argsort(idx, kind="mergesort")
    for k in order:
        c = col[k]
        out[c] = order_hash_nb(out[c], idx[k], side[k], size[k])
    return out


@njit(cache=True, error_model="numpy")
def combine_fingerprints_nb(fps):
    """(n,) uint64: the fingerprints of one strategy on each asset, (n_assets, n), chained in asset order."""
    n_assets, n = fps.shape
    out = np.full(n, FINGERPRINT_SEED, dtype=np.uint64)
    for s in range(n):
        h = FINGERPRINT_SEED
        for a in range(n_assets):
            h = splitmix64_nb(h ^ fps[a, s])
        out[s] = h
    return out


# ############# Signals ############# #


@njit(cache=True, error_model="numpy", inline="always")
def stop_level_nb(position: float, init_price: float, stop: float, is_sl: bool) -> float:
    """The price that triggers a stop (NaN: no stop), as vectorbt's get_stop_price_nb computes it: below
    the entry for a long stop-loss and a short take-profit, above for the others."""
    if (position > 0) == is_sl:
        return init_price * (1 - stop)
    return init_price * (1 + stop)


@njit(cache=True, error_model="numpy", inline="always")
def stop_fill_nb(position: float, sl_level: float, tp_level: float, open_: float, low: float, high: float) -> float:
    """The fill price of a stop on this bar, or NaN (vectorbt get_stop_price_nb, stop-loss first): the
    open when the bar opens beyond the level, else the level when the bar's range reaches it.
    A NaN level compares False: no stop."""
    if position > 0:
        if open_ <= sl_level:
            return open_
        if low <= sl_level <= high:
            return sl_level
        if tp_level <= open_:
            return open_
        if low <= tp_level <= high:
            return tp_level
    else:
        if sl_level <= open_:
            return open_
        if low <= sl_level <= high:
            return sl_level
        if open_ <= tp_level:
            return open_
        if low <= tp_level <= high:
            return tp_level
    return np.nan


@njit(cache=True, error_model="numpy", inline="always")
def watch_nb(stops: Stops, position: float, open_: float, low: float, high: float):
    """(the stops after this bar, the fill price of a stop that fires on it or NaN) for a column in a
    position: a stop comes first and takes the bar; a trailing stop-loss then follows the bar's high (low
    for a short), its level recomputed from the reference price with vectorbt's operations."""
    stop_price = stop_fill_nb(position, stops.sl_level, stops.tp_level, open_, low, high)
    if stops.sl_trail:
        if position > 0:
            if high > stops.sl_price:
                level = stop_level_nb(position, high, stops.sl_stop, True)
                return Stops(high, stops.sl_stop, True, level, stops.tp_level), stop_price
        elif low < stops.sl_price:
            level = stop_level_nb(position, low, stops.sl_stop, True)
            return Stops(low, stops.sl_stop, True, level, stops.tp_level), stop_price
    return stops, stop_price


@njit(cache=True, error_model="numpy", inline="always")
def stops_of_nb(st) -> Stops:
    """The stops of a column's state_dt record."""
    return Stops(st.sl_price, st.sl_stop, st.sl_trail, st.sl_level, st.tp_level)


@njit(cache=True, error_model="numpy", inline="always")
def keep_trailing_nb(st, stops: Stops) -> None:
    """What watch_nb changes of a column's stops (a trailing stop-loss), back into its state_dt record."""
    st.sl_price = stops.sl_price
    st.sl_level = stops.sl_level


@njit(cache=True, error_model="numpy", inline="always")
def opens_nb(entry: bool, exit_: bool, short_entry: bool, ls: bool, direction: int) -> bool:
    """Whether a flat column's signals could open a position on this bar (most bars cannot)."""
    if ls:
        return entry or short_entry
    return entry or (exit_ and direction == Direction.Both)


@njit(cache=True, error_model="numpy", inline="always")
def watched_nb(position: float, ls: bool, direction: int):
    """(whether entries, whether exits can change a position of this sign): with direction both, an
    entry reverses a short and an exit reverses a long; with short signals, all four count."""
    entries = ls or (direction == Direction.Both and position < 0)
    return entries, ls or not entries


@njit(cache=True, error_model="numpy", inline="always")
def changes_nb(watch_entries: bool, watch_exits: bool, entry: bool, exit_: bool, short_entry: bool,
               short_exit: bool, ls: bool) -> bool:
    """Whether this bar's signals can change a position (watched_nb's flags): else it holds."""
    return ((watch_exits and (exit_ or (ls and short_exit)))
            or (watch_entries and (entry or (ls and short_entry))))


@njit(cache=True, error_model="numpy", inline="always")
def resolve_signals_nb(position: float, is_long_entry: bool, is_long_exit: bool, is_short_entry: bool,
                       is_short_exit: bool, upon_opposite_entry: int):
    """Conflicts (both ignored) and an opposite entry, as vectorbt resolves them before sizing."""
    if is_long_entry or is_short_entry:
        if is_long_entry and is_long_exit:
            is_long_entry = False
            is_long_exit = False
        if is_short_entry and is_short_exit:
            is_short_entry = False
            is_short_exit = False
        if is_long_entry and is_short_entry:
            is_long_entry = False
            is_short_entry = False
        if position > 0 and is_short_entry:
            if upon_opposite_entry == OppositeEntryMode.Ignore:
                is_short_entry = False
            elif upon_opposite_entry == OppositeEntryMode.Close or upon_opposite_entry == OppositeEntryMode.CloseReduce:
                is_short_entry = False
                is_long_exit = True
        if position < 0 and is_long_entry:
            if upon_opposite_entry == OppositeEntryMode.Ignore:
                is_long_entry = False
            elif upon_opposite_entry == OppositeEntryMode.Close or upon_opposite_entry == OppositeEntryMode.CloseReduce:
                is_long_entry = False
                is_short_exit = True
    return is_long_entry, is_long_exit, is_short_entry, is_short_exit


@njit(cache=True, error_model="numpy", inline="always")
def signals_to_size_nb(position: float, is_long_entry: bool, is_long_exit: bool, is_short_entry: bool,
                       is_short_exit: bool, size: float, size_type: int, val_price: float):
    """(signed order size, size type, order direction) of vectorbt's signals_to_size_nb without accumulation.

    A reversal with percent sizing is refused by the Python front (vectorbt raises); here it sizes NaN."""
    order_size = 0.0
    direction = Direction.Both
    abs_position = abs(position)
    if position > 0:
        if is_short_entry:
            order_size = -abs_position
            if size_type == SizeType.Percent:
                order_size = np.nan
            elif size_type == SizeType.Value:
                order_size -= size / val_price
            else:
                order_size -= size
            size_type = SizeType.Amount
        elif is_long_exit:
            direction = Direction.LongOnly
            order_size = -abs_position
            size_type = SizeType.Amount
        elif is_long_entry:
            direction = Direction.LongOnly
    elif position < 0:
        if is_long_entry:
            order_size = abs_position
            if size_type == SizeType.Percent:
                order_size = np.nan
            elif size_type == SizeType.Value:
                order_size += size / val_price
            else:
                order_size += size
            size_type = SizeType.Amount
        elif is_short_exit:
            direction = Direction.ShortOnly
            order_size = abs_position
            size_type = SizeType.Amount
        elif is_short_entry:
            direction = Direction.ShortOnly
    else:
        if is_long_entry:
            order_size = size
        elif is_short_entry:
            order_size = -size
    return order_size, size_type, direction


@njit(cache=True, error_model="numpy", inline="always")
def read_signals_nb(entry: bool, exit_: bool, short_entry: bool, short_exit: bool, ls: bool, direction: int):
    """Direction-aware signals (long entry, long exit, short entry, short exit) of one bar: with
    short_entries/short_exits given (ls), entries/exits are the long side; else entries/exits are
    mapped by direction. Scalars, not arrays: an array passed per bar costs reference counting."""
    if ls:
        return entry, exit_, short_entry, short_exit
    if direction == Direction.LongOnly:
        return entry, exit_, False, False
    if direction == Direction.ShortOnly:
        return False, False, entry, exit_
    return entry, False, exit_, False


@njit(cache=True, error_model="numpy", inline="always")
def column_bar_nb(i: int, close: float, stop_price: float, sides) -> ColumnBar:
    """A column's ColumnBar on bar i from its direction-aware signals `sides` (read_signals_nb)."""
    return ColumnBar(i, close, stop_price, sides[0], sides[1], sides[2], sides[3])


# ############# Accounting ############# #


@njit(cache=True, error_model="numpy", inline="always")
def trade_stats_nb(size: float, entry_price: float, entry_fees: float, exit_price: float, exit_fees: float,
                   direction: int):
    """(P&L, return on the entry value) of an exit trade: vectorbt's get_trade_stats_nb."""
    entry_val = size * entry_price
    val_diff = add_nb(size * exit_price, -entry_val)
    if val_diff != 0 and direction == TradeDirection.Short:
        val_diff *= -1
    pnl = val_diff - entry_fees - exit_fees
    return pnl, pnl / entry_val


@njit(cache=True, error_model="numpy", inline="always")
def trade_fill_nb(t: TradeState, size: float, price: float, fees: float, side: int):
    """One filled order into the column's exit trades (vectorbt get_exit_trades_nb): (the new trade
    state, 1 if it closed a trade, that trade's P&L and return, NaN when none closed)."""
    if not t.open:
        t = TradeState(True, TradeDirection.Long if side == OrderSide.Buy else TradeDirection.Short, 0.0, 0.0, 0.0)
    is_entry = (t.direction == TradeDirection.Long) == (side == OrderSide.Buy)
    if is_entry:
        return (TradeState(True, t.direction, t.size_sum + size, t.gross_sum + size * price, t.fees_sum + fees), 0,
                np.nan, np.nan)
    entry_price = t.gross_sum / t.size_sum
    if is_close_or_less_nb(size, t.size_sum):
        exit_size = t.size_sum if is_close_nb(size, t.size_sum) else size
        entry_fees = (exit_size / t.size_sum) * t.fees_sum
        pnl, ret = trade_stats_nb(exit_size, entry_price, entry_fees, price, fees, t.direction)
        if is_close_nb(size, t.size_sum):
            return TradeState(False, t.direction, t.size_sum, t.gross_sum, t.fees_sum), 1, pnl, ret
        # position decreased: the rest keeps its average entry price
        frac = (t.size_sum - size) / t.size_sum
        return TradeState(True, t.direction, t.size_sum * frac, t.gross_sum * frac, t.fees_sum * frac), 1, pnl, ret
    # reversed: close the trade with the matching part of the order, open one with the rest
    cl_exit_size = t.size_sum
    cl_exit_fees = cl_exit_size / size * fees
    entry_fees = (cl_exit_size / t.size_sum) * t.fees_sum
    pnl, ret = trade_stats_nb(cl_exit_size, entry_price, entry_fees, price, cl_exit_fees, t.direction)
    rest = size - cl_exit_size
    new_dir = TradeDirection.Short if t.direction == TradeDirection.Long else TradeDirection.Long
    return TradeState(True, new_dir, rest, rest * price, fees - cl_exit_fees), 1, pnl, ret


@njit(cache=True, error_model="numpy", inline="always")
def order_cash_flow_nb(res: OrderResult) -> float:
    """vectorbt cash_flow of one order: -size * price - fees with the size signed by side."""
    if res.side == OrderSide.Sell:
        return res.size * res.price - res.fees
    return -res.size * res.price - res.fees


@njit(cache=True, error_model="numpy", inline="always")
def log_trade_nb(st, log, pnl: float, ret: float) -> None:
    """Append an exit trade to the column's trade log (trade_dt)."""
    rec = log[st.n_trades]
    rec.pnl = pnl
    rec.ret = ret
    st.n_trades += 1


@njit(cache=True, error_model="numpy")
def init_state_nb(st, init_cash: float) -> None:
    """A column's state_dt record before its first bar: the cash, no position, no trade, no stops."""
    st.cash = init_cash
    st.free_cash = init_cash
    st.debt = 0.0
    st.position = 0.0
    st.profit_cash = 0.0
    st.fees_paid = 0.0
    st.n_orders = 0
    st.trade_open = False
    st.trade_direction = 0
    st.trade_size = 0.0
    st.trade_gross = 0.0
    st.trade_fees = 0.0
    st.n_trades = 0
    st.sl_price = np.nan
    st.sl_stop = np.nan
    st.sl_trail = False
    st.sl_level = np.nan
    st.tp_level = np.nan
    st.fingerprint = FINGERPRINT_SEED


@njit(cache=True, error_model="numpy", inline="always")
def process_order_nb(bal, st, log, order: Order, bar: ColumnBar, p, sim) -> float:
    """Execute one order of a column and book it: balances (bal: the record holding the cash, free cash
    and fees paid, the group's in a shared-cash group; st: the column's state_dt record), its cash flow,
    the exit trades (a closed one into the trade log), the stops (set from the bar's close when a
    position opens or reverses, cleared when it closes) and the trade fingerprint. Inlined: called, it
    would pay atomic reference counting for its trade-log argument on every order (a quarter of a
    column's time with stops firing). Returns the bar's cash flow."""
    pos = st.position
    new_state, res = execute_order_nb(ExecState(bal.cash, pos, st.debt, bal.free_cash), order, bar.close,
                                      sim.fees, sim.min_size)
    bal.cash = new_state.cash
    bal.free_cash = new_state.free_cash
    st.debt = new_state.debt
    new_pos = new_state.position
    st.position = new_pos
    if res.status != OrderStatus.Filled:
        return 0.0
    st.n_orders += 1
    bal.fees_paid += res.fees
    st.fingerprint = order_hash_nb(st.fingerprint, bar.i, res.side, res.size)
    cf = order_cash_flow_nb(res)
    st.profit_cash = add_nb(st.profit_cash, cf)
    trade = TradeState(st.trade_open, st.trade_direction, st.trade_size, st.trade_gross, st.trade_fees)
    trade, closed, pnl, ret = trade_fill_nb(trade, res.size, res.price, res.fees, res.side)
    st.trade_open = trade.open
    st.trade_direction = trade.direction
    st.trade_size = trade.size_sum
    st.trade_gross = trade.gross_sum
    st.trade_fees = trade.fees_sum
    if closed:
        log_trade_nb(st, log, pnl, ret)
    if new_pos == 0:
        st.sl_price = np.nan
        st.sl_stop = np.nan
        st.sl_trail = False
        st.sl_level = np.nan
        st.tp_level = np.nan
    elif pos == 0 or np.sign(new_pos) != np.sign(pos):
        # opened or reversed: StopEntryPrice.Close sets the levels from this bar's close
        st.sl_price = bar.close
        st.sl_stop = p.sl_stop
        st.sl_trail = p.sl_trail and not np.isnan(p.sl_stop)
        st.sl_level = stop_level_nb(new_pos, bar.close, p.sl_stop, True)
        st.tp_level = stop_level_nb(new_pos, bar.close, p.tp_stop, False)
    return add_nb(0.0, cf)


@njit(cache=True, error_model="numpy", inline="always")
def trade_bar_nb(bal, st, log, bar: ColumnBar, p, sim) -> float:
    """One column on one bar: its stop (which takes the bar: the whole position at the stop's price,
    without slippage) or its signals through vectorbt's resolution (conflicts, an opposite entry, the
    size) to an order, executed against `bal` (process_order_nb). Returns the bar's cash flow (0.0
    without a filled order); the new position is st.position."""
    pos = st.position
    if not np.isnan(bar.stop_price):
        size, size_type, direction = signals_to_size_nb(pos, False, pos > 0, False, pos < 0, p.size, p.size_type,
                                                        bar.close)
        price = bar.stop_price
        slippage = 0.0
    else:
        le, lx, se, sx = resolve_signals_nb(pos, bar.long_entry, bar.long_exit, bar.short_entry, bar.short_exit,
                                            sim.upon_opposite_entry)
        size, size_type, direction = signals_to_size_nb(pos, le, lx, se, sx, p.size, p.size_type, bar.close)
        price = bar.close
        slippage = sim.slippage
    if size == 0:
        return 0.0
    return process_order_nb(bal, st, log, Order(size, size_type, direction, price, slippage), bar, p, sim)


@njit(cache=True, error_model="numpy")
def close_open_trade_nb(st, log, last_close: float) -> None:
    """Log the trade still open at the end, as vectorbt's last exit-trade record of the column: valued
    at the last close without exit fees."""
    if st.trade_open and is_less_nb(-st.trade_size, 0):
        entry_price = st.trade_gross / st.trade_size
        entry_fees = (st.trade_size / st.trade_size) * st.trade_fees
        pnl, ret = trade_stats_nb(st.trade_size, entry_price, entry_fees, last_close, 0.0, st.trade_direction)
        log_trade_nb(st, log, pnl, ret)


@njit(cache=True, error_model="numpy")
def trade_summary_nb(states, logs) -> TradeStats:
    """The exit trades of columns (states[k].n_trades in logs[k], closed and open) summed up as vectorbt's
    record reductions do for the group: numba's nansum, nanmean and nanstd (ddof 1) over the records
    column by column, each column's trades in order, and nanmax/nanmin of the returns."""
    count = 0
    wins = 0
    losses = 0
    win_sum = 0.0
    loss_sum = 0.0
    pnl_sum = 0.0
    best = -np.inf
    worst = np.inf
    for k in range(logs.shape[0]):
        log = logs[k]
        for j in range(states[k].n_trades):
            pnl = log[j].pnl
            ret = log[j].ret
            count += 1
            pnl_sum += pnl
            if pnl > 0:
                wins += 1
                win_sum += pnl
            elif pnl < 0:
                losses += 1
                loss_sum += pnl
            if ret > best:
                best = ret
            if ret < worst:
                worst = ret
    if count == 0:
        return TradeStats(0, 0, 0, win_sum, loss_sum, np.nan, np.nan, np.nan, np.nan)
    mean = pnl_sum / count
    ssd = 0.0
    for k in range(logs.shape[0]):
        log = logs[k]
        for j in range(states[k].n_trades):
            d = log[j].pnl - mean
            ssd += d * d
    # vectorbt's nanstd_1d_nb: sqrt(nanvar * count / (count - ddof)), nanvar = ssd / count
    std = np.sqrt(ssd / count * count / (count - 1)) if count > 1 else np.nan
    return TradeStats(count, wins, losses, win_sum, loss_sum, mean, std, best, worst)


# ############# Metrics ############# #


@njit(cache=True, error_model="numpy", inline="always")
def acc_init_nb(init_cash: float) -> Acc:
    """The running sums before the first bar: the value is the initial cash, no returns yet."""
    return Acc(init_cash, 0, 0.0, 0.0, 0.0, 0.0, 1.0, 100.0, np.nan, np.nan, 0.0, -np.inf, -1, 0, 0)


@njit(cache=True, error_model="numpy", inline="always")
def bar_nb(acc: Acc, value: float, i: int, exposed: bool):
    """(acc after bar i, which ends with `value`, the bar's return).

    The return is vectorbt's get_return from the last value (an unchanged value returns exactly 0:
    no division); the sums follow its nanmean/nanstd, downside, Omega and cumulative-product loops. The
    drawdown compounds wealth from 100 as vectorbt's default engine does: x / peak - 1 is monotonic in x
    for a fixed peak (correct rounding), so the lowest point of each peak's stretch gives the same
    minimum as dividing on every bar. The value's drawdown records: a value at or above the running
    high closes the drawdown since that high (bars from the one after the high to this one); the one
    still running at the end counts to the last bar (finish_acc_nb)."""
    prev = acc.value
    r = 0.0 if value == prev else _return_nb(prev, value)
    n_returns = acc.n_returns
    return_sum = acc.return_sum
    down_sum = acc.down_sum
    gain_sum = acc.gain_sum
    loss_sum = acc.loss_sum
    growth = acc.growth
    wealth = acc.wealth
    if not np.isnan(r):
        return_sum += r
        n_returns += 1
        # r * r for a loss, else + 0.0 (the sums are >= 0: the same bits): no branch on the sign of r
        neg = min(r, 0.0)
        down_sum += neg * neg
        gain_sum += max(r, 0.0)
        loss_sum -= neg
        g = r + 1
        growth *= g
        wealth *= g
    peak = acc.peak
    trough = acc.trough
    worst_dd = acc.worst_dd
    if np.isnan(peak) or wealth > peak:
        if not np.isnan(peak):
            dd = trough / peak - 1
            if dd < worst_dd:
                worst_dd = dd
        peak = wealth
        trough = wealth
    elif wealth < trough:
        trough = wealth
    # selects, not a branch (which way the value goes is a coin flip): the gap to the high's bar only grows
    # while a drawdown runs, so taking its maximum on every bar gives the drawdowns closed so far and a
    # lower bound of the running one
    up = value >= acc.high_value
    longest_dd = max(acc.longest_dd, i - acc.high_bar - 1)
    high_value = value if up else acc.high_value
    high_bar = i if up else acc.high_bar
    return Acc(value, n_returns, return_sum, down_sum, gain_sum, loss_sum, growth, wealth, peak, trough, worst_dd,
               high_value, high_bar, longest_dd, acc.exposed + exposed), r


@njit(cache=True, error_model="numpy", inline="always")
def flat_nb(acc: Acc, first: int, stop: int) -> Acc:
    """acc after bars [first, stop) that hold no position and open none: the value stays, each bar
    returns exactly 0, and of the sums only the count of returns, the first peak and the value's high
    bar change."""
    if stop <= first:
        return acc
    peak = acc.peak
    trough = acc.trough
    if np.isnan(peak):
        peak = acc.wealth
        trough = acc.wealth
    high_value = acc.high_value
    high_bar = acc.high_bar
    if acc.value >= high_value:  # no drawdown running: the high moves on (a running one goes on)
        high_value = acc.value
        high_bar = stop - 1
    return Acc(acc.value, acc.n_returns + (stop - first), acc.return_sum, acc.down_sum, acc.gain_sum, acc.loss_sum,
               acc.growth, acc.wealth, peak, trough, acc.worst_dd, high_value, high_bar, acc.longest_dd, acc.exposed)


@njit(cache=True, error_model="numpy", inline="always")
def finish_acc_nb(acc: Acc, last: int) -> Acc:
    """acc after the last bar (`last`): the deepest drawdown includes the last peak's stretch, and the
    value's longest drawdown the one still running (vectorbt's active drawdown record, end bar included)."""
    worst_dd = acc.worst_dd
    if not np.isnan(acc.peak):
        dd = acc.trough / acc.peak - 1
        if dd < worst_dd:
            worst_dd = dd
    longest_dd = max(acc.longest_dd, last - acc.high_bar)
    return Acc(acc.value, acc.n_returns, acc.return_sum, acc.down_sum, acc.gain_sum, acc.loss_sum, acc.growth,
               acc.wealth, acc.peak, acc.trough, worst_dd, acc.high_value, acc.high_bar, longest_dd, acc.exposed)


@njit(cache=True, error_model="numpy", inline="always")
def sharpe_of_nb(n: int, mean: float, k: int, ssd: float, ann_factor: float) -> float:
    """The Sharpe ratio of n returns, k of them not NaN, from their mean and sum of squared deviations."""
    if n < 2:
        return np.nan
    if k - 1 <= 0:
        return np.nan
    # vectorbt's Rust engine divides once (numba's nanstd multiplies back: ssd / k * k / (k - 1))
    std = np.sqrt(ssd / (k - 1))
    if std == 0.0:
        return np.inf
    return mean / std * np.sqrt(ann_factor)


@njit(cache=True, error_model="numpy", inline="always")
def volatility_of_nb(n: int, k: int, ssd: float, vol_factor: float) -> float:
    """vectorbt's annualized_volatility (ddof 1, levy_alpha 2) from the same sums as sharpe_of_nb."""
    if n < 2 or k - 1 <= 0:
        return np.nan
    return np.sqrt(ssd / (k - 1)) * vol_factor


@njit(cache=True, error_model="numpy", inline="always")
def squared_deviation_nb(v: float, mean: float) -> float:
    """(v - mean)^2, or 0.0 for a NaN return: a sum (>= 0) keeps its bits, as when the return is skipped."""
    d = v - mean
    return d * d if not np.isnan(v) else 0.0


@njit(cache=True, error_model="numpy")
def second_pass_nb(out, returns, mean: float, k: int, sim) -> None:
    """The metrics that need the mean return first, Sharpe ratio and annualised volatility, of one
    strategy's returns (the traded bars), with its mean and count of returns."""
    ssd = 0.0  # numba's nanvar: a second pass around the mean
    for v in returns:
        ssd += squared_deviation_nb(v, mean)
    n = returns.shape[0]
    out[Metric.sharpe_ratio] = sharpe_of_nb(n, mean, k, ssd, sim.ann_factor)
    out[Metric.annualized_volatility] = volatility_of_nb(n, k, ssd, sim.vol_factor)


@njit(cache=True, error_model="numpy")
def block_sums_nb(returns, lo: int, hi: int, out) -> None:
    """out = (sum, sum of squares) of returns[lo:hi], a NaN return (no value to return from) counting as
    a flat bar, 0."""
    a = 0.0
    q = 0.0
    for i in range(lo, hi):
        v = returns[i]
        if not np.isnan(v):
            a += v
            q += v * v
    out[0] = a
    out[1] = q


@njit(cache=True, error_model="numpy")
def sharpe_batch_nb(returns, batch, n_used: int, sim, out, blocks) -> None:
    """second_pass_nb for a batch: strategy q (< n_used) has its returns in returns[q, sim.start:] and its
    mean, count of returns and metrics row in the batch_dt record batch[q]. The same sums, bar by bar,
    four at once.

    With block edges (sim.edges), the same pass also gives each block's sum of returns and sum of squared
    returns in blocks[row, b] = (sum, sum of squares), NaN returns counting as 0 (block_sums_nb): the bars
    are visited block by block in the same order, so the Sharpe ratio's sum keeps its bits. The sum of
    squares is the block's squared deviations from the mean m (the running sum's difference across the
    block) plus m * (2 * sum - bars * m): equal to a direct sum up to rounding."""
    start = sim.start
    n = returns.shape[1] - start
    last = n_used - 1  # a missing strategy repeats the last; its result is dropped
    r0 = returns[0, start:]
    r1 = returns[min(1, last), start:]
    r2 = returns[min(2, last), start:]
    r3 = returns[min(3, last), start:]
    m0 = batch[0].mean
    m1 = batch[min(1, last)].mean
    m2 = batch[min(2, last)].mean
    m3 = batch[min(3, last)].mean
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    edges = sim.edges
    n_blocks = edges.shape[0] - 1
    # the bars before the first block, the blocks, the bars after the last (no blocks: all bars at once)
    lo = min(max(edges[0], 0), n) if n_blocks > 0 else n
    for i in range(lo):
        u = np.uint64(i)
        s0 += squared_deviation_nb(r0[u], m0)
        s1 += squared_deviation_nb(r1[u], m1)
        s2 += squared_deviation_nb(r2[u], m2)
        s3 += squared_deviation_nb(r3[u], m3)
    for b in range(max(n_blocks, 0)):
        hi = min(max(edges[b + 1], lo), n)
        # per bar only a plain sum: a NaN return (rare: a value of 0 before it) makes the block's sum NaN,
        # and the block is summed again below with NaN as 0; the sum of squares follows from the block's
        # squared deviations from the mean, which the Sharpe ratio's running sum gives at its ends
        d0 = s0
        d1 = s1
        d2 = s2
        d3 = s3
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for i in range(lo, hi):
            u = np.uint64(i)
            v0 = r0[u]
            v1 = r1[u]
            v2 = r2[u]
            v3 = r3[u]
            s0 += squared_deviation_nb(v0, m0)
            s1 += squared_deviation_nb(v1, m1)
            s2 += squared_deviation_nb(v2, m2)
            s3 += squared_deviation_nb(v3, m3)
            a0 += v0
            a1 += v1
            a2 += v2
            a3 += v3
        sums = (a0, a1, a2, a3)
        deviations = (s0 - d0, s1 - d1, s2 - d2, s3 - d3)
        for q in range(n_used):
            bq = batch[q]
            row = bq.row
            a = sums[q]
            if np.isnan(a):
                block_sums_nb(returns[q, start:], lo, hi, blocks[row, b])
            else:
                m = bq.mean
                blocks[row, b, 0] = a
                blocks[row, b, 1] = max(deviations[q] + m * (2.0 * a - (hi - lo) * m), 0.0)
        lo = max(lo, hi)
    for i in range(lo, n):
        u = np.uint64(i)
        s0 += squared_deviation_nb(r0[u], m0)
        s1 += squared_deviation_nb(r1[u], m1)
        s2 += squared_deviation_nb(r2[u], m2)
        s3 += squared_deviation_nb(r3[u], m3)
    sums = (s0, s1, s2, s3)
    for q in range(n_used):
        b = batch[q]
        row = out[b.row]
        row[Metric.sharpe_ratio] = sharpe_of_nb(n, b.mean, b.count, sums[q], sim.ann_factor)
        row[Metric.annualized_volatility] = volatility_of_nb(n, b.count, sums[q], sim.vol_factor)


@njit(cache=True, error_model="numpy")
def write_metrics_nb(out, acc: Acc, trades: TradeStats, total_return: float, fees_paid: float, n: int,
                     sim) -> float:
    """A metrics row from the running sums of n traded bars and the trade summary, each metric as the metric
    table defines it (vectorbt's); returns the mean return. Sharpe ratio and annualised volatility need
    a second pass over the returns (second_pass_nb, sharpe_batch_nb) and are left NaN here."""
    k = acc.n_returns
    ann_factor = sim.ann_factor
    mean = acc.return_sum / k if k > 0 else np.nan
    out[Metric.total_return] = total_return
    out[Metric.sharpe_ratio] = np.nan
    out[Metric.annualized_volatility] = np.nan
    # downside risk: sqrt of the mean squared loss, annualised; Sortino: the annualised mean over it
    downside = np.sqrt(acc.down_sum / k if k > 0 else np.nan) * np.sqrt(ann_factor)
    out[Metric.downside_risk] = downside
    if n < 2:
        out[Metric.sortino_ratio] = np.nan
    elif downside == 0.0:
        out[Metric.sortino_ratio] = np.inf
    else:
        out[Metric.sortino_ratio] = mean * ann_factor / downside
    out[Metric.max_drawdown] = acc.worst_dd
    annualized = acc.growth ** (ann_factor / n) - 1
    out[Metric.annualized_return] = annualized
    out[Metric.calmar_ratio] = np.nan if acc.worst_dd == 0.0 else annualized / abs(acc.worst_dd)
    out[Metric.omega_ratio] = np.inf if acc.loss_sum == 0.0 else acc.gain_sum / acc.loss_sum
    out[Metric.max_drawdown_duration] = acc.longest_dd if acc.longest_dd > 0 else np.nan
    out[Metric.exposure] = acc.exposed / n
    out[Metric.total_fees_paid] = fees_paid
    # the exit trades (closed, and the open one valued at the last close)
    count = trades.count
    out[Metric.n_trades] = count
    win_rate = trades.wins / count if count > 0 else np.nan
    out[Metric.win_rate] = win_rate
    out[Metric.profit_factor] = trades.win_sum / abs(trades.loss_sum)
    if count > 0:
        # breakeven trades count, but neither win nor lose; no winner (loser): an average win (loss) of 0
        avg_win = trades.win_sum / trades.wins if trades.wins > 0 else 0.0
        avg_loss = trades.loss_sum / trades.losses if trades.losses > 0 else 0.0
        out[Metric.expectancy] = win_rate * avg_win - trades.losses / count * abs(avg_loss)
    else:
        out[Metric.expectancy] = np.nan
    out[Metric.sqn] = np.sqrt(count) * trades.pnl_mean / trades.pnl_std
    out[Metric.best_trade] = trades.best
    out[Metric.worst_trade] = trades.worst
    return mean


# ############# One strategy on one asset ############# #


@njit(cache=True, error_model="numpy")
def simulate_column_nb(prices, signals, p, sim, ws):
    """Simulate one strategy over bars [sim.start, len(close)) and write its metrics row into ws.out (but
    for Sharpe ratio and annualised volatility: second_pass_nb) and its trade fingerprint (the hash of its
    filled orders, see order_hash_nb) into ws.fingerprints[0]; its returns go to ws.returns, its exit
    trades to ws.trades[0]. Returns (its mean return, its count of returns).

    prices: evo.engine.enums.Prices of 1-D arrays; signals: Signals of 1-D arrays, short ones empty
    unless given (then entries/exits are the long side); p: the strategy's params_dt record; sim:
    SimSettings; ws: a Workspace. Signals before `start` are ignored: the portfolio starts flat with
    init_cash at `start` (an out-of-sample window whose indicators were warmed up on the bars before it).
    """
    n = prices.close.shape[0]
    start = sim.start
    ls = signals.short_entries.shape[0] > 0
    direction = p.direction
    # the bars from `start` on
    open_w = prices.open[start:]
    high_w = prices.high[start:]
    low_w = prices.low[start:]
    close_w = prices.close[start:]
    entries_w = signals.entries[start:]
    exits_w = signals.exits[start:]
    short_entries_w = signals.short_entries[start:]
    short_exits_w = signals.short_exits[start:]
    returns_w = ws.returns[start:]
    log = ws.trades[0]
    states = np.empty(1, dtype=state_dt)  # the column's balances and what only orders change
    st = states[0]
    init_state_nb(st, sim.init_cash)
    pos = 0.0
    cash = sim.init_cash  # cash_nb: init + cumulative cash flows, as vectorbt rebuilds it from the orders
    acc = acc_init_nb(sim.init_cash)

    # Bars are indexed by unsigned ints from 0 in the windows: no negative-index wraparound code.
    m = n - start
    i = 0
    while i < m:
        stop_price = np.nan
        if pos == 0:
            # flat: until a signal that could open a position (most bars), the value stays and each bar
            # returns exactly 0
            nxt = m
            for j in range(i, m):
                u = np.uint64(j)
                # opens_nb written out: its arguments would read every signal of every bar, and this loop
                # runs on most bars (a fifth of a column's time)
                if ls:
                    opens = entries_w[u] or short_entries_w[u]
                else:
                    opens = entries_w[u] or (exits_w[u] and direction == Direction.Both)
                if opens:
                    nxt = j
                    break
                returns_w[u] = 0.0
            acc = flat_nb(acc, i, nxt)
        else:
            # in a position: hold until a stop or a signal that can change it; the stops in a local
            # record for the stretch (written back once, after it)
            watch_entries, watch_exits = watched_nb(pos, ls, direction)
            stops = stops_of_nb(st)
            nxt = m
            for j in range(i, m):
                u = np.uint64(j)
                stops, stop_price = watch_nb(stops, pos, open_w[u], low_w[u], high_w[u])
                # changes_nb written out, for the same reason
                if (not np.isnan(stop_price)
                        or (watch_exits and (exits_w[u] or (ls and short_exits_w[u])))
                        or (watch_entries and (entries_w[u] or (ls and short_entries_w[u])))):
                    nxt = j
                    break
                acc, r = bar_nb(acc, cash + close_w[u] * pos, j, True)
                returns_w[u] = r
            keep_trailing_nb(st, stops)
        i = nxt
        if i == m:
            break
        # bar i may trade: the stop found above, or its signals
        u = np.uint64(i)
        c = close_w[u]
        sides = read_signals_nb(entries_w[u], exits_w[u], ls and short_entries_w[u], ls and short_exits_w[u], ls,
                                direction)
        bar = column_bar_nb(i, c, stop_price, sides)
        flow = trade_bar_nb(st, st, log, bar, p, sim)
        pos = st.position
        if flow != 0.0:  # add_nb(x, 0.0) is x for every x add_nb returns
            cash = add_nb(cash, flow)
        acc, r = bar_nb(acc, cash + c * pos if pos != 0 else cash + c * 0.0, i, pos != 0)
        returns_w[u] = r
        i += 1

    acc = finish_acc_nb(acc, m - 1)
    close_open_trade_nb(st, log, prices.close[n - 1])
    # total_return from total_profit_nb (no orders: exactly 0)
    total_return = 0.0 if st.n_orders == 0 else (st.profit_cash + pos * prices.close[n - 1]) / sim.init_cash
    mean = write_metrics_nb(ws.out, acc, trade_summary_nb(states, ws.trades), total_return, st.fees_paid, m, sim)
    ws.fingerprints[0] = st.fingerprint
    return mean, acc.n_returns


# ############# One strategy on several assets: one portfolio with shared cash ############# #


@njit(cache=True, error_model="numpy")
def simulate_group_nb(prices, signals, p, sim, ws):
    """One strategy's signals on n_assets columns as ONE portfolio with shared cash, equal to vectorbt's
    from_signals(..., group_by=True, cash_sharing=True) with the default call sequence: each bar, the
    columns in order resolve their stop or signals and execute them against the shared cash (watch_nb,
    trade_bar_nb, as simulate_column_nb); the metrics are the group's (its value and returns; all
    columns' trades; a bar is exposed when any column holds a position; the fees of all orders).
    prices: Prices of (n_assets, n_bars) arrays; signals: Signals of (n_assets, n_bars) arrays, short
    ones of last axis 0 when not given. Writes ws.out (but for the second pass, as simulate_column_nb),
    ws.fingerprints[k] (each column's trade fingerprint), ws.returns and ws.trades[k]; returns (the
    mean return, the count of returns).
    """
    n_assets, n = prices.close.shape
    start = max(sim.start, 0)  # known >= 0: indices need no negative wraparound
    ls = signals.short_entries.shape[-1] > 0
    direction = p.direction
    open_w = prices.open
    high_w = prices.high
    low_w = prices.low
    close_w = prices.close
    entries_w = signals.entries
    exits_w = signals.exits
    short_entries_w = signals.short_entries
    short_exits_w = signals.short_exits
    returns_w = ws.returns
    states = np.empty(n_assets + 1, dtype=state_dt)  # the columns' states, and the group's cash last
    for k in range(n_assets + 1):
        init_state_nb(states[k], sim.init_cash)
    bal = states[n_assets]
    n_open = 0  # columns with a position
    cash = sim.init_cash  # cash_grouped_nb
    acc = acc_init_nb(sim.init_cash)

    for i in range(start, n):
        ui = np.uint64(i)  # unsigned indices: no negative-index wraparound code
        flow = 0.0  # the group's cash flow: sum_grouped_nb of the columns' flows, in column order
        was_open = n_open
        for k in range(n_assets):
            uk = np.uint64(k)
            st = states[uk]
            pk = st.position
            # as in simulate_column_nb: most columns hold (flat with nothing to open, or in a position
            # without a stop or a signal that can change it) and skip to the next
            stop_price = np.nan
            short_entry = ls and short_entries_w[uk, ui]
            short_exit = ls and short_exits_w[uk, ui]
            if pk == 0:
                if not opens_nb(entries_w[uk, ui], exits_w[uk, ui], short_entry, ls, direction):
                    continue
            else:
                stops, stop_price = watch_nb(stops_of_nb(st), pk, open_w[uk, ui], low_w[uk, ui], high_w[uk, ui])
                keep_trailing_nb(st, stops)
                watch_entries, watch_exits = watched_nb(pk, ls, direction)
                if np.isnan(stop_price) and not changes_nb(watch_entries, watch_exits, entries_w[uk, ui],
                                                           exits_w[uk, ui], short_entry, short_exit, ls):
                    continue
            sides = read_signals_nb(entries_w[uk, ui], exits_w[uk, ui], short_entry, short_exit, ls, direction)
            bar = column_bar_nb(i - start, close_w[uk, ui], stop_price, sides)
            flow += trade_bar_nb(bal, st, ws.trades[uk], bar, p, sim)
            n_open += (st.position != 0) - (pk != 0)
        if n_open == 0 and was_open == 0:
            # flat before and after (so no order filled): the value stays, the bar returns exactly 0
            returns_w[ui] = 0.0
            acc = flat_nb(acc, i - start, i - start + 1)
            continue
        if flow != 0.0:
            cash = add_nb(cash, flow)
        asset_value = 0.0  # asset_value_grouped_nb: close x position summed in column order
        for k in range(n_assets):
            uk = np.uint64(k)
            pk = states[uk].position
            if pk != 0:
                asset_value += close_w[uk, ui] * pk
        acc, r = bar_nb(acc, cash + asset_value, i - start, n_open > 0)
        returns_w[ui] = r

    acc = finish_acc_nb(acc, n - 1 - start)
    total_profit = 0.0  # total_profit_grouped_nb: the columns' total profits summed in column order
    for k in range(n_assets):
        st = states[k]
        close_open_trade_nb(st, ws.trades[k], close_w[k, n - 1])
        if st.n_orders > 0:
            total_profit += st.profit_cash + st.position * close_w[k, n - 1]
        ws.fingerprints[k] = st.fingerprint
    mean = write_metrics_nb(ws.out, acc, trade_summary_nb(states, ws.trades), total_profit / sim.init_cash,
                            bal.fees_paid, n - start, sim)
    return mean, acc.n_returns


# ############# Many strategies ############# #


@njit(cache=True, error_model="numpy", inline="always")
def given_signals_nb(signals, s, entries, exits) -> Signals:
    """Strategy s's rows of precomputed signals (a Signals of arrays with a leading strategy axis); the
    thread's signal buffers are not used."""
    return Signals(signals.entries[s], signals.exits[s], signals.short_entries[s], signals.short_exits[s])


@njit(cache=True, error_model="numpy", inline="always")
def filled_nb(entries, exits) -> Signals:
    """The Signals of a family's signal function that filled `entries` and `exits`, without short signals."""
    return Signals(entries, exits, entries[:0], exits[:0])


@njit(error_model="numpy", inline="always")
def drive_nb(simulate_fn, signals_fn, args, prices, params, sim, n_threads):
    """(metrics (n_strategies, N_METRICS), trade fingerprints (n_strategies, n_columns) uint64, block sums
    (n_strategies, blocks, 2): each block's sum and sum of squares of returns, for the blocks sim.edges
    cuts (0 blocks without edges)) of one strategy per params record, each simulated by `simulate_fn` (simulate_column_nb or simulate_group_nb)
    on `prices` with the signals `signals_fn(args, s, entries, exits)` gives for strategy s: a Signals
    tuple, either filled into the thread's buffers `entries`/`exits` (shaped like one strategy's
    signals) or taken from `args` (given_signals_nb).

    Strategies are spread round-robin over `n_threads` (numba.get_num_threads(), passed in because
    reading it inside a kernel defeats the compile cache); each thread owns a batch of returns buffers,
    signal buffers and a trade log, so memory is O(threads x bars), not O(strategies x bars), and runs
    the Sharpe pass of a full batch at once (sharpe_batch_nb).

    Inlined into each parallel kernel, so that the functions passed in are called directly: numba's
    on-disk cache keeps a kernel that takes a function as an argument only this way.
    """
    n_strat = params.shape[0]
    n_bars = prices.close.shape[-1]
    n_cols = prices.close.size // n_bars
    out = np.empty((n_strat, N_METRICS))
    fps = np.empty((n_strat, n_cols), dtype=np.uint64)
    blocks = np.zeros((n_strat, max(sim.edges.shape[0] - 1, 0), 2))
    n_threads = max(1, min(n_threads, n_strat))
    returns = np.empty((n_threads, BATCH, n_bars))
    trades = np.empty((n_threads, n_cols, n_bars), dtype=trade_dt)
    buffers = np.empty((n_threads, 2) + prices.close.shape, dtype=np.bool_)
    batch = np.empty((n_threads, BATCH), dtype=batch_dt)
    for t in prange(n_threads):
        q = 0
        for s in range(t, n_strat, n_threads):
            ws = Workspace(returns[t, q], buffers[t, 0], buffers[t, 1], trades[t], out[s], fps[s])
            mean, k = simulate_fn(prices, signals_fn(args, s, ws.entries, ws.exits), params[s], sim, ws)
            b = batch[t, q]
            b.mean = mean
            b.count = k
            b.row = s
            q += 1
            if q == BATCH:
                sharpe_batch_nb(returns[t], batch[t], q, sim, out, blocks)
                q = 0
        if q > 0:
            sharpe_batch_nb(returns[t], batch[t], q, sim, out, blocks)
    return out, fps, blocks


@njit(error_model="numpy", inline="always")
def simulate_columns_nb(signals_fn, args, prices, params, sim, n_threads):
    """drive_nb over one asset: (metrics (n_strategies, N_METRICS), trade fingerprints (n_strategies,)
    uint64, block sums (n_strategies, blocks, 2)). For a family's fused kernel: `signals_fn` fills one
    strategy's signals (evo/strategies/nb.py)."""
    out, fps, blocks = drive_nb(simulate_column_nb, signals_fn, args, prices, params, sim, n_threads)
    return out, fps[:, 0], blocks


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_signals_nb(prices, signals, params, sim, n_threads):
    """(metrics (n_strategies, N_METRICS), trade fingerprints (n_strategies,) uint64, block sums (drive_nb))
    of signals shaped (n_strategies, n_bars) (short ones (n_strategies, 0) when not given) on one asset's Prices, one
    params record per strategy, simulated over bars [sim.start, n_bars)."""
    return simulate_columns_nb(given_signals_nb, signals, prices, params, sim, n_threads)


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_portfolios_nb(prices, signals, params, sim, n_threads):
    """(metrics (n_strategies, N_METRICS), trade fingerprints (n_strategies, n_assets) uint64, block sums
    of the portfolio's returns (drive_nb)) of one shared-cash portfolio per strategy over all assets.

    Prices of (n_assets, n_bars) arrays; Signals of (n_strategies, n_assets, n_bars) arrays, short ones
    (n_strategies, 0, 0) when not given; one params record per strategy (the same for each of its assets)."""
    return drive_nb(simulate_group_nb, given_signals_nb, signals, prices, params, sim, n_threads)
