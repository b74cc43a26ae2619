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
vectorbt's default (Rust) engine: the order execution (`buy`, `sell`, `execute_order`), the
exit-trade records, `cash_flow`, `total_profit`, `returns`, sharpe/sortino, and the drawdown,
which compounds wealth from 100 bar by bar. So the results agree with vectorbt to the last bit
in the tests we run, and to ~1e-14 where they do not.

A metrics row has the slots of evo.engine.enums.Metric (the metric table, evo.config.metrics). Beside it
each column gets a trade fingerprint: a 64-bit hash of its filled orders (order_hash_nb), chained
as they fill, which the vectorbt engine recomputes from its order records (order_fingerprints_nb).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from evo.engine.enums import (
    BATCH,
    N_METRICS,
    Direction,
    ExecState,
    Metric,
    OppositeEntryMode,
    OrderResult,
    OrderSide,
    OrderStatus,
    FINGERPRINT_SEED,
    SizeType,
    TradeDirection,
    TradeState,
    state_dt,
)
from evo.engine.jit import drop_stale_cache

# numba caches this module's kernels keyed on this file only; the enums are compiled in as constants
drop_stale_cache(__file__, __file__.replace("nb.py", "enums.py"))

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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
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
def execute_order_nb(state: ExecState, size: float, size_type: int, direction: int, price: float,
                     val_price: float, fees: float, slippage: float, min_size: float):
    """vectorbt's execute_order for a signed order size (positive buys, negative sells).

    Balances within tolerance of zero are zero from here on, whether the order fills or not."""
    exec_state = ExecState(
        0.0 if is_zero_nb(state.cash) else state.cash,
        0.0 if is_zero_nb(state.position) else state.position,
        0.0 if is_zero_nb(state.debt) else state.debt,
        0.0 if is_zero_nb(state.free_cash) else state.free_cash,
    )
    if np.isnan(size):
        return exec_state, _not_filled_nb(OrderStatus.Ignored)
    order_size = size
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
        return buy_nb(exec_state, order_size, price, direction, fees, slippage, min_size, percent)
    return sell_nb(exec_state, -order_size, price, direction, fees, slippage, min_size, percent)


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


# ############# Accounting ############# #


@njit(cache=True, error_model="numpy", inline="always")
def trade_pnl_nb(size: float, entry_price: float, entry_fees: float, exit_price: float, exit_fees: float,
                 direction: int) -> float:
    """vectorbt get_trade_stats_nb's PnL."""
    val_diff = add_nb(size * exit_price, -(size * entry_price))
    if val_diff != 0 and direction == TradeDirection.Short:
        val_diff *= -1
    return val_diff - entry_fees - exit_fees


@njit(cache=True, error_model="numpy", inline="always")
def trade_fill_nb(t: TradeState, size: float, price: float, fees: float, side: int):
    """One filled order into the column's exit trades (vectorbt get_exit_trades_nb):
    (new trade state, trades closed by it, of which winners)."""
    if not t.open:
        t = TradeState(True, TradeDirection.Long if side == OrderSide.Buy else TradeDirection.Short, 0.0, 0.0, 0.0)
    is_entry = (t.direction == TradeDirection.Long) == (side == OrderSide.Buy)
    if is_entry:
        return TradeState(True, t.direction, t.size_sum + size, t.gross_sum + size * price, t.fees_sum + fees), 0, 0
    entry_price = t.gross_sum / t.size_sum
    if is_close_or_less_nb(size, t.size_sum):
        exit_size = t.size_sum if is_close_nb(size, t.size_sum) else size
        entry_fees = (exit_size / t.size_sum) * t.fees_sum
        pnl = trade_pnl_nb(exit_size, entry_price, entry_fees, price, fees, t.direction)
        win = 1 if pnl > 0 else 0
        if is_close_nb(size, t.size_sum):
            return TradeState(False, t.direction, t.size_sum, t.gross_sum, t.fees_sum), 1, win
        # position decreased: the rest keeps its average entry price
        frac = (t.size_sum - size) / t.size_sum
        return TradeState(True, t.direction, t.size_sum * frac, t.gross_sum * frac, t.fees_sum * frac), 1, win
    # reversed: close the trade with the matching part of the order, open one with the rest
    cl_exit_size = t.size_sum
    cl_exit_fees = cl_exit_size / size * fees
    entry_fees = (cl_exit_size / t.size_sum) * t.fees_sum
    pnl = trade_pnl_nb(cl_exit_size, entry_price, entry_fees, price, cl_exit_fees, t.direction)
    win = 1 if pnl > 0 else 0
    rest = size - cl_exit_size
    new_dir = TradeDirection.Short if t.direction == TradeDirection.Long else TradeDirection.Long
    return TradeState(True, new_dir, rest, rest * price, fees - cl_exit_fees), 1, win


@njit(cache=True, error_model="numpy")
def open_trade_win_nb(t: TradeState, last_close: float):
    """(1 if the trade is still open, 1 if it wins) valued at the last close without exit fees."""
    if t.open and is_less_nb(-t.size_sum, 0):
        entry_price = t.gross_sum / t.size_sum
        entry_fees = (t.size_sum / t.size_sum) * t.fees_sum
        pnl = trade_pnl_nb(t.size_sum, entry_price, entry_fees, last_close, 0.0, t.direction)
        return 1, 1 if pnl > 0 else 0
    return 0, 0


@njit(cache=True, error_model="numpy", inline="always")
def order_cash_flow_nb(res: OrderResult) -> float:
    """vectorbt cash_flow of one order: -size * price - fees with the size signed by side."""
    if res.side == OrderSide.Sell:
        return res.size * res.price - res.fees
    return -res.size * res.price - res.fees


@njit(cache=True, error_model="numpy")
def init_state_nb(st, init_cash: float) -> None:
    """A column's state_dt record before its first bar: the cash, no trade, no stops."""
    st.cash = init_cash
    st.free_cash = init_cash
    st.debt = 0.0
    st.profit_cash = 0.0
    st.n_orders = 0
    st.trade_open = False
    st.trade_direction = 0
    st.trade_size = 0.0
    st.trade_gross = 0.0
    st.trade_fees = 0.0
    st.n_trades = 0
    st.n_wins = 0
    st.sl_price = np.nan
    st.sl_stop = np.nan
    st.sl_trail = False
    st.sl_level = np.nan
    st.tp_level = np.nan
    st.fingerprint = FINGERPRINT_SEED


@njit(cache=True, error_model="numpy")
def process_order_nb(bal, st, pos, size, size_type, direction, price, close, fees, slippage, min_size, p, bar):
    """Execute one order of a column and book it: balances (bal: the record holding the cash and free
    cash, the group's in a shared-cash group; st: the column's state_dt record), its cash flow, the exit
    trades, the stops (set from the bar's close when a position opens or reverses, cleared when it
    closes) and the trade fingerprint (`bar`: the bar from the window's first). Records, not arrays: an
    array argument costs atomic reference counting on every order. Returns (new position, the bar's
    cash flow)."""
    new_state, res = execute_order_nb(
        ExecState(bal.cash, pos, st.debt, bal.free_cash), size, size_type, direction, price, close, fees,
        slippage, min_size,
    )
    bal.cash = new_state.cash
    bal.free_cash = new_state.free_cash
    st.debt = new_state.debt
    new_pos = new_state.position
    if res.status != OrderStatus.Filled:
        return new_pos, 0.0
    st.n_orders += 1
    st.fingerprint = order_hash_nb(st.fingerprint, bar, res.side, res.size)
    cf = order_cash_flow_nb(res)
    st.profit_cash = add_nb(st.profit_cash, cf)
    trade = TradeState(st.trade_open, st.trade_direction, st.trade_size, st.trade_gross, st.trade_fees)
    trade, closed, won = trade_fill_nb(trade, res.size, res.price, res.fees, res.side)
    st.trade_open = trade.open
    st.trade_direction = trade.direction
    st.trade_size = trade.size_sum
    st.trade_gross = trade.gross_sum
    st.trade_fees = trade.fees_sum
    st.n_trades += closed
    st.n_wins += won
    if new_pos == 0:
        st.sl_price = np.nan
        st.sl_stop = np.nan
        st.sl_trail = False
        st.sl_level = np.nan
        st.tp_level = np.nan
    elif pos == 0 or np.sign(new_pos) != np.sign(pos):
        # opened or reversed: StopEntryPrice.Close sets the levels from this bar's close
        st.sl_price = close
        st.sl_stop = p.sl_stop
        st.sl_trail = p.sl_trail and not np.isnan(p.sl_stop)
        st.sl_level = stop_level_nb(new_pos, close, p.sl_stop, True)
        st.tp_level = stop_level_nb(new_pos, close, p.tp_stop, False)
    return new_pos, add_nb(0.0, cf)


@njit(cache=True, error_model="numpy")
def open_trade_of_nb(st, last_close):
    """(trades, winners) still open at the end, valued at the last close."""
    return open_trade_win_nb(
        TradeState(st.trade_open, st.trade_direction, st.trade_size, st.trade_gross, st.trade_fees), last_close
    )


# ############# Metrics ############# #


@njit(cache=True, error_model="numpy", inline="always")
def bar_metrics_nb(r, r_sum, n_r, down_sum, wealth, peak, trough, worst_dd):
    """One bar's return into the one-pass sums, in the order of vectorbt's nanmean loops, and the
    drawdown, which vectorbt's default (Rust) engine compounds from 100 bar by bar. x / peak - 1 is
    monotonic in x for a fixed peak (correct rounding), so the lowest point of each peak's stretch
    gives the same minimum as dividing on every bar."""
    if not np.isnan(r):
        r_sum += r
        n_r += 1
        # r * r for a loss, else + 0.0 (down_sum >= 0: the same bits): no branch on the sign of r
        neg = min(r, 0.0)
        down_sum += neg * neg
        wealth *= r + 1
    x = wealth
    if np.isnan(peak) or x > peak:
        if not np.isnan(peak):
            dd = trough / peak - 1
            if dd < worst_dd:
                worst_dd = dd
        peak = x
        trough = x
    elif x < trough:
        trough = x
    return r_sum, n_r, down_sum, wealth, peak, trough, worst_dd


@njit(cache=True, error_model="numpy")
def _sharpe_nb(r: np.ndarray, mean: float, k: int, ann_factor: float) -> float:
    """vectorbt sharpe_ratio: nanmean / nanstd(ddof=1), inf when std is 0."""
    ssd = 0.0  # numba's nanvar: a second pass around the mean
    for v in r:
        if not np.isnan(v):
            d = v - mean
            ssd += d * d
    return sharpe_of_nb(r.shape[0], mean, k, ssd, ann_factor)


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
def squared_deviation_nb(v: float, mean: float) -> float:
    """(v - mean)^2, or 0.0 for a NaN return: a sum (>= 0) keeps its bits, as when the return is skipped."""
    d = v - mean
    return d * d if not np.isnan(v) else 0.0


@njit(cache=True, error_model="numpy")
def sharpe_batch_nb(returns, n_used, start, means, counts, ann_factor, out, rows):
    """The Sharpe ratios of a batch: strategy q (< n_used) has its returns in returns[q, start:], its mean
    and count of returns in means[q], counts[q], and its metrics row in out[rows[q]]. The same sums as
    _sharpe_nb, bar by bar, four at once."""
    n = returns.shape[1] - start
    r0 = returns[0, start:]
    r1 = returns[min(1, n_used - 1), start:]  # a missing strategy repeats the last; its result is dropped
    r2 = returns[min(2, n_used - 1), start:]
    r3 = returns[min(3, n_used - 1), start:]
    m0 = means[0]
    m1 = means[min(1, n_used - 1)]
    m2 = means[min(2, n_used - 1)]
    m3 = means[min(3, n_used - 1)]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(n):
        u = np.uint64(i)
        s0 += squared_deviation_nb(r0[u], m0)
        s1 += squared_deviation_nb(r1[u], m1)
        s2 += squared_deviation_nb(r2[u], m2)
        s3 += squared_deviation_nb(r3[u], m3)
    sums = (s0, s1, s2, s3)
    for q in range(n_used):
        out[rows[q], Metric.sharpe_ratio] = sharpe_of_nb(n, means[q], counts[q], sums[q], ann_factor)


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


@njit(cache=True, error_model="numpy")
def write_metrics_nb(out: np.ndarray, returns: np.ndarray, total_return: float, r_sum: float, n_r: int,
                     down_sum: float, worst_dd: float, n_trades: int, n_wins: int, n_in_market: int,
                     ann_factor: float, sharpe: bool) -> float:
    """A metrics row from the per-bar returns (of the traded bars) and the one-pass sums; returns the
    mean return. sharpe=False leaves the Sharpe ratio (its second pass) to sharpe_batch_nb."""
    n = returns.shape[0]
    mean = r_sum / n_r if n_r > 0 else np.nan
    out[Metric.total_return] = total_return
    out[Metric.sharpe_ratio] = _sharpe_nb(returns, mean, n_r, ann_factor) if sharpe else np.nan
    out[Metric.sortino_ratio] = _sortino_nb(mean, down_sum, n_r, n, ann_factor)
    out[Metric.max_drawdown] = worst_dd
    out[Metric.n_trades] = n_trades
    out[Metric.win_rate] = n_wins / n_trades if n_trades > 0 else np.nan
    out[Metric.exposure] = n_in_market / n
    return mean


# ############# One strategy on one asset ############# #


@njit(cache=True, error_model="numpy")
def simulate_column_nb(open_, high, low, close, entries, exits, short_entries, short_exits, p, sim, returns, out,
                       sharpe=True):
    """Simulate one strategy over bars [sim.start, len(close)), write its metrics row into `out` and
    return (its trade fingerprint (uint64: the hash of its filled orders, see order_hash_nb), its mean
    return, its count of returns): with sharpe=False, what sharpe_batch_nb needs for its Sharpe ratio.

    p: the strategy's record (evo.engine.enums.params_dt); sim: evo.engine.enums.SimSettings.
    short_entries/short_exits: empty unless given (then entries/exits are the long side).
    Signals before `start` are ignored: the portfolio starts flat with init_cash at `start` (an
    out-of-sample window whose indicators were warmed up on the bars before it). `returns` is a
    scratch buffer of len(close): the only O(T) memory used.
    """
    n = close.shape[0]
    start = sim.start
    ls = short_entries.shape[0] > 0
    direction = p.direction
    uoe = sim.upon_opposite_entry
    # the bars from `start` on
    open_w = open_[start:]
    high_w = high[start:]
    low_w = low[start:]
    close_w = close[start:]
    entries_w = entries[start:]
    exits_w = exits[start:]
    short_entries_w = short_entries[start:]
    short_exits_w = short_exits[start:]
    returns_w = returns[start:]
    states = np.empty(1, dtype=state_dt)  # the column's balances and what only orders change
    st = states[0]
    init_state_nb(st, sim.init_cash)
    pos = 0.0
    rec_cash = sim.init_cash  # cash_nb: init + cumulative cash flows, as vectorbt rebuilds it from the orders
    n_in_market = 0
    prev_value = sim.init_cash
    r_sum = 0.0
    down_sum = 0.0
    n_r = 0
    wealth = 100.0
    peak = np.nan
    trough = np.nan
    worst_dd = 0.0

    # Bars are indexed by unsigned ints from 0 in the windows: no negative-index wraparound code.
    m = n - start
    i = 0
    while i < m:
        if pos == 0:
            # flat: until a signal that could open a position (most bars), the value stays and each bar
            # returns exactly 0; of the metrics only the count of returns and the first peak change
            nxt = m
            for j in range(i, m):
                u = np.uint64(j)
                if ls:
                    opens = entries_w[u] or short_entries_w[u]
                else:
                    opens = entries_w[u] or (exits_w[u] and direction == Direction.Both)
                if opens:
                    nxt = j
                    break
                returns_w[u] = 0.0
            n_r += nxt - i
            if nxt > i and np.isnan(peak):
                peak = wealth
                trough = wealth
            i = nxt
            if i == m:
                break
            stop_price = np.nan
        else:
            # in a position: hold until a stop or a signal that can change it. A stop comes first and
            # takes the bar (StopLimit: its level, or the open when the bar opens beyond it, without
            # slippage); a trailing stop-loss then follows the bar's high (low for a short).
            is_long = pos > 0
            watch_entries = ls or (direction == Direction.Both and not is_long)  # both: a short reverses
            watch_exits = ls or not watch_entries  # closes, or reverses a long (both)
            # the stops in locals for the stretch (the record is written back once, after it)
            sl_level = st.sl_level
            tp_level = st.tp_level
            sl_price = st.sl_price
            sl_stop = st.sl_stop
            trail = st.sl_trail
            stop_price = np.nan
            nxt = m
            for j in range(i, m):
                u = np.uint64(j)
                lo = low_w[u]
                hi = high_w[u]
                stop_price = stop_fill_nb(pos, sl_level, tp_level, open_w[u], lo, hi)
                if trail:
                    # vectorbt recomputes the level from the reference price every bar: same operations
                    if is_long:
                        if hi > sl_price:
                            sl_price = hi
                            sl_level = stop_level_nb(pos, hi, sl_stop, True)
                    elif lo < sl_price:
                        sl_price = lo
                        sl_level = stop_level_nb(pos, lo, sl_stop, True)
                if (not np.isnan(stop_price)
                        or (watch_exits and (exits_w[u] or (ls and short_exits_w[u])))
                        or (watch_entries and (entries_w[u] or (ls and short_entries_w[u])))):
                    nxt = j
                    break
                c = close_w[u]
                value = rec_cash + c * pos
                # an unchanged value returns exactly 0: skip the division
                r = 0.0 if value == prev_value else _return_nb(prev_value, value)
                returns_w[u] = r
                prev_value = value
                r_sum, n_r, down_sum, wealth, peak, trough, worst_dd = bar_metrics_nb(
                    r, r_sum, n_r, down_sum, wealth, peak, trough, worst_dd
                )
            n_in_market += nxt - i
            st.sl_price = sl_price
            st.sl_level = sl_level
            i = nxt
            if i == m:
                break
        # bar i may trade: the stop found above, or its signals through vectorbt's resolution
        u = np.uint64(i)
        c = close_w[u]
        price = c
        slip = sim.slippage
        if not np.isnan(stop_price):
            price = stop_price
            slip = 0.0
            size, size_type, order_dir = signals_to_size_nb(pos, False, pos > 0, False, pos < 0, p.size,
                                                            p.size_type, c)
        else:
            short_entry = False
            short_exit = False
            if ls:
                short_entry = short_entries_w[u]
                short_exit = short_exits_w[u]
            le, lx, se, sx = read_signals_nb(entries_w[u], exits_w[u], short_entry, short_exit, ls, direction)
            le, lx, se, sx = resolve_signals_nb(pos, le, lx, se, sx, uoe)
            size, size_type, order_dir = signals_to_size_nb(pos, le, lx, se, sx, p.size, p.size_type, c)
        if size != 0:
            pos, flow = process_order_nb(st, st, pos, size, size_type, order_dir, price, c, sim.fees, slip,
                                         sim.min_size, p, i)
            if flow != 0.0:  # add_nb(x, 0.0) is x for every x add_nb returns
                rec_cash = add_nb(rec_cash, flow)
        if pos != 0:
            n_in_market += 1
            value = rec_cash + c * pos
        else:
            value = rec_cash + c * 0.0
        r = 0.0 if value == prev_value else _return_nb(prev_value, value)
        returns_w[u] = r
        prev_value = value
        r_sum, n_r, down_sum, wealth, peak, trough, worst_dd = bar_metrics_nb(
            r, r_sum, n_r, down_sum, wealth, peak, trough, worst_dd
        )
        i += 1
    if not np.isnan(peak):
        dd = trough / peak - 1
        if dd < worst_dd:
            worst_dd = dd

    still_open, won = open_trade_of_nb(st, close[n - 1])
    # total_return from total_profit_nb (no orders: exactly 0)
    total_return = 0.0 if st.n_orders == 0 else (st.profit_cash + pos * close[n - 1]) / sim.init_cash
    mean = write_metrics_nb(out, returns_w, total_return, r_sum, n_r, down_sum, worst_dd, st.n_trades + still_open,
                            st.n_wins + won, n_in_market, sim.ann_factor, sharpe)
    return st.fingerprint, mean, n_r


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_signals_nb(open_, high, low, close, entries, exits, short_entries, short_exits, params, sim, n_threads):
    """(metrics (n_strategies, N_METRICS), trade fingerprints (n_strategies,) uint64) of signals shaped
    (n_strategies, n_bars), one row and one params record per strategy, simulated over bars [sim.start, n_bars).

    short_entries/short_exits: (n_strategies, n_bars), or (0, 0) when not given.
    Strategies are spread round-robin over `n_threads` (numba.get_num_threads(),
    passed in because reading it inside a kernel defeats the compile cache); each
    thread owns one returns buffer, so memory is O(threads x bars), not O(strategies x bars).
    """
    n_strat, n_bars = entries.shape
    out = np.empty((n_strat, N_METRICS))
    fps = np.empty(n_strat, dtype=np.uint64)
    n_threads = max(1, min(n_threads, n_strat))
    buffers = np.empty((n_threads, BATCH, n_bars))
    means = np.empty((n_threads, BATCH))
    counts = np.empty((n_threads, BATCH), dtype=np.int64)
    rows = np.empty((n_threads, BATCH), dtype=np.int64)
    no_signals = np.empty(0, dtype=np.bool_)
    ls = short_entries.shape[0] > 0
    for t in prange(n_threads):
        q = 0
        for s in range(t, n_strat, n_threads):
            if ls:
                fp, mean, k = simulate_column_nb(open_, high, low, close, entries[s], exits[s], short_entries[s],
                                                 short_exits[s], params[s], sim, buffers[t, q], out[s], False)
            else:
                fp, mean, k = simulate_column_nb(open_, high, low, close, entries[s], exits[s], no_signals,
                                                 no_signals, params[s], sim, buffers[t, q], out[s], False)
            fps[s] = fp
            q = batch_add_nb(buffers[t], q, s, mean, k, means[t], counts[t], rows[t], sim, out)
        if q > 0:
            sharpe_batch_nb(buffers[t], q, sim.start, means[t], counts[t], sim.ann_factor, out, rows[t])
    return out, fps


@njit(cache=True, error_model="numpy")
def batch_add_nb(buffers, q, s, mean, k, means, counts, rows, sim, out):
    """Strategy s, simulated into buffers[q], joins the batch; a full batch gets its Sharpe ratios.
    Returns the next free slot."""
    means[q] = mean
    counts[q] = k
    rows[q] = s
    q += 1
    if q == BATCH:
        sharpe_batch_nb(buffers, q, sim.start, means, counts, sim.ann_factor, out, rows)
        q = 0
    return q


# ############# One strategy on several assets: one portfolio with shared cash ############# #


@njit(cache=True, error_model="numpy")
def simulate_group_nb(open_, high, low, close, entries, exits, short_entries, short_exits, p, sim, returns, out,
                      fps, sharpe=True):
    """One strategy's signals on n_assets columns as ONE portfolio with shared cash, equal to vectorbt's
    from_signals(..., group_by=True, cash_sharing=True) with the default call sequence: each bar, the
    columns in order resolve their stop or signal and execute it against the shared cash; the metrics
    are the group's (its value and returns; all columns' trades; a bar is exposed when any column holds
    a position). Prices and signals are (n_assets, n_bars), short signals (0, 0) when not given.
    `returns` is a scratch buffer of n_bars; `fps` (n_assets,) receives each column's trade fingerprint.
    Returns (the mean return, the count of returns); sharpe=False leaves the Sharpe ratio to sharpe_batch_nb.
    """
    n_assets, n = close.shape
    start = max(sim.start, 0)  # known >= 0: indices need no negative wraparound
    ls = short_entries.shape[0] > 0
    direction = p.direction
    uoe = sim.upon_opposite_entry
    open_w = open_
    high_w = high
    low_w = low
    close_w = close
    entries_w = entries
    exits_w = exits
    short_entries_w = short_entries
    short_exits_w = short_exits
    returns_w = returns
    states = np.empty(n_assets + 1, dtype=state_dt)  # the columns' states, and the group's cash last
    for k in range(n_assets + 1):
        init_state_nb(states[k], sim.init_cash)
    bal = states[n_assets]
    pos = np.zeros(n_assets)
    n_open = 0  # columns with a position
    rec_cash = sim.init_cash  # cash_grouped_nb
    n_in_market = 0
    prev_value = sim.init_cash
    r_sum = 0.0
    down_sum = 0.0
    n_r = 0
    wealth = 100.0
    peak = np.nan
    trough = np.nan
    worst_dd = 0.0

    for i in range(start, n):
        ui = np.uint64(i)  # unsigned indices: no negative-index wraparound code
        flow = 0.0  # the group's cash flow: sum_grouped_nb of the columns' flows, in column order
        was_open = n_open
        for k in range(n_assets):
            uk = np.uint64(k)
            pk = pos[uk]
            # as in simulate_column_nb: most columns hold (flat with nothing to open, or in a position
            # without a stop or a signal that can change it) and skip to the next
            stop_price = np.nan
            if pk == 0:
                if ls:
                    opens = entries_w[uk, ui] or short_entries_w[uk, ui]
                else:
                    opens = entries_w[uk, ui] or (exits_w[uk, ui] and direction == Direction.Both)
                if not opens:
                    continue
            else:
                st = states[uk]
                lo = low_w[uk, ui]
                hi = high_w[uk, ui]
                stop_price = stop_fill_nb(pk, st.sl_level, st.tp_level, open_w[uk, ui], lo, hi)
                if st.sl_trail:
                    if pk > 0:
                        if hi > st.sl_price:
                            st.sl_price = hi
                            st.sl_level = stop_level_nb(pk, hi, st.sl_stop, True)
                    elif lo < st.sl_price:
                        st.sl_price = lo
                        st.sl_level = stop_level_nb(pk, lo, st.sl_stop, True)
                watch_entries = ls or (direction == Direction.Both and pk < 0)
                watch_exits = ls or not watch_entries
                if not (not np.isnan(stop_price)
                        or (watch_exits and (exits_w[uk, ui] or (ls and short_exits_w[uk, ui])))
                        or (watch_entries and (entries_w[uk, ui] or (ls and short_entries_w[uk, ui])))):
                    continue
            c = close_w[uk, ui]
            price = c
            slip = sim.slippage
            if not np.isnan(stop_price):
                price = stop_price
                slip = 0.0
                size, size_type, order_dir = signals_to_size_nb(pk, False, pk > 0, False, pk < 0, p.size,
                                                                p.size_type, c)
            else:
                short_entry = False
                short_exit = False
                if ls:
                    short_entry = short_entries_w[uk, ui]
                    short_exit = short_exits_w[uk, ui]
                le, lx, se, sx = read_signals_nb(entries_w[uk, ui], exits_w[uk, ui], short_entry, short_exit, ls,
                                                 direction)
                le, lx, se, sx = resolve_signals_nb(pk, le, lx, se, sx, uoe)
                size, size_type, order_dir = signals_to_size_nb(pk, le, lx, se, sx, p.size, p.size_type, c)
            if size != 0:
                new_pk, cf = process_order_nb(bal, states[uk], pk, size, size_type, order_dir, price, c, sim.fees,
                                              slip, sim.min_size, p, i - start)
                pos[uk] = new_pk
                n_open += (new_pk != 0) - (pk != 0)
                flow += cf
        if n_open == 0 and was_open == 0:
            # flat before and after (so no order filled): the value stays, the bar returns exactly 0
            returns_w[ui] = 0.0
            n_r += 1
            if np.isnan(peak):
                peak = wealth
                trough = wealth
            continue
        if flow != 0.0:
            rec_cash = add_nb(rec_cash, flow)
        asset_value = 0.0  # asset_value_grouped_nb: close x position summed in column order
        for k in range(n_assets):
            uk = np.uint64(k)
            if pos[uk] != 0:
                asset_value += close_w[uk, ui] * pos[uk]
        if n_open > 0:
            n_in_market += 1
        value = rec_cash + asset_value
        r = 0.0 if value == prev_value else _return_nb(prev_value, value)
        returns_w[ui] = r
        prev_value = value
        r_sum, n_r, down_sum, wealth, peak, trough, worst_dd = bar_metrics_nb(
            r, r_sum, n_r, down_sum, wealth, peak, trough, worst_dd
        )
    if not np.isnan(peak):
        dd = trough / peak - 1
        if dd < worst_dd:
            worst_dd = dd

    n_trades = 0
    n_wins = 0
    total_profit = 0.0  # total_profit_grouped_nb: the columns' total profits summed in column order
    for k in range(n_assets):
        st = states[k]
        still_open, won = open_trade_of_nb(st, close[k, n - 1])
        n_trades += st.n_trades + still_open
        n_wins += st.n_wins + won
        if st.n_orders > 0:
            total_profit += st.profit_cash + pos[k] * close[k, n - 1]
        fps[k] = st.fingerprint
    mean = write_metrics_nb(out, returns[start:], total_profit / sim.init_cash, r_sum, n_r, down_sum, worst_dd,
                            n_trades, n_wins, n_in_market, sim.ann_factor, sharpe)
    return mean, n_r


@njit(cache=True, parallel=True, error_model="numpy")
def simulate_portfolios_nb(open_, high, low, close, entries, exits, short_entries, short_exits, params, sim,
                           n_threads):
    """(metrics (n_strategies, N_METRICS), trade fingerprints (n_strategies, n_assets) uint64) of one
    shared-cash portfolio per strategy over all assets.

    Prices (n_assets, n_bars); signals (n_strategies, n_assets, n_bars), short ones (0, 0, 0) when
    not given; one params record per strategy (the same for each of its assets)."""
    n_strat = entries.shape[0]
    n_bars = close.shape[1]
    out = np.empty((n_strat, N_METRICS))
    fps = np.empty((n_strat, close.shape[0]), dtype=np.uint64)
    n_threads = max(1, min(n_threads, n_strat))
    buffers = np.empty((n_threads, BATCH, n_bars))
    means = np.empty((n_threads, BATCH))
    counts = np.empty((n_threads, BATCH), dtype=np.int64)
    rows = np.empty((n_threads, BATCH), dtype=np.int64)
    no_signals = np.empty((0, 0), dtype=np.bool_)
    ls = short_entries.shape[0] > 0
    for t in prange(n_threads):
        q = 0
        for s in range(t, n_strat, n_threads):
            if ls:
                mean, k = simulate_group_nb(open_, high, low, close, entries[s], exits[s], short_entries[s],
                                            short_exits[s], params[s], sim, buffers[t, q], out[s], fps[s], False)
            else:
                mean, k = simulate_group_nb(open_, high, low, close, entries[s], exits[s], no_signals, no_signals,
                                            params[s], sim, buffers[t, q], out[s], fps[s], False)
            q = batch_add_nb(buffers[t], q, s, mean, k, means[t], counts[t], rows[t], sim, out)
        if q > 0:
            sharpe_batch_nb(buffers[t], q, sim.start, means[t], counts[t], sim.ann_factor, out, rows[t])
    return out, fps
