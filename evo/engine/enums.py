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


class SimSettings(NamedTuple):
    """What every strategy of one kernel call shares.

    fees and slippage are fractions of the order value; min_size is vectorbt's default
    minimum order size (1e-8): smaller orders are rejected. `start` is the first traded bar:
    signals before it are ignored and the portfolio starts flat there with init_cash.
    """

    init_cash: float
    fees: float
    slippage: float
    min_size: float
    ann_factor: float
    upon_opposite_entry: int
    start: int


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
#: cash and free cash live in a record of their own): balances, the exit trade being built, counters,
#: and the stops of the open position (the trigger levels as vectorbt computes them each bar; NaN: none)
state_dt = np.dtype(
    [
        ("cash", np.float64),
        ("free_cash", np.float64),
        ("debt", np.float64),
        ("profit_cash", np.float64),  # total_profit_nb's cumulative order cash
        ("n_orders", np.int64),
        ("trade_open", np.bool_),  # the open exit trade (TradeState)
        ("trade_direction", np.int64),
        ("trade_size", np.float64),
        ("trade_gross", np.float64),
        ("trade_fees", np.float64),
        ("n_trades", np.int64),  # closed trades, and the winners among them
        ("n_wins", np.int64),
        ("sl_price", np.float64),  # the stop-loss reference price (trailing: the best price since entry)
        ("sl_stop", np.float64),
        ("sl_trail", np.bool_),
        ("sl_level", np.float64),
        ("tp_level", np.float64),
        ("fingerprint", np.uint64),  # the hash of the column's filled orders so far (evo.engine.nb.order_hash_nb)
    ],
    align=True,
)

#: the trade fingerprint of a column without orders, and the start of every chain of order hashes
FINGERPRINT_SEED = np.uint64(0x243F6A8885A308D3)


class ExecState(NamedTuple):
    """The balances an order changes (vectorbt's ExecuteOrderState)."""

    cash: float
    position: float
    debt: float
    free_cash: float


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
