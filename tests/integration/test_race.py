"""Two processes resume the same run at the same moment: exactly one advances it, the other is told it is busy."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import small_config
from tests.helpers import EVO, dump_run, evo, evo_env, integrity_problems, scalar

pytestmark = pytest.mark.slow


def test_racing_resumes_exactly_one_proceeds(tmp_path, db_url, prefect_server, prefect_harness):
    from evo.flows.evolve import evolve

    cfg = small_config(algorithm={"pop_size": 8, "generations": 6})
    evolve(config=cfg, db_url=db_url, generations=2)  # a run to resume, 2 of 6 generations done

    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [EVO, "resume", "t", "--db", db_url, "--generations", "6"],
            cwd=tmp_path, env=evo_env(tmp_path / f"p{i}", prefect_server.api_url, EVO_TEST_BARRIER_DIR=str(barrier)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    # release both at the lease when both are there, so they race for it within milliseconds
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < 2:
        assert time.monotonic() < deadline, [p.poll() for p in procs]
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    (barrier / "go").write_text("go")
    results = [p.communicate(timeout=180) + (p.returncode,) for p in procs]

    winners = [r for r in results if r[2] == 0]
    losers = [r for r in results if r[2] != 0]
    assert len(winners) == 1 and len(losers) == 1, results
    errors = [ln for ln in losers[0][1].splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: run 't' is busy: another process"), losers[0][1]

    eng = create_engine(db_url)
    with eng.connect() as c:
        numbers = [r[0] for r in c.execute(text("SELECT number FROM generations ORDER BY number"))]
        status, owner = c.execute(text("SELECT status, lease_owner FROM runs")).one()
    eng.dispose()
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert status == "completed" and owner is None
    assert integrity_problems(db_url) == []

    ref = f"sqlite:///{tmp_path}/ref.db"
    evolve(config=cfg, db_url=ref)
    assert dump_run(ref, "t") == dump_run(db_url, "t")


def test_resume_while_another_process_holds_the_run_is_told_it_is_busy(tmp_path, db_url, prefect_server, prefect_harness):
    """Not a race: the holder is visibly advancing the run before the second process starts."""
    from evo.flows.evolve import evolve

    cfg = small_config(algorithm={"pop_size": 8, "generations": 4})
    evolve(config=cfg, db_url=db_url, generations=1)
    marker = tmp_path / "hold.txt"
    holder = subprocess.Popen(
        [EVO, "resume", "t", "--db", db_url, "--generations", "4"], cwd=tmp_path, start_new_session=True,
        env=evo_env(tmp_path / "holder", prefect_server.api_url, EVO_TEST_HOLD="evaluate@2", EVO_TEST_HOLD_FILE=str(marker)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert time.monotonic() < deadline and holder.poll() is None, "the holder never reached evaluate@2"
            time.sleep(0.01)
        (tmp_path / "second").mkdir()
        second = evo(["resume", "t", "--db", db_url, "--generations", "4"], tmp_path / "second", api_url=prefect_server.api_url)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    assert second.returncode == 2, second.stdout + second.stderr
    errors = [ln for ln in second.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: run 't' is busy: another process"), second.stderr
    assert "Traceback" not in second.stderr
    assert scalar(db_url, "SELECT MAX(number) FROM generations") == 1  # the second process advanced nothing
    assert integrity_problems(db_url) == []
