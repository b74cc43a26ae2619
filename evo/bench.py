"""Benchmarks behind the README's performance table (`evo bench`).

Each figure is a median over repeats in one process, and the JSON output says
what was measured on which machine, so a reader can rerun it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def machine() -> dict:
    import psutil

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
    }


def persist_benchmark(url: str | None = None, n: int = 1000, repeats: int = 7, seed: int = 0) -> dict:
    """Time `Store.persist_generation` for `n` new offspring and `n` survivors per generation.

    Each repeat commits a new generation of fresh genomes (all new individuals
    and evaluations), the worst case for the write.
    """
    from evo import strategies
    from evo.algorithm import Checkpoint, PopState, encode_checkpoint, new_rng, rng_state
    from evo.objectives import METRICS
    from evo.store import OffspringRow, Store, SurvivorRow
    from evo.strategies.base import genome_hash

    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="evo-bench-")
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    store = Store(url)
    store.migrate()
    name = f"bench-persist-{time.time_ns()}"
    run = store.create_run(
        name=name, config={}, config_hash="0" * 64, family="rsi_pullback", data_fingerprint="0" * 64,
        evaluation_key="bench", seed=seed, generations_target=repeats,
    )
    space = strategies.get("rsi_pullback").space()
    rng = np.random.default_rng(seed)
    times = []
    for g in range(1, repeats + 1):
        X = space.repair(space.xl + rng.random((n, space.n_var)) * (space.xu - space.xl))
        params = space.decode(X)
        hashes = [genome_hash(p) for p in params]
        metrics = rng.normal(size=(n, len(METRICS)))
        off = [
            OffspringRow(hashes[i], params[i], metrics[i].tolist(), None, metrics[i, :2].tolist(), True)
            for i in range(n)
        ]
        surv = [SurvivorRow(hashes[i], 0, float(i), metrics[i, :2].tolist()) for i in range(n)]
        pop = PopState(X, metrics[:, :2], np.zeros((n, 2)), np.zeros(n), np.arange(n, dtype=float))
        ck = encode_checkpoint(Checkpoint(pop, rng_state(new_rng(g)), g, g * n))
        t0 = time.perf_counter()
        store.persist_generation(
            run_id=run.id, number=g, family="rsi_pullback", evaluation_key="bench",
            offspring=off, survivors=surv, checkpoint=ck, stats={"generation": g},
        )
        times.append(time.perf_counter() - t0)
    backend = store.engine.dialect.name
    store.dispose()
    if tmp is not None:
        tmp.cleanup()
    return {
        "benchmark": "persist one generation",
        "backend": backend,
        "individuals": n,
        "repeats": repeats,
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "max_ms": 1000 * max(times),
    }


def write_json(results: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"machine": machine(), **results}, indent=2))
