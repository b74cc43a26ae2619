"""evo.run.opening: opening a run (checks first, writes last), its identity and evaluation key, and its lease."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest

from evo.run import context, lease, opening
from evo.config import ConfigError
from tests.conftest import small_config


def test_evaluation_key_changes_with_everything_an_evaluation_depends_on():
    base = small_config()
    key = context.evaluation_key(base, "f" * 64, (0, 1000))
    assert key == context.evaluation_key(small_config(), "f" * 64, (0, 1000))  # deterministic
    different = [
        context.evaluation_key(base, "e" * 64, (0, 1000)),
        context.evaluation_key(base, "f" * 64, (0, 999)),
        context.evaluation_key(small_config(evaluation={"fees": 0.002}), "f" * 64, (0, 1000)),
        context.evaluation_key(small_config(evaluation={"slippage": 0.0}), "f" * 64, (0, 1000)),
        context.evaluation_key(small_config(evaluation={"init_cash": 5.0}), "f" * 64, (0, 1000)),
        context.evaluation_key(small_config(evaluation={"engine": "vectorbt"}), "f" * 64, (0, 1000)),
        context.evaluation_key(small_config(evaluation={"reducer": "median"}), "f" * 64, (0, 1000)),
    ]
    assert len({key, *different}) == len(different) + 1
    # resource settings never change what an evaluation computes
    assert context.evaluation_key(small_config(evaluation={"max_parallel": 7, "retries": 5}), "f" * 64, (0, 1000)) == key


def test_ohlc_stops_enter_the_evaluation_key_and_the_old_keys_stay_valid():
    """Stops from the bar's range are another fitness; close-only stops keep the key they had before the
    switch existed (the dict below is evaluation_key's before it), so stored evaluations still match."""
    import hashlib
    import json

    new = small_config(evaluation={"ohlc_stops": True})
    old = small_config(evaluation={"ohlc_stops": False})
    ev = old.evaluation
    before = {"data": "f" * 64, "window": [0, 1000], "freq": old.data.freq, "engine": ev.engine,
              "init_cash": ev.init_cash, "fees": ev.fees, "slippage": ev.slippage, "reducer": ev.reducer,
              "metrics_version": 1}
    assert context.evaluation_key(old, "f" * 64, (0, 1000)) == hashlib.sha256(
        json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert context.evaluation_key(new, "f" * 64, (0, 1000)) != context.evaluation_key(old, "f" * 64, (0, 1000))
    assert context.evaluation_key(small_config(evaluation={"reducer": "portfolio"}), "f" * 64, (0, 1000)) != \
        context.evaluation_key(new, "f" * 64, (0, 1000))


def test_a_run_stored_before_the_switches_resumes_as_it_started(tmp_path):
    """A run whose stored config lacks evaluation.ohlc_stops and strategy.trading (written before they
    existed) reopens with close-only stops and no trading genes: its genomes and fitness stay what they were."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/evo.db"
    ctx, store = opening.start(small_config(), database=url)
    assert ctx.config.evaluation.ohlc_stops is True
    config = dict(store.get_run("t").config)
    config["evaluation"] = {k: v for k, v in config["evaluation"].items() if k != "ohlc_stops"}
    config["strategy"] = {k: v for k, v in config["strategy"].items() if k != "trading"}
    store.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET config = :c WHERE name = 't'"), {"c": json.dumps(config)})
    engine.dispose()
    old, store = opening.reopen("t", database=url)
    store.dispose()
    assert old.config.evaluation.ohlc_stops is False and old.config.strategy.trading == []
    from evo.run import process

    assert process.space_for(old).n_var == process.space_for(ctx).n_var - 3  # no trading genes
    assert old.evaluation_key != ctx.evaluation_key


def test_worst_reducer_key_depends_on_the_directions():
    a = small_config(evaluation={"reducer": "worst"})
    b = small_config(evaluation={"reducer": "worst"}, objectives=[
        {"metric": "sharpe_ratio", "direction": "max"}, {"metric": "max_drawdown", "direction": "min"}])
    assert context.evaluation_key(a, "f" * 64, (0, 10)) != context.evaluation_key(b, "f" * 64, (0, 10))
    assert context.metric_directions(b) == {"n_trades": "max", "sharpe_ratio": "max", "max_drawdown": "min"}


def test_diff_names_the_dotted_fields():
    assert opening._diff({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 5, "d": 3}, "e": 0}) == ["b.c", "e"]


def test_windows_follow_the_holdout_or_an_explicit_window():
    from evo.market import get_market

    cfg = small_config(validation={"holdout": 0.25})
    market = get_market(cfg.data)
    train, holdout = context.run_windows(cfg, market)
    assert train == (0, 1125) and holdout == (1125, 1500)
    cfg = small_config(validation={"window": [200, 900]})
    assert context.run_windows(cfg, market) == ((200, 900), None)


def test_prepare_refuses_a_window_beyond_the_data():
    with pytest.raises(ConfigError, match="validation.window"):
        opening.prepare(small_config(validation={"window": [0, 5000]}))


def test_a_check_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/evo.db"
    assert opening.start(small_config(), database=url, check_only=True) is None
    assert not (tmp_path / "evo.db").exists()
    with pytest.raises(opening.RunError, match="no run named 'ghost'"):
        opening.reopen("ghost", database=url, check_only=True)
    assert not (tmp_path / "evo.db").exists()


def test_start_creates_then_reopens_and_refuses_another_config(tmp_path):
    url = f"sqlite:///{tmp_path}/evo.db"
    ctx, store = opening.start(small_config(), database=url)
    assert ctx.name == "t" and ctx.target == 3 and ctx.database == url
    again, _ = opening.start(small_config(algorithm={"pop_size": 12, "generations": 9}), database=url)
    assert again.run_id == ctx.run_id and again.target == 9  # more generations: the same run
    with pytest.raises(opening.RunError, match=r"different config \(differs in: evaluation.fees\)"):
        opening.start(small_config(evaluation={"fees": 0.01}), database=url)


def test_the_target_never_falls_below_what_is_committed(tmp_path):
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    url = f"sqlite:///{tmp_path}/evo.db"
    drive(small_config(algorithm={"pop_size": 6, "generations": 2}), None, None, url, None, False, Plain())
    with pytest.raises(opening.RunError, match="already committed 2 generations; --generations 1"):
        opening.reopen("t", database=url, generations=1)
    ctx, _ = opening.reopen("t", database=url, generations=2)
    assert ctx.target == 2


def test_a_secret_stays_out_of_the_context(tmp_path, monkeypatch):
    from evo.store import url as urls

    monkeypatch.setattr(urls, "_known", {})
    secret = f"sqlite:///{tmp_path}/evo.db?password=s3cr3t"
    ctx, _ = opening.start(small_config(), database=secret)
    assert "s3cr3t" not in repr(ctx) and "password=***" in ctx.database
    assert urls.real(ctx.database) == secret


def test_is_dead_knows_this_host_only():
    me = lease._this_process()
    assert not lease.is_dead(me + ":abc")
    assert lease.is_dead(f"{socket.gethostname()}:999999999:1:abc")  # no such process
    pid = os.getpid()
    assert lease.is_dead(f"{socket.gethostname()}:{pid}:1:abc")  # the pid was reused (other start time)
    assert not lease.is_dead("some-other-host:1:1:abc")  # only its lease expiry can tell
    assert not lease.is_dead("garbage")


class _LostStore:
    """A store whose database went away after the lease was taken."""

    url = "sqlite:///gone.db"

    def __init__(self):
        self.released = 0

    def lease_of(self, run_id):
        return None, None

    def acquire_lease(self, *a, **k):
        pass

    def renew_lease(self, *a, **k):
        return True

    def release_lease(self, *a, **k):
        from sqlalchemy.exc import OperationalError

        self.released += 1
        raise OperationalError("UPDATE runs", {}, Exception("disk I/O error"))

    def update_run(self, *a, **k):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("UPDATE runs", {}, Exception("disk I/O error"))


def test_a_lost_database_does_not_hide_the_error_that_stopped_the_run(tmp_path, caplog):
    from evo.flows.evolve import _mark_failed

    ctx, _ = opening.start(small_config(), database=f"sqlite:///{tmp_path}/evo.db")
    store = _LostStore()
    with caplog.at_level(logging.WARNING, logger="evo"):
        with pytest.raises(ValueError, match="the original failure"):
            with lease.hold(ctx, store) as owner:
                try:
                    raise ValueError("the original failure")
                except ValueError:
                    _mark_failed(store, ctx, owner, logging.getLogger("evo"))
                    raise
    assert store.released == 1
    assert "could not record its failure" in caplog.text and "could not release its lease" in caplog.text


def test_shown_status(tmp_path):
    url = f"sqlite:///{tmp_path}/evo.db"
    ctx, store = opening.start(small_config(), database=url)
    rec = store.get_run("t")
    assert lease.shown_status(store, rec) == "interrupted"  # running, but nobody holds it
    with lease.hold(ctx, store):
        assert lease.shown_status(store, store.get_run("t")) == "running"
    store.update_run(ctx.run_id, status="completed")
    assert lease.shown_status(store, store.get_run("t")) == "completed"


def test_no_function_takes_more_than_eight_positional_parameters():
    """Outside typer commands and the flows' and tasks' own parameters (whose names are their interface),
    arguments beyond 8 go by keyword or travel as records: numba kernels included."""
    import ast

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("evo", "flows", "tasks"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                decorators = {ast.unparse(d).split("(")[0] for d in node.decorator_list}
                if decorators & {"command", "flow", "task"}:
                    continue
                params = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(params) > 8:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({len(params)})")
    assert offenders == [], offenders
