"""The steps of one generation as plain functions: what the Prefect tasks wrap.

    vary      survivors(g-1) -> offspring genomes (g=1: the initial sample)
    lookup    offspring -> metrics already in the store (evaluation cache)
    evaluate  one chunk of unseen offspring -> metrics          (one task per chunk)
    select    survivors(g-1) + offspring(g) -> survivors(g)
    persist   offspring, evaluations, survivors, stats, checkpoint: one transaction

Every function takes and returns plain data, and the random state travels
as data too, so a retried step repeats exactly and any step can run in another
process. Heavy objects (market, store, optimiser) are built once per process.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from evo import strategies
from evo.algorithm import (
    Checkpoint,
    Optimizer,
    PopState,
    encode_floats,
    decode_checkpoint,
    encode_checkpoint,
    new_rng,
    pareto_mask,
    rng_from_state,
    rng_state,
)
from evo.data import get_market
from evo.engine import evaluate as engine_evaluate
from evo.engine.chunking import MemoryReading, plan_for
from evo.objectives import METRICS, hypervolume, ref_point, to_FG
from evo.runs import LEASE_SECONDS, RunContext
from evo.store import OffspringRow, Store, SurvivorRow
from evo.store import url as urls
from evo.strategies.base import GeneSpace, genome_hash

# ---------------------------------------------------------------------------------------------
# per-process singletons (a task on a worker builds them once, not per call)

_lock = threading.Lock()
_stores: dict[str, Store] = {}
_optimizers: dict[tuple, Optimizer] = {}


def store_for(ctx: RunContext) -> Store:
    with _lock:
        s = _stores.get(ctx.database)
        if s is None:
            s = _stores[ctx.database] = Store(urls.real(ctx.database))
        return s


def space_for(ctx: RunContext) -> GeneSpace:
    return strategies.get(ctx.config.strategy.family).space(ctx.config.strategy.bounds)


def optimizer_for(ctx: RunContext) -> Optimizer:
    key = (ctx.config.identity_hash(), ctx.config.algorithm.model_dump_json())
    with _lock:
        opt = _optimizers.get(key)
        if opt is None:
            opt = _optimizers[key] = Optimizer(space_for(ctx), ctx.n_obj, ctx.n_constr, ctx.config.algorithm)
        return opt


# ---------------------------------------------------------------------------------------------
# data passed between steps


@dataclass
class Offspring:
    X: np.ndarray
    params: list[dict]
    hashes: list[str]

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass
class Cached:
    """Metrics of offspring found in the store, by genome hash."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    per_asset: dict[str, list] = field(default_factory=dict)


@dataclass
class ChunkResult:
    metrics: np.ndarray  # (n, len(METRICS))
    per_asset: np.ndarray  # (n_assets, n, len(METRICS))
    seconds: float
    rss_before: int
    rss_after: int
    pid: int = 0  # the process that evaluated it
    market_loads: int = 0  # markets that process has loaded so far


@dataclass
class Resume:
    """Where a run stands: the last committed generation (0 = nothing yet) and what the next needs."""

    done: int
    survivors: PopState | None
    rng_state: dict | None
    n_eval: int
    observed_bytes: float | None = None  # RSS growth per strategy seen so far (the chunk planner's floor)
    stats: dict | None = None


# ---------------------------------------------------------------------------------------------
# the steps


def resume_point(ctx: RunContext) -> Resume:
    last = store_for(ctx).last_generation(ctx.run_id)
    if last is None:
        return Resume(0, None, None, 0)
    ck = decode_checkpoint(last.checkpoint, space_for(ctx).n_var, ctx.n_obj, ctx.n_constr)
    if ck.n_gen != last.number:
        raise RuntimeError(f"checkpoint of generation {last.number} says n_gen={ck.n_gen}")
    return Resume(last.number, ck.pop, ck.rng_state, ck.n_eval)


def vary(ctx: RunContext, survivors: PopState | None, rng: dict | None) -> tuple[Offspring, dict]:
    """Offspring genomes and the random state after making them."""
    gen = rng_from_state(rng) if rng is not None else new_rng(ctx.config.seed)
    opt = optimizer_for(ctx)
    X = opt.initial(gen) if survivors is None else opt.vary(survivors, gen)
    params = opt.space.decode(X)
    return Offspring(X=X, params=params, hashes=[genome_hash(p) for p in params]), rng_state(gen)


def survivors_as_offspring(ctx: RunContext, survivors: PopState) -> Offspring:
    """The survivors, to be evaluated again (on new market data)."""
    params = space_for(ctx).decode(survivors.X)
    return Offspring(X=survivors.X.copy(), params=params, hashes=[genome_hash(p) for p in params])


def lookup(ctx: RunContext, off: Offspring) -> Cached:
    found = store_for(ctx).cached_metrics(ctx.config.strategy.family, off.hashes, ctx.evaluation_key)
    return Cached({h: m for h, (m, _) in found.items()}, {h: pa for h, (_, pa) in found.items()})


def plan(ctx: RunContext, off: "Offspring", unseen: Sequence[int], observed_bytes: float | None = None):
    """Chunk sizes for the unseen offspring, from a fresh memory reading."""
    from evo.indicators import distinct_rows

    market = get_market(ctx.config.data, ctx.fingerprint)
    family = strategies.get(ctx.config.strategy.family)
    rows = distinct_rows(family.indicators, off.X[list(unseen)], space_for(ctx).names) if len(unseen) else 0
    return plan_for(len(unseen), market.n_bars, market.n_assets, ctx.config.evaluation, observed_bytes, rows)


def directions_for(ctx: RunContext) -> dict[str, str] | None:
    from evo.runs import metric_directions

    return metric_directions(ctx.config) if ctx.config.evaluation.reducer == "worst" else None


def evaluate(ctx: RunContext, params: Sequence[dict], window: tuple[int, int] | None = None) -> ChunkResult:
    """Metrics of one chunk on the run's training window (or `window`). Loads the market once per
    process, never from the caller."""
    market = get_market(ctx.config.data, ctx.fingerprint)
    family = strategies.get(ctx.config.strategy.family)
    before = MemoryReading.now().rss
    t0 = time.perf_counter()
    ev = engine_evaluate(market, family, list(params), ctx.config.evaluation, window or ctx.window, directions_for(ctx))
    from evo import data

    return ChunkResult(
        ev.metrics, ev.per_asset, time.perf_counter() - t0, before, MemoryReading.now().rss, os.getpid(), data.loads
    )


def merge_metrics(off: Offspring, cached: Cached, unseen: list[int], chunks: Sequence[ChunkResult]):
    """Metrics of all offspring in offspring order, and which rows are new evaluations."""
    metrics = np.full((len(off), len(METRICS)), np.nan)
    per_asset: list = [None] * len(off)
    new = np.zeros(len(off), dtype=bool)
    for i, h in enumerate(off.hashes):
        if h in cached.metrics:
            metrics[i] = cached.metrics[h]
            per_asset[i] = cached.per_asset.get(h)
    rows = iter(unseen)
    for c in chunks:
        for j in range(len(c.metrics)):
            i = next(rows)
            metrics[i] = c.metrics[j]
            per_asset[i] = c.per_asset[:, j, :].tolist() if c.per_asset.shape[0] > 1 else None
            new[i] = True
    return metrics, per_asset, new


def select(
    ctx: RunContext, survivors: PopState | None, off: Offspring, metrics: np.ndarray, rng: dict
) -> tuple[PopState, dict]:
    F, G = to_FG(metrics, ctx.config.objectives, ctx.config.constraints)
    gen = rng_from_state(rng)
    state = optimizer_for(ctx).select(survivors, off.X, F, G, gen)
    return state, rng_state(gen)


def objectives_row(ctx: RunContext, F_row: np.ndarray) -> list:
    """F back in metric units (undo the sign of maximised objectives), JSON-safe."""
    from evo.objectives import sign

    return encode_floats(np.array([f * sign(o.direction) for f, o in zip(F_row, ctx.config.objectives)]))


def generation_stats(ctx: RunContext, number: int, state: PopState, **extra) -> dict:
    feasible = (state.G <= 0).all(axis=1)
    best = {}
    for j, o in enumerate(ctx.config.objectives):
        col = state.F[feasible, j]
        best[o.metric] = None if len(col) == 0 else float(col.min() * (-1 if o.direction == "max" else 1))
    return {
        "generation": number,
        "hypervolume": hypervolume(state.F, state.G, ref_point(ctx.config.objectives)),
        "best": best,
        "n_feasible": int(feasible.sum()),
        "pareto_size": int(pareto_mask(state).sum()),
        **extra,
    }


def persist(
    ctx: RunContext,
    number: int,
    off: Offspring,
    metrics: np.ndarray,
    per_asset: list,
    new: np.ndarray,
    state: PopState,
    rng: dict,
    n_eval: int,
    stats: dict,
    flow_run_id: str | None = None,
    lease_owner: str | None = None,
    new_data: bool = False,
    on_stage=None,
) -> bool:
    """Commit generation `number`. False if it was already committed identically (a retry)."""
    F_off, _ = to_FG(metrics, ctx.config.objectives, ctx.config.constraints)
    space = space_for(ctx)
    surv_params = space.decode(state.X)
    ck = Checkpoint(pop=state, rng_state=rng, n_gen=number, n_eval=n_eval)
    return store_for(ctx).persist_generation(
        run_id=ctx.run_id,
        number=number,
        family=ctx.config.strategy.family,
        evaluation_key=ctx.evaluation_key,
        offspring=[
            OffspringRow(
                genome_hash=off.hashes[i],
                genes=off.params[i],
                metrics=metrics[i].tolist(),
                per_asset=per_asset[i],
                objectives=objectives_row(ctx, F_off[i]),
                new_evaluation=bool(new[i]),
            )
            for i in range(len(off))
        ],
        survivors=[
            SurvivorRow(
                genome_hash=genome_hash(p),
                rank=None if np.isnan(state.rank[i]) else int(state.rank[i]),
                crowding=None if np.isnan(state.crowding[i]) else float(state.crowding[i]),
                objectives=objectives_row(ctx, state.F[i]),
            )
            for i, p in enumerate(surv_params)
        ],
        checkpoint=encode_checkpoint(ck),
        stats=stats,
        flow_run_id=flow_run_id,
        lease_owner=lease_owner,
        lease_seconds=LEASE_SECONDS,
        new_data=(ctx.fingerprint, ctx.evaluation_key) if new_data else None,
        on_stage=on_stage,
    )


def observed_bytes_per_strategy(chunks: Sequence[ChunkResult], previous: float | None) -> float | None:
    """RSS growth per strategy seen in this generation's chunks, never below what was seen before."""
    seen = [(c.rss_after - c.rss_before) / len(c.metrics) for c in chunks if len(c.metrics)]
    best = max(seen, default=0.0)
    if previous is not None:
        best = max(best, previous)
    return best or None


def progress_line(ctx: RunContext, stats: dict) -> str:
    best = "  ".join(
        f"{m}={v:.4g}" if v is not None else f"{m}=n/a" for m, v in stats["best"].items()
    )
    rate = stats["evaluated"] / stats["eval_seconds"] if stats["eval_seconds"] > 0 else 0.0
    return (
        f"generation {stats['generation']}/{ctx.target}  best {best}  hv={stats['hypervolume']:.4g}  "
        f"feasible {stats['n_feasible']}  evaluated {stats['evaluated']} (+{stats['cache_hits']} cached) "
        f"in {len(stats['chunks']['sizes'])} chunk(s)  {rate:.0f} strategies/s  {stats['seconds']:.2f}s"
    )


def memory_totals() -> tuple[int, int]:
    """(total, available) memory of this machine, for the monitor's memory-pressure warning."""
    import psutil

    vm = psutil.virtual_memory()
    return vm.total, vm.available



# ---------------------------------------------------------------------------------------------
# validation: the Pareto set out of sample, and the verdict


def pareto_offspring(ctx: RunContext, state: PopState) -> Offspring:
    """The first front of a generation's survivors, as genomes to score."""
    X = state.X[pareto_mask(state)]
    params = space_for(ctx).decode(X) if len(X) else []
    return Offspring(X=X, params=params, hashes=[genome_hash(p) for p in params])


def score(ctx: RunContext, off: Offspring, window: tuple[int, int], key: str) -> tuple[np.ndarray, list, np.ndarray]:
    """Metrics of genomes on a window: from the store where they exist under `key`, else evaluated."""
    cached = store_for(ctx).cached_metrics(ctx.config.strategy.family, off.hashes, key)
    metrics = np.full((len(off), len(METRICS)), np.nan)
    per_asset: list = [None] * len(off)
    new = np.zeros(len(off), dtype=bool)
    unseen = [i for i, h in enumerate(off.hashes) if h not in cached]
    for i, h in enumerate(off.hashes):
        if h in cached:
            metrics[i], per_asset[i] = cached[h]
    if unseen:
        res = evaluate(ctx, [off.params[i] for i in unseen], window)
        for j, i in enumerate(unseen):
            metrics[i] = res.metrics[j]
            per_asset[i] = res.per_asset[:, j, :].tolist() if res.per_asset.shape[0] > 1 else None
            new[i] = True
    return metrics, per_asset, new


def validate(ctx: RunContext, number: int) -> dict:
    """Score generation `number`'s Pareto set on the holdout and judge the best in-sample strategy.

    Both sets of metrics are stored (evaluations under the in-sample and the
    holdout keys); the verdict goes to the validations table.
    """
    from evo import validation
    from evo.engine import fast
    from evo.runs import oos_evaluation_key

    store = store_for(ctx)
    rec = store.generation(ctx.run_id, number)
    if rec is None:
        raise RuntimeError(f"run {ctx.name!r} has no generation {number} to validate")
    state = decode_checkpoint(rec.checkpoint, space_for(ctx).n_var, ctx.n_obj, ctx.n_constr).pop
    off = pareto_offspring(ctx, state)
    family = strategies.get(ctx.config.strategy.family)
    market = get_market(ctx.config.data, ctx.fingerprint)
    is_metrics, _, _ = score(ctx, off, ctx.window, rec.evaluation_key)
    oos_key = oos_evaluation_key(ctx)
    oos_metrics = None
    if oos_key is not None and len(off):
        oos_metrics, oos_pa, new = score(ctx, off, ctx.oos_window, oos_key)
        store.save_evaluations(
            ctx.config.strategy.family,
            [(off.hashes[i], off.params[i], oos_key, oos_metrics[i].tolist(), oos_pa[i]) for i in range(len(off)) if new[i]],
        )
    sharpe = METRICS.index("sharpe_ratio")
    trials = np.array(store.trial_metrics(ctx.run_id, "sharpe_ratio"))
    ann = fast.ann_factor(market.freq)
    if len(off) == 0 or not np.isfinite(is_metrics[:, sharpe]).any():
        result = {"verdict": "no evidence of edge", "deflated_sharpe": 0.0, "n_trials": int(len(trials)),
                  "reason": "no feasible strategy with a finite Sharpe ratio", "threshold": ctx.config.validation.edge_probability}
    else:
        best = int(np.nanargmax(is_metrics[:, sharpe]))
        names = space_for(ctx).names
        # equal-weight returns over the symbols: the candidate's in-sample return series
        rets = np.mean(
            [fast.returns_of(market.arrays(a), family, off.X[best], names, ctx.config.evaluation, market.freq, ctx.window)
             for a in range(market.n_assets)],
            axis=0,
        )
        v = validation.verdict(rets, float(is_metrics[best, sharpe]), trials, ann,
                               ctx.config.validation.edge_probability, off.hashes[best])
        result = v.as_dict()
    result.update(
        generation=number,
        window=list(ctx.window),
        holdout=None if ctx.oos_window is None else list(ctx.oos_window),
        holdout_start=None if ctx.oos_window is None else str(market.index[ctx.oos_window[0]]),
        pareto=[
            {
                "genome_hash": off.hashes[i],
                "in_sample": dict(zip(METRICS, _finite(is_metrics[i]))),
                "out_of_sample": None if oos_metrics is None else dict(zip(METRICS, _finite(oos_metrics[i]))),
            }
            for i in range(len(off))
        ],
    )
    store.save_validation(ctx.run_id, "holdout", number, result)
    return result


def _finite(row) -> list:
    """JSON has no NaN or infinity."""
    return [None if not np.isfinite(v) else float(v) for v in row]


def verdict_line(v: dict) -> str:
    line = f"verdict: {v['verdict']} (deflated Sharpe ratio {v['deflated_sharpe']:.3f}, {v.get('n_trials', 0)} strategies tried"
    if "sharpe_annualized" in v:
        line += f", best in-sample Sharpe {v['sharpe_annualized']:.2f}"
    return line + ")"
