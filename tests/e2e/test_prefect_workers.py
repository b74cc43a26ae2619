"""Two Prefect workers on two hosts (network namespaces, tests/hosts.py) polling the shipped work pool of one
Prefect server, with one PostgreSQL evo database: the README's prefect.yaml path (`prefect work-pool create`,
`prefect deploy --all`, `evo heal`, `prefect worker start`) and its "Scaling out" recipe.

- Two flow runs of two experiments run at once, one on each host, and each equals the same experiment run
  alone with `evo run`, value for value.
- Two flow runs of one evo run, on the two hosts, reach its lease at the same moment: one advances it, the
  other is refused in one line naming the holder on the other host, and the run equals one uninterrupted run.

Where a flow run ran is proven by the processes themselves: each writes its pid when it reaches the run's
lease (EVO_TEST_BARRIER_DIR), and `ip netns identify` names the namespace of that pid; both wait there until
the test has seen both, so the two runs overlap by construction.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database, small_config
from tests.helpers import EVO, MARK, ROOT, dump_run, evo_env, rows, wait_until_gone, write_config
from tests.hosts import Hosts
from tests.prefect_server import PrefectServer, client, errors_in, final_state, wait

pytestmark = [pytest.mark.slow, pytest.mark.long]

PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "evo-process"  # prefect.yaml's
SECRET = "pw-" + uuid.uuid4().hex[:8]


def _scaling_out() -> tuple[list[str], str]:
    """The README's worker command and its deployment for one more experiment, from "Scaling out"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Scaling out"):]
    section = section[:section.index("\n### ")]
    worker = next(ln for ln in section.splitlines() if ln.startswith("prefect worker start"))
    start = section.index("```yaml\n") + len("```yaml\n")
    return shlex.split(worker), section[start:section.index("```", start)]


def _deployed_as_shipped(api: str) -> None:
    """prefect.yaml's deployments, and the README's one more, as the README describes them."""
    with client(api) as c:
        evolve, cont, other = (c.read_deployment_by_name(f"evolve/{n}") for n in ("evolve", "continue-default", "other"))
    assert evolve.work_pool_name == other.work_pool_name == POOL
    assert evolve.parameters == {"name": "default"} and other.parameters == {"name": "other"}
    assert cont.parameters == {"name": "default", "extend_by": 5, "reevaluate_on_new_data": True}
    assert [s.schedule.cron for s in cont.schedules] == ["0 * * * *"] and not cont.schedules[0].active
    for d in (evolve, cont, other):
        assert d.global_concurrency_limit.limit == 1 and set(d.tags) == {"evo", "evo-heal"}
        assert d.job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"


def _configs() -> dict:
    """Two experiments: other seeds, other population sizes; tiny, on synthetic data."""
    return {"a": small_config(name="a", seed=5, algorithm={"pop_size": 8, "generations": 2}),
            "b": small_config(name="b", seed=9, algorithm={"pop_size": 10, "generations": 2})}


def _cli(argv: list[str], env: dict, timeout: float = 180) -> str:
    res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{argv}: {res.stdout[-2000:]}{res.stderr[-2000:]}"
    return res.stdout


def _at_the_lease(folder: Path, n: int) -> list[int] | None:
    """The pids of the flow-run processes waiting at the lease barrier, once there are n."""
    pids = [int(p.name.rsplit("-", 1)[1]) for p in folder.glob("ready-lease-*")]
    return sorted(pids) if len(pids) >= n else None


def _logs(api: str, flow_run_ids) -> str:
    """Every log line the flow runs sent to the Prefect API."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    found = LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(flow_run_ids)))
    out: list[str] = []
    with client(api) as c:
        while page := c.read_logs(found, limit=200, offset=len(out)):
            out += [log.message for log in page]
    return "\n".join(out)


def _namespace(pid: int) -> str:
    return subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout.strip()


def _race(api: str, barrier: Path, hosts: Hosts, runs: list[tuple[str, dict]], logs: list[Path]) -> dict:
    """Start a flow run of each (deployment, parameters); hold them all at the lease until each is in its own
    namespace, then let them go. Returns {flow run id: namespace}."""
    for p in barrier.iterdir():
        p.unlink()
    with client(api) as c:
        ids = [c.create_flow_run_from_deployment(c.read_deployment_by_name(dep).id, parameters=params).id
               for dep, params in runs]

    def at_the_lease():
        with client(api) as c:  # a flow run that ended before the lease: say how, at once
            ended = [r for r in map(c.read_flow_run, ids) if r.state and r.state.is_final()]
        assert not ended, [(r.name, r.state.type, r.state.message) for r in ended]
        return _at_the_lease(barrier, len(runs))

    try:
        pids = wait(at_the_lease, 240, "the flow runs at the lease", every=0.5)
    except AssertionError as e:  # with what the workers said
        raise AssertionError(f"{e}\nworker logs: {[log.read_text()[-3000:] for log in logs]}") from None
    assert len(pids) == len(runs), pids

    def located():
        with client(api) as c:
            infra = {fid: c.read_flow_run(fid).infrastructure_pid for fid in ids}
        return infra if all(infra.values()) else None

    infra = wait(located, 60, "the workers to record their flow runs' processes")
    where = {fid: _namespace(int(pid)) for fid, pid in infra.items()}
    assert sorted(int(p) for p in infra.values()) == pids  # the processes at the lease are the flow runs
    assert sorted(where.values()) == sorted(hosts.names), where  # one per host
    (barrier / "go").write_text("go")
    return where


def test_two_prefect_workers_on_two_hosts_run_two_experiments_at_once_and_never_one_run_twice(
        tmp_path, can_make_hosts):
    from sqlalchemy.engine import make_url

    started = time.monotonic()
    cfgs = _configs()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    mark = uuid.uuid4().hex
    with contextlib.ExitStack() as stack:
        evo_db = stack.enter_context(fresh_postgres_database())
        prefect_db = make_url(stack.enter_context(fresh_postgres_database())).set(drivername="postgresql+asyncpg")
        hosts = stack.enter_context(Hosts(2))
        # the server listens on the bridge, where the hosts reach it; PostgreSQL only on this namespace's
        # loopback: the hosts reach the evo database through a forwarder on the bridge
        server = PrefectServer(tmp_path / "server", prefect_db.render_as_string(hide_password=False),
                               host=hosts.gateway).start()
        stack.callback(server.stop)
        api = server.api_url
        pg = make_url(evo_db)
        gateway, port = stack.enter_context(hosts.reachable(pg.host, pg.port or 5432))
        # with a password, as a user's would be (this server trusts local connections and ignores it): it
        # must show nowhere, neither in a flow run's parameters nor in what it logs
        evo_db_of_hosts = pg.set(host=gateway, port=port, password=SECRET).render_as_string(hide_password=False)

        # the same experiments alone, with `evo run`, while the hosts start: b, and a with 4 generations (its
        # first 2 are what a 2-generation run of a commits: a run's target changes none of its generations)
        refs = {}
        for name, gens in (("b", "2"), ("a", "4")):
            argv = [EVO, "run", str(write_config(tmp_path / f"{name}.toml", cfgs[name])),
                    "--db", f"sqlite:///{tmp_path}/ref-{name}.db", "--generations", gens]
            with (tmp_path / f"ref-{name}.log").open("w") as out:
                refs[name] = subprocess.Popen(argv, cwd=tmp_path, env=evo_env(tmp_path / "ref", api), stdout=out,
                                              stderr=subprocess.STDOUT)
            stack.callback(refs[name].kill)

        # the README's way: the shipped pool, and prefect.yaml's deployments plus the README's one more
        worker, deployment = _scaling_out()
        project = tmp_path / "prefect.yaml"
        project.write_text((ROOT / "prefect.yaml").read_text() + deployment)
        env = evo_env(tmp_path, api)
        heal = subprocess.Popen([EVO, "heal"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        stack.callback(heal.kill)
        _cli([PREFECT, "work-pool", "create", POOL, "--type", "process"], env)
        logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
        for i in range(2):  # the workers start while the deployments are made
            (tmp_path / f"host-{i}").mkdir()
            wenv = evo_env(tmp_path / f"host-{i}", api, EVO_DATABASE_URL=evo_db_of_hosts,
                           EVO_TEST_BARRIER_DIR=str(barrier), PREFECT_WORKER_QUERY_SECONDS="1", **{MARK: mark})
            hosts.run(i, [PREFECT, *worker[1:]], env=wenv, log=logs[i], hostname=f"host-{i}")
        _cli([PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", str(project)], env)
        out = heal.communicate(timeout=180)[0]
        assert heal.returncode == 0 and "evo: resume crashed runs" in out, out
        _deployed_as_shipped(api)

        # 1. two experiments at once, one per host
        t1 = time.monotonic()
        params = {n: {"name": n, "config": c.model_dump(mode="json")} for n, c in cfgs.items()}
        where = _race(api, barrier, hosts, [("evolve/evolve", params["a"]), ("evolve/other", params["b"])], logs)
        runs = {fid: final_state(api, fid, timeout=240) for fid in where}
        both = time.monotonic() - t1
        assert all(r.state.is_completed() for r in runs.values()), [(r.name, r.state) for r in runs.values()]
        a_run, b_run = sorted(runs.values(), key=lambda r: r.name)
        assert a_run.start_time < b_run.end_time and b_run.start_time < a_run.end_time  # overlapping
        for fid, ns in where.items():  # each worker's log names the flow run it started
            assert f"submitting flow run '{fid}'" in logs[hosts.names.index(ns)].read_text()
        # the database reached the flow runs through the workers' environment, never a parameter
        assert all("postgresql" not in repr(r.parameters) and "db_url" not in r.parameters for r in runs.values())
        ids = list(runs)
        after_two = {n: dump_run(evo_db, n) for n in "ab"}

        # 2. one run, two flow runs on two hosts at the same moment: the lease lets one advance it
        t2 = time.monotonic()
        extend = {"name": "a", "generations": 4}
        where = _race(api, barrier, hosts, [("evolve/evolve", extend), ("evolve/other", extend)], logs)
        runs = {fid: final_state(api, fid, timeout=240) for fid in where}
        race = time.monotonic() - t2
        done = [fid for fid, r in runs.items() if r.state.is_completed()]
        refused = [r for r in runs.values() if r.state.is_failed()]
        assert len(done) == 1 and len(refused) == 1, [(r.name, r.state) for r in runs.values()]
        (loser,) = refused
        winner_host = f"host-{hosts.names.index(where[done[0]])}"
        assert f"run 'a' is busy: another process ({winner_host}:" in loser.state.message, loser.state.message
        after_race = dump_run(evo_db, "a")
        by = rows(evo_db, "SELECT g.number, g.flow_run_id FROM generations g JOIN runs r ON r.id = g.run_id "
                          "WHERE r.name = 'a' ORDER BY g.number")
        assert [(n, f) for n, f in by if n > 2] == [(3, str(done[0])), (4, str(done[0]))]

        for name, p in refs.items():
            assert p.wait(timeout=240) == 0, (tmp_path / f"ref-{name}.log").read_text()[-3000:]
        logged = _logs(api, [*ids, *where])
    assert wait_until_gone(mark, 30) == []  # the workers and their flow runs
    assert errors_in(server.log) == [], errors_in(server.log)
    assert "run 'a': resuming after committed generation 2 of 4" in logged  # the winner's own log
    assert SECRET not in logged and not any(SECRET in log.read_text() for log in logs)
    alone = {n: dump_run(f"sqlite:///{tmp_path}/ref-{n}.db", n) for n in "ab"}
    assert after_two["b"] == alone["b"]
    assert after_two["a"] == {"generations": alone["a"]["generations"][:2],
                              "members": [m for m in alone["a"]["members"] if m[0] <= 2]}
    assert after_race == alone["a"]
    print(f"\ntwo experiments on two hosts: {both:.1f} s; the race for one run: {race:.1f} s; "
          f"the whole test: {time.monotonic() - started:.1f} s")
