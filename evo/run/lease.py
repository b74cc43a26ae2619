"""The lease: exactly one process advances a run, whatever the hosts."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from typing import Iterator

from evo.config.errors import first_line
from evo.config.settings import settings
from evo.run.context import RunContext
from evo.store import RunBusy, RunRecord, Store
from evo.store import url as urls
from evo.store.runs import busy_message

log = logging.getLogger("evo")


def lease_seconds() -> float:
    """How long a lease lasts without renewal (EVO_LEASE_SECONDS); a live holder renews it every third of that."""
    return settings().lease_seconds


def _this_process() -> str:
    import psutil

    return f"{socket.gethostname()}:{os.getpid()}:{int(psutil.Process().create_time() * 1000)}"


def is_dead(owner: str) -> bool:
    """True when the lease holder was a process on this host that no longer runs.

    A holder on another host can only be waited out (its lease expires)."""
    import psutil

    try:
        host, pid, started = owner.split(":")[:3]
        pid_i, started_i = int(pid), int(started)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        return int(psutil.Process(pid_i).create_time() * 1000) != started_i  # the pid was reused
    except psutil.NoSuchProcess:
        return True


def check_not_busy(store: Store, run: RunRecord) -> None:
    """Refuse early (before Prefect starts) when a live process holds the run."""
    holder, until = store.lease_of(run.id)
    if not store.lease_expired(run.id) and not is_dead(holder):
        raise RunBusy(busy_message(run.name, holder, until))


def shown_status(store: Store, run: RunRecord) -> str:
    """The status to show: a "running" run whose process is gone (lease expired, or its holder dead on
    this host) is "interrupted": `evo resume` continues it."""
    if run.status != "running":
        return run.status
    holder, _ = store.lease_of(run.id)
    if holder is None or store.lease_expired(run.id) or is_dead(holder):
        return "interrupted"
    return "running"


@contextlib.contextmanager
def hold(ctx: RunContext, store: Store) -> Iterator[str]:
    """Hold the run's lease while advancing it; renewed in the background, released at the end."""
    from evo.run import faults

    owner = f"{_this_process()}:{uuid.uuid4().hex[:8]}"
    faults.barrier("lease")
    holder, _ = store.lease_of(ctx.run_id)
    seconds = lease_seconds()
    store.acquire_lease(ctx.run_id, owner, seconds, stale_owner=holder if holder and is_dead(holder) else None)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(seconds / 3):
            try:
                store.renew_lease(ctx.run_id, owner, seconds)
            except Exception:  # a database hiccup: the next beat or the commit will tell
                pass

    beat = threading.Thread(target=heartbeat, name="evo-lease", daemon=True)
    beat.start()
    try:
        yield owner
    finally:
        stop.set()
        beat.join(timeout=5)
        try:
            store.release_lease(ctx.run_id, owner)
        except Exception as e:  # the database is gone: the lease expires by itself; keep the first error
            log.warning("run %r: could not release its lease (%s); it expires within %.0f s",
                        ctx.name, urls.scrub(first_line(e), [store.url]), seconds)


