"""One generation as one record, and the steps that fill it: what the Prefect tasks wrap.

    vary      survivors(g-1) -> offspring, with what the store already holds of them (g=1: the sample);
              with robust fitness, also each offspring's neighbours and what the store holds of them
    chunks    the offspring (and neighbours) the store has no complete evaluation of, in memory-sized chunks
    evaluate  one chunk -> metrics                                   (one task per chunk)
    select    survivors(g-1) + offspring(g) -> survivors(g), and the generation's stats
    persist   offspring, evaluations, survivors, stats, checkpoint: one transaction

A `Generation` is plain data (populations of numpy arrays, the chunk plan, the random state), so a
retried step repeats exactly and any step can run in another process. Each individual's facts (genes,
genome hash, trade fingerprint, metrics, F, G, rank, crowding) travel together in a `Population`: the
survivors carry their own. `Resume` is where a run stands between generations.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from evo.config.metrics import METRICS
from evo.engine import evaluate as engine_evaluate
from evo.run import cluster, process
from evo.run.chunking import ChunkPlan, MemoryReading, plan_for
from evo.run.context import RunContext, cscv_edges, metric_directions
from evo.run.lease import lease_seconds
from evo.search.algorithm import Checkpoint, decode_checkpoint, encode_checkpoint, new_rng
from evo.search.algorithm import pareto_mask, rng_from_state, rng_state
from evo.search.neighbours import neighbours_of, robust_FG
from evo.search.objectives import hypervolume, ref_point, sign, to_FG
from evo.search.population import Population
from evo.store import ChunkStats, GenerationStats


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
    worker: str = ""  # the Dask worker's address ("": not on a Dask worker)
    #: (n, series, blocks, 2): block sums of returns on the training window, for CSCV (None: not asked for
    #: or not given by the engine)
    blocks: np.ndarray | None = None


@dataclass(frozen=True)
class Resume:
    """Where a run stands: the last committed generation (0 = nothing yet) and what the next needs."""

    done: int
    survivors: Population | None
    rng: dict | None
    n_eval: int  # offspring evaluated in the run so far
    observed_bytes: float | None = None  # RSS growth per strategy seen so far (the chunk planner's floor)
    stats: GenerationStats | None = None


@dataclass
class Generation:
    """Generation `number`. vary gives the offspring (genes, hashes, what the store holds of them) and the
    chunk plan; evaluate and merge complete their metrics; select sets their F and G and gives the
    survivors and the stats."""

    number: int
    offspring: Population  # `evaluated`: the ones this generation evaluates (the store lacked them)
    parents: Population | None  # the survivors it competes with (None: generation 1 or a re-evaluation)
    rng: dict  # the random state after the last step
    n_eval: int  # offspring evaluated in the run up to and including this generation
    plan: ChunkPlan
    started: float = field(default_factory=time.perf_counter)
    new_data: bool = False  # the survivors re-evaluated on changed market data
    chunks: list[ChunkResult] = field(default_factory=list)
    survivors: Population | None = None
    stats: GenerationStats | None = None
    # robust fitness (algorithm.robustness.aggregate): the offspring's neighbours that are not offspring
    # themselves, each genome once, and per offspring its row, then its K neighbours' rows, in `pool`
    neighbours: Population | None = None
    near: np.ndarray | None = None

    @property
    def pool(self) -> Population:
        """Every genome the generation needs metrics of: the offspring, then their neighbours."""
        return self.offspring if self.neighbours is None else Population.merge(self.offspring, self.neighbours)

    @property
    def unseen(self) -> np.ndarray:
        """Indices in `pool` this generation evaluates, in order."""
        return np.flatnonzero(self.pool.evaluated)


# ---------------------------------------------------------------------------------------------
# the steps


def resume_point(ctx: RunContext) -> Resume:
    """Where the run stands, read from the store (where every start and resume begins)."""
    store = process.store_for(ctx)
    store.forget_stored_behaviours()  # what this process knew may be of a database since recreated
    last = store.last_generation(ctx.run_id)
    if last is None:
        return Resume(done=0, survivors=None, rng=None, n_eval=0)
    space = process.space_for(ctx)
    ck = decode_checkpoint(last.checkpoint, space.n_var, ctx.n_obj, ctx.n_constr)
    if ck.n_gen != last.number:
        raise RuntimeError(f"checkpoint of generation {last.number} says n_gen={ck.n_gen}")
    survivors = lookup(ctx, ck.pop.set(hash=space.hashes(ck.pop.X)), last.evaluation_key)
    return Resume(done=last.number, survivors=survivors.set(evaluated=np.zeros(len(survivors), dtype=bool)),
                  rng=ck.rng_state, n_eval=ck.n_eval)


def vary(ctx: RunContext, state: Resume, number: int, workers=None) -> Generation:
    """Offspring of the survivors (generation 1: the initial sample), and what the store knows of them;
    chunked for `workers` (a cluster's WorkerSlots) when given, else for this process."""
    t0 = time.perf_counter()
    gen = rng_from_state(state.rng) if state.rng is not None else new_rng(ctx.config.seed)
    opt = process.optimizer_for(ctx)
    X = opt.initial(gen) if state.survivors is None else opt.vary(state.survivors, gen)
    off = Population.of(X, hash=opt.space.hashes(X) if len(X) else [])
    return _generation(ctx, number, off, rng_state(gen), state, parents=state.survivors, started=t0,
                       workers=workers)


def reevaluation(ctx: RunContext, state: Resume, number: int, workers=None) -> Generation:
    """The survivors as offspring, to be evaluated on new market data and ranked again."""
    t0 = time.perf_counter()
    off = Population.of(state.survivors.X.copy(), hash=state.survivors.hash)
    return _generation(ctx, number, off, state.rng, state, parents=None, started=t0, new_data=True, workers=workers)


def _generation(ctx, number: int, off: Population, rng: dict, state: Resume, *, parents: Population | None,
                started: float, new_data: bool = False, workers=None) -> Generation:
    off = lookup(ctx, off)
    others, near = neighbourhood(ctx, off)
    pool = off if others is None else Population.merge(off, others)
    return Generation(number=number, offspring=off, parents=parents, rng=rng, n_eval=state.n_eval + len(off),
                      plan=plan(ctx, pool, state.observed_bytes, workers), started=started, new_data=new_data,
                      neighbours=others, near=near)


def neighbourhood(ctx: RunContext, off: Population) -> tuple[Population | None, np.ndarray | None]:
    """With robust fitness: the offspring's neighbours (evo.search.neighbours) that are not offspring,
    each distinct genome once, with what the store holds of them; and `near` [len(off), K + 1], each
    offspring's row and its neighbours' rows in offspring + neighbours. (None, None) without."""
    r = ctx.config.algorithm.robustness
    if r.aggregate is None:
        return None, None
    space = process.space_for(ctx)
    X = neighbours_of(space, off.X, off.hash.tolist(), r, ctx.config.seed)
    hashes = space.hashes(X) if len(X) else []
    row = {h: i for i, h in enumerate(off.hash.tolist())}
    new: list[int] = []
    for i, h in enumerate(hashes):
        if h not in row:
            row[h] = len(off) + len(new)
            new.append(i)
    near = np.column_stack([np.arange(len(off)), np.array([row[h] for h in hashes], dtype=np.int64).reshape(
        len(off), r.neighbours)]) if len(off) else np.empty((0, r.neighbours + 1), dtype=np.int64)
    others = Population.of(X[new], hash=[hashes[i] for i in new]) if new else Population.of(np.empty((0, space.n_var)))
    return lookup(ctx, others), near


def lookup(ctx: RunContext, pop: Population, key: str | None = None) -> Population:
    """`pop` with what the store holds for its genomes under the run's evaluation key (or `key`): the
    metrics of complete evaluations, every trade fingerprint found; `evaluated` marks the rest (no
    evaluation, or one stored before a current metric existed), which are to be evaluated."""
    hashes = pop.hash.tolist()
    found = process.store_for(ctx).cached_metrics(ctx.config.strategy.family, hashes, key or ctx.evaluation_key,
                                                  METRICS)
    metrics, per_asset, trades = pop.metrics.copy(), pop.per_asset.copy(), pop.trades.copy()
    missing = np.ones(len(pop), dtype=bool)
    for i, h in enumerate(hashes):
        e = found.get(h)
        if e is None:
            continue
        trades[i] = e.trades  # a fingerprint depends on the orders, not on the metrics stored beside it
        if e.metrics is not None:
            metrics[i], per_asset[i], missing[i] = e.metrics, e.per_asset, False
    return pop.set(metrics=metrics, per_asset=per_asset, trades=trades, evaluated=missing)


def plan(ctx: RunContext, off: Population, observed_bytes: float | None = None, workers=None) -> ChunkPlan:
    """Chunk sizes for the offspring to evaluate, from a fresh memory reading (or `workers`' limits)."""
    from evo.engine.indicators import distinct_rows

    market = process.market_for(ctx)
    family = process.family_for(ctx)
    unseen = np.flatnonzero(off.evaluated)
    rows = distinct_rows(family.indicators, off.X[unseen], process.space_for(ctx).names) if len(unseen) else 0
    return plan_for(len(unseen), market.n_bars, market.n_assets, ctx.config.evaluation, observed_bytes, rows,
                    workers)


def chunks(ctx: RunContext, gen: Generation) -> list[list[dict]]:
    """The parameters of the genomes to evaluate (offspring, then neighbours), chunk by chunk (one
    evaluate task each)."""
    params = process.space_for(ctx).decode(gen.pool.X[gen.unseen]) if len(gen.unseen) else []
    return [params[s] for s in gen.plan.slices()]


def evaluate(ctx: RunContext, params: Sequence[dict], window: tuple[int, int] | None = None) -> ChunkResult:
    """Metrics of one chunk on the run's training window (with the block sums CSCV needs, from the same
    pass) or on `window`. Takes the market this process was sent (a Dask worker) or loads it once per
    process, never from the caller."""
    from evo.market import load

    market = process.market_for(ctx)
    directions = metric_directions(ctx.config) if ctx.config.evaluation.reducer == "worst" else None
    before = MemoryReading.now().rss
    t0 = time.perf_counter()
    with cluster.chunk_threads(ctx.config.execution.task_runner) as worker:
        ev = engine_evaluate(market, process.family_for(ctx), list(params), ctx.config.evaluation,
                             window or ctx.window, directions, edges=None if window else cscv_edges(ctx))
    return ChunkResult(metrics=ev.metrics, per_asset=ev.per_asset, seconds=time.perf_counter() - t0,
                       rss_before=before, rss_after=MemoryReading.now().rss, pid=os.getpid(),
                       market_loads=load.loads + load.installs(), trades=ev.fingerprints, worker=worker,
                       blocks=ev.blocks)


def evaluate_chunk(ctx: RunContext, params: Sequence[dict], number: int, chunk: int) -> ChunkResult:
    """evaluate() of chunk `chunk` of generation `number`, where it runs (a task, a Dask worker), with the
    test hooks that make a chunk fail or hold (evo.run.faults)."""
    from evo.run import faults

    faults.maybe_fail_evaluate(ctx, number, chunk)
    return evaluate(ctx, params)


def merged(gen: Generation, results: Sequence[ChunkResult]) -> Generation:
    """The generation with every offspring's (and neighbour's) metrics: from the store or the chunks."""
    pool = merge(gen.pool, results)
    n = len(gen.offspring)
    others = None if gen.neighbours is None else pool[n:]
    return replace(gen, offspring=pool[:n], neighbours=others, chunks=list(results))


def merge(pop: Population, results: Sequence[ChunkResult]) -> Population:
    """`pop` with the chunks' metrics, per-asset metrics and trade fingerprints in the rows it marks
    `evaluated`, chunk after chunk in row order."""
    unseen = np.flatnonzero(pop.evaluated)
    if not len(unseen):
        return pop
    metrics, per_asset, trades = pop.metrics.copy(), pop.per_asset.copy(), pop.trades.copy()
    start = 0
    for c in results:
        rows = unseen[start:start + len(c.metrics)]
        start += len(c.metrics)
        metrics[rows] = c.metrics
        fps = c.trades.tolist() if c.trades is not None else [None] * len(rows)
        for j, i in enumerate(rows.tolist()):
            trades[i] = fps[j]
            per_asset[i] = c.per_asset[:, j, :] if c.per_asset.shape[0] > 1 else None
    if start != len(unseen):
        raise RuntimeError(f"the chunks hold {start} evaluations for {len(unseen)} offspring")
    return pop.set(metrics=metrics, per_asset=per_asset, trades=trades)


def phenotype_blocks(gen: Generation) -> dict[int, np.ndarray]:
    """The block sums ((series, blocks, 2)) of the offspring this generation evaluated, by trade
    fingerprint, the first of each: every genome of a phenotype has the same returns. Empty when a chunk
    came without them."""
    results = gen.chunks
    if not results or any(c.blocks is None for c in results):
        return {}
    blocks = np.concatenate([c.blocks for c in results])
    trades = gen.pool.trades
    out: dict[int, np.ndarray] = {}
    for j, i in enumerate(gen.unseen.tolist()):
        if i >= len(gen.offspring):  # the neighbours of robust fitness, after the offspring: not trials
            break
        t = trades[i]
        if t is not None and t not in out:
            out[int(t)] = blocks[j]
    return out


def select(ctx: RunContext, gen: Generation) -> Generation:
    """NSGA-II survival over the parents and the evaluated offspring; the generation's stats. With robust
    fitness the offspring's F and G are the aggregate over each and its neighbours (evo.search.neighbours);
    their metrics stay their own."""
    F, G = to_FG(gen.pool.metrics, ctx.config.objectives, ctx.config.constraints)
    others = gen.neighbours
    if gen.near is not None:
        n = len(gen.offspring)
        others = others.set(F=F[n:], G=G[n:])  # a neighbour's own: it does not compete
        F, G = robust_FG(F, G, gen.near, ctx.config.algorithm.robustness.aggregate)
    off = gen.offspring.set(F=F, G=G)
    rng = rng_from_state(gen.rng)
    copies = None
    if ctx.config.algorithm.distinct_trades:
        parents = gen.parents.trades.tolist() if gen.parents is not None else []
        copies = copies_of(parents + off.trades.tolist())
    survivors = process.optimizer_for(ctx).select(gen.parents, off, rng, copies)
    gen = replace(gen, offspring=off, neighbours=others, survivors=survivors, rng=rng_state(rng))
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


def stats(ctx: RunContext, gen: Generation) -> GenerationStats:
    """What the generation did, as stored with it and shown in the artifacts."""
    state = gen.survivors
    feasible = (state.G <= 0).all(axis=1)
    best = {}
    for j, o in enumerate(ctx.config.objectives):
        col = state.F[feasible, j]
        best[o.metric] = None if len(col) == 0 else float(col.min() * sign(o.direction))
    evaluated = len(gen.unseen)
    slots = len(gen.offspring) * (1 + (0 if gen.near is None else gen.near.shape[1] - 1))
    return GenerationStats(
        generation=gen.number,
        hypervolume=hypervolume(state.F, state.G, ref_point(ctx.config.objectives)),
        best=best,
        n_feasible=int(feasible.sum()),
        pareto_size=int(pareto_mask(state).sum()),
        n_offspring=len(gen.offspring),
        evaluated=evaluated,
        cache_hits=slots - evaluated,  # robust fitness: of K + 1 genomes per offspring, those not evaluated
        eval_seconds=sum(c.seconds for c in gen.chunks),
        chunks=ChunkStats(
            **gen.plan.as_stats(),
            rss_before_after=[[c.rss_before, c.rss_after] for c in gen.chunks],
            workers=[[c.pid, c.market_loads] for c in gen.chunks],
            addresses=[c.worker for c in gen.chunks],
        ),
        peak_rss=max([c.rss_after for c in gen.chunks], default=0),
        seconds=time.perf_counter() - gen.started,
        reevaluated=gen.new_data,
        data_fingerprint=ctx.fingerprint if gen.new_data else None,
    )


def objective_signs(ctx: RunContext) -> np.ndarray:
    """Per objective, the factor between F and the metric (undoes the sign of maximised objectives)."""
    return np.array([sign(o.direction) for o in ctx.config.objectives])


def persist(ctx: RunContext, gen: Generation, *, owner: str | None = None, flow_run_id: str | None = None,
            on_stage=None) -> bool:
    """Commit the generation in one transaction, if `owner` still holds the run. False if it was
    already committed identically (a retry)."""
    off, state = gen.offspring, gen.survivors
    ck = Checkpoint(pop=state, rng_state=gen.rng, n_gen=gen.number, n_eval=gen.n_eval)
    return process.store_for(ctx).persist_generation(
        run_id=ctx.run_id,
        number=gen.number,
        family=ctx.config.strategy.family,
        evaluation_key=ctx.evaluation_key,
        offspring=off,
        survivors=state,
        genes_json=process.space_for(ctx).genes_json(off.X),
        neighbours=gen.neighbours,
        neighbour_genes_json=[] if gen.neighbours is None else process.space_for(ctx).genes_json(gen.neighbours.X),
        objective_signs=objective_signs(ctx),
        checkpoint=encode_checkpoint(ck),
        stats=gen.stats,
        flow_run_id=flow_run_id,
        lease_owner=owner,
        lease_seconds=lease_seconds(),
        new_data=(ctx.fingerprint, ctx.evaluation_key) if gen.new_data else None,
        on_stage=on_stage,
        blocks=phenotype_blocks(gen),
    )


def advanced(gen: Generation, state: Resume) -> Resume:
    """Where the run stands once the generation is committed."""
    seen = [(c.rss_after - c.rss_before) / len(c.metrics) for c in gen.chunks if len(c.metrics)]
    observed = max(seen, default=0.0)
    if state.observed_bytes is not None:
        observed = max(observed, state.observed_bytes)
    return Resume(done=gen.number, survivors=gen.survivors, rng=gen.rng, n_eval=gen.n_eval,
                  observed_bytes=observed or None, stats=gen.stats)
