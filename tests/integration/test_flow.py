"""The evolve flow under a temporary Prefect API: rows in SQLite, resume, refusal, cache."""

from __future__ import annotations

import pytest

from evo.run.opening import RunError
from tests.conftest import small_config
from tests.helpers import as_json, dump_run, integrity_problems, rows

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_flow_commits_every_generation_with_its_rows(db_url):
    from evo.flows.evolve import evolve

    cfg = small_config()
    out = evolve(config=cfg, db_url=db_url)
    assert out["name"] == "t" and out["generations_done"] == 3

    (run_id, status, target, fp), = rows(db_url, "SELECT id, status, generations_target, data_fingerprint FROM runs")
    assert status == "completed" and target == 3 and len(fp) == 64
    gens = rows(db_url, "SELECT number, stats, flow_run_id, checkpoint FROM generations ORDER BY number")
    assert [g[0] for g in gens] == [1, 2, 3]
    assert len({g[2] for g in gens}) == 1 and gens[0][2]  # one flow run produced them, and it is recorded

    n_eval = 0
    for number, stats, _, ck in gens:
        stats, ck = as_json(stats), as_json(ck)
        off = rows(db_url, "SELECT COUNT(*) FROM members WHERE generation = :g AND role = 'offspring'", g=number)[0][0]
        surv = rows(db_url, "SELECT COUNT(*) FROM members WHERE generation = :g AND role = 'survivor'", g=number)[0][0]
        assert off == stats["n_offspring"] == stats["evaluated"] + stats["cache_hits"]
        assert surv == len(ck["pop"]["X"]) == (off if number == 1 else 12)
        n_eval += off
        assert ck["n_gen"] == number and ck["n_eval"] == n_eval
        assert stats["hypervolume"] >= 0 and set(stats["best"]) == {"sharpe_ratio", "max_drawdown"}
        assert sum(stats["chunks"]["sizes"]) == stats["evaluated"]
    # every individual was evaluated exactly once under the run's key
    n_ind = rows(db_url, "SELECT COUNT(*) FROM individuals")[0][0]
    n_evals = rows(db_url, "SELECT COUNT(DISTINCT individual_id) FROM evaluations")[0][0]
    assert n_ind == n_evals == sum(as_json(g[1])["evaluated"] for g in gens)
    assert integrity_problems(db_url) == []
    # survivors with rank 0 are non-dominated among the feasible survivors
    front = rows(db_url, "SELECT objectives FROM members WHERE generation = 3 AND role = 'survivor' AND rank = 0")
    pts = [as_json(f[0]) for f in front]
    assert pts
    for a in pts:
        assert not any(b[0] >= a[0] and b[1] >= a[1] and b != a for b in pts)


def test_rerunning_a_finished_run_adds_nothing_and_extending_continues(db_url):
    from evo.flows.evolve import evolve

    cfg = small_config(algorithm={"pop_size": 8, "generations": 2})
    evolve(config=cfg, db_url=db_url)
    before = dump_run(db_url, "t")
    evolve(config=cfg, db_url=db_url)
    assert dump_run(db_url, "t") == before
    evolve(config=None, name="t", db_url=db_url, generations=3)
    after = dump_run(db_url, "t")
    assert [g for g, _ in after["generations"]] == [1, 2, 3]
    assert after["generations"][:2] == before["generations"]


def test_resumed_run_equals_uninterrupted_run(tmp_path, db_url):
    from evo.flows.evolve import evolve

    cfg = small_config(algorithm={"pop_size": 10, "generations": 4})
    full, part = f"sqlite:///{tmp_path}/full.db", db_url
    evolve(config=cfg, db_url=full)
    evolve(config=cfg, db_url=part, generations=2)
    evolve(config=None, name="t", db_url=part)  # target stays 2: nothing to do
    assert len(dump_run(part, "t")["generations"]) == 2
    evolve(config=cfg, db_url=part, generations=4)
    a, b = dump_run(full, "t"), dump_run(part, "t")
    assert len(a["generations"]) == 4
    assert a == b


def test_same_name_with_a_different_config_is_refused(db_url):
    from evo.flows.evolve import evolve

    evolve(config=small_config(algorithm={"pop_size": 8, "generations": 1}), db_url=db_url)
    before = dump_run(db_url, "t")
    with pytest.raises(RunError, match=r"different config.*evaluation\.fees"):
        evolve(config=small_config(algorithm={"pop_size": 8, "generations": 1}, evaluation={"fees": 0.01}), db_url=db_url)
    assert dump_run(db_url, "t") == before


def test_second_run_on_same_data_reuses_evaluations(db_url):
    from evo.flows.evolve import evolve

    cfg = small_config(algorithm={"pop_size": 8, "generations": 2})
    evolve(config=cfg, db_url=db_url)
    n_evals = rows(db_url, "SELECT COUNT(*) FROM evaluations")[0][0]
    evolve(config=cfg, name="again", db_url=db_url)  # same seed: the same genomes, all cached
    assert rows(db_url, "SELECT COUNT(*) FROM evaluations")[0][0] == n_evals
    stats = [as_json(s[0]) for s in rows(
        db_url, "SELECT g.stats FROM generations g JOIN runs r ON r.id = g.run_id WHERE r.name = 'again' ORDER BY g.number")]
    assert [s["evaluated"] for s in stats] == [0, 0]
    assert [s["cache_hits"] for s in stats] == [s["n_offspring"] for s in stats]
    a, b = dump_run(db_url, "t"), dump_run(db_url, "again")
    assert a["generations"] == b["generations"]
