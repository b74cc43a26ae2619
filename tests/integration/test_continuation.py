"""Scheduled continuation: extend a run by K generations per tick, and move it onto new market data."""

from __future__ import annotations

import pytest

from evo.config import SyntheticData
from evo.market.synthetic import synthetic_frames
from evo.run.opening import RunError
from tests.conftest import small_config
from tests.helpers import as_json, dump_run, integrity_problems, rows

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def market_file(tmp_path):
    df = synthetic_frames(SyntheticData(n_bars=1800, seed=11))["SYN"]
    path = tmp_path / "SYN.csv"
    df.iloc[:1500].to_csv(path, index_label="date")
    return path, df


def test_extend_by_continues_where_the_last_tick_stopped(tmp_path, db_url):
    from evo.flows.evolve import evolve

    cfg = small_config(algorithm={"pop_size": 8, "generations": 2})
    evolve(config=cfg, db_url=db_url)
    evolve(config=None, name="t", db_url=db_url, extend_by=2)  # a schedule tick
    evolve(config=None, name="t", db_url=db_url, extend_by=1)  # and the next one
    assert [r[0] for r in rows(db_url, "SELECT number FROM generations ORDER BY number")] == [1, 2, 3, 4, 5]
    assert rows(db_url, "SELECT generations_target, status FROM runs")[0] == (5, "completed")
    # the same as asking for 5 generations at once
    ref = f"sqlite:///{tmp_path}/ref.db"
    evolve(config=cfg, db_url=ref, generations=5)
    assert dump_run(ref, "t") == dump_run(db_url, "t")


def test_new_market_data_is_refused_unless_survivors_are_reevaluated(tmp_path, db_url, market_file):
    from evo.flows.evolve import evolve

    path, df = market_file
    cfg = small_config(data={"paths": [str(path)], "synthetic": None}, algorithm={"pop_size": 8, "generations": 2})
    evolve(config=cfg, db_url=db_url)
    old_fp, old_key = rows(db_url, "SELECT data_fingerprint, evaluation_key FROM runs")[0]

    df.iloc[:1800].to_csv(path, index_label="date")  # 300 new bars arrive
    with pytest.raises(RunError, match="data is now"):
        evolve(config=None, name="t", db_url=db_url, extend_by=2)
    assert len(rows(db_url, "SELECT number FROM generations")) == 2

    evolve(config=None, name="t", db_url=db_url, extend_by=2, reevaluate_on_new_data=True)
    gens = rows(db_url, "SELECT number, stats, evaluation_key FROM generations ORDER BY number")
    assert [g[0] for g in gens] == [1, 2, 3, 4, 5]  # one re-evaluation + 2 generations of evolution
    new_fp, new_key = rows(db_url, "SELECT data_fingerprint, evaluation_key FROM runs")[0]
    assert new_fp != old_fp and new_key != old_key
    assert [g[2] for g in gens] == [old_key, old_key, new_key, new_key, new_key]
    s3 = as_json(gens[2][1])
    assert s3["reevaluated"] is True and s3["data_fingerprint"] == new_fp
    # generation 3 evaluated exactly generation 2's survivors, on the new data
    surv2 = {r[0] for r in rows(db_url, "SELECT i.genome_hash FROM members m JOIN individuals i ON i.id = m.individual_id "
                                          "WHERE m.generation = 2 AND m.role = 'survivor'")}
    off3 = {r[0] for r in rows(db_url, "SELECT i.genome_hash FROM members m JOIN individuals i ON i.id = m.individual_id "
                                         "WHERE m.generation = 3 AND m.role = 'offspring'")}
    assert off3 == surv2
    n_new = rows(db_url, "SELECT COUNT(*) FROM evaluations e JOIN evaluation_keys k ON k.id = e.key_id "
                         "WHERE k.key = :k", k=new_key)[0][0]
    assert n_new >= len(surv2)
    assert integrity_problems(db_url) == []
    # a further tick on unchanged data just continues
    evolve(config=None, name="t", db_url=db_url, extend_by=1)
    assert len(rows(db_url, "SELECT number FROM generations")) == 6
