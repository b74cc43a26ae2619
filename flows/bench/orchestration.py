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

from evo.flows.orchestration import Plain


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

    from evo.flows import ephemeral

    pid = ephemeral.server_pid()
    return psutil.Process(pid) if pid is not None else None


def _cpu(p) -> float:
    if p is None:
        return 0.0
    t = p.cpu_times()
    return t.user + t.system


def _loop(url: str, name: str) -> tuple[float, float]:
    """(median seconds between generation commits, median evaluation seconds of a generation), generation 1
    left out: a generation's wall time inside the loop, without the run's start and end."""
    from evo.store import Store

    store = Store(url)
    run = store.get_run(name)
    gens = [store.generation(run.id, n) for n in range(1, run.generations_target + 1)]
    store.dispose()
    stamps = [g.created_at.timestamp() for g in gens]
    return (statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:])),
            statistics.median(g.stats.eval_seconds for g in gens[1:]))


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
    loops: dict[str, list[tuple[float, float]]] = {"plain": [], "prefect": []}
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
                loops[kind].append(_loop(url, "bench"))
            same &= _checkpoints(f"sqlite:///{Path(tmp) / f'plain-{r}.db'}", "bench") == \
                _checkpoints(f"sqlite:///{Path(tmp) / f'prefect-{r}.db'}", "bench")
    plain, orchestrated = statistics.median(times["plain"]), statistics.median(times["prefect"])
    gen_plain = statistics.median(w for w, _ in loops["plain"])
    gen_prefect = statistics.median(w for w, _ in loops["prefect"])
    eval_prefect = statistics.median(e for _, e in loops["prefect"])
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
        "generation_plain_ms": 1000 * gen_plain,
        "generation_prefect_ms": 1000 * gen_prefect,
        "generation_ratio": gen_prefect / gen_plain,
        "evaluation_share_prefect": eval_prefect / gen_prefect,
        "orchestration_ms_per_generation": 1000 * (orchestrated - plain) / generations,
        "client_cpu_ms_per_generation": 1000 * (statistics.median(cpu["prefect"]) - statistics.median(cpu["plain"])) / generations,
        "server_cpu_ms_per_generation": 1000 * statistics.median(server_cpu["prefect"]) / generations,
        "same_result": same,
    }


# ---------------------------------------------------------------------------------------------
# `evo bench --generation`: the bookkeeping of a generation inside the real loop


class _Timed(Plain):
    """The plain loop (the flow's own `drive`, no Prefect) with every step's CPU time recorded.

    CPU is this thread's (time.thread_time): the steps run here, and numba's worker threads (the
    evaluation) are left out. A generation's total runs from one `generation_done` to the next, so
    what the loop does between the steps (merging metrics, the log line, the warnings) counts too.
    """

    def __init__(self):
        super().__init__()
        self.steps: list[dict] = []
        self._current: dict = {}
        self._mark = 0.0

    def call(self, task, *args):
        t0 = time.thread_time()
        out = super().call(task, *args)
        self._current[task.name] = self._current.get(task.name, 0.0) + time.thread_time() - t0
        return out

    def map(self, task, ctx, items, number):
        t0 = time.thread_time()
        out = super().map(task, ctx, items, number)
        self._current[task.name] = self._current.get(task.name, 0.0) + time.thread_time() - t0
        return out

    def started(self, ctx, store, done):
        self._mark = time.thread_time()

    def generation_done(self, ctx, store, stats):
        now = time.thread_time()
        self._current["total"] = now - self._mark
        self.steps.append(self._current)
        self._current = {}
        self._mark = now


def real_loop_steps(pop_size: int, generations: int, n_bars: int, database: str) -> list[dict]:
    """Per-generation CPU ms of each step of `drive` (the evolve flow's loop, plain calls), evaluation apart."""
    from evo.config import validate
    from evo.flows.evolve import drive

    cfg = validate({
        "name": f"bench-{pop_size}-{time.time_ns()}",
        "data": {"synthetic": {"n_bars": n_bars, "freq": "1D", "seed": 7}},
        "strategy": {"bounds": {"slow_window": [20, 60]}},
        "algorithm": {"pop_size": pop_size, "generations": generations},
        "validation": {"holdout": 0.2},
    })
    timed = _Timed()
    drive(cfg, None, None, database, None, False, timed)
    out = []
    for s in timed.steps[1:]:  # generation 1 samples instead of varying
        ms = {k: 1000 * v for k, v in s.items()}
        ms["bookkeeping"] = ms["total"] - ms.get("evaluate", 0.0)
        ms["other"] = ms["bookkeeping"] - sum(ms.get(k, 0.0) for k in ("vary", "select", "persist"))
        out.append(ms)
    return out


def generation_benchmark(sizes=(100, 1000, 10_000), database: str | None = None, n_bars: int = 400,
                         generations: dict | None = None) -> dict:
    """The bookkeeping of a generation (vary, select, persist with checkpoint and stats, and the loop
    around them; evaluation excluded) in the real loop at each population, beside pymoo's own NSGA2
    loop (which stores nothing) measured in the same process; medians over the generations after the
    first, and the growth exponent k of t ~ n^k between neighbouring sizes."""
    import math
    import statistics

    from evo.flows.bench import engine as bench

    gens = {100: 12, 1000: 8, 10_000: 4, **(generations or {})}
    steps, pymoo, growth = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="evo-bench-") as tmp:
        real_loop_steps(20, 2, n_bars, f"sqlite:///{Path(tmp) / 'warm.db'}")  # imports, numba caches
        for n in sizes:
            url = database or f"sqlite:///{Path(tmp) / f'gen-{n}.db'}"
            rows = real_loop_steps(n, gens.get(n, 4), n_bars, url)
            keys = ("vary", "evaluate", "select", "persist", "other", "bookkeeping")
            steps[n] = {k: statistics.median(r.get(k, 0.0) for r in rows) for k in keys}
            ask, tell = bench._pymoo_generations(n, gens.get(n, 4), 0, True)
            pymoo[n] = statistics.median(a + t for a, t in zip(ask, tell))
    sizes = list(steps)
    for a, b in zip(sizes, sizes[1:]):
        growth[f"{a}-{b}"] = {k: (math.log(max(steps[b][k], 1e-6) / max(steps[a][k], 1e-6)) / math.log(b / a))
                              for k in ("vary", "select", "persist", "bookkeeping")}
        growth[f"{a}-{b}"]["pymoo"] = math.log(pymoo[b] / pymoo[a]) / math.log(b / a)
    from evo.store import Store

    backend = Store(database).engine.dialect.name if database else "sqlite"
    return {"benchmark": "generation bookkeeping", "backend": backend, "bars": n_bars, "steps": steps,
            "pymoo_ms": pymoo, "growth": growth}


def run_benchmark(pop_size: int = 1000, n_bars: int = 5000, short: int = 5, long: int = 25, repeats: int = 3) -> dict:
    """Milliseconds per generation through `evo run` as a user types it (Prefect's ephemeral API, SQLite):
    (wall of `long` generations - wall of `short`) / (long - short), medians over alternated repeats."""
    import subprocess
    import sys

    evo = str(Path(sys.executable).parent / "evo")
    per_gen = []
    with tempfile.TemporaryDirectory(prefix="evo-bench-") as tmp:
        (Path(tmp) / "c.toml").write_text(
            f'[data.synthetic]\nn_bars = {n_bars}\nfreq = "1D"\nseed = 7\n\n[algorithm]\npop_size = {pop_size}\n'
        )

        def once(name: str, gens: int) -> float:
            t0 = time.perf_counter()
            res = subprocess.run([evo, "run", "c.toml", "--name", name, "--generations", str(gens), "--db",
                                  f"sqlite:///{tmp}/{name}.db"], cwd=tmp, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"evo run failed: {res.stderr.strip().splitlines()[-1:]}")
            return time.perf_counter() - t0

        once("warm", 1)  # numba caches, Prefect's database
        in_loop = []
        for r in range(repeats):
            a, b = (once(f"s{r}", short), once(f"l{r}", long)) if r % 2 == 0 else \
                tuple(reversed((once(f"l{r}", long), once(f"s{r}", short))))
            per_gen.append(1000 * (b - a) / (long - short))
            in_loop.append(1000 * _loop(f"sqlite:///{tmp}/l{r}.db", f"l{r}")[0])
    # the difference of two whole runs also carries how long each process took to start Prefect's API
    # and to stop (seconds that vary by a second or more), so the time between generation commits in
    # the long runs is given beside it
    return {"benchmark": "evo run", "population": pop_size, "bars": n_bars, "generations": [short, long],
            "repeats": repeats, "ms_per_generation": statistics.median(per_gen), "runs": per_gen,
            "in_loop_ms_per_generation": statistics.median(in_loop), "in_loop_runs": in_loop}
