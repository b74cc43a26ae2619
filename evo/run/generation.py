"""One generation as one record, and the steps that fill it: what the Prefect tasks wrap.

    vary      survivors(g-1) -> offspring genomes, and the ones the store already evaluated (g=1: the sample)
    chunks    the unseen offspring in memory-sized chunks
    evaluate  one chunk -> metrics                                   (one task per chunk)
    select    survivors(g-1) + offspring(g) -> survivors(g), and the generation's stats
    persist   offspring, evaluations, survivors, stats, checkpoint: one transaction

A `Generation` is plain data (numpy arrays, lists, dicts) and the random state travels in it, so a
retried step repeats exactly and any step can run in another process. `Resume` is where a run stands
between generations.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from evo.config.metrics import METRICS
from evo.engine import evaluate as engine_evaluate
from evo.run import process
from evo.run.chunking import ChunkPlan, MemoryReading, plan_for
from evo.run.context import RunContext, metric_directions
from evo.run.lease import lease_seconds
from evo.search.algorithm import Checkpoint, PopState, decode_checkpoint, encode_checkpoint, new_rng
from evo.search.algorithm import pareto_mask, rng_from_state, rng_state
from evo.search.objectives import hypervolume, ref_point, sign, to_FG
from evo.store import OffspringRows, SurvivorRows


@dataclass
class Offspring:
    """Genomes to evaluate: the float vectors, their decoded parameters and their content hashes."""

    X: np.ndarray
    params: list[dict]
    hashes: list[str]

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def of(cls, X: np.ndarray, space) -> "Offspring":
        if not len(X):
            return cls(X=X, params=[], hashes=[])
        return cls(X=X, params=space.decode(X), hashes=space.hashes(X))


@dataclass
class Cached:
    """Metrics (and trade fingerprints) of offspring found in the store, by genome hash."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    per_asset: dict[str, list] = field(default_factory=dict)
    trades: dict[str, int | None] = field(default_factory=dict)


@dataclass
class ChunkResult:
    metrics: np.ndarray  # (n, len(METRICS))
    per_asset: np.ndarray  # (n_assets, n, len(METRICS))
    seconds: float
    rss_before: int
    rss_after: int
    pid: int = 0  # the process that evaluated it
    market_loads: int = 0  # markets that process has loaded so far
    trades: np.ndarray | None = None  # (n,) int64 trade fingerprints


@dataclass
class Resume:
    """Where a run stands: the last committed generation (0 = nothing yet) and what the next needs."""

    done: int
    survivors: PopState | None
    rng_state: dict | None
    n_eval: int
    observed_bytes: float | None = None  # RSS growth per strategy seen so far (the chunk planner's floor)
    stats: dict | None = None
    survivor_hashes: list[str] | None = None  # genome hashes of the survivors (None: not known yet)
    survivor_trades: list[int | None] | None = None  # their trade fingerprints (None: not known yet)


@dataclass
class Generation:
    """Generation `number`, filled step by step: vary, then evaluate and merge, then select."""

    number: int
    offspring: Offspring
    cached: Cached
    rng: dict  # the random state after the last step
    parents: PopState | None  # the survivors it competes with (None: generation 1 or a re-evaluation)
    n_eval: int  # offspring evaluated in the run up to and including this generation
    parent_hashes: list[str] | None = None  # genome hashes of the parents, when known
    parent_trades: list[int | None] | None = None  # their trade fingerprints, when known
    started: float = field(default_factory=time.perf_counter)
    new_data: bool = False  # the survivors re-evaluated on changed market data
    unseen: list[int] = field(default_factory=list)  # offspring the store has no metrics for
    plan: ChunkPlan | None = None
    # after evaluate + merge
    metrics: np.ndarray | None = None  # (len(offspring), len(METRICS)), offspring order
    per_asset: list | None = None
    new: np.ndarray | None = None  # True where the metrics are a new evaluation
    trades: list[int | None] | None = None  # trade fingerprints (None: unknown, e.g. stored by an older evo)
    chunks: list[ChunkResult] = field(default_factory=list)
    # after select
    survivors: PopState | None = None
    survivor_hashes: list[str] | None = None
    survivor_trades: list[int | None] | None = None
    stats: dict | None = None


# ---------------------------------------------------------------------------------------------
# the steps


def resume_point(ctx: RunContext) -> Resume:
    last = process.store_for(ctx).last_generation(ctx.run_id)
    if last is None:
        return Resume(0, None, None, 0)
    ck = decode_checkpoint(last.checkpoint, process.space_for(ctx).n_var, ctx.n_obj, ctx.n_constr)
    if ck.n_gen != last.number:
        raise RuntimeError(f"checkpoint of generation {last.number} says n_gen={ck.n_gen}")
    hashes = process.space_for(ctx).hashes(ck.pop.X)
    known = lookup(ctx, Offspring(ck.pop.X, [], hashes), last.evaluation_key).trades
    return Resume(last.number, ck.pop, ck.rng_state, ck.n_eval, survivor_hashes=hashes,
                  survivor_trades=[known.get(h) for h in hashes])


def vary(ctx: RunContext, state: Resume, number: int) -> Generation:
    """Offspring of the survivors (generation 1: the initial sample), and what the store knows of them."""
    t0 = time.perf_counter()
    gen = rng_from_state(state.rng_state) if state.rng_state is not None else new_rng(ctx.config.seed)
    opt = process.optimizer_for(ctx)
    X = opt.initial(gen) if state.survivors is None else opt.vary(state.survivors, gen)
    off = Offspring.of(X, opt.space)
    return _generation(ctx, number, off, rng_state(gen), state.survivors, state, started=t0)


def reevaluation(ctx: RunContext, state: Resume, number: int) -> Generation:
    """The survivors as offspring, to be evaluated on new market data and ranked again."""
    t0 = time.perf_counter()
    off = Offspring.of(state.survivors.X.copy(), process.space_for(ctx))
    return _generation(ctx, number, off, state.rng_state, None, state, started=t0, new_data=True)


def _generation(ctx, number, off, rng, parents, state, *, started: float, new_data: bool = False) -> Generation:
    cached = lookup(ctx, off)
    unseen = [i for i, h in enumerate(off.hashes) if h not in cached.metrics]
    return Generation(number, off, cached, rng, parents, state.n_eval + len(off),
                      parent_hashes=state.survivor_hashes if parents is not None else None,
                      parent_trades=state.survivor_trades if parents is not None else None, started=started,
                      new_data=new_data, unseen=unseen, plan=plan(ctx, off, unseen, state.observed_bytes))


def lookup(ctx: RunContext, off: Offspring, key: str | None = None) -> Cached:
    """Metrics the store holds for these genomes under the run's evaluation key (or `key`)."""
    found = process.store_for(ctx).cached_metrics(ctx.config.strategy.family, off.hashes, key or ctx.evaluation_key)
    return Cached({h: e.metrics for h, e in found.items()}, {h: e.per_asset for h, e in found.items()},
                  {h: e.trades for h, e in found.items()})


def plan(ctx: RunContext, off: Offspring, unseen: Sequence[int], observed_bytes: float | None = None) -> ChunkPlan:
    """Chunk sizes for the unseen offspring, from a fresh memory reading."""
    from evo.engine.indicators import distinct_rows

    market = process.market_for(ctx)
    family = process.family_for(ctx)
    rows = distinct_rows(family.indicators, off.X[list(unseen)], process.space_for(ctx).names) if len(unseen) else 0
    return plan_for(len(unseen), market.n_bars, market.n_assets, ctx.config.evaluation, observed_bytes, rows)


def chunks(gen: Generation) -> list[list[dict]]:
    """The parameters of the unseen offspring, chunk by chunk (one evaluate task each)."""
    params = gen.offspring.params
    return [[params[gen.unseen[i]] for i in range(s.start, s.stop)] for s in gen.plan.slices()]


def evaluate(ctx: RunContext, params: Sequence[dict], window: tuple[int, int] | None = None) -> ChunkResult:
    """Metrics of one chunk on the run's training window (or `window`). Loads the market once per
    process, never from the caller."""
    from evo.market import load

    market = process.market_for(ctx)
    directions = metric_directions(ctx.config) if ctx.config.evaluation.reducer == "worst" else None
    before = MemoryReading.now().rss
    t0 = time.perf_counter()
    ev = engine_evaluate(market, process.family_for(ctx), list(params), ctx.config.evaluation, window or ctx.window,
                         directions)
    return ChunkResult(
        ev.metrics, ev.per_asset, time.perf_counter() - t0, before, MemoryReading.now().rss, os.getpid(), load.loads,
        ev.fingerprints,
    )


def merged(gen: Generation, results: Sequence[ChunkResult]) -> Generation:
    """The generation with every offspring's metrics, in offspring order: from the store or the chunks."""
    metrics, per_asset, new, trades = merge(gen.offspring, gen.cached, gen.unseen, results)
    return replace(gen, metrics=metrics, per_asset=per_asset, new=new, trades=trades, chunks=list(results))


def merge(off: Offspring, cached: Cached, unseen: Sequence[int], results: Sequence[ChunkResult]):
    """(metrics, per-asset metrics, which rows are new evaluations, trade fingerprints) of `off`, in
    offspring order."""
    metrics = np.full((len(off), len(METRICS)), np.nan)
    per_asset: list = [None] * len(off)
    trades: list = [None] * len(off)
    new = np.zeros(len(off), dtype=bool)
    for i, h in enumerate(off.hashes):
        if h in cached.metrics:
            metrics[i] = cached.metrics[h]
            per_asset[i] = cached.per_asset.get(h)
            trades[i] = cached.trades.get(h)
    rows = iter(unseen)
    for c in results:
        fps = c.trades.tolist() if c.trades is not None else [None] * len(c.metrics)
        for j in range(len(c.metrics)):
            i = next(rows)
            metrics[i] = c.metrics[j]
            per_asset[i] = c.per_asset[:, j, :].tolist() if c.per_asset.shape[0] > 1 else None
            trades[i] = fps[j]
            new[i] = True
    return metrics, per_asset, new, trades


def select(ctx: RunContext, gen: Generation) -> Generation:
    """NSGA-II survival over the parents and the evaluated offspring; the generation's stats."""
    F, G = to_FG(gen.metrics, ctx.config.objectives, ctx.config.constraints)
    rng = rng_from_state(gen.rng)
    parent_trades = (gen.parent_trades or [None] * len(gen.parents)) if gen.parents is not None else []
    copies = copies_of(parent_trades + list(gen.trades)) if ctx.config.algorithm.distinct_trades else None
    survivors = process.optimizer_for(ctx).select(gen.parents, gen.offspring.X, F, G, rng, copies)
    hashes, trades = _identities_of(ctx, gen, survivors.X)
    gen = replace(gen, survivors=survivors, survivor_hashes=hashes, survivor_trades=trades, rng=rng_state(rng))
    return replace(gen, stats=stats(ctx, gen))


def copies_of(trades: Sequence[int | None]) -> np.ndarray:
    """True where a trade fingerprint repeats an earlier one's (None: unknown, never a copy)."""
    seen: set = set()
    out = np.zeros(len(trades), dtype=bool)
    for i, t in enumerate(trades):
        if t is not None:
            out[i] = t in seen
            seen.add(t)
    return out


def _identities_of(ctx: RunContext, gen: Generation, X: np.ndarray) -> tuple[list[str], list[int | None]]:
    """Genome hashes and trade fingerprints of survivors, taken from the offspring's and parents' (a
    survivor is one of them)."""
    known = dict(zip(map(bytes, gen.offspring.X), zip(gen.offspring.hashes, gen.trades)))
    if gen.parents is not None:
        hashes = gen.parent_hashes or process.space_for(ctx).hashes(gen.parents.X)
        trades = gen.parent_trades or [None] * len(hashes)
        known.update(zip(map(bytes, gen.parents.X), zip(hashes, trades)))
    pairs = [known[bytes(x)] for x in X]
    return [h for h, _ in pairs], [t for _, t in pairs]


def stats(ctx: RunContext, gen: Generation) -> dict:
    """What the generation did, as stored with it and shown in the artifacts."""
    state = gen.survivors
    feasible = (state.G <= 0).all(axis=1)
    best = {}
    for j, o in enumerate(ctx.config.objectives):
        col = state.F[feasible, j]
        best[o.metric] = None if len(col) == 0 else float(col.min() * sign(o.direction))
    out = {
        "generation": gen.number,
        "hypervolume": hypervolume(state.F, state.G, ref_point(ctx.config.objectives)),
        "best": best,
        "n_feasible": int(feasible.sum()),
        "pareto_size": int(pareto_mask(state).sum()),
        "n_offspring": len(gen.offspring),
        "evaluated": len(gen.unseen),
        "cache_hits": len(gen.offspring) - len(gen.unseen),
        "eval_seconds": sum(c.seconds for c in gen.chunks),
        "chunks": {
            **gen.plan.as_stats(),
            "rss_before_after": [[c.rss_before, c.rss_after] for c in gen.chunks],
            "workers": [[c.pid, c.market_loads] for c in gen.chunks],
        },
        "peak_rss": max([c.rss_after for c in gen.chunks], default=0),
        "seconds": time.perf_counter() - gen.started,
    }
    if gen.new_data:
        out.update(reevaluated=True, data_fingerprint=ctx.fingerprint)
    return out


def in_metric_units(ctx: RunContext, F: np.ndarray) -> np.ndarray:
    """F back in metric units (undo the sign of maximised objectives)."""
    return F * np.array([sign(o.direction) for o in ctx.config.objectives])


def persist(ctx: RunContext, gen: Generation, *, owner: str | None = None, flow_run_id: str | None = None,
            on_stage=None) -> bool:
    """Commit the generation in one transaction, if `owner` still holds the run. False if it was
    already committed identically (a retry)."""
    F_off, _ = to_FG(gen.metrics, ctx.config.objectives, ctx.config.constraints)
    off, state = gen.offspring, gen.survivors
    ck = Checkpoint(pop=state, rng_state=gen.rng, n_gen=gen.number, n_eval=gen.n_eval)
    return process.store_for(ctx).persist_generation(
        run_id=ctx.run_id,
        number=gen.number,
        family=ctx.config.strategy.family,
        evaluation_key=ctx.evaluation_key,
        offspring=OffspringRows(off.hashes, process.space_for(ctx).genes_json(off.X), gen.metrics, gen.per_asset,
                                in_metric_units(ctx, F_off), gen.new, gen.trades),
        survivors=SurvivorRows(gen.survivor_hashes, state.rank, state.crowding, in_metric_units(ctx, state.F)),
        checkpoint=encode_checkpoint(ck),
        stats=gen.stats,
        flow_run_id=flow_run_id,
        lease_owner=owner,
        lease_seconds=lease_seconds(),
        new_data=(ctx.fingerprint, ctx.evaluation_key) if gen.new_data else None,
        on_stage=on_stage,
    )


def advanced(gen: Generation, state: Resume) -> Resume:
    """Where the run stands once the generation is committed."""
    seen = [(c.rss_after - c.rss_before) / len(c.metrics) for c in gen.chunks if len(c.metrics)]
    observed = max(seen, default=0.0)
    if state.observed_bytes is not None:
        observed = max(observed, state.observed_bytes)
    return Resume(gen.number, gen.survivors, gen.rng, gen.n_eval, observed or None, gen.stats, gen.survivor_hashes,
                  gen.survivor_trades)
