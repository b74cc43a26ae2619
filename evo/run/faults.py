"""Test-only fault injection and crash points, off unless an environment variable turns them on
(declared with the other settings in evo.config.settings).

EVO_FAULT_EVALUATE=0.3          a deterministic 30 % of `evaluate` chunks fail their first attempt
                                (chosen by a hash of run name, generation and chunk, so reruns agree)
EVO_FAULT_EVALUATE_ALWAYS=1     ... and every retry too, so the retries run out
EVO_FAULT_PERSIST=members       `persist` raises inside its transaction after that stage
                                (generation, individuals, evaluations, members, commit)
EVO_FAULT_FROM_GENERATION=3     faults start at this generation (default 1)
EVO_TEST_HOLD=persist@3         the process stops at that point and waits to be killed: evaluate@N
                                (inside an evaluate chunk), persist@N (inside the open transaction),
                                between@N (after generation N is committed); it first writes the
                                point's name to the file EVO_TEST_HOLD_FILE, so a test knows when to kill
EVO_TEST_BARRIER_DIR=/tmp/x     just before taking a run's lease, write ready-<pid> there and wait for a
                                file named go: racing processes then reach the lease at the same moment
EVO_TEST_CRASH=between@2        the process kills itself (SIGKILL) right after committing generation 2
                                (start@0: right after taking the run's lease, on every attempt),
EVO_TEST_CRASH_RUN=NAME         ... only in the run NAME: a crash Prefect sees as Crashed, for retry tests
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from evo.config.errors import EvoError
from evo.config.settings import settings

_attempts: dict[tuple, int] = {}
_lock = threading.Lock()


class InjectedFault(EvoError):
    """A failure a test asked for."""


def reset() -> None:
    """Forget first attempts (tests that inject faults into several runs in one process)."""
    with _lock:
        _attempts.clear()


def _chosen(key: str, rate: float) -> bool:
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return h / 2**64 < rate


def maybe_fail_evaluate(ctx, number: int, chunk: int) -> None:
    hold_if("evaluate", number)
    env = settings()
    rate = env.fault_evaluate
    if rate <= 0 or number < env.fault_from_generation:
        return
    key = (ctx.name, number, chunk)
    if not _chosen(repr(key), rate):
        return
    with _lock:
        _attempts[key] = _attempts.get(key, 0) + 1
        attempt = _attempts[key]
    if attempt == 1 or env.fault_evaluate_always:
        raise InjectedFault(f"injected evaluate failure: generation {number} chunk {chunk} attempt {attempt}")


def persist_hook(number: int):
    """The `on_stage` callback for Store.persist_generation, or None when nothing is injected."""
    env = settings()
    stage = env.fault_persist
    hold = env.test_hold == f"persist@{number}"
    if not hold and not (stage and number >= env.fault_from_generation):
        return None

    def on_stage(s: str) -> None:
        if hold and s == "members":
            hold_if("persist", number)
        if stage and s == stage and number >= env.fault_from_generation:
            raise InjectedFault(f"injected persist failure after {s} (generation {number})")

    return on_stage


def hold_if(point: str, number: int) -> None:
    env = settings()
    if env.test_hold != f"{point}@{number}":
        return
    path = env.test_hold_file
    if path:  # whole or not at all: a test that sees the file may kill this process at once
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{point}@{number}")
        os.replace(tmp, path)
    while True:  # until the test kills this process
        time.sleep(60)


def barrier(point: str) -> None:
    folder = settings().test_barrier_dir
    if not folder:
        return
    with open(os.path.join(folder, f"ready-{point}-{os.getpid()}"), "w") as f:
        f.write(point)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(folder, "go")):
        if time.monotonic() > deadline:
            raise InjectedFault("test barrier: no go signal within 120 s")
        time.sleep(0.005)


def crash_if(point: str, number: int, run_name: str) -> None:
    env = settings()
    if env.test_crash != f"{point}@{number}":
        return
    only = env.test_crash_run
    if only and only != run_name:
        return
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
