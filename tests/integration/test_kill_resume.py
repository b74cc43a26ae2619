"""SIGKILL `evo run` / `evo resume` at 12 seeded moments of one run on SQLite (8 on PostgreSQL, whose
transactions the same code drives), then finish it with `evo resume`.

Only the evo process is killed (as the OOM killer does), not its process group: every process it
started (a quarter of the kills use Prefect's ephemeral API server, the rest a real server) must be
gone shortly after, which the harness checks after every kill by counting them.

Kill points are drawn from a seeded generator: inside an evaluate chunk, inside
persist's open transaction, right after a generation is committed, and at a
random delay after the process starts (wherever that lands, startup included).
After every kill the database must pass the SQL integrity checks, and the
finished run must equal an uninterrupted run with the same seed, generation by
generation and value by value.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import small_config
import uuid

from tests.helpers import EVO, MARK, dump_run, evo, evo_env, integrity_problems, marked_processes, wait_until_gone, write_config

pytestmark = pytest.mark.slow

#: kills per backend
N_KILLS = {"sqlite": 12, "postgresql": 8}
GENERATIONS = 12


def _committed(url: str) -> int:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT COALESCE(MAX(number), 0) FROM generations")).scalar_one()
    except Exception:  # the schema may not exist yet if the first process died early
        return 0
    finally:
        eng.dispose()


def _status(url: str) -> str | None:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT status FROM runs")).scalar()
    except Exception:
        return None
    finally:
        eng.dispose()


PHASES = ("evaluate", "persist", "between", "delay")


def _next_point(rng: random.Random, committed: int, landed: dict[str, int]) -> tuple[str, int, float]:
    """A kill point the next process will reach: a phase of a generation not yet committed, or a delay;
    the phase drawn among those with the fewest kills so far, so that every phase is hit alike."""
    fewest = min(landed[p] for p in PHASES)
    kind = rng.choice([p for p in PHASES if landed[p] == fewest])
    gen = committed + 1
    if kind == "between" and gen >= GENERATIONS:
        kind = "persist"
    return kind, gen, rng.uniform(0.3, 4.0)


def _run_until_killed(args, tmp_path, api_url, point) -> tuple[str, list[int]]:
    """(outcome, processes of the killed run still alive 30 s after the kill)."""
    kind, gen, delay = point
    marker = tmp_path / "hold.txt"
    marker.unlink(missing_ok=True)
    mark = uuid.uuid4().hex
    extra = {MARK: mark}
    if kind != "delay":
        extra.update(EVO_TEST_HOLD=f"{kind}@{gen}", EVO_TEST_HOLD_FILE=str(marker))
    proc = subprocess.Popen(
        [EVO, *args], cwd=tmp_path, env=evo_env(tmp_path, api_url, **extra),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + (delay if kind == "delay" else 120)
    while time.monotonic() < deadline and proc.poll() is None:
        if kind != "delay" and marker.exists():
            break
        time.sleep(0.01)
    if proc.poll() is not None:  # finished (or failed) before the kill point
        out = proc.stdout.read().decode()
        assert proc.returncode == 0, out[-3000:]
        return "finished", wait_until_gone(mark, 30)
    assert kind == "delay" or marker.exists(), f"never reached {kind}@{gen}"
    os.kill(proc.pid, signal.SIGKILL)  # the evo process alone, as the OOM killer would
    proc.wait(timeout=30)
    left = wait_until_gone(mark, 30)
    for p in marked_processes(mark):  # never leave them to the next kill
        os.kill(p, signal.SIGKILL)
    return "killed", left


@pytest.mark.long
def test_kills_then_resume_equals_uninterrupted(tmp_path, db_url, prefect_server, prefect_harness):
    wanted = N_KILLS[db_url.split(":")[0].split("+")[0]]
    cfg = small_config(algorithm={"pop_size": 8, "generations": GENERATIONS})
    path = write_config(tmp_path / "run.toml", cfg)
    rng = random.Random(20261121)

    kills, landed = 0, dict.fromkeys(PHASES, 0)
    first = True
    while kills < wanted:
        committed = _committed(db_url)
        if committed >= GENERATIONS and _status(db_url) == "completed":
            break
        point = _next_point(rng, committed, landed)
        args = ["run", str(path), "--db", db_url] if first else ["resume", "t", "--db", db_url]
        api = None if kills % 4 == 3 else prefect_server.api_url  # every fourth: the ephemeral API server
        outcome, left = _run_until_killed(args, tmp_path, api, point)
        assert left == [], f"processes left behind after {point} ({'ephemeral' if api is None else 'server'} API)"
        if outcome == "killed":
            kills += 1
            landed[point[0]] += 1
            first = first and _committed(db_url) == 0 and _status(db_url) is None
        else:
            first = False
        assert integrity_problems(db_url) == [], f"after {point}"

    assert kills >= wanted, f"only {kills} kills landed before the run finished"
    assert min(landed.values()) >= 2, landed

    res = evo(["resume", "t", "--db", db_url], tmp_path, api_url=prefect_server.api_url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _status(db_url) == "completed"
    assert integrity_problems(db_url) == []

    from evo.flows.evolve import evolve

    ref = f"sqlite:///{tmp_path}/ref.db"
    evolve(config=cfg, db_url=ref)
    a, b = dump_run(ref, "t"), dump_run(db_url, "t")
    assert [n for n, _ in b["generations"]] == list(range(1, GENERATIONS + 1))
    assert a["generations"] == b["generations"]  # survivors, rank, crowding, rng state, per generation
    assert a["members"] == b["members"]  # every offspring and survivor with its metrics
