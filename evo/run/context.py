"""What every step of a run needs, as plain data: the RunContext, its windows and its evaluation key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from evo.config import RunConfig
from evo.market import Market, windows



@dataclass(frozen=True)
class RunContext:
    """Plain data every step needs. Safe to send to another process."""

    run_id: int
    name: str
    database: str  # the URL with its secrets masked (evo.store.url.real gives it back in this process)
    config: RunConfig
    fingerprint: str
    evaluation_key: str
    target: int
    window: tuple[int, int]  # the bars evolution trains on (signals use the bars before too)
    oos_window: tuple[int, int] | None  # the holdout, scored after evolution; None without one

    @property
    def n_obj(self) -> int:
        return len(self.config.objectives)

    @property
    def n_constr(self) -> int:
        return len(self.config.constraints) + 1  # + "objectives are finite"


def evaluation_key(config: RunConfig, fingerprint: str, window: tuple[int, int]) -> str:
    """What an evaluation depends on besides the genome: data, window, engine and its settings."""
    ev = config.evaluation
    key = {
        "data": fingerprint,
        "window": list(window),
        "freq": config.data.freq,
        "engine": ev.engine,
        "init_cash": ev.init_cash,
        "fees": ev.fees,
        "slippage": ev.slippage,
        "reducer": ev.reducer,
        # fixed: every key ever stored has it, and which metrics an evaluation holds is stored with it
        # (an evaluation lacking a metric is computed again), so a new metric needs no new key
        "metrics_version": 1,
    }
    if ev.ohlc_stops:  # absent: close-only stops, what every key before the switch meant (those stay valid)
        key["ohlc_stops"] = True
    if ev.reducer == "worst":  # "worst" depends on which way each metric is better
        key["directions"] = metric_directions(config)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def metric_directions(config: RunConfig) -> dict[str, str]:
    """Which way each objective and constraint metric is better (for the worst-case reducer)."""
    d = {c.metric: ("max" if c.op == ">=" else "min") for c in config.constraints}
    d.update({o.metric: o.direction for o in config.objectives})
    return d


def run_windows(config: RunConfig, market: Market) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(training window, holdout window or None)."""
    if config.validation.window is not None:
        return tuple(config.validation.window), None
    return windows.windows(market, config.validation)


def cscv_edges(ctx: RunContext):
    """The block offsets of the training window CSCV cuts (evo.oos.cscv.block_edges), which evaluation
    sums returns over in its own pass; None when PBO is off (validation.cscv_blocks = 0) or the window is
    too short for the blocks."""
    from evo.engine.inputs import block_edges

    n_blocks = ctx.config.validation.cscv_blocks
    n_bars = ctx.window[1] - ctx.window[0]
    if n_blocks == 0 or n_bars < 2 * n_blocks:
        return None
    return block_edges(n_bars, n_blocks)


def oos_evaluation_key(ctx: RunContext) -> str | None:
    return None if ctx.oos_window is None else evaluation_key(ctx.config, ctx.fingerprint, ctx.oos_window)


def with_target(ctx: RunContext, target: int) -> RunContext:
    return dataclasses.replace(ctx, target=target, config=ctx.config.with_overrides(generations=target))

