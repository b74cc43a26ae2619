"""Kill `evo run` for real (SIGKILL to its process group), then `evo resume`: the run equals an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import small_config
from tests.helpers import EVO, dump_run, evo, evo_env, integrity_problems, write_config

pytestmark = pytest.mark.slow


def _committed(url: str) -> int:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT COALESCE(MAX(number), 0) FROM generations")).scalar_one()
    except Exception:  # schema not created yet
        return 0
    finally:
        eng.dispose()


def test_kill_after_generation_k_then_resume_equals_uninterrupted(tmp_path, prefect_harness):
    cfg = small_config(algorithm={"pop_size": 12, "generations": 6})
    path = write_config(tmp_path / "run.toml", cfg)
    url = f"sqlite:///{tmp_path}/killed.db"

    proc = subprocess.Popen(
        [EVO, "run", str(path), "--db", url],
        cwd=tmp_path, env=evo_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # the ephemeral Prefect server is a child: kill the whole group
    )
    k = 2
    deadline = time.monotonic() + 240
    try:
        while _committed(url) < k:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "run did not reach generation 2"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    killed_at = _committed(url)
    assert k <= killed_at < 6, f"the kill should land mid-run, after {killed_at} generations"
    assert integrity_problems(url) == []
    eng = create_engine(url)
    with eng.connect() as c:
        assert c.execute(text("SELECT status FROM runs")).scalar_one() == "running"
    eng.dispose()

    res = evo(["resume", "t", "--db", url], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resuming after committed generation {killed_at}" in res.stdout + res.stderr

    from flows.evolve import evolve

    ref = f"sqlite:///{tmp_path}/ref.db"
    evolve(config=cfg, db_url=ref)
    a, b = dump_run(ref, "t"), dump_run(url, "t")
    assert [n for n, _ in b["generations"]] == [1, 2, 3, 4, 5, 6]
    assert a == b
    assert integrity_problems(url) == []
