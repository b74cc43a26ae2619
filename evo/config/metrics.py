"""The metric table: every fact about a metric, declared once.

A metric's position in TABLE is its kernel slot (the column the numba kernels write), its column in
every metrics matrix, and the order of the store's metric columns (named after it). Everything else
(the config's MetricName, objective directions, hypervolume references, table labels, the vectorbt
reference) is derived from the table. The fast engine computes each metric in
evo.engine.nb.write_metrics_nb, from running sums and the trade log that every evaluation keeps; a
metric that would need more (a quantile of all the returns, say) would cost every run, whether it
uses it or not.
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
           "closed trades plus an open one at the end (valued at the last close: every trade metric counts it)"),
    Metric("win_rate", "win", "max", 0.0, lambda pf: pf.trades.win_rate(),
           "fraction of trades with a positive P&L (NaN without trades)"),
    Metric("exposure", "exposure", None, 0.0, lambda pf: pf.position_mask().mean(),
           "fraction of bars that end in a position"),
    Metric("annualized_return", "ann_ret", "max", -1.0, lambda pf: pf.annualized_return(),
           "compound annual growth over a 365-day year (NaN once the value went below zero)"),
    Metric("annualized_volatility", "ann_vol", "min", 1.0, lambda pf: pf.annualized_volatility(),
           "standard deviation of the returns (ddof 1), annualised over a 365-day year"),
    Metric("calmar_ratio", "calmar", "max", 0.0, lambda pf: pf.calmar_ratio(),
           "annualised return over the deepest drawdown (NaN without a drawdown)"),
    Metric("omega_ratio", "omega", "max", 1.0, lambda pf: pf.omega_ratio(),
           "sum of the gains over the sum of the losses, per bar (inf without a loss)"),
    Metric("downside_risk", "downside", "min", 1.0, lambda pf: pf.downside_risk(),
           "root mean square of the losses, per bar, annualised"),
    Metric("profit_factor", "pf", "max", 1.0, lambda pf: pf.trades.profit_factor(),
           "P&L of the winning trades over that of the losing ones (inf without a loser, NaN without trades)"),
    Metric("expectancy", "expect", "max", 0.0, lambda pf: pf.trades.expectancy(),
           "average P&L per trade in cash: win rate x average win - loss rate x average loss"),
    Metric("sqn", "sqn", "max", 0.0, lambda pf: pf.trades.sqn(),
           "system quality number: sqrt(trades) x mean P&L / its standard deviation (NaN below two trades)"),
    Metric("best_trade", "best", "max", 0.0, lambda pf: pf.trades.returns.max(),
           "return of the best trade on its entry value"),
    Metric("worst_trade", "worst", "max", -1.0, lambda pf: pf.trades.returns.min(),
           "return of the worst trade on its entry value: higher is better"),
    Metric("max_drawdown_duration", "dd_bars", "min", 1e7,
           lambda pf: pf.drawdowns.max_duration(wrap_kwargs=dict(to_timedelta=False)),
           "bars from the peak to the recovery of the longest drawdown of the value, or to the last bar when "
           "it has not recovered (NaN without a drawdown)"),
    Metric("total_fees_paid", "fees", "min", 1e12, lambda pf: pf.orders.fees.sum(),
           "fees of every order in cash (set `ref` to the run's cash)"),
)

#: metric names in slot order
METRICS: tuple[str, ...] = tuple(m.name for m in TABLE)
#: kernel slot (column) of each metric
SLOT: dict[str, int] = {m.name: i for i, m in enumerate(TABLE)}
N_METRICS = len(TABLE)
BY_NAME: dict[str, Metric] = {m.name: m for m in TABLE}
MetricName = Literal[METRICS]  # the config's type for a metric name
