"""Against a real `prefect server start`: what the README promises about operating with Prefect.

- a served deployment: the typed form, the task runs' results, the three artifacts, a crash and a
  retry by hand (`prefect flow-run retry`, what the UI's Retry does);
- crashed runs heal without a person: a crash the runner sees, a SIGKILL of `evo serve` and all its
  children (heartbeats stop; the zombie automation marks the run Crashed; the heal automation
  reschedules it; a new `evo serve` completes it, identical to an uninterrupted run), and a run that
  crashes every time stops;
- a schedule fires: `evo serve --continue-run NAME --by 2 --interval S` grows the run tick after tick;
(prefect.yaml's path, `prefect work-pool create`, `prefect deploy --all`, `prefect worker start`: in
tests/e2e/test_prefect_workers.py, with two workers on two hosts.)

The Prefect server runs on PostgreSQL when EVO_TEST_POSTGRES_URL is set (CI), else on SQLite.
Every wait is bounded; every process is torn down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from evo.flows.heal import HEAL_MESSAGE, SILENT_SECONDS
from evo.flows.orchestration import artifact_key
from tests.conftest import small_config
from tests.helpers import EVO, dump_run, evo, evo_env, integrity_problems, rows, wait_until_gone, write_config
from tests.prefect_server import client, deployment, errors_in, final_state, serving, wait

pytestmark = pytest.mark.slow


def _events_of(api: str, flow_run_id) -> str:
    """The events the server holds for a flow run, oldest first, and the server's triggers' view of it."""
    import httpx

    body = {"filter": {"any_resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}}, "limit": 50}
    try:
        res = httpx.post(f"{api}/events/filter", json=body, timeout=10)
        res.raise_for_status()
        events = sorted(res.json()["events"], key=lambda e: e["occurred"])
    except (httpx.HTTPError, ValueError, KeyError) as e:
        return f"events unreadable: {e}"
    return f"now {datetime.now(timezone.utc).isoformat()}; events: " + "; ".join(
        f"{e['occurred']} (received {e['received']}) {e['event']}" for e in events)


def _generations(db: str, name: str) -> list[int]:
    try:
        return [r[0] for r in rows(db, "SELECT g.number FROM generations g JOIN runs r ON r.id = g.run_id "
                                       "WHERE r.name = :n ORDER BY g.number", n=name)]
    except Exception:  # no schema yet
        return []


def _reference(tmp_path: Path, config: dict, name: str) -> dict:
    """The same run, uninterrupted, in this process (prefect_harness)."""
    from evo.config import validate
    from evo.flows.evolve import evolve

    ref = f"sqlite:///{tmp_path}/ref-{uuid.uuid4().hex[:6]}.db"
    evolve(config=validate(config), db_url=ref)
    return dump_run(ref, name)


@pytest.mark.long
def test_served_deployment_runs_with_artifacts_then_crash_and_ui_retry_resume(tmp_path, prefect_server, prefect_harness):
    api = prefect_server.api_url
    db = f"sqlite:///{tmp_path}/served.db"
    cfg = write_config(tmp_path / "form.toml", small_config(name="e2e", algorithm={"pop_size": 8, "generations": 3}))
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    args = ["--name", name, "--config", str(cfg), "--db", db, "--no-heal"]  # a person retries this one
    with serving(tmp_path, api, args, EVO_TEST_CRASH="between@2", EVO_TEST_CRASH_RUN="crashy") as (proc, log, _):
        dep = deployment(api, name, proc, log)

        # the deployment: a typed RunConfig form with descriptions, runs never overlap
        schema = json.dumps(dep.parameter_openapi_schema)
        assert '"RunConfig"' in schema and "Survivors per generation." in schema and '"minimum": 4' in schema
        props = dep.parameter_openapi_schema["properties"]
        assert all(props[p].get("description") for p in props), props  # every parameter explains itself
        assert "counted from its first" in props["generations"]["description"]
        assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
        assert dep.parameters["config"]["algorithm"]["pop_size"] == 8
        assert set(dep.tags) == {"evo"}

        with client(api) as c:
            bad = json.loads(json.dumps(dep.parameters))
            bad["config"]["algorithm"]["pop_size"] = 2
            with pytest.raises(Exception, match="(?i)valid"):
                c.create_flow_run_from_deployment(dep.id, parameters=bad)
            fr = c.create_flow_run_from_deployment(dep.id, parameters=dep.parameters)
        fr = final_state(api, fr.id)
        assert fr.state.is_completed(), (fr.state, log.read_text()[-3000:])

        gens = rows(db, "SELECT number, flow_run_id FROM generations ORDER BY number")
        assert gens == [(1, str(fr.id)), (2, str(fr.id)), (3, str(fr.id))]

        with client(api) as c:
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
        # narrow tables: holdout beside in-sample, genes in tables of at most 9 columns
        assert "sharpe in | sharpe holdout" in pareto.data
        assert max(line.count("|") for line in pareto.data.splitlines()) <= 10

        # a run that crashes (SIGKILL) after committing generation 2, retried as the UI does
        params = json.loads(json.dumps(dep.parameters))
        params["name"] = "crashy"
        params["config"]["name"] = "crashy"
        params["config"]["algorithm"]["generations"] = 5
        with client(api) as c:
            crashy = c.create_flow_run_from_deployment(dep.id, parameters=params)
        crashed = final_state(api, crashy.id)
        assert crashed.state.is_crashed(), (crashed.state, log.read_text()[-3000:])
        assert _generations(db, "crashy") == [1, 2]
        assert integrity_problems(db) == []

        retry = subprocess.run(
            [str(Path(EVO).parent / "prefect"), "flow-run", "retry", str(crashy.id)],
            env=evo_env(tmp_path / "cli", api), capture_output=True, text=True, timeout=120,
        )
        assert retry.returncode == 0, retry.stdout + retry.stderr
        retried = final_state(api, crashy.id)
        assert retried.id == crashy.id and retried.state.is_completed(), (retried.state, log.read_text()[-3000:])
        assert retried.run_count >= 2
        gens = rows(db, "SELECT g.number, g.flow_run_id FROM generations g JOIN runs r ON r.id = g.run_id "
                         "WHERE r.name = 'crashy' ORDER BY g.number")
        assert gens == [(n, str(crashy.id)) for n in range(1, 6)]  # resumed after 2, same flow-run id throughout
        assert "resuming after committed generation 2" in log.read_text()

    assert _reference(tmp_path, params["config"], "crashy") == dump_run(db, "crashy")


def test_a_crash_the_runner_sees_heals_without_a_person(tmp_path, prefect_server, prefect_harness):
    api = prefect_server.api_url
    db = f"sqlite:///{tmp_path}/heal.db"
    config = small_config(name="healme", algorithm={"pop_size": 8, "generations": 4})
    cfg = write_config(tmp_path / "c.toml", config)
    name = f"heal-{uuid.uuid4().hex[:6]}"
    with serving(tmp_path, api, ["--name", name, "--config", str(cfg), "--db", db],
                 EVO_TEST_CRASH="between@2", EVO_TEST_CRASH_RUN="healme") as (proc, log, _):
        dep = deployment(api, name, proc, log)
        assert set(dep.tags) == {"evo", "evo-heal"}
        assert "automations:" in log.read_text()
        with client(api) as c:
            fr = c.create_flow_run_from_deployment(dep.id, parameters=dep.parameters)

        def completed():
            with client(api) as c:
                run = c.read_flow_run(fr.id)
            return run if run.state.is_completed() else None

        done = wait(completed, 180, "the crashed run to heal and complete")
        with client(api) as c:
            states = c.read_flow_run_states(fr.id)
    assert [s.type.value for s in states].count("CRASHED") == 1
    assert sum(s.message == HEAL_MESSAGE for s in states) == 1
    assert done.run_count >= 2 and _generations(db, "healme") == [1, 2, 3, 4]
    assert _reference(tmp_path, config.model_dump(mode="json"), "healme") == dump_run(db, "healme")


@pytest.mark.long
def test_sigkill_of_serve_and_its_children_heals(tmp_path, prefect_server, prefect_harness):
    """The machine-crash case: heartbeats stop, the run is Crashed within 2 minutes, its concurrency slot
    is free, nothing is left running, and the run completes once a serve process runs again."""
    api = prefect_server.api_url
    db = f"sqlite:///{tmp_path}/killed.db"
    config = small_config(name="killed", algorithm={"pop_size": 8, "generations": 6})
    cfg = write_config(tmp_path / "c.toml", config)
    name = f"kill-{uuid.uuid4().hex[:6]}"
    args = ["--name", name, "--config", str(cfg), "--db", db]
    hold = tmp_path / "hold.txt"
    with serving(tmp_path, api, args, EVO_TEST_HOLD="between@3", EVO_TEST_HOLD_FILE=str(hold)) as (proc, log, mark):
        dep = deployment(api, name, proc, log)
        with client(api) as c:
            fr = c.create_flow_run_from_deployment(dep.id, parameters=dep.parameters)
        wait(hold.exists, 180, "generation 3 to be committed")
        time.sleep(2)  # the run is Running and has sent heartbeats
        os.killpg(proc.pid, signal.SIGKILL)  # serve, its flow run, everything in its group
        killed_at, killed_utc = time.monotonic(), datetime.now(timezone.utc).isoformat()
        left = wait_until_gone(mark, 30)
        left = [(p, Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:200]) for p in left]

        def crashed():
            with client(api) as c:
                run = c.read_flow_run(fr.id)
            return run if run.state.type.value != "RUNNING" else None

        try:
            after = wait(crashed, 150, "the killed run to leave Running", every=1)
        except AssertionError as e:  # say when the server last heard the run, so a late automation is explained
            raise AssertionError(f"{e}; killed at {killed_utc}; {_events_of(api, fr.id)}") from None
        to_crashed = time.monotonic() - killed_at
    assert left == [], f"processes left behind: {left}"
    assert to_crashed <= 120, to_crashed
    with client(api) as c:
        states = c.read_flow_run_states(fr.id)
        limit = c.read_deployment(dep.id).global_concurrency_limit
    assert "CRASHED" in [s.type.value for s in states], [(s.type, s.message) for s in states]
    assert after.state.type.value in ("CRASHED", "SCHEDULED", "PENDING"), after.state
    assert limit.active_slots == 0, limit  # the slot is free for the next run

    assert _generations(db, "killed") == [1, 2, 3]
    with serving(tmp_path, api, args, log_name="serve2.log") as (proc, log, _):
        healed_from = time.monotonic()
        done = final_state(api, fr.id, timeout=180)
        to_healed = time.monotonic() - healed_from
        assert done.state.is_completed(), (done.state, log.read_text()[-3000:])
    print(f"\nkill -> Crashed: {to_crashed:.1f} s; new serve -> Completed: {to_healed:.1f} s; "
          f"processes left behind: {len(left)}")
    assert _generations(db, "killed") == list(range(1, 7))
    assert _reference(tmp_path, config.model_dump(mode="json"), "killed") == dump_run(db, "killed")


def test_a_run_that_crashes_every_time_stops(tmp_path, prefect_server):
    api = prefect_server.api_url
    cfg = write_config(tmp_path / "c.toml", small_config(name="always", algorithm={"pop_size": 6, "generations": 2}))
    name = f"always-{uuid.uuid4().hex[:6]}"
    with serving(tmp_path, api, ["--name", name, "--config", str(cfg), "--db", f"sqlite:///{tmp_path}/a.db"],
                 EVO_TEST_CRASH="start@0", EVO_TEST_CRASH_RUN="always", EVO_HEAL_ATTEMPTS="1") as (proc, log, _):
        dep = deployment(api, name, proc, log)
        with client(api) as c:
            fr = c.create_flow_run_from_deployment(dep.id, parameters=dep.parameters)

        def failed():
            with client(api) as c:
                run = c.read_flow_run(fr.id)
            return run if run.state.is_failed() else None

        run = wait(failed, 180, "the run that always crashes to stop")
        with client(api) as c:
            states = c.read_flow_run_states(fr.id)
        time.sleep(SILENT_SECONDS / 30)  # nothing reschedules it again
        with client(api) as c:
            assert c.read_flow_run(fr.id).state.is_failed()
    assert "EVO_HEAL_ATTEMPTS=1" in run.state.message or "EVO_HEAL_ATTEMPTS=1" in log.read_text()
    assert [s.type.value for s in states].count("CRASHED") == 2
    assert sum(s.message == HEAL_MESSAGE for s in states) == 2


@pytest.mark.long
def test_a_schedule_fires_and_grows_the_run(tmp_path, prefect_server):
    api = prefect_server.api_url
    db = f"sqlite:///{tmp_path}/sched.db"
    cfg = write_config(tmp_path / "c.toml", small_config(name="ticks", algorithm={"pop_size": 6, "generations": 1}))
    res = evo(["run", str(cfg), "--db", db], tmp_path, api_url=api)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _generations(db, "ticks") == [1]
    name = f"tick-{uuid.uuid4().hex[:6]}"
    with serving(tmp_path, api, ["--name", name, "--continue-run", "ticks", "--by", "2", "--interval", "15",
                                 "--db", db]) as (proc, log, _):
        dep = deployment(api, name, proc, log)
        assert [s.schedule.interval.total_seconds() for s in dep.schedules] == [15.0]
        started = time.monotonic()

        def completed():
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

            with client(api) as c:
                runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
            done = [r for r in runs if r.state.is_completed()]
            return done if len(done) >= 2 else None

        done = wait(completed, 240, "two scheduled ticks", every=1)
        elapsed = time.monotonic() - started
    assert all(r.auto_scheduled for r in done)
    gens = _generations(db, "ticks")
    assert len(gens) >= 5 and gens == list(range(1, len(gens) + 1))  # +2 per tick, no overlap, no gap
    assert errors_in(log) == [], errors_in(log)
    assert errors_in(prefect_server.log) == [], errors_in(prefect_server.log)
    print(f"\ntwo scheduled ticks in {elapsed:.0f} s")
