"""Which database each command uses: --db, then EVO_DATABASE_URL, then the config's storage.url, then
sqlite:///evo.db in the working folder; and the run states and targets the commands report."""

from __future__ import annotations

import json

import pytest
import tomli_w
from typer.testing import CliRunner

from tests.conftest import small_config
from tests.helpers import evo, scalar

pytestmark = pytest.mark.slow


def _config(tmp_path, storage: str | None = None, name: str = "t", generations: int = 2):
    d = small_config(name=name, algorithm={"pop_size": 6, "generations": generations}).model_dump(mode="json", exclude_none=True)
    if storage:
        d["storage"] = {"url": storage}
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(d))
    return path


def _runs(url: str) -> list[str]:
    from tests.helpers import rows

    return [r[0] for r in rows(url, "SELECT name FROM runs ORDER BY name")]


@pytest.mark.long
def test_run_and_resume_follow_the_precedence(tmp_path):
    storage = f"sqlite:///{tmp_path}/storage.db"
    env_db = f"sqlite:///{tmp_path}/env.db"
    cli_db = f"sqlite:///{tmp_path}/cli.db"
    # storage.url alone: the run is written there, reported from there, and no ./evo.db appears
    res = evo(["run", str(_config(tmp_path, storage, "a"))], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"stored in {storage} as run 'a'" in res.stdout and _runs(storage) == ["a"]
    # EVO_DATABASE_URL beats storage.url; --db beats both
    res = evo(["run", str(_config(tmp_path, storage, "b"))], tmp_path, EVO_DATABASE_URL=env_db)
    assert res.returncode == 0 and _runs(env_db) == ["b"], res.stdout + res.stderr
    res = evo(["run", str(_config(tmp_path, storage, "c")), "--db", cli_db], tmp_path, EVO_DATABASE_URL=env_db)
    assert res.returncode == 0 and _runs(cli_db) == ["c"], res.stdout + res.stderr
    assert _runs(storage) == ["a"] and _runs(env_db) == ["b"]
    assert not (tmp_path / "evo.db").exists()

    # resume: --db, then EVO_DATABASE_URL, then the default; never below what is committed
    res = evo(["resume", "b", "--generations", "1"], tmp_path, EVO_DATABASE_URL=env_db)
    assert res.returncode == 2 and "already committed 2 generations" in res.stderr, res.stderr
    res = evo(["resume", "b", "--generations", "3"], tmp_path, EVO_DATABASE_URL=env_db)
    assert res.returncode == 0 and "generation 3/3" in res.stdout, res.stdout + res.stderr
    assert scalar(env_db, "SELECT MAX(number) FROM generations") == 3


def test_walkforward_reads_storage_url(tmp_path):
    storage = f"sqlite:///{tmp_path}/storage.db"
    cfg = small_config(name="w", algorithm={"pop_size": 6, "generations": 1},
                       validation={"holdout": 0.3, "walk_forward": {"folds": 2}}).model_dump(mode="json", exclude_none=True)
    cfg["storage"] = {"url": storage}
    (tmp_path / "w.toml").write_text(tomli_w.dumps(cfg))
    res = evo(["walkforward", str(tmp_path / "w.toml")], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _runs(storage) == ["w", "w/wf1", "w/wf2"]
    assert not (tmp_path / "evo.db").exists()


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from evo.flows.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVO_DATABASE_URL", raising=False)

    def run(*args, env=None):
        r = CliRunner().invoke(app, list(args), env=env)
        return r.exit_code, r.stdout, r.stderr

    return run


def _seed_run(url: str, name: str) -> None:
    """A run row with no generation: enough for the read commands."""
    from evo.run import opening

    opening.start(small_config(name=name), database=url)


def test_read_commands_follow_the_precedence_and_never_create_a_database(cli, tmp_path):
    env_db, cli_db = f"sqlite:///{tmp_path}/env.db", f"sqlite:///{tmp_path}/cli.db"
    _seed_run(env_db, "in-env")
    _seed_run(cli_db, "in-cli")
    code, out, err = cli("runs", env={"EVO_DATABASE_URL": env_db})
    assert code == 0 and "in-env" in out and "in-cli" not in out, err
    code, out, err = cli("runs", "--db", cli_db, env={"EVO_DATABASE_URL": env_db})
    assert code == 0 and "in-cli" in out and "in-env" not in out, err
    code, out, err = cli("show", "in-env", "--json", env={"EVO_DATABASE_URL": env_db})
    assert code == 0 and json.loads(out)["name"] == "in-env", err
    # the default is ./evo.db, which a read never creates
    for args in (["runs"], ["show", "x"], ["report", "x"]):
        code, out, err = cli(*args)
        assert code == 2 and "no evo database at sqlite:///evo.db" in err, (args, err)
    assert not (tmp_path / "evo.db").exists()


def test_a_run_whose_process_is_gone_shows_as_interrupted(cli, tmp_path):
    from evo.store import Store

    url = f"sqlite:///{tmp_path}/evo.db"
    _seed_run(url, "alive")
    _seed_run(url, "dead")
    _seed_run(url, "expired")
    store = Store(url)
    from evo.run.lease import _this_process

    ids = {r.name: r.id for r, _ in store.list_runs()}
    store.acquire_lease(ids["alive"], f"{_this_process()}:x", 600)  # this very process: alive
    store.acquire_lease(ids["dead"], "localhost-nope:1:1:x", 600)  # another host, lease valid
    store.acquire_lease(ids["expired"], "other-host:1:1:x", 0.01)
    import time

    time.sleep(0.05)
    code, out, err = cli("runs", "--db", url)
    status = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines() if "│" in line and "name" not in line}
    assert status == {"alive": "running", "dead": "running", "expired": "interrupted"}, out
    # a holder that died on this host: interrupted at once, without waiting for its lease
    import socket

    store.acquire_lease(ids["dead"], f"{socket.gethostname()}:999999:1:x", 600, stale_owner="localhost-nope:1:1:x")
    code, out, err = cli("show", "dead", "--db", url, "--json")
    assert json.loads(out)["status"] == "interrupted"
    store.dispose()
