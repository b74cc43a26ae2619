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


def test_a_dask_cluster_gets_the_market_sent_and_never_reads_the_data(tmp_path, thread_pool_run):
    """A scheduler and workers the run did not start (dask_address): the same evolution, chunks on both
    workers, and the workers hold the market without ever loading it themselves."""
    from distributed import LocalCluster

    from evo.flows.evolve import evolve

    url = f"sqlite:///{tmp_path}/addr.db"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            lc.get_client() as client:
        evolve(config=_cfg("dask", dask_address=lc.scheduler_address), db_url=url)
        loads = client.run(lambda: __import__("evo.market.load", fromlist=["x"]).loads)
        installs = client.run(lambda: __import__("evo.market.load", fromlist=["x"]).installs())
    assert dump_run(url, "t") == dump_run(thread_pool_run, "t")
    assert set(loads.values()) == {0} and set(installs.values()) == {1}, (loads, installs)
    assert all(len(set(c["addresses"])) == 2 for c in _chunks(url))
