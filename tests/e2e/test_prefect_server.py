"""Against a real `prefect server start`: evo serve, a deployment run with its artifacts, a crash, and a UI retry.

The Prefect server runs on PostgreSQL when EVO_TEST_POSTGRES_URL is set (CI), else on SQLite.
Every wait is bounded; the serve process and the server are always torn down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from flows.orchestration import artifact_key
from tests.conftest import small_config
from tests.helpers import EVO, ROOT, dump_run, evo_env, integrity_problems, rows, write_config

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def _client(api_url: str):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api_url)


def _final_state(api_url, flow_run_id, timeout=180):
    def done():
        with _client(api_url) as c:
            fr = c.read_flow_run(flow_run_id)
        return fr if fr.state and fr.state.is_final() else None

    return _wait(done, timeout, f"flow run {flow_run_id} to finish")


@pytest.fixture
def served(tmp_path, prefect_server):
    """`evo serve` against the test server, with a crash hook armed for the run named 'crashy'."""
    db = f"sqlite:///{tmp_path}/served.db"
    cfg = write_config(tmp_path / "form.toml", small_config(name="e2e", algorithm={"pop_size": 8, "generations": 3}))
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    env = evo_env(
        tmp_path / "serve", prefect_server.api_url,
        PREFECT_RUNNER_POLL_FREQUENCY="1", EVO_TEST_CRASH="between@2", EVO_TEST_CRASH_RUN="crashy",
    )
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [EVO, "serve", "--name", name, "--config", str(cfg), "--db", db],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        def deployment():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with _client(prefect_server.api_url) as c:
                    return c.read_deployment_by_name(f"evolve/{name}")
            except Exception:
                return None

        yield _wait(deployment, 120, "the served deployment"), db, tmp_path / "serve.log"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def test_served_deployment_runs_with_artifacts_then_crash_and_ui_retry_resume(served, prefect_server, prefect_harness, tmp_path):
    dep, db, log = served
    api = prefect_server.api_url

    # the deployment: a typed RunConfig form with descriptions, runs never overlap
    schema = json.dumps(dep.parameter_openapi_schema)
    assert '"RunConfig"' in schema and "Survivors per generation." in schema and '"minimum": 4' in schema
    assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
    assert dep.parameters["config"]["algorithm"]["pop_size"] == 8

    with _client(api) as c:
        bad = json.loads(json.dumps(dep.parameters))
        bad["config"]["algorithm"]["pop_size"] = 2
        with pytest.raises(Exception, match="(?i)valid"):
            c.create_flow_run_from_deployment(dep.id, parameters=bad)
        fr = c.create_flow_run_from_deployment(dep.id, parameters=dep.parameters)
    fr = _final_state(api, fr.id)
    assert fr.state.is_completed(), (fr.state, log.read_text()[-3000:])

    gens = rows(db, "SELECT number, flow_run_id FROM generations ORDER BY number")
    assert gens == [(1, str(fr.id)), (2, str(fr.id)), (3, str(fr.id))]

    with _client(api) as c:
        versions = [a for a in c.read_artifacts() if a.key and a.key.startswith(artifact_key("e2e", "")[:-1])]
    arts = {}
    for a in sorted(versions, key=lambda a: a.created):  # the latest version of each key
        arts[a.key] = a
    assert sum(a.key == artifact_key("e2e", "progress") for a in versions) == 1  # one artifact, updated in place
    progress, table, pareto = (arts.get(artifact_key("e2e", k)) for k in ("progress", "generations", "pareto"))
    assert progress is not None and float(progress.data) == 100.0
    assert table is not None and [r["generation"] for r in json.loads(table.data)] == [1, 2, 3]
    assert {"hypervolume", "evaluated", "cache hits", "eval seconds", "peak RSS MB", "chunk sizes"} <= set(json.loads(table.data)[0])
    assert pareto is not None and "Pareto set after generation 3" in pareto.data

    # a run that crashes (SIGKILL) after committing generation 2, retried as the UI does
    params = json.loads(json.dumps(dep.parameters))
    params["name"] = "crashy"
    params["config"]["name"] = "crashy"
    params["config"]["algorithm"]["generations"] = 5
    with _client(api) as c:
        crashy = c.create_flow_run_from_deployment(dep.id, parameters=params)
    crashed = _final_state(api, crashy.id)
    assert crashed.state.is_crashed(), (crashed.state, log.read_text()[-3000:])
    assert [r[0] for r in rows(db, "SELECT g.number FROM generations g JOIN runs r ON r.id = g.run_id "
                                     "WHERE r.name = 'crashy' ORDER BY g.number")] == [1, 2]
    assert integrity_problems(db) == []

    retry = subprocess.run(
        [str(Path(EVO).parent / "prefect"), "flow-run", "retry", str(crashy.id)],
        env=evo_env(tmp_path / "cli", api), capture_output=True, text=True, timeout=120,
    )
    assert retry.returncode == 0, retry.stdout + retry.stderr
    retried = _final_state(api, crashy.id)
    assert retried.id == crashy.id and retried.state.is_completed(), (retried.state, log.read_text()[-3000:])
    assert retried.run_count >= 2
    gens = rows(db, "SELECT g.number, g.flow_run_id FROM generations g JOIN runs r ON r.id = g.run_id "
                     "WHERE r.name = 'crashy' ORDER BY g.number")
    assert gens == [(n, str(crashy.id)) for n in range(1, 6)]  # resumed after 2, same flow-run id throughout
    assert "resuming after committed generation 2" in log.read_text()

    from evo.config import validate
    from flows.evolve import evolve

    ref = f"sqlite:///{tmp_path}/ref.db"
    evolve(config=validate(params["config"]), db_url=ref)
    assert dump_run(ref, "crashy") == dump_run(db, "crashy")


def test_prefect_yaml_deploys_to_a_process_work_pool(tmp_path, prefect_server):
    """`prefect deploy --all` with the shipped prefect.yaml: both deployments, their parameters and limits."""
    env = evo_env(tmp_path, prefect_server.api_url)
    prefect = str(Path(EVO).parent / "prefect")
    pool = subprocess.run([prefect, "work-pool", "create", "evo-process", "--type", "process", "--overwrite"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    dep = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    assert dep.returncode == 0, dep.stdout + dep.stderr
    with _client(prefect_server.api_url) as c:
        evolve = c.read_deployment_by_name("evolve/evolve")
        cont = c.read_deployment_by_name("evolve/continue-default")
    assert evolve.work_pool_name == "evo-process" and evolve.parameters == {"name": "default"}
    assert cont.parameters == {"name": "default", "extend_by": 5, "reevaluate_on_new_data": True}
    assert evolve.global_concurrency_limit.limit == cont.global_concurrency_limit.limit == 1
    assert [s.schedule.cron for s in cont.schedules] == ["0 * * * *"]
