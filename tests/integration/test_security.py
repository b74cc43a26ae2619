"""No pickles, hostile names are only ever bound parameters, passwords never printed or stored."""

from __future__ import annotations

import ast
import json

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import fresh_postgres_database, small_config
from tests.helpers import ROOT, evo, write_config

HOSTILE = [
    "x'; DROP TABLE runs; --",
    'Robert"); DELETE FROM generations; --',
    "run%_' OR '1'='1",
    "ünïcødé ✓ 名前",
]


def test_no_pickle_anywhere_in_the_code():
    """Nothing that could load a pickle is imported by the project's own code."""
    banned = {"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    found = []
    for folder in ("evo", "tasks", "flows", "migrations"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for n in names:
                    if n.split(".")[0] in banned:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {n}")
    assert found == []


def test_prefect_persists_no_results():
    """Prefect would serialise persisted results with cloudpickle; the tasks and the flow persist none."""
    from evo import tasks
    from evo.flows.evolve import evolve

    for t in (tasks.vary, tasks.evaluate, tasks.select, tasks.persist):
        assert t.persist_result is False, t.name
    assert evolve.persist_result is False


@pytest.mark.usefixtures("prefect_harness")
def test_hostile_run_names_are_stored_and_found_verbatim(db_url):
    from evo.view import summary
    from evo.flows.evolve import evolve

    for name in HOSTILE:
        evolve(config=small_config(algorithm={"pop_size": 6, "generations": 1}), name=name, db_url=db_url)
    eng = create_engine(db_url)
    with eng.connect() as c:
        names = {r[0] for r in c.execute(text("SELECT name FROM runs"))}
        tables = c.execute(text("SELECT COUNT(*) FROM generations")).scalar_one()
    eng.dispose()
    assert names == set(HOSTILE)
    assert tables == len(HOSTILE)
    for name in HOSTILE:
        assert summary.summary(name, db_url)["name"] == name


@pytest.mark.parametrize("url", ["postgresql://u:pw@h/db", "postgresql://u@h/db?password=pw",
                                 "postgresql://u@h/db?sslpassword=pw"])
def test_a_password_in_storage_url_or_flow_parameter_is_refused(url):
    from evo.config import ConfigError
    from evo.flows.evolve import database_for
    from evo.run.preflight import check

    with pytest.raises(ConfigError, match=r"storage\.url.*password") as ei:
        check(small_config(storage={"url": url}))
    assert "pw" not in str(ei.value).replace("password", "")
    with pytest.raises(ValueError, match="db_url must not contain a password"):
        database_for(url, None)


@pytest.mark.postgres
def test_password_never_reaches_output_prefect_or_the_database(tmp_path, prefect_server):
    """Trust auth ignores the password, so a URL with one still connects."""
    secret = "s3cr3t-Pw-42"
    with fresh_postgres_database() as url:
        from sqlalchemy.engine import make_url

        with_pw = make_url(url).set(password=secret).render_as_string(hide_password=False)
        cfg = write_config(tmp_path / "c.toml", small_config(algorithm={"pop_size": 6, "generations": 2}))
        res = evo(["run", str(cfg), "--db", with_pw], tmp_path, api_url=prefect_server.api_url)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert secret not in out and ":***@" in out  # the URL is shown, masked

        show = evo(["show", "t", "--db", with_pw, "--json"], tmp_path)
        assert show.returncode == 0 and secret not in show.stdout + show.stderr
        assert json.loads(show.stdout)["database"].count("***") == 1

        eng = create_engine(url)
        with eng.connect() as c:
            stored = json.dumps([list(r) for r in c.execute(text("SELECT config, lease_owner FROM runs"))], default=str)
            stats = json.dumps([r[0] for r in c.execute(text("SELECT stats FROM generations"))])
        eng.dispose()
        assert secret not in stored and secret not in stats

    # what Prefect recorded: flow run parameters and every log line
    import asyncio

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort, LogSort

    async def recorded():
        async with PrefectClient(prefect_server.api_url) as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["evolve t"])), sort=FlowRunSort.ID_DESC, limit=50
            )
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id for r in runs])),
                sort=LogSort.TIMESTAMP_ASC, limit=200, offset=0,
            )
            return runs, logs

    runs, logs = asyncio.run(recorded())
    assert runs, "the flow run reached the Prefect server"
    assert all(secret not in json.dumps(r.parameters, default=str) for r in runs)
    assert logs and all(secret not in lg.message for lg in logs)
