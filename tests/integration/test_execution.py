"""Where evaluate chunks run: a thread pool, a process pool, a real 2-worker Dask LocalCluster."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import small_config
from tests.helpers import dump_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _cfg(runner: str, **execution):
    # every other setting at its default: the chunks are planned from the workers, not forced small
    return small_config(
        algorithm={"pop_size": 40, "generations": 3},
        execution={"task_runner": runner, "workers": 2, **execution},
    )


def _chunks(url) -> list[dict]:
    eng = create_engine(url)
    with eng.connect() as c:
        stats = [json.loads(s) if isinstance(s, str) else s
                 for (s,) in c.execute(text("SELECT stats FROM generations ORDER BY number"))]
    eng.dispose()
    return [s["chunks"] for s in stats]


def _workers(url):
    return [w for c in _chunks(url) for w in c["workers"]]


@pytest.fixture(scope="module")
def thread_pool_run(tmp_path_factory, prefect_harness):
    from evo.flows.evolve import evolve

    url = f"sqlite:///{tmp_path_factory.mktemp('thread')}/t.db"
    evolve(config=_cfg("thread"), db_url=url)
    return url


@pytest.mark.parametrize("runner", ["dask", "process"])
def test_same_evolution_on_other_workers_with_the_market_loaded_once_per_worker(tmp_path, runner, thread_pool_run):
    import os

    from evo.flows.evolve import evolve

    url = f"sqlite:///{tmp_path}/{runner}.db"
    evolve(config=_cfg(runner), db_url=url)
    assert dump_run(url, "t") == dump_run(thread_pool_run, "t")

    workers = _workers(url)
    pids = {pid for pid, _ in workers}
    assert os.getpid() not in pids  # the chunks ran in other processes
    for c in _chunks(url):
        # planned for two single-threaded workers: at least one chunk each, more for balance
        assert len(c["cluster"]) == 2 and [w[1] for w in c["cluster"]] == [1, 1]
        assert len(c["sizes"]) >= 2 and c["parallel"] == 2
        if runner == "dask":
            # every generation's chunks ran on both workers, named by address
            assert len(set(c["addresses"])) == 2, c["addresses"]
            assert {a for a in c["addresses"]} == {w[0] for w in c["cluster"]}
    assert 1 <= len(pids) <= 2
    # every worker loaded (or was sent) the market once, however many chunks it evaluated
    for pid in pids:
        assert max(loads for p, loads in workers if p == pid) == 1


# ---------------------------------------------------------------------------------------------
# lost workers and an unreachable scheduler

def _held_worker(address: str, hold_file, generation: int):
    """A `dask worker` process (no nanny to restart it) that parks inside its first evaluate chunk of
    `generation`, writing `hold_file` when it does: the moment to SIGKILL it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "EVO_TEST_HOLD": f"evaluate@{generation}", "EVO_TEST_HOLD_FILE": str(hold_file)}
    dask = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when_held(proc, hold_file, seconds: float = 120):
    import signal
    import time

    deadline = time.monotonic() + seconds
    while not hold_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the worker never reached its chunk"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _market_counts(client) -> tuple[dict, dict]:
    """Per worker: markets it loaded itself, and markets it was sent."""
    from evo.market import load

    return client.run(lambda: load.loads), client.run(load.installs)


def test_a_worker_killed_mid_chunk_costs_nothing_and_workers_never_read_the_data(tmp_path, thread_pool_run):
    """A scheduler and workers the run did not start (dask_address). SIGKILL a worker while it
    evaluates a chunk: Dask gives the chunk to the other worker, the generation completes, and the run
    equals the thread runner's. The surviving worker holds the market without having loaded it."""
    import threading

    from distributed import LocalCluster

    from evo.flows.evolve import evolve

    url, hold = f"sqlite:///{tmp_path}/kill.db", tmp_path / "held"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        proc = _held_worker(lc.scheduler_address, hold, 2)
        try:
            with lc.get_client() as client:
                client.wait_for_workers(2, timeout=60)
                killer = threading.Thread(target=_kill_when_held, args=(proc, hold))
                killer.start()
                evolve(config=_cfg("dask", dask_address=lc.scheduler_address), db_url=url)
                killer.join()
                loads, installs = _market_counts(client)
        finally:
            proc.kill()
            proc.wait()
    assert hold.read_text() == "evaluate@2"
    assert dump_run(url, "t") == dump_run(thread_pool_run, "t")
    assert set(loads.values()) == {0} and set(installs.values()) == {1}, (loads, installs)
    chunks = _chunks(url)
    assert len(set(chunks[0]["addresses"])) == 2  # both workers took chunks before one was lost
    assert len(chunks[2]["cluster"]) == 1  # and the generation after it was planned for the one left


def test_every_worker_lost_fails_in_bounded_time_then_resumes_identically(tmp_path, thread_pool_run):
    """The only worker dies in generation 2: the run waits execution.worker_wait_seconds, fails with
    one line naming the scheduler and the generation, and `evo resume` on a new worker ends identical."""
    import threading
    import time

    from distributed import LocalCluster

    from evo.config.errors import ClusterError
    from evo.flows.evolve import evolve

    url, hold = f"sqlite:///{tmp_path}/gone.db", tmp_path / "held"
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            lc.get_client() as client:
        proc = _held_worker(lc.scheduler_address, hold, 2)
        try:
            client.wait_for_workers(1, timeout=60)
            killer = threading.Thread(target=_kill_when_held, args=(proc, hold))
            killer.start()
            t0 = time.monotonic()
            with pytest.raises(ClusterError) as e:
                evolve(config=_cfg("dask", dask_address=lc.scheduler_address, worker_wait_seconds=2), db_url=url)
            killer.join()
        finally:
            proc.kill()
            proc.wait()
        assert time.monotonic() - t0 < 60
        msg = str(e.value)
        assert "\n" not in msg and lc.scheduler_address in msg and "generation 2" in msg, msg
        lc.scale(1)
        client.wait_for_workers(1, timeout=60)
        evolve(name="t", db_url=url)  # what `evo resume t` runs
    assert dump_run(url, "t") == dump_run(thread_pool_run, "t")


def test_an_unreachable_scheduler_is_refused_with_nothing_written(tmp_path, monkeypatch):
    import socket

    from evo.config.errors import ClusterError
    from evo.flows.evolve import evolve
    from evo.run import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1.0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "none.db"
    with pytest.raises(ClusterError, match=rf"execution.dask_address: no Dask scheduler answers at tcp://127.0.0.1:{port}"):
        evolve(config=_cfg("dask", dask_address=f"tcp://127.0.0.1:{port}"), db_url=f"sqlite:///{db}")
    assert not db.exists()


def test_a_family_module_the_workers_lack_is_refused_with_nothing_written(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    from distributed import LocalCluster

    from evo.config.errors import FamilyError
    from evo.flows.evolve import evolve

    db = tmp_path / "none.db"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        # the module exists only for the flow's process: the worker started before it was on the path
        shutil.copy(Path(__file__).parents[1] / "user_families.py", tmp_path / "evo_cluster_userfam.py")
        monkeypatch.syspath_prepend(str(tmp_path))
        cfg = small_config(strategy={"family": "evo_cluster_userfam:SmaCross", "bounds": {}},
                           execution={"task_runner": "dask", "dask_address": lc.scheduler_address})
        with pytest.raises(FamilyError) as e:
            evolve(config=cfg, db_url=f"sqlite:///{db}")
    msg = str(e.value)
    assert "\n" not in msg and "module 'evo_cluster_userfam'" in msg and lc.scheduler_address.rsplit(":", 1)[0] in msg
    assert not db.exists()


def test_evo_run_refuses_an_unreachable_scheduler_in_one_line_before_prefect_starts(tmp_path, monkeypatch):
    import socket

    import tomli_w
    from typer.testing import CliRunner

    from evo.flows.cli import app
    from evo.run import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1.0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = {"data": {"synthetic": {"n_bars": 1000, "freq": "1h", "seed": 7}}, "algorithm": {"pop_size": 8},
           "execution": {"task_runner": "dask", "dask_address": f"tcp://127.0.0.1:{port}"}}
    (tmp_path / "c.toml").write_text(tomli_w.dumps(cfg))
    db = tmp_path / "x.db"
    res = CliRunner().invoke(app, ["run", str(tmp_path / "c.toml"), "--db", f"sqlite:///{db}"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"no Dask scheduler answers at tcp://127.0.0.1:{port}" in lines[0], res.output
    assert not db.exists()


def test_evo_resume_refuses_an_unreachable_scheduler_in_one_line_writing_nothing(tmp_path, monkeypatch):
    import socket

    from sqlalchemy import create_engine, text
    from typer.testing import CliRunner

    from evo.config import validate
    from evo.flows.cli import app
    from evo.run import cluster, opening

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1.0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = validate({"name": "t", "data": {"synthetic": {"n_bars": 1000, "freq": "1h", "seed": 7}},
                    "algorithm": {"pop_size": 8},
                    "execution": {"task_runner": "dask", "dask_address": f"tcp://127.0.0.1:{port}"}})
    url = f"sqlite:///{tmp_path}/x.db"
    opening.start(cfg, database=url)  # the run exists; its scheduler is gone

    def state():
        eng = create_engine(url)
        with eng.connect() as c:
            out = (c.execute(text("SELECT status, lease_owner FROM runs")).all(),
                   c.execute(text("SELECT COUNT(*) FROM generations")).scalar_one())
        eng.dispose()
        return out

    before = state()
    res = CliRunner().invoke(app, ["resume", "t", "--db", url])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"no Dask scheduler answers at tcp://127.0.0.1:{port}" in lines[0], res.output
    assert state() == before
