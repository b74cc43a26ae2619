"""`evo bench --orchestration`: the same evolution through the Prefect flow and as a plain loop.

Both run `flows.evolve.drive`, one with `Orchestrated` (task runs on the API,
the task runner, artifacts) and one with `Plain` (the same task functions
called directly), so the difference is what Prefect costs. The two alternate
over the repeats so that the machine's drift hits both alike; the figures are
medians. CPU seconds of this process and of the ephemeral API server are
recorded too: on a 2-core machine the server's work per task run competes
with the evaluation kernels for the same cores.
"""

import statistics
import tempfile
import time
from pathlib import Path

from prefect import flow


def _checkpoints(url: str, name: str) -> list:
    from evo.store import Store

    store = Store(url)
    run = store.get_run(name)
    out = [store.generation(run.id, n).checkpoint for n in range(1, run.generations_target + 1)]
    store.dispose()
    return out


@flow(name="evo-bench-warmup", persist_result=False)
def _warmup() -> int:
    return 1


def _server_process():
    """The ephemeral API server's process, if this process started one."""
    import psutil
    from prefect.server.api.server import SubprocessASGIServer

    for inst in SubprocessASGIServer._instances.values():
        if inst.server_process is not None:
            return psutil.Process(inst.server_process.pid)
    return None


def _cpu(p) -> float:
    if p is None:
        return 0.0
    t = p.cpu_times()
    return t.user + t.system


def orchestration_benchmark(pop_size: int = 1000, generations: int = 20, n_bars: int = 87_600, repeats: int = 3) -> dict:
    import psutil

    from evo.config import validate
    from evo.flows.evolve import drive, evolve
    from evo.flows.orchestration import Plain

    cfg = validate(
        {
            "name": "bench",
            "data": {"synthetic": {"n_bars": n_bars, "freq": "1h", "seed": 7}},
            "algorithm": {"pop_size": pop_size, "generations": generations},
            "evaluation": {"engine": "fast"},
        }
    )
    me = psutil.Process()
    times: dict[str, list[float]] = {"plain": [], "prefect": []}
    cpu: dict[str, list[float]] = {"plain": [], "prefect": []}
    server_cpu: dict[str, list[float]] = {"plain": [], "prefect": []}
    same = True
    with tempfile.TemporaryDirectory(prefix="evo-bench-") as tmp:
        _warmup()  # starts the ephemeral API: not part of a generation's cost
        server = _server_process()
        drive(cfg.with_overrides(generations=1, name="warm"), None, None,
              f"sqlite:///{Path(tmp) / 'warm.db'}", None, False, Plain())  # loads the numba caches
        for r in range(repeats):
            order = ("plain", "prefect") if r % 2 == 0 else ("prefect", "plain")
            for kind in order:
                url = f"sqlite:///{Path(tmp) / f'{kind}-{r}.db'}"
                c0, s0, t0 = _cpu(me), _cpu(server), time.perf_counter()
                if kind == "plain":
                    drive(cfg, None, None, url, None, False, Plain())
                else:
                    evolve(config=cfg, db_url=url)
                times[kind].append(time.perf_counter() - t0)
                cpu[kind].append(_cpu(me) - c0)
                time.sleep(2)  # let the server finish what the run sent it, and count it
                server_cpu[kind].append(_cpu(server) - s0)
            same &= _checkpoints(f"sqlite:///{Path(tmp) / f'plain-{r}.db'}", "bench") == \
                _checkpoints(f"sqlite:///{Path(tmp) / f'prefect-{r}.db'}", "bench")
    plain, orchestrated = statistics.median(times["plain"]), statistics.median(times["prefect"])
    return {
        "benchmark": "orchestration overhead",
        "population": pop_size,
        "generations": generations,
        "bars": n_bars,
        "repeats": repeats,
        "plain_seconds": plain,
        "prefect_seconds": orchestrated,
        "plain_runs": times["plain"],
        "prefect_runs": times["prefect"],
        "ratio": orchestrated / plain,
        "orchestration_ms_per_generation": 1000 * (orchestrated - plain) / generations,
        "client_cpu_ms_per_generation": 1000 * (statistics.median(cpu["prefect"]) - statistics.median(cpu["plain"])) / generations,
        "server_cpu_ms_per_generation": 1000 * statistics.median(server_cpu["prefect"]) / generations,
        "same_result": same,
    }
