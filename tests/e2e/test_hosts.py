"""A run on a Dask cluster spread over hosts: network namespaces with their own addresses (tests/hosts.py).

The scheduler and the workers are started with the `dask` command line, each in its own namespace;
the workers run with the data folder hidden behind an empty tmpfs, so the run can only work if the
market is sent to them. One worker is SIGKILLed inside a chunk. The run must equal the thread
runner's on this host, value for value.
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


def test_a_run_on_hosts_without_the_data_equals_one_machine_though_a_worker_dies(tmp_path, can_make_hosts):
    from urllib.parse import urlsplit

    from distributed import Client
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from evo.flows.evolve import evolve

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
        hosts.run(1, [*worker, "--host", hosts.address(1)], hide=data, log=tmp_path / "worker1.log")
        doomed = hosts.run(2, [*worker, "--host", hosts.address(2)], hide=data, log=tmp_path / "worker2.log",
                           env={**os.environ, "EVO_TEST_HOLD": "evaluate@2", "EVO_TEST_HOLD_FILE": str(hold)})
        with Client(scheduler, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            # the workers' own view: the data folder is empty there
            assert all(v == [] for v in client.run(os.listdir, str(data)).values())
            killer = threading.Thread(target=_kill_when_held, args=(doomed, hold))
            killer.start()
            # the chunks' task runs report to the flow's Prefect API: it must listen where the workers reach it
            api = urlsplit(PREFECT_API_URL.value())
            with hosts.reachable(api.hostname, api.port) as (host, port), \
                    temporary_settings({PREFECT_API_URL: f"http://{host}:{port}{api.path}"}):
                evolve(config=small_config(**cfg, execution={"task_runner": "dask", "dask_address": scheduler}),
                       db_url=f"sqlite:///{tmp_path}/hosts.db")
                # what the flow's process still has to tell that address (logs, events), before it closes
                APILogWorker.drain_all(timeout=10, at_exit=False)
                EventsWorker.drain_all(timeout=10, at_exit=False)
            killer.join()
            from evo.market import load

            loads = client.run(lambda: load.loads)
    assert hold.read_text() == "evaluate@2", "the worker to kill never reached its chunk"
    assert dump_run(f"sqlite:///{tmp_path}/hosts.db", "t") == dump_run(f"sqlite:///{tmp_path}/thread.db", "t")
    assert list(loads.values()) == [0]  # the one worker left never read a market: it was sent one
