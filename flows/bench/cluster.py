"""`evo bench --cluster`: the same evolution on 1 and 2 single-threaded Dask workers, beside the thread path.

Every variant is a real `evolve` flow run (the ephemeral API, SQLite): the thread runner with its
kernels on one thread, then a Dask LocalCluster of 1 and of 2 single-threaded worker processes reached
through `execution.dask_address`, as a scheduler on another host would be. A generation's time is the
median time between generation commits (generation 1 left out: it loads the numba caches on fresh
workers); throughput is the strategies a generation evaluated times the bars, over that time. The
variants alternate over the repeats so the machine's drift hits all alike.

What travels is counted in each worker process at distributed's TCP comm (every byte of every Dask
message it reads and writes: tasks, results, heartbeats), over a run, per generation; the task runs'
own calls to the Prefect API are HTTP beside that and not counted. The market's one-time cost is the
time and the bytes of sending it to a fresh worker.
"""

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from evo.flows.bench.orchestration import _loop, _warmup


def _comm_bytes() -> tuple[int, int]:
    """(bytes received, bytes sent) over Dask's TCP comms by this worker process since the first call.

    Counts what distributed's own TCP comm reads and writes (`read_bytes_rw`, `TCP.write`, which
    returns the bytes it wrote): every message to and from the scheduler, peers and clients."""
    from distributed.comm import tcp

    counts = getattr(tcp, "_evo_bench_counts", None)
    if counts is None:
        counts = tcp._evo_bench_counts = [0, 0]
        read_bytes_rw, write = tcp.read_bytes_rw, tcp.TCP.write

        async def counted_read(stream, n):
            counts[0] += n
            return await read_bytes_rw(stream, n)

        async def counted_write(self, msg, serializers=None, on_error="message"):
            n = await write(self, msg, serializers, on_error)
            counts[1] += n or 0
            return n

        tcp.read_bytes_rw, tcp.TCP.write = counted_read, counted_write
    return counts[0], counts[1]


def _totals(client) -> tuple[int, int]:
    per = client.run(_comm_bytes).values()
    return sum(r for r, _ in per), sum(w for _, w in per)


@contextlib.contextmanager
def _one_numba_thread():
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _per_generation(url: str, name: str, n_bars: int, workers: int) -> dict[str, float]:
    """Medians over the generations measured: the seconds between generation commits ("wall"), the
    strategy-bars/s of those generations ("rate"), the seconds of evaluation in them ("evaluating": the
    chunks' own seconds over the `workers` running them at once) and the rest ("outside": vary, select,
    persist, Prefect's task runs, Dask's round trips), and the chunks' summed seconds ("chunk_seconds")."""
    from evo.store import Store

    store = Store(url)
    run = store.get_run(name)
    gens = [store.generation(run.id, n) for n in range(1, run.generations_target + 1)]
    store.dispose()
    stamps = [g.created_at.timestamp() for g in gens]
    walls = [b - a for a, b in zip(stamps[1:], stamps[2:])]
    measured = gens[2:]
    evaluating = [g.stats.eval_seconds / max(1, min(workers, len(g.stats.chunks.sizes))) for g in measured]
    return {
        "wall": statistics.median(walls),
        "rate": statistics.median(g.stats.evaluated * n_bars / w for g, w in zip(measured, walls)),
        "evaluating": statistics.median(evaluating),
        "outside": statistics.median(w - e for w, e in zip(walls, evaluating)),
        "chunk_seconds": statistics.median(g.stats.eval_seconds for g in measured),
    }


def cluster_benchmark(pop_size: int = 1000, n_bars: int = 87_600, generations: int = 6, repeats: int = 3) -> dict:
    from distributed import LocalCluster

    from evo.config import validate
    from evo.flows.evolve import drive, evolve
    from evo.flows.orchestration import Plain
    from evo.market import get_market
    from evo.run import cluster

    base = {
        "name": "bench",
        "data": {"synthetic": {"n_bars": n_bars, "freq": "1h", "seed": 7}},
        "algorithm": {"pop_size": pop_size, "generations": generations},
        "evaluation": {"engine": "fast"},
    }
    kinds = ("thread", "dask1", "dask2")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    traffic: dict[str, list[float]] = {"dask1": [], "dask2": []}
    ship_s, ship_bytes = [], []
    with tempfile.TemporaryDirectory(prefix="evo-bench-") as tmp:
        _warmup()  # starts the ephemeral API: not part of a generation's cost
        cfg = validate(base)
        drive(cfg.with_overrides(generations=1, name="warm"), None, None,
              f"sqlite:///{Path(tmp) / 'warm.db'}", None, False, Plain())  # loads the numba caches
        market = get_market(cfg.data)
        for r in range(repeats):
            for kind in kinds[r % 3:] + kinds[:r % 3]:
                url = f"sqlite:///{Path(tmp) / f'{kind}-{r}.db'}"
                if kind == "thread":
                    with _one_numba_thread():
                        evolve(config=cfg, db_url=url)
                else:
                    n = int(kind[-1])
                    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as lc, lc.get_client() as client:
                        before = _totals(client)
                        t0 = time.perf_counter()
                        cluster.ship_market(client, market)  # what a fresh cluster costs once
                        client.run(lambda: None)  # every worker has run its setup
                        ship_s.append(time.perf_counter() - t0)
                        sent = _totals(client)
                        ship_bytes.append((sent[0] - before[0]) / n)
                        evolve(config=validate({**base, "execution": {"task_runner": "dask",
                                                                      "dask_address": lc.scheduler_address}}),
                               db_url=url)
                        after = _totals(client)
                        traffic[kind].append(((after[0] - sent[0]) / generations, (after[1] - sent[1]) / generations))
                runs[kind].append(_per_generation(url, "bench", n_bars, 2 if kind == "dask2" else 1))

    def median(what: str) -> dict[str, float]:
        return {k: statistics.median(r[what] for r in v) for k, v in runs.items()}

    med, gen, evaluating, outside = median("rate"), median("wall"), median("evaluating"), median("outside")
    # two workers computing at once against one: the same genomes (the runs evolve identically), so
    # their summed chunk seconds differ only by what the two processes cost each other on this machine
    contention = median("chunk_seconds")["dask2"] / median("chunk_seconds")["dask1"]
    # the efficiency two workers would reach if the cluster cost nothing beyond the thread path: what
    # stays serial (outside evaluation) and the contention bound it (Amdahl)
    S, E = outside["thread"], evaluating["thread"]
    ceiling = (S + E) / (2 * (S + contention * E / 2))
    return {
        "benchmark": "cluster",
        "population": pop_size,
        "bars": n_bars,
        "generations": generations,
        "repeats": repeats,
        "generation_seconds": gen,
        "strategy_bars_per_s": med,
        "runs_strategy_bars_per_s": {k: [r["rate"] for r in v] for k, v in runs.items()},
        "evaluating_seconds": evaluating,
        "outside_evaluation_seconds": outside,
        "two_workers_compute_over_one": contention,
        "efficiency_ceiling": ceiling,
        "efficiency_2_workers": med["dask2"] / (2 * med["dask1"]),
        "cluster_over_thread_1_worker": gen["dask1"] / gen["thread"],
        "received_bytes_per_generation": {k: statistics.median(r for r, _ in v) for k, v in traffic.items()},
        "sent_bytes_per_generation": {k: statistics.median(w for _, w in v) for k, v in traffic.items()},
        "market_bytes": len(_market_bytes(market)),
        "market_received_bytes_per_worker": statistics.median(ship_bytes),
        "market_ship_seconds": statistics.median(ship_s),
    }


def _market_bytes(market) -> bytes:
    from distributed.protocol.pickle import dumps

    return dumps(market)


def table(r: dict) -> tuple[str, list[str], list[list[str]]]:
    g, s, o = r["generation_seconds"], r["strategy_bars_per_s"], r["outside_evaluation_seconds"]
    rx, tx = r["received_bytes_per_generation"], r["sent_bytes_per_generation"]
    return (
        f"cluster: population {r['population']}, {r['bars']} bars, fast engine, single-threaded workers, "
        f"{r['generations']} generations (medians of {r['repeats']})",
        ["what", "value"],
        [
            ["thread path, 1 numba thread: a generation", f"{1000 * g['thread']:.0f} ms, {s['thread']:.3g} strategy-bars/s"],
            ["Dask, 1 worker: a generation", f"{1000 * g['dask1']:.0f} ms, {s['dask1']:.3g} strategy-bars/s"],
            ["Dask, 2 workers: a generation", f"{1000 * g['dask2']:.0f} ms, {s['dask2']:.3g} strategy-bars/s"],
            ["scaling efficiency, 2 workers over 2 x 1", f"{r['efficiency_2_workers']:.2f}"],
            ["a generation outside evaluation: thread / Dask 1 / Dask 2",
             " / ".join(f"{1000 * o[k]:.0f}" for k in ("thread", "dask1", "dask2")) + " ms"],
            ["2 workers' summed chunk seconds over 1 worker's (same genomes)", f"{r['two_workers_compute_over_one']:.2f}"],
            ["efficiency ceiling: the thread path's serial part and that contention",
             f"{r['efficiency_ceiling']:.2f}"],
            ["cluster path over thread path, 1 worker", f"{r['cluster_over_thread_1_worker']:.3f}"],
            ["workers received / sent per generation, 1 worker", f"{rx['dask1'] / 1024:.0f} KiB / {tx['dask1'] / 1024:.0f} KiB"],
            ["workers received / sent per generation, 2 workers", f"{rx['dask2'] / 1024:.0f} KiB / {tx['dask2'] / 1024:.0f} KiB"],
            ["the market, pickled", f"{r['market_bytes'] / 2**20:.1f} MiB"],
            ["the market, received once per worker", f"{r['market_received_bytes_per_worker'] / 2**20:.1f} MiB in {1000 * r['market_ship_seconds']:.0f} ms"],
        ],
    )
