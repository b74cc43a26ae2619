"""Test-only fault injection, off unless an environment variable turns it on.

EVO_FAULT_EVALUATE=0.3   a deterministic 30 % of `evaluate` chunks fail on their first attempt
                         (decided by a hash of run, generation and chunk, so reruns agree)
EVO_FAULT_EVALUATE_ALWAYS=1   those chunks fail on every attempt (retries run out)
EVO_FAULT_PERSIST=members     `persist` raises mid-transaction after that stage
"""

from __future__ import annotations

import hashlib
import os
import threading

_attempts: dict[tuple, int] = {}
_lock = threading.Lock()


class InjectedFault(RuntimeError):
    pass


def _chosen(key: str, rate: float) -> bool:
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return h / 2**64 < rate


def maybe_fail_evaluate(ctx, number: int, chunk: int) -> None:
    rate = float(os.environ.get("EVO_FAULT_EVALUATE", "0") or 0)
    if rate <= 0:
        return
    key = (ctx.name, number, chunk)
    if not _chosen(repr(key), rate):
        return
    with _lock:
        _attempts[key] = _attempts.get(key, 0) + 1
        attempt = _attempts[key]
    if attempt == 1 or os.environ.get("EVO_FAULT_EVALUATE_ALWAYS") == "1":
        raise InjectedFault(f"injected evaluate failure: generation {number} chunk {chunk} attempt {attempt}")


def persist_failure() -> str | None:
    return os.environ.get("EVO_FAULT_PERSIST") or None
