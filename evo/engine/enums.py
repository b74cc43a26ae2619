"""Typed records that the fast engine's kernels take and return, in the style of vectorbt.portfolio.enums.

Enum values equal vectorbt's own (tests/unit/test_engine_signals_parity.py checks it), so an option
means the same number on both sides. `SimSettings` carries what is common to every strategy of a call,
`params_dt` what may differ per strategy (one record per strategy), and `Metric` names the slots of a
metrics row after the metric table (`evo.config.metrics`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from evo.config.metrics import METRICS, SLOT


class DirectionT(NamedTuple):
    LongOnly: int = 0
    ShortOnly: int = 1
    Both: int = 2


#: vectorbt's `Direction`: which side entries and exits trade when `short_entries`/`short_exits` are not given
Direction = DirectionT()


class SizeTypeT(NamedTuple):
    Amount: int = 0
    Value: int = 1
    Percent: int = 2


#: the size types `from_signals` supports (vectorbt's `SizeType` without the target types)
SizeType = SizeTypeT()


class OppositeEntryModeT(NamedTuple):
    Ignore: int = 0
    Close: int = 1
    CloseReduce: int = 2
    Reverse: int = 3
    ReverseReduce: int = 4


#: what an entry of the other side does while in a position (vectorbt's `OppositeEntryMode`)
OppositeEntryMode = OppositeEntryModeT()


class OrderSideT(NamedTuple):
    Buy: int = 0
    Sell: int = 1


OrderSide = OrderSideT()


class OrderStatusT(NamedTuple):
    Filled: int = 0
    Ignored: int = 1
    Rejected: int = 2


OrderStatus = OrderStatusT()


class TradeDirectionT(NamedTuple):
    Long: int = 0
    Short: int = 1


TradeDirection = TradeDirectionT()


class IndicatorKindT(NamedTuple):
    sma: int = 0
    ema: int = 1
    mstd: int = 2
    ema_std: int = 3
    rsi: int = 4
    ema_rsi: int = 5
    atr: int = 6
    sma_atr: int = 7
    max: int = 8
    min: int = 9


#: the indicators the fast engine's cache computes (evo.engine.indicators.Indicator.kind names one), and
#: the codes its kernels switch on
IndicatorKind = IndicatorKindT()
#: the kinds computed from high, low and close; the others read one series, the indicator's source
HLC_KINDS = frozenset({"atr", "sma_atr"})


class SimSettings(NamedTuple):
    """What every strategy of one kernel call shares.

    fees and slippage are fractions of the order value; min_size is vectorbt's default
    minimum order size (1e-8): smaller orders are rejected. ann_factor is the bars in a 365-day year,
    vol_factor its square root as libm's pow gives it (vectorbt's annualized_volatility scales by
    ann_factor ** (1 / 2), which is not always sqrt's bits; numba would turn a constant power of 1/2
    into sqrt). `start` is the first traded bar: signals before it are ignored and the portfolio
    starts flat there with init_cash. `edges` (int64, read-only) cuts the traded bars into blocks
    [start + edges[b], start + edges[b + 1]) whose sums of returns the drivers emit beside the metrics
    (what CSCV needs, evo.oos.cscv); empty: no blocks.
    """

    init_cash: float
    fees: float
    slippage: float
    min_size: float
    ann_factor: float
    vol_factor: float
    upon_opposite_entry: int
    start: int
    edges: np.ndarray


#: vectorbt's `portfolio.min_size` default
MIN_SIZE = 1e-8

#: strategies whose Sharpe passes a kernel thread runs side by side (evo.engine.nb.sharpe_batch_nb): each
#: pass is a chain of dependent additions in bar order (for vectorbt's bits), so one chain waits on the
#: adder and four keep it busy; a thread holds a returns buffer for each
BATCH = 4

#: one record per strategy: what may differ between the strategies of one call
params_dt = np.dtype(
    [
        ("direction", np.int64),
        ("size", np.float64),
        ("size_type", np.int64),
        ("sl_stop", np.float64),
        ("tp_stop", np.float64),
        ("sl_trail", np.bool_),
    ],
    align=True,
)


#: what only orders change in one column (one record per column; in a shared-cash group, the group's
#: cash, free cash and fees live in a record of their own): balances, the position, the exit trade being
#: built, the count of trades logged, and the stops of the open position (the trigger levels as vectorbt
#: computes them each bar; NaN: none)
state_dt = np.dtype(
    [
        ("cash", np.float64),
        ("free_cash", np.float64),
        ("debt", np.float64),
        ("position", np.float64),
        ("profit_cash", np.float64),  # total_profit_nb's cumulative order cash
        ("fees_paid", np.float64),  # the orders' fees summed as they fill (the group's, in its own record)
        ("n_orders", np.int64),
        ("trade_open", np.bool_),  # the open exit trade (TradeState)
        ("trade_direction", np.int64),
        ("trade_size", np.float64),
        ("trade_gross", np.float64),
        ("trade_fees", np.float64),
        ("n_trades", np.int64),  # exit trades in the column's trade log (trade_dt)
        ("sl_price", np.float64),  # the stop-loss reference price (trailing: the best price since entry)
        ("sl_stop", np.float64),
        ("sl_trail", np.bool_),
        ("sl_level", np.float64),
        ("tp_level", np.float64),
        ("fingerprint", np.uint64),  # the hash of the column's filled orders so far (evo.engine.nb.order_hash_nb)
    ],
    align=True,
)

#: one exit trade of a column's trade log, as vectorbt's exit-trade record computes them: its P&L and its
#: return on the entry value (the trade still open at the end is valued at the last close)
trade_dt = np.dtype([("pnl", np.float64), ("ret", np.float64)], align=True)

#: a strategy waiting in a thread's batch for its Sharpe pass: its mean return, its count of returns and
#: its row in the metrics matrix
batch_dt = np.dtype([("mean", np.float64), ("count", np.int64), ("row", np.int64)], align=True)

#: the trade fingerprint of a column without orders, and the start of every chain of order hashes
FINGERPRINT_SEED = np.uint64(0x243F6A8885A308D3)


class ExecState(NamedTuple):
    """The balances an order changes (vectorbt's ExecuteOrderState)."""

    cash: float
    position: float
    debt: float
    free_cash: float


class Order(NamedTuple):
    """An order as the signals (or a stop) of one column on one bar ask for it: a signed size (positive
    buys) of a SizeType, the Direction it may trade, the price it fills at and the slippage on that price."""

    size: float
    size_type: int
    direction: int
    price: float
    slippage: float


class OrderResult(NamedTuple):
    """What an order did: filled size, price (slippage included), fees and side, or NaN when not filled."""

    size: float
    price: float
    fees: float
    side: int
    status: int


class TradeState(NamedTuple):
    """The open exit trade of one column, as vectorbt's `get_exit_trades_nb` aggregates its orders."""

    open: bool
    direction: int
    size_sum: float
    gross_sum: float
    fees_sum: float


class Stops(NamedTuple):
    """The stops of one column's open position: the stop-loss reference price (trailing: the best price
    since the entry), its fraction and trailing switch, and the levels that trigger the stop-loss and
    the take-profit (NaN: none)."""

    sl_price: float
    sl_stop: float
    sl_trail: bool
    sl_level: float
    tp_level: float


class ColumnBar(NamedTuple):
    """What one column's order logic reads on one bar: the bar (from the window's first), its close, the
    fill price of a stop that fires on it (NaN: none) and the direction-aware signals."""

    i: int
    close: float
    stop_price: float
    long_entry: bool
    long_exit: bool
    short_entry: bool
    short_exit: bool


class Prices(NamedTuple):
    """The prices a simulation reads: one row of bars per column (1-D for one column, (columns, bars)
    for a group); open, high and low are the close itself for close-only stops."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


class Signals(NamedTuple):
    """Entries and exits, laid out like the prices (with a leading strategy axis for a whole call);
    short_entries/short_exits have a last axis of length 0 when not given (then entries/exits trade
    as `direction` says)."""

    entries: np.ndarray
    exits: np.ndarray
    short_entries: np.ndarray
    short_exits: np.ndarray


class Workspace(NamedTuple):
    """One thread's scratch for one strategy: its returns buffer (bars), signal buffers shaped like one
    strategy's signals, a trade log per column (trade_dt, one slot per bar: a trade opens on an order,
    at most one per column and bar), and where its metrics row and trade fingerprints go."""

    returns: np.ndarray
    entries: np.ndarray
    exits: np.ndarray
    trades: np.ndarray
    out: np.ndarray
    fingerprints: np.ndarray


class Acc(NamedTuple):
    """The running sums of one portfolio's value and returns, bar by bar, in the order of vectorbt's own
    loops (evo.engine.nb.bar_nb). The value drawdowns are vectorbt's drawdown records of the value: the
    running high and its bar, and the longest drawdown closed so far in bars."""

    value: float  # the last bar's value (the initial cash before the first bar)
    n_returns: int
    return_sum: float
    down_sum: float  # squared losses (downside risk, Sortino)
    gain_sum: float  # gains, and losses as positive numbers (Omega)
    loss_sum: float
    growth: float  # the product of (1 + return) (annualised return)
    wealth: float  # 100 compounded by the returns (vectorbt's drawdown series)
    peak: float  # its running peak and the lowest point since, and the deepest drawdown so far
    trough: float
    worst_dd: float
    high_value: float
    high_bar: int
    longest_dd: int
    exposed: int  # bars that end in a position


class TradeStats(NamedTuple):
    """A portfolio's exit trades summed up as vectorbt's trade reductions do (column by column, each
    column's trades in order): counts, the P&L of winners and losers, the P&L mean and standard
    deviation (ddof 1) and the best and worst return."""

    count: int
    wins: int
    losses: int
    win_sum: float
    loss_sum: float
    pnl_mean: float
    pnl_std: float
    best: float
    worst: float


#: the kernel slot of each metric in a metrics row, from the metric table (evo.config.metrics): Metric.sharpe_ratio
#: is SLOT["sharpe_ratio"]; a NamedTuple so that numba compiles the slots in as constants
MetricT = NamedTuple("MetricT", [(m, int) for m in METRICS])
Metric = MetricT(*(SLOT[m] for m in METRICS))
N_METRICS = len(METRICS)


def map_enum(value, enum, name: str) -> int:
    """An enum field from its name (case and underscores ignored, as vectorbt's map_enum_fields) or value."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be one of {list(enum._fields)}, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if int(value) in enum:
            return int(value)
    elif isinstance(value, str):
        key = value.lower().replace("_", "")
        for field in enum._fields:
            if field.lower() == key:
                return getattr(enum, field)
    raise ValueError(f"{name} must be one of {[f.lower() for f in enum._fields]}, got {value!r}")
