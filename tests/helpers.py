"""Reading a run back with plain SQL, to compare runs value for value."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
EVO = str(Path(sys.executable).parent / "evo")


def rows(url: str, q: str, **p) -> list:
    """All rows of one query, with bound parameters, on a connection of its own."""
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text(q), p).all()
    finally:
        eng.dispose()


def scalar(url: str, q: str, **p):
    """The first column of the first row of one query (None without rows)."""
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text(q), p).scalar()
    finally:
        eng.dispose()


def as_json(v):
    """PostgreSQL hands JSON columns back parsed, SQLite as text."""
    return json.loads(v) if isinstance(v, str) else v


def dump_run(url: str, name: str) -> dict:
    """Every committed generation of a run: checkpoint and members (rank, crowding, objectives, and the
    metrics of the member's evaluation under its generation's key, by name), in a comparable form."""
    import numpy as np

    eng = create_engine(url)
    with eng.connect() as c:
        run_id = c.execute(text("SELECT id FROM runs WHERE name = :n"), {"n": name}).scalar_one()
        gens = c.execute(
            text("SELECT number, checkpoint FROM generations WHERE run_id = :r ORDER BY number"), {"r": run_id}
        ).mappings().all()
        sets = {r["id"]: json.loads(r["names"]) for r in c.execute(text("SELECT id, names FROM metric_sets")).mappings()}
        mem = c.execute(
            text(
                "SELECT m.generation, m.role, i.genome_hash, m.rank, m.crowding, m.objectives, "
                "e.metric_set_id, e.metrics, e.trades "
                "FROM members m JOIN individuals i ON i.id = m.individual_id "
                "JOIN generations g ON g.run_id = m.run_id AND g.number = m.generation "
                "LEFT JOIN evaluation_keys k ON k.key = g.evaluation_key "
                "LEFT JOIN evaluations e ON e.individual_id = m.individual_id AND e.key_id = k.id "
                "WHERE m.run_id = :r"
            ),
            {"r": run_id},
        ).mappings().all()
    eng.dispose()

    def norm(v):
        return json.loads(v) if isinstance(v, str) else v

    def metrics(r) -> tuple:
        """(name, value) pairs in name order; NaN as None so that equal rows compare equal."""
        if r["metrics"] is None:
            return ()
        values = np.frombuffer(bytes(r["metrics"]), dtype="<f8").tolist()
        return tuple(sorted((n, None if v != v else v) for n, v in zip(sets[r["metric_set_id"]], values)))

    return {
        "generations": [(g["number"], norm(g["checkpoint"])) for g in gens],
        "members": sorted(
            (r["generation"], r["role"], r["genome_hash"], r["rank"], r["crowding"], json.dumps(norm(r["objectives"])),
             r["trades"], metrics(r))
            for r in mem
        ),
    }


def integrity_problems(url: str) -> list[str]:
    """SQL checks that hold after any crash: no partial, duplicate or orphan rows."""
    eng = create_engine(url)
    checks = {
        "duplicate generation": "SELECT run_id, number FROM generations GROUP BY run_id, number HAVING COUNT(*) > 1",
        "gap in generations": (
            "SELECT g.run_id, g.number FROM generations g WHERE g.number > 1 AND NOT EXISTS "
            "(SELECT 1 FROM generations p WHERE p.run_id = g.run_id AND p.number = g.number - 1)"
        ),
        "generation without survivors": (
            "SELECT g.run_id, g.number FROM generations g WHERE NOT EXISTS "
            "(SELECT 1 FROM members m WHERE m.run_id = g.run_id AND m.generation = g.number AND m.role = 'survivor')"
        ),
        "generation without offspring": (
            "SELECT g.run_id, g.number FROM generations g WHERE NOT EXISTS "
            "(SELECT 1 FROM members m WHERE m.run_id = g.run_id AND m.generation = g.number AND m.role = 'offspring')"
        ),
        "orphan member": (
            "SELECT m.run_id, m.generation FROM members m WHERE NOT EXISTS "
            "(SELECT 1 FROM generations g WHERE g.run_id = m.run_id AND g.number = m.generation)"
        ),
        "offspring without evaluation": (
            "SELECT m.run_id, m.individual_id FROM members m JOIN generations g ON g.run_id = m.run_id "
            "AND g.number = m.generation WHERE m.role = 'offspring' "
            "AND NOT EXISTS (SELECT 1 FROM evaluations e JOIN evaluation_keys k ON k.id = e.key_id "
            "WHERE e.individual_id = m.individual_id AND k.key = g.evaluation_key)"
        ),
        # robust fitness stores the offspring's neighbours: evaluated, never members
        "individual neither a member nor evaluated": (
            "SELECT i.id FROM individuals i WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.individual_id = i.id) "
            "AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.individual_id = i.id)"
        ),
        "evaluation of no individual": (
            "SELECT e.id FROM evaluations e WHERE NOT EXISTS (SELECT 1 FROM individuals i WHERE i.id = e.individual_id)"
        ),
    }
    out = []
    with eng.connect() as c:
        for name, q in checks.items():
            found = c.execute(text(q)).all()
            if found:
                out.append(f"{name}: {found[:5]}")
    eng.dispose()
    return out


@functools.cache
def _migrated_prefect_db() -> Path:
    """An empty Prefect database at Prefect's current schema, made once per test process.

    Every `evo` subprocess gets a Prefect home of its own; the ephemeral API it starts would otherwise
    migrate a new database each time (about 6 s of CPU).
    """
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="evo-test-prefect-template-"))
    subprocess.run([str(Path(sys.executable).parent / "prefect"), "server", "database", "upgrade", "-y"],
                   env={**os.environ, "PREFECT_HOME": str(home)}, check=True, capture_output=True, timeout=300)
    return home / "prefect.db"


#: `api_url` of `evo_env` and `evo`: the session's shared Prefect server (tests/prefect_server.py)
SHARED = "shared"


def evo_env(tmp_path: Path, api_url: str | None = SHARED, **extra: str) -> dict:
    """Environment of an `evo` subprocess: its own Prefect home, and the session's shared Prefect server
    (SHARED, the default), a given Prefect API, or None: the local API server the command starts itself
    (its database a copy of an already migrated empty one), as a user without a server runs it."""
    import shutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("EVO_") or k == "EVO_LEASE_SECONDS"}
    env.pop("PREFECT_API_URL", None)
    if api_url == SHARED:
        from tests.prefect_server import shared_server

        api_url = shared_server().api_url
    home = tmp_path / "prefect-home"
    if not api_url and not (home / "prefect.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_prefect_db(), home / "prefect.db")
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def evo(args: list[str], tmp_path: Path, timeout: float = 300, api_url: str | None = SHARED,
        _prefix: list[str] = (), **env) -> subprocess.CompletedProcess:
    """`evo ARGS` as a subprocess from `tmp_path` (`_prefix`: a command it runs under, such as setpriv); the
    Prefect API as `evo_env`'s."""
    return subprocess.run(
        [*_prefix, EVO, *args], cwd=tmp_path, env=evo_env(tmp_path, api_url, **env), capture_output=True,
        text=True, timeout=timeout,
    )


def write_config(path: Path, cfg) -> Path:
    """A RunConfig as a TOML file."""
    import tomli_w

    path.write_text(tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True)))
    return path


MARK = "EVO_TEST_MARK"


def marked_processes(mark: str) -> list[int]:
    """Live processes whose environment carries EVO_TEST_MARK=mark (a test sets it on what it starts;
    every process started below inherits it)."""
    tag = f"{MARK}={mark}".encode()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    env = f.read().split(b"\0")
                with open(f"/proc/{d}/stat") as f:
                    zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            if tag in env and not zombie:
                out.append(int(d))
    return out


def wait_until_gone(mark: str, timeout: float = 30.0) -> list[int]:
    """Wait for every marked process to exit; the ones still alive after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = marked_processes(mark)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
