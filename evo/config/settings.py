"""Every EVO_* environment variable, declared once and validated (pydantic-settings).

`settings()` follows the environment as it is when called, so a variable set while a process runs
(the watcher's session token, a test's fault hook) is seen; it validates again only when an EVO_*
variable changed (the loop asks several times per generation). A value evo cannot use raises
`SettingsError` naming the variable. The CLI reads them once before a command does anything, so a
bad value writes nothing. The README's table of settings is generated from the fields' descriptions
(tests/unit/test_config.py checks they agree).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from evo.config.errors import SettingsError

PREFIX = "EVO_"
#: the stages of persist's transaction a fault can be injected after
PERSIST_STAGES = ("generation", "individuals", "evaluations", "members", "commit")


class Settings(BaseSettings):
    """What the environment may set. Empty values count as unset."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True,
                                      allow_inf_nan=False)

    database_url: SecretStr | None = Field(
        None, description="The evo database when `--db` is not given (it may hold a password: it is never printed "
        "and never becomes a flow parameter). Default: the config's storage.url, then sqlite:///evo.db.")
    lease_seconds: float = Field(
        60.0, gt=0, le=86_400, description="How long a run's lease lasts without renewal; a live holder renews it "
        "every third of that. A holder that died on another host is taken over after it.")
    server_nice: int = Field(
        10, ge=0, le=19, description="Niceness of the ephemeral Prefect API server evo starts, so its work waits for "
        "a core the evaluation kernels do not use.")
    indicator_cache_mb: float = Field(
        256.0, ge=0, le=1e7, description="Memory each process keeps indicator rows in between evaluations, so a "
        "generation (or a chunk on a Dask worker) computes only the windows it has not met yet (0: none).")
    heal_attempts: int = Field(
        3, ge=0, le=1000, description="How often a crashed deployment run is rescheduled before it ends Failed "
        "(read where the flow runs).")
    paper_drift_z: float = Field(
        2.0, ge=-1e6, le=1e6, description="Paper trading: a member drifts when the z-score of its paper Sharpe ratio "
        "against its backtest's falls below minus this (read on every tick).")
    paper_drift_min_bars: int = Field(
        20, ge=2, le=10_000_000, description="Paper trading: the paper returns a member needs before its drift is "
        "judged.")
    session: str | None = Field(
        None, description="Set by evo itself: the token by which the watcher finds what a command started.")
    session_pid: int | None = Field(None, description="Set by evo itself: the process that owns `EVO_SESSION`.")
    fault_evaluate: float = Field(
        0.0, ge=0, le=1, description="Test hook: the fraction of evaluate chunks whose first attempt fails.")
    fault_evaluate_always: bool = Field(False, description="Test hook: with EVO_FAULT_EVALUATE, every attempt fails.")
    fault_persist: Literal[PERSIST_STAGES] | None = Field(
        None, description="Test hook: raise inside persist's transaction after this stage.")
    fault_from_generation: int = Field(
        1, ge=1, le=2**31 - 1, description="Test hook: the first generation the fault hooks apply to.")
    test_hold: str | None = Field(
        None, pattern=r"^[a-z]+@\d+$", description="Test hook: `point@N` parks the process there (with EVO_TEST_HOLD_FILE).")
    test_hold_file: Path | None = Field(None, description="Test hook: the file a held process writes, then waits on.")
    test_barrier_dir: Path | None = Field(None, description="Test hook: a folder where racing processes line up at the lease.")
    test_crash: str | None = Field(
        None, pattern=r"^[a-z]+@\d+$", description="Test hook: `between@N`, `start@0` or `paper@0` (a paper "
        "tick, before its commit) makes the process SIGKILL itself there.")
    test_crash_run: str | None = Field(None, description="Test hook: only the run (or paper book) of this name crashes "
                                       "(EVO_TEST_CRASH).")
    test_postgres_url: str | None = Field(
        None, description="Test suite: a PostgreSQL server for the tests that run on both backends (each makes and "
        "drops its own database).")
    require_postgres: bool = Field(False, description="Test suite: fail, never skip, when PostgreSQL is not reachable.")
    require_browser: bool = Field(False, description="Test suite: fail, never skip, when Chromium is not installed.")
    require_namespaces: bool = Field(
        False, description="Test suite: fail, never skip, when Linux network namespaces cannot be made (needs root).")
    test_timeline: Path | None = Field(
        None, description="Test suite: a file that receives one JSON line per test (its worker, start, end, and the "
        "CPU seconds it spent, with the child processes it waited for).")
    test_shared_dir: Path | None = Field(
        None, description="Test suite: set by the test session for its workers: where its one shared Prefect "
        "server is described.")
    test_mark: str | None = Field(
        None, description="Test suite: a mark the tests put in the environment of what they start, to find "
        "every process left behind.")
    property_examples: int | None = Field(
        None, ge=1, le=1_000_000, description="Test suite: draw this many random configs in the property test "
        "(default: a fixed set of 100).")


#: the last EVO_* environment validated, and its settings (frozen, so they can be shared)
_last: tuple[tuple, Settings | None] = ((), None)


def settings() -> Settings:
    """The settings as the environment gives them now; SettingsError names a variable evo cannot use."""
    global _last
    # pydantic-settings matches names case-insensitively: so does the key
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k[:len(PREFIX)].upper() == PREFIX))
    key, known = _last
    if known is not None and key == env:
        return known
    try:
        known = Settings()
    except ValidationError as e:
        raise SettingsError("; ".join(_problem(err) for err in e.errors())) from None
    _last = (env, known)
    return known


#: settings whose values are never shown, not even in an error
SECRET = ("database_url", "test_postgres_url")


def _problem(err: dict) -> str:
    name = str(err["loc"][0]) if err["loc"] else "?"
    shown = "" if name in SECRET else f", got {str(err.get('input'))[:40]!r}"
    return f"environment variable {PREFIX}{name.upper()}: {err['msg']}{shown}"


def variables() -> list[tuple[str, str, str]]:
    """(variable, default, description) of every setting: what the README's table lists."""
    out = []
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default).lower() if isinstance(field.default, bool) \
            else str(field.default)
        out.append((f"{PREFIX}{name.upper()}", default, field.description or ""))
    return out
