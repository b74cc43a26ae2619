"""How a generation's steps run: through Prefect (task runs, a task runner, artifacts) or as plain calls.

`Plain` calls the very functions the tasks wrap (`task.fn`) in this process,
one after another; `evo bench --orchestration` compares the two to measure
what Prefect costs. `Orchestrated` is what the `evolve` flow uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from typing import Iterator, Sequence

from prefect.utilities.annotations import quote

from evo import tasks
from evo.config.errors import ClusterError
from evo.run import cluster, process
from evo.run.chunking import WorkerSlot
from evo.store import GenerationStats


class Plain:
    """Steps as plain calls of the functions the tasks wrap (`task.fn`), one after another."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter | None = None):
        self.log = log or logging.getLogger("evo")

    @contextlib.contextmanager
    def session(self, config) -> Iterator[None]:
        """Where the run's chunks go, for the whole run (`config`: its RunConfig), entered before the
        run is opened: a cluster that cannot take it refuses the run before anything is written."""
        yield

    def ship(self, ctx) -> None:
        """Send the run's market to where its chunks run, if that is another host."""

    def workers(self, ctx, number: int):
        """The workers to plan generation `number`'s chunks for (None: this process, today's plan)."""
        return None

    def call(self, task, *args):
        """One step."""
        return task.fn(*args)

    def map(self, task, ctx, items: Sequence, number: int) -> list:
        """One step per item (`task(ctx, item, number, k)`), results in item order: the one place
        parallelism enters (DEAP's toolbox.map)."""
        return [task.fn(ctx, item, number, k) for k, item in enumerate(items)]

    def flow_run_id(self) -> str | None:
        return None

    # hooks for what the Prefect UI shows
    def started(self, ctx, store, done: int) -> None:
        pass

    def generation_done(self, ctx, store, stats: GenerationStats) -> None:
        pass

    def finished(self, ctx, store) -> None:
        pass

    def failed(self, ctx, error: BaseException) -> None:
        pass


#: seconds between versions of the per-generation stats table artifact
TABLE_EVERY = 30.0
#: seconds between updates of the progress artifact: each is a round trip to the API, a noticeable
#: part of a fast generation when done every generation
PROGRESS_EVERY = 5.0


def artifact_key(name: str, what: str) -> str:
    """Stable per run name (so versions accumulate across resumes), and a valid artifact key."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "run"
    return f"evo-{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}-{what}"


class Orchestrated(Plain):
    """Task runs for every step, evaluate chunks on the run's task runner, artifacts in the UI."""

    def __init__(self, log=None):
        super().__init__(log)
        self.runner = None
        self.client = None  # the Dask client, when the chunks go to a Dask cluster
        self._progress_id = None
        self._table_posted = time.monotonic()
        self._progress_posted = time.monotonic()

    @contextlib.contextmanager
    def session(self, config) -> Iterator[None]:
        ex = config.execution
        with task_runner(ex, config.evaluation.max_parallel) as runner:
            self.runner = runner
            try:
                if ex.task_runner == "dask":
                    self.client = connect(runner, ex)
                    cluster.check_family(self.client, config.strategy.family)
                yield
            finally:
                self.runner = self.client = None

    def ship(self, ctx) -> None:
        if self.client is not None and cluster.ship_market(self.client, process.market_for(ctx)):
            self.log.info("run %r: market %s sent to the Dask cluster at %s", ctx.name, ctx.fingerprint[:12],
                          self.client.scheduler.address)

    def workers(self, ctx, number: int):
        ex = ctx.config.execution
        if self.client is not None:
            return cluster.workers_for(self.client, ex.worker_wait_seconds, number)
        if ex.task_runner == "process":
            return [WorkerSlot(f"process {i + 1}", 1, 0) for i in range(ex.workers)]
        return None

    # Arguments go in `quote(...)`: they are plain data with no futures inside, and without it Prefect
    # walks every element of them (a generation's genomes and metrics) twice per task run.

    def call(self, task, *args):
        return task(*[quote(a) for a in args])

    def map(self, task, ctx, items, number):
        ev = ctx.config.evaluation
        task = task.with_options(retries=ev.retries, retry_delay_seconds=ev.retry_delay_seconds)
        if len(items) == 1 and ctx.config.execution.task_runner == "thread":
            # nothing to run beside it: a task run in this thread, without the hand-off to a pool thread
            return [task(quote(ctx), quote(items[0]), number, 0)]
        if self.client is not None:
            # one task run that hands the chunks to Dask itself: a task run per chunk costs a Dask worker
            # more than evaluating its share of a generation does
            return tasks.evaluate_on_cluster(quote(ctx), quote(items), number, quote(self.client))
        # quote() does not survive the trip to a process: there the arguments go sealed
        wrap = quote if ctx.config.execution.task_runner == "thread" else cluster.Sealed
        futures = [
            self.runner.submit(task, {"ctx": wrap(ctx), "params": wrap(item), "number": number, "chunk": k})
            for k, item in enumerate(items)
        ]
        return [f.result() for f in futures]

    def flow_run_id(self) -> str | None:
        from prefect.runtime import flow_run

        rid = flow_run.id
        return str(rid) if rid else None

    def started(self, ctx, store, done: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self._progress_id = create_progress_artifact(
            progress=100.0 * done / ctx.target, key=artifact_key(ctx.name, "progress"),
            description=f"run {ctx.name}: generations committed out of {ctx.target}",
        )

    def generation_done(self, ctx, store, stats: GenerationStats) -> None:
        from prefect.artifacts import update_progress_artifact

        if self._progress_id is not None and (time.monotonic() - self._progress_posted >= PROGRESS_EVERY
                                              or stats.generation == ctx.target):
            update_progress_artifact(self._progress_id, 100.0 * stats.generation / ctx.target)
            self._progress_posted = time.monotonic()
        # a new version of the stats table at most every TABLE_EVERY seconds (and at the end):
        # fast runs would otherwise post a version per generation
        if time.monotonic() - self._table_posted >= TABLE_EVERY:
            self._post_table(ctx, store)

    def _post_table(self, ctx, store) -> None:
        from prefect.artifacts import create_table_artifact

        create_table_artifact(
            table=[stats_row(s) for s in store.generation_stats(ctx.run_id)],
            key=artifact_key(ctx.name, "generations"),
            description=f"run {ctx.name}: per-generation stats",
        )
        self._table_posted = time.monotonic()

    def finished(self, ctx, store) -> None:
        from prefect.artifacts import create_markdown_artifact

        from evo.view import summary

        self._post_table(ctx, store)

        s = summary.describe(store, ctx.name)
        create_markdown_artifact(
            markdown=summary.pareto_markdown(s, report_path=s.get("report")),
            key=artifact_key(ctx.name, "pareto"),
            description=f"run {ctx.name}: the final Pareto set",
        )
        from evo.flows.paper import announce_run_end

        v = s.get("verdict") or {}
        announce_run_end(ctx.name, {"status": "completed", "generations_done": s["generations_done"],
                                    "verdict": v.get("verdict"), "deflated_sharpe": v.get("deflated_sharpe"),
                                    "pareto": len(s["pareto"])})

    def failed(self, ctx, error: BaseException) -> None:
        from evo.config.errors import first_line
        from evo.flows.paper import announce_run_end

        announce_run_end(ctx.name, {"status": "failed", "error": f"{type(error).__name__}: {first_line(error)}"})


def stats_row(s: GenerationStats) -> dict:
    """One generation's stats as a flat table row."""
    row = {
        "generation": s.generation,
        "hypervolume": round(s.hypervolume, 6),
        **{f"best {k}": (None if v is None else round(v, 6)) for k, v in s.best.items()},
        "feasible": s.n_feasible,
        "evaluated": s.evaluated,
        "cache hits": s.cache_hits,
        "eval seconds": round(s.eval_seconds, 3),
        "peak RSS MB": round(s.peak_rss / 2**20, 1),
        "chunk sizes": " ".join(str(x) for x in s.chunks.sizes),
    }
    if s.reevaluated:
        row["note"] = "survivors re-evaluated on new data"
    return row


@contextlib.contextmanager
def task_runner(execution, max_parallel: int):
    """The Prefect task runner a run's evaluate chunks go to, from RunConfig.execution."""
    if execution.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if execution.dask_address:
            runner = DaskTaskRunner(address=execution.dask_address,
                                    client_kwargs={"timeout": f"{cluster.CONNECT_SECONDS}s"})
        else:
            runner = DaskTaskRunner(
                cluster_kwargs={"n_workers": execution.workers, "threads_per_worker": 1, "processes": True,
                                "dashboard_address": None}
            )
    elif execution.task_runner == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        runner = ProcessPoolTaskRunner(max_workers=execution.workers)
    else:
        from prefect.task_runners import ThreadPoolTaskRunner

        runner = ThreadPoolTaskRunner(max_workers=max(execution.workers, max_parallel))
    with runner:
        yield runner


def connect(runner, execution):
    """The Dask client of a DaskTaskRunner; a scheduler that does not answer is refused in one line."""
    try:
        return runner.client
    except (OSError, TimeoutError) as e:
        raise ClusterError(cluster.unreachable(execution.dask_address, e)) from None
