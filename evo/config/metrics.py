"""The metric table: every fact about a metric, declared once.

A metric's position in TABLE is its kernel slot (the column the numba kernels write), its column in
every metrics matrix, and the order of the store's metric columns (named after it). Everything else
(the config's MetricName, objective directions, hypervolume references, table labels, the vectorbt
reference) is derived from the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # column header in `evo show` and the artifacts
    direction: Literal["max", "min"] | None  # which way is better when no objective or constraint says
    ref: float  # default hypervolume reference in metric units: the worst value that still counts
    reference: Callable[[Any], Any]  # the metric from a vectorbt Portfolio (the definition of record)
    doc: str


TABLE: tuple[Metric, ...] = (
    Metric("total_return", "return", "max", -1.0, lambda pf: pf.total_return(),
           "total return on the initial cash (-1: everything lost)"),
    Metric("sharpe_ratio", "sharpe", "max", 0.0, lambda pf: pf.sharpe_ratio(),
           "annualised Sharpe ratio over a 365-day year, ddof 1"),
    Metric("sortino_ratio", "sortino", "max", 0.0, lambda pf: pf.sortino_ratio(),
           "annualised Sortino ratio, required return 0"),
    Metric("max_drawdown", "max_dd", "max", -1.0, lambda pf: pf.max_drawdown(),
           "deepest drawdown, a negative fraction (vectorbt's sign): shallower is larger"),
    Metric("n_trades", "trades", "max", 0.0, lambda pf: pf.trades.count(),
           "closed trades plus an open one at the end"),
    Metric("win_rate", "win", "max", 0.0, lambda pf: pf.trades.win_rate(),
           "fraction of trades with a positive P&L (NaN without trades)"),
    Metric("exposure", "exposure", None, 0.0, lambda pf: pf.position_mask().mean(),
           "fraction of bars that end in a position"),
)

#: metric names in slot order
METRICS: tuple[str, ...] = tuple(m.name for m in TABLE)
#: kernel slot (column) of each metric
SLOT: dict[str, int] = {m.name: i for i, m in enumerate(TABLE)}
N_METRICS = len(TABLE)
BY_NAME: dict[str, Metric] = {m.name: m for m in TABLE}
MetricName = Literal[METRICS]  # the config's type for a metric name
