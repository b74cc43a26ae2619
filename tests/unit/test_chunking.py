"""The chunk planner: sizes come from a measured memory budget, never a constant."""

from __future__ import annotations

import pytest

from evo.config.errors import BudgetError

from evo.config import EvaluationConfig
from evo.run.chunking import MB, MemoryReading, budget_bytes, plan, plan_for, strategy_bytes


def test_budget_is_the_smaller_of_config_and_free_fraction():
    r = MemoryReading(available=1000 * MB, rss=100 * MB)
    assert budget_bytes(None, 0.5, r) == 500 * MB
    assert budget_bytes(200, 0.5, r) == 200 * MB
    assert budget_bytes(800, 0.5, r) == 500 * MB  # never more than the fraction of what is free


def test_plan_fits_budget_and_covers_items_in_order():
    p = plan(n_items=1000, per_item=1 * MB, budget=100 * MB, parallel=2)
    assert sum(p.sizes) == 1000
    assert max(p.sizes) * 1 * MB <= 100 * MB // 2  # two chunks run at once
    assert max(p.sizes) - min(p.sizes) <= 1
    sl = p.slices()
    assert sl[0].start == 0 and sl[-1].stop == 1000
    assert all(a.stop == b.start for a, b in zip(sl, sl[1:]))


def test_plan_uses_every_worker_but_no_more_chunks_than_needed():
    assert plan(10, per_item=1, budget=10**9, parallel=2).sizes == (5, 5)
    assert plan(1, per_item=1, budget=10**9, parallel=4).sizes == (1,)
    assert plan(0, per_item=1, budget=10**9, parallel=2).sizes == ()
    assert len(plan(100, per_item=10, budget=100, parallel=1).sizes) == 10


def test_plan_refuses_when_one_strategy_does_not_fit():
    with pytest.raises(BudgetError, match="memory_budget_mb"):
        plan(5, per_item=10 * MB, budget=15 * MB, parallel=2)


def test_observed_usage_only_raises_the_estimate():
    model = strategy_bytes(10_000, 1)
    assert strategy_bytes(10_000, 1, observed=model * 3) == model * 3
    assert strategy_bytes(10_000, 1, observed=1.0) == model


def test_plan_for_reads_psutil_and_scales_with_bars():
    s = EvaluationConfig(engine="vectorbt", memory_budget_mb=64, max_parallel=2)
    short = plan_for(5000, n_bars=1000, n_assets=1, settings=s)
    long = plan_for(5000, n_bars=100_000, n_assets=1, settings=s)
    assert short.available_bytes > 0
    assert short.budget_bytes <= 64 * MB
    assert max(long.sizes) < max(short.sizes)  # more bars per strategy -> smaller chunks
    assert len(long.sizes) > len(short.sizes)


def test_fast_engine_pays_a_fixed_cache_and_almost_nothing_per_strategy():
    s = EvaluationConfig(engine="fast", memory_budget_mb=256)
    small = plan_for(1000, n_bars=100_000, n_assets=1, settings=s, cache_rows=50)
    big = plan_for(100_000, n_bars=100_000, n_assets=1, settings=s, cache_rows=50)
    assert small.sizes == (1000,) and big.sizes == (100_000,)  # one chunk: the population does not matter
    assert small.fixed_bytes == big.fixed_bytes >= 50 * 100_000 * 8  # the cache rows are the cost
    assert small.bytes_per_strategy < 1024
    more_rows = plan_for(1000, n_bars=100_000, n_assets=1, settings=s, cache_rows=200)
    assert more_rows.fixed_bytes - small.fixed_bytes == 150 * 100_000 * 8
    with pytest.raises(BudgetError, match="memory_budget_mb"):
        plan_for(1000, n_bars=100_000, n_assets=1, settings=EvaluationConfig(engine="fast", memory_budget_mb=100),
                 cache_rows=200)


def test_max_chunk_size_caps_chunks():
    s = EvaluationConfig(engine="fast", memory_budget_mb=256, max_chunk_size=7)
    p = plan_for(30, n_bars=1000, n_assets=1, settings=s, cache_rows=10)
    assert p.sizes == (6, 6, 6, 6, 6)  # ceil(30 / 7) = 5 chunks, balanced
    assert plan(5, per_item=1, budget=10**9, parallel=1, cap=2).sizes == (2, 2, 1)


def test_the_portfolio_reducer_holds_every_asset_at_once():
    """One shared-cash portfolio needs every symbol together: the vectorbt engine's columns and the fast
    engine's indicator caches count once per symbol, per-symbol reducers count one symbol at a time."""
    from evo.config import EvaluationConfig
    from evo.run.chunking import plan_for

    for engine in ("fast", "vectorbt"):
        sep = plan_for(10_000, 20_000, 10, EvaluationConfig(engine=engine, memory_budget_mb=4_000), cache_rows=100)
        port = plan_for(10_000, 20_000, 10, EvaluationConfig(engine=engine, memory_budget_mb=4_000,
                                                             reducer="portfolio"), cache_rows=100)
        if engine == "fast":
            assert port.fixed_bytes > 9 * 100 * 20_000 * 8 > sep.fixed_bytes
        else:
            assert port.bytes_per_strategy == 10 * sep.bytes_per_strategy
            assert max(port.sizes) < max(sep.sizes)


# ---------------------------------------------------------------------------------------------
# planning for a cluster: the scheduler's workers, their threads and memory limits

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from evo.config.settings import settings as _evo_settings  # noqa: E402
from evo.run.chunking import CHUNKS_PER_THREAD, MIN_CHUNK, MIN_CHUNK_WORK, WorkerSlot, plan_cluster  # noqa: E402

_workers = st.lists(
    st.builds(WorkerSlot, address=st.from_regex(r"tcp://10\.0\.0\.[0-9]{1,3}:[0-9]{4}", fullmatch=True),
              nthreads=st.integers(1, 8), memory_limit=st.one_of(st.just(0), st.integers(MB, 64 * 1024 * MB))),
    min_size=1, max_size=12,
)


@settings(max_examples=_evo_settings().property_examples or 200, deadline=None,
          derandomize=not _evo_settings().property_examples)
@given(workers=_workers, n=st.integers(0, 20_000), per_item=st.integers(1, 4 * MB), fixed=st.integers(0, 64 * MB),
       fraction=st.floats(0.01, 0.9), cap=st.one_of(st.none(), st.integers(1, 5000)))
def test_cluster_plan_uses_every_thread_and_fits_the_smallest_worker(workers, n, per_item, fixed, fraction, cap):
    threads = sum(w.nthreads for w in workers)
    limited = [w for w in workers if w.memory_limit]
    per_chunk = min((int(w.memory_limit * fraction) // w.nthreads for w in limited), default=None)
    try:
        p = plan_cluster(n, per_item, workers, fixed=fixed, memory_fraction=fraction, cap=cap)
    except BudgetError as e:
        # refused only when one strategy does not fit the tightest worker, which the message names
        assert per_chunk is not None and per_chunk < fixed + per_item
        tight = min(limited, key=lambda w: int(w.memory_limit * fraction) // w.nthreads)
        assert tight.address in str(e)
        return
    # every item in exactly one chunk, in order
    assert sum(p.sizes) == n and all(s >= 1 for s in p.sizes)
    sl = p.slices()
    assert [i for s in sl for i in range(s.start, s.stop)] == list(range(n))
    # every thread gets a chunk when there are items enough
    assert len(p.sizes) >= min(threads, n)
    # balance: a few chunks per thread, never more than needed for the memory, the cap or min chunk size
    assert max(p.sizes, default=0) - min(p.sizes, default=0) <= 1
    if per_chunk is not None:
        assert all(fixed + s * per_item <= per_chunk for s in p.sizes)
    if cap:
        assert max(p.sizes, default=0) <= cap
    memory_chunks = 1 if per_chunk is None else -(-n // max(1, (per_chunk - fixed) // per_item)) if n else 0
    cap_chunks = -(-n // cap) if cap and n else 0
    assert len(p.sizes) <= max(min(threads, n), min(threads * CHUNKS_PER_THREAD, n // MIN_CHUNK), memory_chunks,
                               cap_chunks)
    assert p.parallel == threads
    assert [list(w) for w in p.cluster] == [[w.address, w.nthreads, w.memory_limit] for w in workers]


def test_cluster_plan_gives_small_populations_fewer_chunks_per_thread():
    two = [WorkerSlot("tcp://a:1", 1, 0), WorkerSlot("tcp://b:1", 1, 0)]
    assert plan_cluster(400, 100, two).sizes == (67, 67, 67, 67, 66, 66)  # 3 per thread
    assert plan_cluster(40, 100, two).sizes == (10, 10, 10, 10)  # 40 // 8 = 5 chunks' worth: 2 per thread
    assert plan_cluster(20, 100, two).sizes == (10, 10)  # 20 // 8 = 2: one per thread
    assert plan_cluster(1, 100, two).sizes == (1,)
    assert plan_cluster(0, 100, two).sizes == ()


def test_cluster_plan_gives_short_work_one_chunk_per_thread():
    two = [WorkerSlot("tcp://a:1", 1, 0), WorkerSlot("tcp://b:1", 1, 0)]

    def bars(works: float) -> int:  # the bars that make 1000 strategies `works` times MIN_CHUNK_WORK
        return int(works * MIN_CHUNK_WORK / 1000)
    # under two MIN_CHUNK_WORK per thread: one chunk per thread
    assert plan_cluster(1000, 100, two, bars=bars(1.5)).sizes == (500, 500)
    assert plan_cluster(1000, 100, two, bars=bars(3.9)).sizes == (500, 500)
    # five chunks' worth: two per thread (a whole number per thread); fifty: CHUNKS_PER_THREAD per thread
    assert plan_cluster(1000, 100, two, bars=bars(5)).sizes == (250,) * 4
    assert len(plan_cluster(1000, 100, two, bars=bars(50)).sizes) == 2 * CHUNKS_PER_THREAD
    # a quarter of the least work: four times the chunks it allows
    assert plan_cluster(1000, 100, two, bars=bars(1.5), min_work=MIN_CHUNK_WORK / 4).sizes == (250,) * 4
    # the benchmark's size, 1000 strategies x 87,600 bars: one chunk per single-threaded worker
    assert plan_cluster(1000, 100, two, bars=87_600).sizes == (500, 500)
    # one thread has nothing to balance: one chunk, unless memory cuts it
    assert plan_cluster(1000, 100, two[:1], bars=bars(50)).sizes == (1000,)
    assert plan_cluster(1000, 100, [WorkerSlot("tcp://a:1", 1, 40_000)], bars=bars(50),
                        memory_fraction=1.0).sizes == (334, 333, 333)


def test_cluster_plan_refuses_naming_the_tightest_worker():
    workers = [WorkerSlot("tcp://big:1", 1, 8192 * MB), WorkerSlot("tcp://small:1", 4, 100 * MB)]
    with pytest.raises(BudgetError, match="tcp://small:1"):
        plan_cluster(10, 20 * MB, workers, memory_fraction=0.5)  # 100 MB * 0.5 / 4 threads < 20 MB
    with pytest.raises(BudgetError, match="no workers"):
        plan_cluster(10, 1, [])


def test_plan_for_a_cluster_follows_the_workers_it_is_given():
    ev = EvaluationConfig()
    one = plan_for(400, 1000, 1, ev, workers=[WorkerSlot("tcp://a:1", 1, 4096 * MB)])
    two = plan_for(400, 1000, 1, ev, workers=[WorkerSlot("tcp://a:1", 1, 4096 * MB), WorkerSlot("tcp://b:1", 2, 0)])
    assert len(one.sizes) == 1 and len(two.sizes) == 3  # a worker that joins is planned for
    assert plan_for(400, 1000, 1, ev).sizes == (400,)  # this process: its kernels use every core
