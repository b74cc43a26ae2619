"""Injected faults: evaluate chunks that fail and retry, retries that run out, a persist that dies mid-transaction."""

from __future__ import annotations

import time

import pytest

from evo.run import faults
from tests.conftest import small_config
from tests.helpers import dump_run, integrity_problems, scalar

pytestmark = pytest.mark.usefixtures("prefect_harness")


def cfg(**over):
    return small_config(
        algorithm={"pop_size": 10, "generations": 4},
        evaluation={"max_chunk_size": 3, "retries": 2, "retry_delay_seconds": 0},
        **over,
    )


@pytest.fixture(autouse=True)
def clean_faults(monkeypatch):
    for k in ("EVO_FAULT_EVALUATE", "EVO_FAULT_EVALUATE_ALWAYS", "EVO_FAULT_PERSIST", "EVO_FAULT_FROM_GENERATION"):
        monkeypatch.delenv(k, raising=False)
    faults.reset()
    yield
    faults.reset()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, prefect_harness):
    from evo.flows.evolve import evolve

    url = f"sqlite:///{tmp_path_factory.mktemp('ref')}/ref.db"
    evolve(config=cfg(), db_url=url)
    return dump_run(url, "t")


def _evaluate_task_runs(flow_run_id: str, expect_retried: int, timeout: float = 60):
    """The evaluate task runs of a flow run as the Prefect API records them (events arrive asynchronously)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=200,
            )
        evaluate = [r for r in runs if r.name.startswith("evaluate") and r.state and r.state.is_completed()]
        retried = [r for r in evaluate if r.run_count > 1]
        if len(retried) >= expect_retried or time.monotonic() > deadline:
            return evaluate, retried
        time.sleep(0.5)


def test_thirty_percent_of_first_attempts_fail_and_the_run_is_unchanged(db_url, reference, monkeypatch):
    from evo.flows.evolve import evolve

    monkeypatch.setenv("EVO_FAULT_EVALUATE", "0.3")
    evolve(config=cfg(), db_url=db_url)
    assert dump_run(db_url, "t") == reference
    assert integrity_problems(db_url) == []
    failed_first = len(faults._attempts)  # chunks whose first attempt was made to fail
    assert failed_first >= 2
    flow_run_id = scalar(db_url, "SELECT flow_run_id FROM generations WHERE number = 1")
    evaluate, retried = _evaluate_task_runs(flow_run_id, failed_first)
    assert len(evaluate) >= 8  # several chunks per generation, so 30 % means something
    assert len(retried) == failed_first
    assert all(r.run_count == 2 for r in retried)


def test_retries_run_out_then_resume_continues_from_the_last_commit(db_url, reference, monkeypatch):
    from evo.flows.evolve import evolve

    monkeypatch.setenv("EVO_FAULT_EVALUATE", "1.0")
    monkeypatch.setenv("EVO_FAULT_EVALUATE_ALWAYS", "1")
    monkeypatch.setenv("EVO_FAULT_FROM_GENERATION", "3")
    with pytest.raises(faults.InjectedFault):
        evolve(config=cfg(), db_url=db_url)
    assert scalar(db_url, "SELECT MAX(number) FROM generations") == 2
    assert scalar(db_url, "SELECT status FROM runs") == "failed"
    assert scalar(db_url, "SELECT lease_owner FROM runs") is None  # released on the way out
    assert integrity_problems(db_url) == []
    partial = dump_run(db_url, "t")
    assert partial["generations"] == reference["generations"][:2]

    for k in ("EVO_FAULT_EVALUATE", "EVO_FAULT_EVALUATE_ALWAYS", "EVO_FAULT_FROM_GENERATION"):
        monkeypatch.delenv(k)
    evolve(config=None, name="t", db_url=db_url)
    assert dump_run(db_url, "t") == reference
    assert scalar(db_url, "SELECT status FROM runs") == "completed"


# every stage is covered on both backends by tests/unit/test_store.py::test_persist_is_atomic; here the flow
# around it: the failed run, then the resume
@pytest.mark.parametrize("stage", ["individuals", "commit"])
def test_persist_failing_mid_transaction_leaves_no_partial_rows(tmp_path, stage, reference, monkeypatch):
    from evo.flows.evolve import evolve

    url = f"sqlite:///{tmp_path}/p.db"
    monkeypatch.setenv("EVO_FAULT_PERSIST", stage)
    monkeypatch.setenv("EVO_FAULT_FROM_GENERATION", "2")
    with pytest.raises(faults.InjectedFault, match=f"after {stage}"):
        evolve(config=cfg(), db_url=url)
    assert scalar(url, "SELECT MAX(number) FROM generations") == 1
    assert scalar(url, "SELECT COUNT(*) FROM members WHERE generation = 2") == 0
    n_ind = scalar(url, "SELECT COUNT(*) FROM individuals")
    assert n_ind == scalar(url, "SELECT COUNT(DISTINCT individual_id) FROM members")  # no individual of generation 2
    assert integrity_problems(url) == []
    monkeypatch.delenv("EVO_FAULT_PERSIST")
    evolve(config=None, name="t", db_url=url)
    assert dump_run(url, "t") == reference
