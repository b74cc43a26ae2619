"""Evaluate chunks on a Dask cluster: the workers to plan for, the market sent to them, the checks first.

The flow's process is the only one that reads market files. It sends the market to the workers through
a worker plugin registered once per data fingerprint: the scheduler keeps the plugin and hands it to
every worker that is there or joins later, each worker installs the market in its process cache (see
`evo.market.load.install`), and an evaluate chunk finds it there by the run's fingerprint. A worker
never needs the data files, the same paths, or a shared file system.

Every function takes a `distributed.Client`; nothing here knows about Prefect, and distributed itself
is imported only where a cluster is used.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import time
from typing import Iterator

from evo.config.errors import ClusterError, FamilyError
from evo.run.chunking import WorkerSlot

#: seconds the flow waits for a Dask scheduler to answer at the start of a run
CONNECT_SECONDS = 10.0
#: seconds between looks at the scheduler while waiting for a worker
POLL_SECONDS = 0.5


class Sealed:
    """A task argument handed to another process as it is. Prefect walks lists, dicts and dataclasses
    in a task's arguments (looking for futures) on both sides; a chunk's thousand parameter dicts cost
    it tens of milliseconds each time. A plain object is not walked."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (Sealed, (self.value,))


def unsealed(x):
    """The value of a Sealed argument, or the argument itself."""
    return x.value if isinstance(x, Sealed) else x


def unreachable(address: str, error: BaseException) -> str:
    from evo.config.errors import first_line

    return f"execution.dask_address: no Dask scheduler answers at {address} ({first_line(error)})"


def preflight(config) -> None:
    """Refuse a run on an existing Dask scheduler in one line, before anything starts, if the scheduler
    does not answer or its workers cannot import the run's family (the flow checks both again)."""
    ex = config.execution
    if ex.task_runner != "dask" or not ex.dask_address:
        return
    from distributed import Client

    try:
        client = Client(ex.dask_address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterError(unreachable(ex.dask_address, e)) from None
    with client:
        check_family(client, config.strategy.family)


def slots(client) -> list[WorkerSlot]:
    """The scheduler's workers now, in address order: their threads and memory limits."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return [WorkerSlot(addr, int(w.get("nthreads") or 1), int(w.get("memory_limit") or 0))
            for addr, w in sorted(info.items())]


def workers_for(client, wait_seconds: float, generation: int) -> list[WorkerSlot]:
    """The workers to plan generation `generation` for; with none, wait up to `wait_seconds` for one,
    then raise ClusterError naming the scheduler and the generation."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = slots(client)
        if found:
            return found
        if time.monotonic() >= deadline:
            raise ClusterError(no_workers(client, wait_seconds, generation))
        time.sleep(POLL_SECONDS)


def no_workers(client, wait_seconds: float, generation: int) -> str:
    return (f"no Dask worker at {client.scheduler.address} for {wait_seconds:g} s "
            f"(execution.worker_wait_seconds) in generation {generation}; start workers, then `evo resume`")


def fan_out(client, fn, ctx, items, number: int, retries: int, wait_seconds: float) -> list:
    """fn(ctx, item, number, k) for each chunk k of generation `number` as a Dask task, results in
    chunk order (see results). Chunk k is meant for the k-th worker thread, round robin (the plan cut
    one or more chunks per thread; a chunk that finishes quickly would otherwise draw the next one to
    its worker), but may run on any other: a lost worker's chunks are rescheduled by Dask. A chunk that
    raises is retried `retries` times. The context and each chunk travel sealed: Dask does not walk
    them."""
    import uuid

    tag = uuid.uuid4().hex[:8]
    threads = [s.address for s in slots(client) for _ in range(max(1, s.nthreads))]
    futures = [
        client.submit(_unsealing, fn, Sealed(ctx), Sealed(item), number, k, key=f"evo-evaluate-g{number}-{k}-{tag}",
                      pure=False, retries=retries, workers=[threads[k % len(threads)]] if threads else None,
                      allow_other_workers=True)
        for k, item in enumerate(items)
    ]
    try:
        return results(client, futures, wait_seconds, number)
    finally:
        client.cancel([f for f in futures if not f.done()])


def _unsealing(fn, ctx, item, number: int, chunk: int):
    return fn(unsealed(ctx), unsealed(item), number, chunk)


def results(client, futures, wait_seconds: float, generation: int) -> list:
    """The results of the task runner's futures, in order; raises ClusterError when the cluster has had
    no worker for `wait_seconds` while some are still pending (a lost worker's chunks are rescheduled
    by Dask meanwhile). Waits on the Dask futures themselves: they finish also when a task fails
    before it could report to anyone."""
    alone_since = None
    pending = [getattr(f, "wrapped_future", f) for f in futures]  # a Prefect future's, or a Dask future
    while pending:
        try:
            pending[0].result(timeout=POLL_SECONDS * 4)
        except Exception:  # noqa: BLE001  (still running, or failed: a failure is raised below, in order)
            pass
        pending = [f for f in pending if not f.done()]
        if not pending:
            break
        if slots(client):
            alone_since = None
        elif alone_since is None:
            alone_since = time.monotonic()
        elif time.monotonic() - alone_since >= wait_seconds:
            raise ClusterError(no_workers(client, wait_seconds, generation))
    return [f.result() for f in futures]


def _import_error(module: str) -> str | None:
    """None if this process can import `module`, else why not (run on each worker)."""
    try:
        importlib.import_module(module)
        return None
    except Exception as e:  # noqa: BLE001  (any failure to import is the answer)
        return f"{type(e).__name__}: {e}".splitlines()[0]


def check_family(client, family: str) -> None:
    """Refuse a user family `module:Class` that some worker cannot import, naming the module and them."""
    if ":" not in family:
        return  # a built-in family ships with evo itself
    module = family.split(":", 1)[0]
    answers = client.run(_import_error, module)
    missing = sorted(addr for addr, err in answers.items() if err is not None)
    if missing:
        raise FamilyError(
            f"strategy.family {family!r}: module {module!r} cannot be imported on Dask worker(s) "
            f"{', '.join(missing)} ({answers[missing[0]]}); install it there"
        )


def plugin_name(fingerprint: str) -> str:
    return f"evo-market-{fingerprint[:24]}"


def _has_plugin(name: str, dask_scheduler=None) -> bool:
    return name in dask_scheduler.worker_plugins


def ship_market(client, market) -> bool:
    """Send `market` to every worker, now and when they join, unless the scheduler already holds it
    (an earlier run or generation on these data). True if it was sent."""
    name = plugin_name(market.fingerprint)
    if client.run_on_scheduler(_has_plugin, name):
        return False
    from evo.run.shipping import MarketPlugin

    client.register_plugin(MarketPlugin(market, name), name=name)
    return True


def current_worker() -> tuple[str, int] | None:
    """(address, threads) of the Dask worker running this code, or None outside a Dask worker."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return None
    return w.address, int(w.state.nthreads)


@contextlib.contextmanager
def chunk_threads(task_runner: str) -> Iterator[str]:
    """Run one chunk with the numba threads its place allows; yields the Dask worker's address ("" if
    none). A Dask worker runs one chunk per worker thread at once, and a process pool one per process,
    so there each chunk's kernels get one thread: the worker's threads are shared among its chunks,
    never oversubscribed. In the flow's own process (thread runner) the kernels use every core."""
    worker = current_worker()
    pooled = task_runner == "process" and multiprocessing.parent_process() is not None
    if worker is None and not pooled:
        yield ""
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield worker[0] if worker else ""
    finally:
        numba.set_num_threads(before)
