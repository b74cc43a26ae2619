"""Where evaluate chunks run: a thread pool, a process pool, a real 2-worker Dask LocalCluster."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import small_config
from tests.helpers import dump_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _cfg(runner: str):
    return small_config(
        algorithm={"pop_size": 10, "generations": 3},
        evaluation={"max_chunk_size": 3},
        execution={"task_runner": runner, "workers": 2},
    )


def _workers(url):
    eng = create_engine(url)
    with eng.connect() as c:
        stats = [json.loads(s) if isinstance(s, str) else s for (s,) in c.execute(text("SELECT stats FROM generations"))]
    eng.dispose()
    return [w for s in stats for w in s["chunks"]["workers"]]


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
    assert len(workers) >= 9  # several chunks per generation
    assert 1 <= len(pids) <= 2
    # every worker loaded the market once, however many chunks it evaluated
    for pid in pids:
        assert max(loads for p, loads in workers if p == pid) == 1
