"""A run on a Dask cluster spread over hosts: network namespaces with their own addresses (tests/hosts.py).

The scheduler and the workers are started with the `dask` command line, each in its own namespace;
the workers run with the data folder hidden behind an empty tmpfs, so the run can only work if the
market is sent to them. One worker is SIGKILLed inside a chunk, then every worker is lost and the run
resumed on a new one: each run must equal the thread runner's on this host, value for value. A
scheduler address on a host where none listens is refused with nothing written.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import small_config
from tests.helpers import dump_run
from tests.hosts import Hosts

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DASK = str(Path(sys.executable).with_name("dask"))


def _market_file(folder: Path) -> Path:
    from evo.config import SyntheticData
    from evo.market.synthetic import synthetic_frames

    folder.mkdir()
    frame = next(iter(synthetic_frames(SyntheticData(n_bars=1500, freq="1h", seed=11)).values()))
    path = folder / "market.csv"
    frame.to_csv(path, index_label="time")
    return path


def _kill_when_held(proc, hold_file: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not hold_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return  # the test's assertions say what went wrong
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)


def test_runs_on_hosts_without_the_data_equal_one_machine_though_workers_die(tmp_path, can_make_hosts):
    from urllib.parse import urlsplit

    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    from evo.config.errors import ClusterError
    from evo.flows.evolve import evolve
    from evo.run import cluster

    data = tmp_path / "data"
    csv = _market_file(data)
    cfg = dict(data={"paths": [str(csv)], "synthetic": None}, algorithm={"pop_size": 24, "generations": 3})
    evolve(config=small_config(**cfg), db_url=f"sqlite:///{tmp_path}/thread.db")

    hold = tmp_path / "held"
    with Hosts(3) as hosts:
        scheduler = f"tcp://{hosts.address(0)}:8786"
        hosts.run(0, [DASK, "scheduler", "--host", hosts.address(0), "--port", "8786", "--no-dashboard"],
                  log=tmp_path / "scheduler.log")
        worker = [DASK, "worker", scheduler, "--nthreads", "1", "--no-dashboard", "--no-nanny"]
        survivor = hosts.run(1, [*worker, "--host", hosts.address(1)], hide=data, log=tmp_path / "worker1.log")
        doomed = hosts.run(2, [*worker, "--host", hosts.address(2)], hide=data, log=tmp_path / "worker2.log",
                           env={**os.environ, "EVO_TEST_HOLD": "evaluate@2", "EVO_TEST_HOLD_FILE": str(hold)})
        with Client(scheduler, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            # the workers' own view: the data folder is empty there
            assert all(v == [] for v in client.run(os.listdir, str(data)).values())
            killer = threading.Thread(target=_kill_when_held, args=(doomed, hold))
            killer.start()
            # the flow's Prefect API listens on this namespace's 127.0.0.1, which the workers cannot reach:
            # they never need it (a generation's chunks are Dask tasks of one task run in the flow)
            assert urlsplit(PREFECT_API_URL.value()).hostname in ("127.0.0.1", "localhost")
            evolve(config=small_config(**cfg, execution={"task_runner": "dask", "dask_address": scheduler}),
                   db_url=f"sqlite:///{tmp_path}/hosts.db")
            killer.join()
            from evo.market import load

            loads = client.run(lambda: load.loads)
            assert hold.read_text() == "evaluate@2", "the worker to kill never reached its chunk"
            assert dump_run(f"sqlite:///{tmp_path}/hosts.db", "t") == dump_run(f"sqlite:///{tmp_path}/thread.db", "t")
            assert list(loads.values()) == [0]  # the one worker left never read a market: it was sent one

            # every worker lost: the one left goes, and a new one dies inside generation 2's chunk
            os.killpg(survivor.pid, signal.SIGKILL)
            hold2 = tmp_path / "held2"
            doomed = hosts.run(2, [*worker, "--host", hosts.address(2)], hide=data, log=tmp_path / "worker3.log",
                               env={**os.environ, "EVO_TEST_HOLD": "evaluate@2", "EVO_TEST_HOLD_FILE": str(hold2)})
            on_host_2 = f"tcp://{hosts.address(2)}:"
            wait_for(lambda: [s.address[:len(on_host_2)] for s in cluster.slots(client)] == [on_host_2], 60)
            killer = threading.Thread(target=_kill_when_held, args=(doomed, hold2))
            killer.start()
            gone = f"sqlite:///{tmp_path}/gone.db"
            with pytest.raises(ClusterError) as e:
                evolve(config=small_config(**cfg, execution={"task_runner": "dask", "dask_address": scheduler,
                                                             "worker_wait_seconds": 2}), db_url=gone)
            killer.join()
            msg = str(e.value)
            assert "\n" not in msg and scheduler in msg and "generation 2" in msg, msg
            # a worker on another host comes back: `evo resume` ends identical to one machine
            hosts.run(1, [*worker, "--host", hosts.address(1)], hide=data, log=tmp_path / "worker4.log")
            client.wait_for_workers(1, timeout=60)
            evolve(name="t", db_url=gone)
    assert dump_run(gone, "t") == dump_run(f"sqlite:///{tmp_path}/thread.db", "t")


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the cluster never reached the expected workers"
        time.sleep(0.2)


def test_a_scheduler_on_no_host_is_refused_with_nothing_written(tmp_path, can_make_hosts, monkeypatch):
    """A dask_address on another host where no scheduler listens: one line, nothing written."""
    from evo.config.errors import ClusterError
    from evo.flows.evolve import evolve
    from evo.run import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1.0)

    db = tmp_path / "none.db"
    with Hosts(1) as hosts:
        address = f"tcp://{hosts.address(0)}:8786"
        with pytest.raises(ClusterError, match=rf"execution.dask_address: no Dask scheduler answers at {address}"):
            evolve(config=small_config(execution={"task_runner": "dask", "dask_address": address}),
                   db_url=f"sqlite:///{db}")
    assert not db.exists()
