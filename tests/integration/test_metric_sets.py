"""Metrics stored by name: an evaluation stored before a metric existed is computed again, never read as
NaN, and a database of the schema before (a column per metric) resumes and extends to the same result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from evo.config.metrics import METRICS
from tests.conftest import small_config
from tests.helpers import dump_run, integrity_problems

OLD_METRICS = ("total_return", "sharpe_ratio", "sortino_ratio", "max_drawdown", "n_trades", "win_rate", "exposure")


def _drive(cfg, url: str, generations: int | None = None, name: str | None = None) -> None:
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    drive(cfg, name, generations, url, None, False, Plain())


def _full_set_rows(url: str) -> tuple[int, int]:
    """(evaluations, of which under the set of every metric of the table)."""
    import json

    eng = create_engine(url)
    with eng.connect() as c:
        full = c.execute(text("SELECT id FROM metric_sets WHERE names = :n"), {"n": json.dumps(list(METRICS))}).scalar()
        n = c.execute(text("SELECT COUNT(*) FROM evaluations")).scalar_one()
        k = c.execute(text("SELECT COUNT(*) FROM evaluations WHERE metric_set_id = :s"), {"s": full}).scalar_one()
    eng.dispose()
    return n, k


def test_an_evaluation_lacking_a_current_metric_is_computed_again_and_replaced(tmp_path):
    from evo.store import Store

    cfg = small_config(algorithm={"pop_size": 10, "generations": 2})
    url = f"sqlite:///{tmp_path}/evo.db"
    _drive(cfg, url)
    ref = dump_run(url, "t")
    # every stored evaluation as if it predated the table's last metric: a set without it, blobs without its value
    store = Store(url)
    lacking = store.metric_set_id(METRICS[:-1])
    store.dispose()
    eng = create_engine(url)
    with eng.begin() as c:
        for r in c.execute(text("SELECT id, metrics FROM evaluations")).mappings().all():
            c.execute(text("UPDATE evaluations SET metrics = :m, metric_set_id = :s WHERE id = :i"),
                      {"m": bytes(r["metrics"])[: 8 * (len(METRICS) - 1)], "s": lacking, "i": r["id"]})
    eng.dispose()
    n_before = _full_set_rows(url)
    assert n_before[1] == 0

    _drive(cfg, url, name="again")  # the same genomes: all in the store, none with every metric
    store = Store(url)
    stats = store.generation_stats(store.get_run("again").id)
    store.dispose()
    assert [s.evaluated for s in stats] == [s.n_offspring for s in stats] and all(s.cache_hits == 0 for s in stats)
    again = dump_run(url, "again")
    assert again["generations"] == ref["generations"]
    # replaced, not added: every evaluation holds the whole table again, with the values it had
    assert _full_set_rows(url) == (n_before[0], n_before[0])
    assert dump_run(url, "t") == ref
    assert integrity_problems(url) == []


def test_a_run_stored_in_the_schema_before_resumes_and_extends_to_the_same_result(tmp_path):
    """Two generations stored, the database taken back to revision 0005 (a column per metric, the key on
    every row), then resumed to four: the same checkpoints and members as four generations in one go."""
    from alembic import command
    from alembic.config import Config

    from evo import migrations

    cfg = small_config(algorithm={"pop_size": 10, "generations": 4})
    ref_url, url = f"sqlite:///{tmp_path}/ref.db", f"sqlite:///{tmp_path}/old.db"
    _drive(cfg, ref_url)
    _drive(cfg, url, generations=2)
    alembic = Config()
    alembic.set_main_option("script_location", str(Path(migrations.__file__).parent))
    eng = create_engine(url)
    with eng.begin() as c:
        alembic.attributes["connection"] = c
        command.downgrade(alembic, "0005")
    with eng.connect() as c:
        assert c.execute(text("SELECT COUNT(sharpe_ratio) FROM evaluations")).scalar_one() > 0
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0005"
    eng.dispose()

    _drive(cfg, url)  # migrates, resumes after generation 2
    ref, got = dump_run(ref_url, "t"), dump_run(url, "t")
    assert got["generations"] == ref["generations"] and len(got["generations"]) == 4

    def old_metrics(dump):  # the members with the metrics both schemas hold
        return [(*m[:-1], tuple(p for p in m[-1] if p[0] in OLD_METRICS)) for m in dump["members"]]

    assert old_metrics(got) == old_metrics(ref)
    assert all(len(m[-1]) == len(METRICS) for m in ref["members"] if m[1] == "offspring")
    assert integrity_problems(url) == []
    # infinite metrics (a Sortino ratio without a losing bar) went through the column schema and back
    assert np.isinf([v for m in got["members"] for _, v in m[-1] if v is not None]).any()
