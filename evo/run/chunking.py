"""Chunk planner: how many strategies one `evaluate` task takes, from measured memory.

The size of a chunk is never a constant. It is the memory budget (a fixed
number of MB, or a fraction of what psutil reports available right now),
divided among the chunks that run at once, divided by what one strategy costs
on this market. The cost starts from the engine's model and is raised to what
earlier chunks were seen to use (RSS growth per strategy), never lowered.
Chunking cannot change results: every strategy is evaluated on its own column.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import psutil

from evo.config.errors import BudgetError

MB = 1024 * 1024

#: Bytes per strategy per bar per asset that the vectorbt engine holds at its
#: peak: ~4 float64 indicator columns, 2 boolean signal columns, and the
#: portfolio's broadcast inputs and (value, returns, drawdown, position) series.
VBT_BYTES_PER_STRATEGY_BAR = 160


@dataclass(frozen=True)
class MemoryReading:
    available: int
    rss: int

    @classmethod
    def now(cls) -> "MemoryReading":
        return cls(available=psutil.virtual_memory().available, rss=psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class ChunkPlan:
    sizes: tuple[int, ...]
    budget_bytes: int
    bytes_per_strategy: int
    parallel: int
    available_bytes: int
    fixed_bytes: int = 0  # per chunk, whatever its size (the fast engine's indicator cache and buffers)
    #: the cluster planned for, one [address, threads, memory limit in bytes (0: none)] per worker; empty
    #: when the chunks run in the flow's own process (the thread runner)
    cluster: tuple[tuple[str, int, int], ...] = field(default=())

    def slices(self) -> list[slice]:
        out, start = [], 0
        for s in self.sizes:
            out.append(slice(start, start + s))
            start += s
        return out

    def as_stats(self) -> dict:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        d["cluster"] = [list(w) for w in self.cluster]
        return d


def budget_bytes(memory_budget_mb: float | None, memory_fraction: float, reading: MemoryReading) -> int:
    """The evaluation budget: the configured MB, but never more than `memory_fraction` of what is free."""
    free = int(reading.available * memory_fraction)
    if memory_budget_mb is None:
        return free
    return min(int(memory_budget_mb * MB), free)


def strategy_bytes(n_bars: int, n_assets: int, observed: float | None = None, portfolio: bool = False) -> int:
    """Peak bytes one strategy costs the vectorbt engine: assets are evaluated one after another, or all
    at once as one portfolio (reducer 'portfolio': a column per asset)."""
    model = VBT_BYTES_PER_STRATEGY_BAR * n_bars * (n_assets if portfolio else 1)
    return int(max(model, observed or 0))


def plan(n_items: int, per_item: int, budget: int, parallel: int, fixed: int = 0, cap: int | None = None) -> ChunkPlan:
    """Split `n_items` into the fewest chunks that fit the budget while using `parallel` workers.

    Each chunk costs `fixed` bytes plus `per_item` per strategy. Raises
    BudgetError when not even one strategy fits.
    """
    parallel = max(1, parallel)
    if n_items == 0:
        return ChunkPlan((), budget, per_item, parallel, 0, fixed)
    per_chunk_budget = budget // parallel
    max_size = (per_chunk_budget - fixed) // max(per_item, 1)
    if max_size < 1:
        raise BudgetError(
            f"one chunk needs ~{(fixed + per_item) / MB:.1f} MB but the budget per parallel chunk is "
            f"{per_chunk_budget / MB:.1f} MB; raise evaluation.memory_budget_mb or lower max_parallel"
        )
    # at least `parallel` chunks (when there are enough items) so that every worker has work,
    # otherwise as few as the budget allows: each task run costs orchestration time
    if cap:
        max_size = min(max_size, cap)
    n_chunks = max(math.ceil(n_items / max_size), min(parallel, n_items))
    base, extra = divmod(n_items, n_chunks)
    sizes = tuple(base + (1 if i < extra else 0) for i in range(n_chunks))
    return ChunkPlan(sizes, budget, per_item, parallel, 0, fixed)


def plan_for(
    n_items: int, n_bars: int, n_assets: int, settings, observed: float | None = None, cache_rows: int = 0,
    workers: Sequence[WorkerSlot] | None = None,
) -> ChunkPlan:
    """Plan with a fresh psutil reading and the run's evaluation settings; with `workers`, for that
    cluster (see `plan_cluster`: one chunk runs per worker thread, its numba kernels on one thread).

    The vectorbt engine holds several (bars x strategies) arrays, so its cost is
    per strategy and chunks run `max_parallel` at once. The fast engine's cost is
    a fixed indicator cache (`cache_rows` rows of bars) plus O(1) per strategy,
    and its kernels already use every core, so its chunks run one at a time.
    """
    reading = MemoryReading.now()
    if workers is not None:
        return _plan_on_cluster(n_items, n_bars, n_assets, settings, observed, cache_rows, workers, reading)
    b = budget_bytes(settings.memory_budget_mb, settings.memory_fraction, reading)
    if settings.engine == "fast":
        import numba

        from evo.engine.fast import memory_model

        fixed, per_item = memory_model(n_bars, cache_rows, numba.get_num_threads(),
                                       n_assets if settings.reducer == "portfolio" else 0)
        p = plan(n_items, int(max(per_item, observed or 0)), b, 1, fixed, settings.max_chunk_size)
    else:
        per_item = strategy_bytes(n_bars, n_assets, observed, settings.reducer == "portfolio")
        p = plan(n_items, per_item, b, settings.max_parallel, 0, settings.max_chunk_size)
    return ChunkPlan(p.sizes, p.budget_bytes, p.bytes_per_strategy, p.parallel, reading.available, p.fixed_bytes)


def _plan_on_cluster(n_items, n_bars, n_assets, settings, observed, cache_rows, workers, reading) -> ChunkPlan:
    if settings.engine == "fast":
        from evo.engine.fast import memory_model

        fixed, per_item = memory_model(n_bars, cache_rows, 1, n_assets if settings.reducer == "portfolio" else 0)
    else:
        fixed, per_item = 0, strategy_bytes(n_bars, n_assets, None, settings.reducer == "portfolio")
    planned = workers
    if not any(w.memory_limit > 0 for w in workers) and settings.memory_budget_mb is None:
        # no limit reported (dask worker --memory-limit 0): the flow's host is the only reading there is
        planned = [WorkerSlot(w.address, w.nthreads, reading.available) for w in workers]
    budget = int(settings.memory_budget_mb * MB) if settings.memory_budget_mb is not None else None
    p = plan_cluster(n_items, int(max(per_item, observed or 0)), planned, fixed=fixed,
                     memory_fraction=settings.memory_fraction, budget=budget, cap=settings.max_chunk_size,
                     bars=n_bars * n_assets)
    return replace(p, available_bytes=reading.available,
                   cluster=tuple((w.address, int(w.nthreads), int(w.memory_limit)) for w in workers))


#: chunks per worker thread when the population allows: a thread that finishes early takes another
#: chunk instead of idling while the slowest one runs
CHUNKS_PER_THREAD = 3
#: the fewest strategies worth a chunk of their own (a task run costs orchestration time); a small
#: population gets fewer chunks than CHUNKS_PER_THREAD per thread, but still one per thread
MIN_CHUNK = 8
#: the least work (strategies x bars) worth a chunk of its own beyond one per thread: about a second of
#: one thread's fast-engine time. A chunk computes the indicators of its own genomes, so four chunks of
#: a population compute nearly four times the indicator rows one does (most windows occur in each)
MIN_CHUNK_WORK = 2e8


@dataclass(frozen=True)
class WorkerSlot:
    """One worker of a cluster as its scheduler reports it: its address, the chunks it runs at once
    (threads) and its memory limit in bytes (0: no limit)."""

    address: str
    nthreads: int
    memory_limit: int = 0


def plan_cluster(
    n_items: int,
    per_item: int,
    workers: Sequence[WorkerSlot],
    *,
    fixed: int = 0,
    memory_fraction: float = 0.5,
    budget: int | None = None,
    cap: int | None = None,
    per_thread: int = CHUNKS_PER_THREAD,
    min_chunk: int = MIN_CHUNK,
    bars: int = 0,
    min_work: float = MIN_CHUNK_WORK,
) -> ChunkPlan:
    """Split `n_items` into chunks for `workers`: at least one chunk per worker thread (when there are
    that many items), up to `per_thread` per thread for balance but none smaller than `min_chunk`
    strategies nor, given the market's `bars`, than `min_work` strategy-bars, and every chunk small
    enough for the worker with the least memory per thread.

    A worker runs one chunk per thread at once, so a chunk may take `memory_fraction` of that worker's
    memory limit divided by its threads (and no more than `budget` bytes, when given: the run's
    evaluation.memory_budget_mb). Each chunk costs `fixed` bytes plus `per_item` per strategy. Raises
    BudgetError naming the tightest worker when not even one strategy fits it.
    """
    if not workers:
        raise BudgetError("the cluster has no workers to plan evaluate chunks for")
    threads = sum(max(1, w.nthreads) for w in workers)
    limits = [(int(w.memory_limit * memory_fraction) // max(1, w.nthreads), w) for w in workers if w.memory_limit > 0]
    per_chunk, tightest = min(limits, key=lambda t: t[0]) if limits else (None, None)
    if budget is not None and (per_chunk is None or budget < per_chunk):
        per_chunk, tightest = budget, None
    cluster = tuple((w.address, int(w.nthreads), int(w.memory_limit)) for w in workers)
    shown = per_chunk if per_chunk is not None else 0
    if n_items == 0:
        return ChunkPlan((), shown, per_item, threads, 0, fixed, cluster)
    max_size = n_items if per_chunk is None else (per_chunk - fixed) // max(per_item, 1)
    if max_size < 1:
        where = (f"worker {tightest.address} ({tightest.memory_limit / MB:.0f} MB over {tightest.nthreads} "
                 f"thread(s), {memory_fraction:g} of it for evaluation)" if tightest is not None
                 else "evaluation.memory_budget_mb")
        raise BudgetError(
            f"one chunk needs ~{(fixed + per_item) / MB:.1f} MB but {where} allows {per_chunk / MB:.1f} MB "
            f"per chunk; give that worker more memory (dask worker --memory-limit) or fewer threads"
        )
    if cap:
        max_size = min(max_size, cap)
    smallest = max(1, min_chunk, math.ceil(min_work / bars) if bars > 0 else 0)
    # a whole number of chunks per thread, so no thread is left with one more than the others; one thread
    # has nothing to balance
    per = max(1, per_thread) if threads > 1 else 1
    balanced = min(threads * per, n_items // smallest) // threads * threads
    n_chunks = max(math.ceil(n_items / max_size), min(threads, n_items), balanced)
    base, extra = divmod(n_items, n_chunks)
    sizes = tuple(base + (1 if i < extra else 0) for i in range(n_chunks))
    return ChunkPlan(sizes, shown, per_item, threads, 0, fixed, cluster)
