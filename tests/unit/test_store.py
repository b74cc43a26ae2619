"""Unit tests for evo.store, on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from evo.config.errors import EvoError, UserError
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from evo.search.objectives import METRICS
from typing import NamedTuple

import numpy as np

from evo.search.population import Population
from evo.store import GenerationStats, Store, StoreError
from evo.store.models import generations, members

TABLES = {"runs", "generations", "individuals", "evaluations", "members", "evaluation_keys", "metric_sets"}
HEAD = "0009"
DATA_TABLES = ("generations", "individuals", "evaluations", "members")
FAMILY = "sma_cross"
KEY = "evalkey-1"


# -- fixtures / helpers ----------------------------------------------------------------------------
@pytest.fixture
def url(db_url):
    return db_url


@pytest.fixture
def store(url):
    s = Store(url)
    s.migrate()
    yield s
    s.dispose()


def make_run(store: Store, name: str = "run-a", evaluation_key: str = KEY, **over):
    kw = dict(
        name=name,
        config={"population": 8, "objectives": [{"metric": "sharpe_ratio", "direction": "max"}]},
        config_hash="c" * 64,
        family=FAMILY,
        data_fingerprint="d" * 64,
        evaluation_key=evaluation_key,
        seed=2**40 + 7,
        generations_target=12,
    )
    kw.update(over)
    return store.create_run(**kw)


class OffspringRow(NamedTuple):
    """One offspring, as the tests write them; `persist` hands the store its columns."""

    genome_hash: str
    genes: dict
    metrics: list
    per_asset: list | None
    objectives: list
    new_evaluation: bool


class SurvivorRow(NamedTuple):
    genome_hash: str
    rank: int | None
    crowding: float | None
    objectives: list


def columns(offspring, survivors) -> dict:
    """The test's rows as what persist_generation takes: offspring and survivors as populations."""
    def matrix(rows, width):
        return np.array(rows, dtype=np.float64).reshape(-1, width)

    k = len((offspring or survivors)[0].objectives) if (offspring or survivors) else 0
    off = Population.of(
        np.zeros((len(offspring), 1)), hash=[o.genome_hash for o in offspring],
        metrics=matrix([o.metrics for o in offspring], len(METRICS)),
        per_asset=[None if o.per_asset is None else np.asarray(o.per_asset, dtype=np.float64) for o in offspring],
        F=matrix([o.objectives for o in offspring], k),
        evaluated=np.array([o.new_evaluation for o in offspring], dtype=bool),
    )
    surv = Population.of(
        np.zeros((len(survivors), 1)), hash=[s.genome_hash for s in survivors],
        rank=np.array([np.nan if s.rank is None else s.rank for s in survivors], dtype=np.float64),
        crowding=np.array([np.nan if s.crowding is None else s.crowding for s in survivors], dtype=np.float64),
        F=matrix([s.objectives for s in survivors], k),
    )
    return {"offspring": off, "survivors": surv, "genes_json": [json.dumps(o.genes) for o in offspring],
            "objective_signs": np.ones(k)}


def metrics_row(base: float, nan_at: int | None = None) -> list[float]:
    m = [base + i / 10 for i in range(len(METRICS))]
    if nan_at is not None:
        m[nan_at] = math.nan
    return m


OFFSPRING = [
    OffspringRow(
        genome_hash="h1",
        genes={"fast": 5, "slow": 20},
        metrics=metrics_row(1.0, nan_at=METRICS.index("sharpe_ratio")),
        per_asset=None,
        objectives=[1.5, -0.25],
        new_evaluation=True,
    ),
    OffspringRow(
        genome_hash="h2",
        genes={"fast": 7, "slow": 30},
        metrics=metrics_row(2.0),
        per_asset=None,
        objectives=[2.5, -0.5],
        new_evaluation=True,
    ),
    OffspringRow(
        genome_hash="h3",
        genes={"fast": 9, "slow": 40},
        metrics=metrics_row(3.0),
        per_asset=None,
        objectives=[3.5, -0.75],
        new_evaluation=True,
    ),
]
SURVIVORS = [
    SurvivorRow(genome_hash="h1", rank=None, crowding=None, objectives=[1.5, -0.25]),
    SurvivorRow(genome_hash="h3", rank=0, crowding=float("inf"), objectives=[3.5, -0.75]),
]
CHECKPOINT = {"generation": 1, "rng": [1, 2, 3], "pop": ["h1", "h3"]}
STATS = GenerationStats(generation=1, hypervolume=0.42, best={"sharpe_ratio": 2.5}, n_offspring=3, evaluated=3)


def persist(store: Store, run_id: int, number: int = 1, **over):
    kw = dict(
        run_id=run_id,
        number=number,
        family=FAMILY,
        evaluation_key=KEY,
        offspring=OFFSPRING,
        survivors=SURVIVORS,
        checkpoint=CHECKPOINT,
        stats=STATS,
    )
    kw.update(over)
    kw.update(columns(kw.pop("offspring"), kw.pop("survivors")))
    return store.persist_generation(**kw)


def raise_at(stage: str):
    def hook(s: str) -> None:
        if s == stage:
            raise RuntimeError(f"injected persist failure after {s}")

    return hook


def data_counts(store: Store) -> dict[str, int]:
    c = store.count_rows()
    return {t: c[t] for t in DATA_TABLES}


def table_names(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


# -- schema / migrations ---------------------------------------------------------------------------
def test_migrate_creates_all_tables_and_revision(url):
    s = Store(url)
    try:
        assert s.schema_revision() is None
        assert not (TABLES & table_names(s))
        s.migrate()
        names = table_names(s)
        assert TABLES <= names
        assert "alembic_version" in names
        assert s.schema_revision() == HEAD
        uqs = {u["name"] for u in inspect(s.engine).get_unique_constraints("generations")}
        assert "uq_generations_run_number" in uqs
    finally:
        s.dispose()


def test_migrate_twice_is_noop(store):
    run = make_run(store)
    persist(store, run.id)
    before = store.count_rows()
    store.migrate()
    assert store.schema_revision() == HEAD
    assert TABLES <= table_names(store)
    assert store.count_rows() == before
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    # a fresh Store on the same file also sees an up-to-date schema
    s2 = Store(store.url)
    try:
        s2.migrate()
        assert s2.schema_revision() == HEAD
        got = s2.get_run("run-a")
        assert got.id == run.id and got.config == run.config and got.created_at == run.created_at
    finally:
        s2.dispose()


def _first_run(url: str, start, results) -> None:
    from evo.store import Store

    s = Store(url)
    start.wait()
    try:
        s.migrate()
        results.put("ok")
    except BaseException as e:  # noqa: BLE001 - the parent reports it
        results.put(f"{type(e).__name__}: {e}")
    finally:
        s.dispose()


@pytest.mark.slow
def test_processes_that_create_one_database_at_once_all_succeed(url):
    """The first runs of several hosts on one empty database: each process migrates it; one creates the
    schema, the others wait for it and find it made (they all tried to CREATE TABLE alembic_version)."""
    import multiprocessing

    mp = multiprocessing.get_context("fork")
    start, results = mp.Barrier(4), mp.Queue()
    procs = [mp.Process(target=_first_run, args=(url, start, results)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        got = sorted(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert got == ["ok"] * 4
    s = Store(url)
    try:
        assert s.schema_revision() == HEAD
        with s.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    finally:
        s.dispose()


def test_migrate_refuses_newer_revision(store):
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num='9999'"))
    with pytest.raises(StoreError) as ei:
        store.migrate()
    msg = str(ei.value)
    assert "newer" in msg
    assert "9999" in msg
    # the database is left as it was
    assert store.schema_revision() == "9999"


def test_unreachable_database():
    s = Store("postgresql+psycopg://nobody@127.0.0.1:1/x")
    try:
        with pytest.raises(StoreError) as ei:
            s.migrate()
        assert str(ei.value).startswith("cannot reach database")
    finally:
        s.dispose()


def test_password_is_masked():
    s = Store("postgresql+psycopg://u:s3cretpw@127.0.0.1:1/x")
    try:
        assert "s3cretpw" not in s.masked_url
        assert "***" in s.masked_url
        assert s.masked_url == "postgresql+psycopg://u:***@127.0.0.1:1/x"
        with pytest.raises(StoreError) as ei:
            s.migrate()
        msg = str(ei.value)
        assert msg.startswith("cannot reach database")
        assert "s3cretpw" not in msg
        assert "***" in msg
    finally:
        s.dispose()


# -- runs -------------------------------------------------------------------------------------------
def test_create_and_get_run_roundtrip(store):
    t0 = dt.datetime.now(dt.timezone.utc)
    rec = make_run(store)
    t1 = dt.datetime.now(dt.timezone.utc)
    got = store.get_run("run-a")
    assert got == rec
    assert isinstance(got.id, int)
    assert got.name == "run-a"
    assert got.config == {"population": 8, "objectives": [{"metric": "sharpe_ratio", "direction": "max"}]}
    assert got.config_hash == "c" * 64
    assert got.family == FAMILY
    assert got.data_fingerprint == "d" * 64
    assert got.evaluation_key == KEY
    assert got.seed == 2**40 + 7
    assert got.status == "running"
    assert got.generations_target == 12
    for ts in (got.created_at, got.updated_at):
        aware = ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
        assert t0 - dt.timedelta(seconds=1) <= aware <= t1 + dt.timedelta(seconds=1)
    assert got.created_at == got.updated_at
    assert store.get_run("no-such-run") is None


def test_create_run_duplicate_name(store):
    make_run(store)
    with pytest.raises(StoreError, match="already exists"):
        make_run(store, config_hash="e" * 64)
    assert store.count_rows()["runs"] == 1


def test_list_runs_with_generation_counts(store):
    a = make_run(store, "run-a")
    b = make_run(store, "run-b")
    c = make_run(store, "run-c")
    persist(store, a.id, 1)
    persist(store, a.id, 2, checkpoint={"g": 2})
    persist(store, b.id, 1)
    got = store.list_runs()
    assert [(r.name, n) for r, n in got] == [("run-c", 0), ("run-b", 1), ("run-a", 2)]
    assert got[0][0] == c  # no generation persisted: untouched
    assert (got[2][0].id, got[2][0].created_at) == (a.id, a.created_at)
    assert got[2][0].updated_at > a.updated_at  # persisting a generation bumps updated_at


def test_update_run(store):
    run = make_run(store)
    store.update_run(run.id, status="done", generations_target=20)
    got = store.get_run("run-a")
    assert got.status == "done" and got.generations_target == 20
    with pytest.raises(ValueError):
        store.update_run(run.id, name="other")


# -- persist_generation -----------------------------------------------------------------------------
def test_persist_generation_writes_everything(store):
    run = make_run(store)
    assert persist(store, run.id) is True
    c = store.count_rows()
    assert c == {"runs": 1, "generations": 1, "individuals": 3, "evaluations": 3, "members": 5}

    gen = store.last_generation(run.id)
    assert gen.number == 1
    assert gen.checkpoint == CHECKPOINT
    assert gen.stats == STATS
    assert gen.flow_run_id is None
    assert store.generation(run.id, 1) == gen
    assert store.generation(run.id, 2) is None
    assert store.generation_stats(run.id) == [STATS]


def test_members_of_survivors(store):
    run = make_run(store)
    persist(store, run.id)
    surv = store.members_of(run.id, 1, "survivor")
    assert [m.genome_hash for m in surv] == ["h1", "h3"]
    by = {m.genome_hash: m for m in surv}

    h1 = by["h1"]
    assert h1.genes == {"fast": 5, "slow": 20}
    assert h1.rank is None and h1.crowding is None
    assert h1.objectives == [1.5, -0.25]
    assert h1.per_asset is None
    assert list(h1.metrics) == list(METRICS)
    for i, m in enumerate(METRICS):
        if m == "sharpe_ratio":
            assert math.isnan(h1.metrics[m])
        else:
            assert h1.metrics[m] == 1.0 + i / 10

    h3 = by["h3"]
    assert h3.genes == {"fast": 9, "slow": 40}
    assert h3.rank == 0
    assert h3.crowding == float("inf")
    assert h3.objectives == [3.5, -0.75]
    assert [h3.metrics[m] for m in METRICS] == metrics_row(3.0)

    off = store.members_of(run.id, 1, "offspring")
    assert [m.genome_hash for m in off] == ["h1", "h2", "h3"]
    assert all(m.rank is None and m.crowding is None for m in off)
    assert store.members_of(run.id, 2, "survivor") == []


def test_metrics_are_stored_exactly_with_their_names(store):
    """NaN, infinities, -0.0 and the smallest subnormal come back bit for bit, and the row names the
    metrics its values belong to."""
    run = make_run(store)
    odd = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1 / 3, -1e308] + [2.5] * (len(METRICS) - 7)
    off = [OffspringRow("odd", {"a": 1}, odd[: len(METRICS)], None, [0.0], True)]
    persist(store, run.id, offspring=off, survivors=[])
    got = store.cached_metrics(FAMILY, ["odd"], KEY, METRICS)["odd"].metrics
    assert np.asarray(odd[: len(METRICS)]).tobytes() == got.tobytes()
    with store.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT s.names AS names, e.metrics AS blob FROM evaluations e "
            "JOIN metric_sets s ON s.id = e.metric_set_id")).mappings().one()
    assert json.loads(row["names"]) == list(METRICS)
    assert bytes(row["blob"]) == np.asarray(odd[: len(METRICS)], dtype="<f8").tobytes()


def test_the_evaluation_key_is_stored_once(store):
    run = make_run(store)
    persist(store, run.id)
    persist(store, run.id, 2, checkpoint={"g": 2}, offspring=[
        OffspringRow("h4", {"fast": 1, "slow": 2}, metrics_row(4.0), None, [0.0, 0.0], True)], survivors=[])
    with store.engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM evaluation_keys")).scalars().all()
        key_ids = conn.execute(text("SELECT DISTINCT key_id FROM evaluations")).scalars().all()
    assert keys == [KEY] and len(key_ids) == 1 and store.count_rows()["evaluations"] == 4


def test_cached_metrics(store):
    run = make_run(store)
    persist(store, run.id)
    got = store.cached_metrics(FAMILY, ["h1", "h2", "h3", "h1", "unknown"], KEY, METRICS)
    assert set(got) == {"h1", "h2", "h3"}
    h1 = got["h1"]
    assert h1.trades is None  # the test writes no fingerprints
    assert h1.per_asset is None
    assert len(h1.metrics) == len(METRICS)
    assert math.isnan(h1.metrics[METRICS.index("sharpe_ratio")])
    assert [v for i, v in enumerate(h1.metrics) if i != METRICS.index("sharpe_ratio")] == \
        [v for i, v in enumerate(metrics_row(1.0)) if i != METRICS.index("sharpe_ratio")]
    assert got["h2"].metrics.tolist() == metrics_row(2.0)
    assert got["h3"].metrics.tolist() == metrics_row(3.0)
    # asked in another order, the values follow the names
    back = list(reversed(METRICS))
    assert store.cached_metrics(FAMILY, ["h2"], KEY, back)["h2"].metrics.tolist() == metrics_row(2.0)[::-1]

    assert store.cached_metrics(FAMILY, ["h1", "h2", "h3"], "other-key", METRICS) == {}
    assert store.cached_metrics("other-family", ["h1", "h2", "h3"], KEY, METRICS) == {}
    assert store.cached_metrics(FAMILY, [], KEY, METRICS) == {}


def test_an_evaluation_lacking_a_metric_is_not_found_and_is_replaced(store):
    """An evaluation stored under a set without a metric that is asked for is not read (its metrics are
    None, never NaN); storing the genome's evaluation again replaces it, with every metric."""
    run = make_run(store)
    persist(store, run.id)
    wanted = [*METRICS, "future_metric"]
    lacking = store.cached_metrics(FAMILY, ["h2"], KEY, wanted)["h2"]
    assert lacking.metrics is None and lacking.per_asset is None
    assert store.cached_metrics(FAMILY, ["h2"], KEY, METRICS)["h2"].metrics is not None

    from evo.store import EvaluationRows

    store.save_evaluations(FAMILY, KEY, EvaluationRows(["h2"], ['{"fast": 7, "slow": 30}'], wanted,
                                                       np.array([metrics_row(5.0)[: len(METRICS)] + [9.5]]),
                                                       [None], [77]))
    again = store.cached_metrics(FAMILY, ["h2"], KEY, wanted)["h2"]
    assert again.metrics.tolist() == metrics_row(5.0)[: len(METRICS)] + [9.5] and again.trades == 77
    assert store.count_rows()["evaluations"] == 3  # replaced, not added
    # members show the metrics of the table by name, whatever else the set holds
    h2 = [m for m in store.members_of(run.id, 1, "offspring") if m.genome_hash == "h2"][0]
    assert h2.metrics == dict(zip(METRICS, metrics_row(5.0)))


def test_per_asset_roundtrip(store):
    run = make_run(store)
    pa = [[1.25 + i for i in range(len(METRICS))], [-0.5] * (len(METRICS) - 1) + [math.nan]]
    off = [
        OffspringRow(
            genome_hash="pa1", genes={"a": 1}, metrics=metrics_row(4.0), per_asset=pa,
            objectives=[0.0], new_evaluation=True,
        )
    ]
    persist(store, run.id, offspring=off, survivors=[])
    got = store.cached_metrics(FAMILY, ["pa1"], KEY, METRICS)["pa1"].per_asset
    assert got.shape == (2, len(METRICS))
    np.testing.assert_array_equal(got, np.array(pa))
    by_name = store.members_of(run.id, 1, "offspring")[0].per_asset
    assert list(by_name) == list(METRICS)
    assert by_name["total_return"] == [1.25, -0.5]
    assert by_name[METRICS[-1]][0] == 1.25 + len(METRICS) - 1 and math.isnan(by_name[METRICS[-1]][1])


# -- atomicity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["generation", "individuals", "evaluations", "members", "commit"])
def test_persist_is_atomic(store, stage):
    run = make_run(store)
    updated_before = store.get_run("run-a").updated_at
    with pytest.raises(RuntimeError, match=stage):
        persist(store, run.id, on_stage=raise_at(stage))
    assert data_counts(store) == {t: 0 for t in DATA_TABLES}
    assert store.last_generation(run.id) is None
    assert store.get_run("run-a").updated_at == updated_before

    assert persist(store, run.id) is True
    assert data_counts(store) == {"generations": 1, "individuals": 3, "evaluations": 3, "members": 5}
    assert store.last_generation(run.id).checkpoint == CHECKPOINT


# -- idempotent retry ---------------------------------------------------------------------------------
def test_retry_same_checkpoint_is_noop(store):
    run = make_run(store)
    assert persist(store, run.id) is True
    before = store.count_rows()
    assert persist(store, run.id, checkpoint=dict(CHECKPOINT)) is False
    assert store.count_rows() == before
    assert store.last_generation(run.id).checkpoint == CHECKPOINT


def test_retry_different_checkpoint_errors(store):
    run = make_run(store)
    persist(store, run.id)
    before = store.count_rows()
    with pytest.raises(EvoError, match="different") as info:
        persist(store, run.id, checkpoint={"generation": 1, "rng": [9, 9, 9]})
    assert not isinstance(info.value, UserError)  # a bug, never "your input": exit 1 with its type
    assert store.count_rows() == before
    assert store.last_generation(run.id).checkpoint == CHECKPOINT


def test_generation_unique_constraint(store):
    run = make_run(store)
    persist(store, run.id)
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(
                insert(generations).values(
                    run_id=run.id, number=1, checkpoint={}, stats={}, created_at=now
                )
            )
    with store.engine.connect() as conn:
        n = conn.execute(
            select(generations.c.id).where(generations.c.run_id == run.id, generations.c.number == 1)
        ).all()
    assert len(n) == 1


# -- evaluation cache across runs ---------------------------------------------------------------------
def test_cache_across_runs_reuses_individual(store):
    r1 = make_run(store, "run-a")
    persist(store, r1.id)
    before = store.count_rows()
    r2 = make_run(store, "run-b")
    cached = store.cached_metrics(FAMILY, ["h2"], KEY, METRICS)
    off = [
        OffspringRow(
            genome_hash="h2",
            genes={"fast": 7, "slow": 30},
            metrics=cached["h2"].metrics,
            per_asset=cached["h2"].per_asset,
            objectives=[2.5, -0.5],
            new_evaluation=False,
        )
    ]
    surv = [SurvivorRow(genome_hash="h2", rank=0, crowding=1.0, objectives=[2.5, -0.5])]
    assert persist(store, r2.id, offspring=off, survivors=surv, checkpoint={"run": "b"}) is True
    after = store.count_rows()
    assert after["individuals"] == before["individuals"] == 3
    assert after["evaluations"] == before["evaluations"] == 3
    assert after["generations"] == 2
    assert after["members"] == before["members"] + 2

    m = store.members_of(r2.id, 1, "survivor")
    assert len(m) == 1
    assert m[0].genome_hash == "h2"
    assert [m[0].metrics[k] for k in METRICS] == metrics_row(2.0)
    # run a is untouched
    assert [x.genome_hash for x in store.members_of(r1.id, 1, "survivor")] == ["h1", "h3"]


def test_survivor_from_earlier_generation(store):
    """A survivor that is not among this generation's offspring is looked up by hash."""
    run = make_run(store)
    persist(store, run.id, 1)
    off = [
        OffspringRow(
            genome_hash="h4", genes={"fast": 11, "slow": 50}, metrics=metrics_row(4.0),
            per_asset=None, objectives=[4.5, -1.0], new_evaluation=True,
        )
    ]
    surv = [
        SurvivorRow(genome_hash="h2", rank=0, crowding=0.5, objectives=[2.5, -0.5]),
        SurvivorRow(genome_hash="h4", rank=1, crowding=0.25, objectives=[4.5, -1.0]),
    ]
    assert persist(store, run.id, 2, offspring=off, survivors=surv, checkpoint={"g": 2}) is True
    got = store.members_of(run.id, 2, "survivor")
    assert [(m.genome_hash, m.rank, m.crowding) for m in got] == [("h2", 0, 0.5), ("h4", 1, 0.25)]
    assert store.count_rows()["individuals"] == 4
    assert store.last_generation(run.id).number == 2


# -- hostile names ------------------------------------------------------------------------------------
HOSTILE = [
    "x'; DROP TABLE runs; --",
    '"; DELETE FROM generations; --',
    "Robert'); DROP TABLE individuals;--",
    "ünïcødé ✓ 名前 🚀",
    "z" * 200,
    "100% _wild%card_",
]


def test_hostile_run_names(store):
    plain = make_run(store, "plain")
    persist(store, plain.id)
    before = store.count_rows()
    made = {n: make_run(store, n) for n in HOSTILE}
    assert TABLES <= table_names(store)
    after = store.count_rows()
    assert after["runs"] == before["runs"] + len(HOSTILE)
    assert {t: after[t] for t in DATA_TABLES} == {t: before[t] for t in DATA_TABLES}
    for n in HOSTILE:
        got = store.get_run(n)
        assert got is not None
        assert got.name == n
        assert got == made[n]
    assert len({r.id for r in made.values()}) == len(HOSTILE)
    assert store.get_run("x") is None
    assert store.get_run("100%") is None
    assert {r.name for r, _ in store.list_runs()} == set(HOSTILE) | {"plain"}


# -- foreign keys ----------------------------------------------------------------------------------------
def test_foreign_keys_are_enforced(store):
    run = make_run(store)
    persist(store, run.id)
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # off by default in SQLite: the store turns it on
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        ind_id = conn.execute(text("SELECT id FROM individuals WHERE genome_hash='h2'")).scalar_one()
    with pytest.raises(IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(
                insert(members).values(
                    run_id=run.id, generation=99, individual_id=ind_id, role="survivor",
                    rank=0, crowding=1.0, objectives=[0.0],
                )
            )
    assert store.count_rows()["members"] == 5


def test_foreign_key_generation_needs_run(store):
    with pytest.raises(IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(
                insert(generations).values(
                    run_id=12345, number=1, checkpoint={}, stats={},
                    created_at=dt.datetime.now(dt.timezone.utc),
                )
            )


# -- errors are stated in one line ------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["not a url", "postgresql+psycopg://u:pw@h:notaport/x"])
def test_unparsable_url_is_store_error(bad):
    with pytest.raises(StoreError, match="cannot parse database URL") as ei:
        Store(bad)
    assert ":pw@" not in str(ei.value)


def test_persist_for_missing_run_is_not_reported_as_already_committed(store):
    with pytest.raises(StoreError) as ei:
        persist(store, 999)
    assert "already committed" not in str(ei.value)
    assert store.count_rows()["generations"] == 0


# -- the lease ---------------------------------------------------------------------------------------
def test_lease_is_exclusive_until_released_or_expired(store):
    from evo.store import LeaseLost, RunBusy

    run = make_run(store)
    store.acquire_lease(run.id, "a", 60)
    store.acquire_lease(run.id, "a", 60)  # the holder may take it again
    with pytest.raises(RunBusy, match=r"run 'run-a' is busy: another process \(a\)"):
        store.acquire_lease(run.id, "b", 60)
    assert store.lease_of(run.id)[0] == "a"
    # a commit by a process that is not the holder is refused and writes nothing
    with pytest.raises(LeaseLost):
        persist(store, run.id, lease_owner="b", lease_seconds=60)
    assert data_counts(store) == {t: 0 for t in DATA_TABLES}
    assert persist(store, run.id, lease_owner="a", lease_seconds=60) is True
    store.release_lease(run.id, "b")  # not the holder: no effect
    assert store.lease_of(run.id)[0] == "a"
    store.release_lease(run.id, "a")
    store.acquire_lease(run.id, "b", 0.05)
    import time

    time.sleep(0.2)
    store.acquire_lease(run.id, "c", 60)  # b's lease expired
    assert store.lease_of(run.id)[0] == "c"
    assert not store.renew_lease(run.id, "b", 60)
    assert store.renew_lease(run.id, "c", 60)
    store.acquire_lease(run.id, "d", 60, stale_owner="c")  # c proven dead by the caller
    assert store.lease_of(run.id)[0] == "d"


def test_racing_acquirers_exactly_one_wins(store):
    import threading

    from evo.store import RunBusy

    run = make_run(store)
    barrier = threading.Barrier(8)
    wins, busy = [], []

    def go(i):
        s = Store(store.url)  # its own engine and connections, as another process would have
        barrier.wait()
        try:
            s.acquire_lease(run.id, f"p{i}", 60)
            wins.append(i)
        except RunBusy:
            busy.append(i)
        finally:
            s.dispose()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(busy) == 7
    assert store.lease_of(run.id)[0] == f"p{wins[0]}"



def test_upgrade_from_0001_backfills_the_generation_evaluation_key(url):
    """An existing database at the first schema keeps its rows and gains the new column, filled in."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from evo import migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    old = Store(url)
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with old.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO runs (id, name, config, config_hash, family, data_fingerprint, evaluation_key, seed, status, "
            "generations_target, created_at, updated_at) VALUES (1, 'r', '{}', 'c', 'f', 'd', 'key-1', 1, 'running', 3, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ))
        conn.execute(text(
            "INSERT INTO generations (run_id, number, checkpoint, stats, created_at) "
            "VALUES (1, 1, '{}', '{}', CURRENT_TIMESTAMP)"
        ))
    assert old.schema_revision() == "0001"
    old.dispose()
    s = Store(url)
    s.migrate()
    assert s.schema_revision() == HEAD
    with s.engine.connect() as conn:
        assert conn.execute(text("SELECT evaluation_key FROM generations")).scalar_one() == "key-1"
    s.dispose()


# -- lease edges --------------------------------------------------------------------------------------
class _SkewedClock:
    """Stands in for the `datetime` module with a client clock a day ahead (or behind) of the database's."""

    def __init__(self, days: float):
        self.days = days
        self.timezone, self.timedelta = dt.timezone, dt.timedelta

        class _Meta(type):
            def __instancecheck__(cls, obj):  # real datetimes still count as datetimes
                return isinstance(obj, dt.datetime)

        class _DT(dt.datetime, metaclass=_Meta):
            @classmethod
            def now(cls, tz=None):
                return dt.datetime.now(tz) + dt.timedelta(days=days)

        self.datetime = _DT


@pytest.mark.parametrize("days", [1.0, -1.0])
def test_leases_run_on_the_database_clock(store, monkeypatch, days):
    from evo.store import RunBusy
    from evo.store import runs as runs_module
    from evo.store import sql as sql_module

    run = make_run(store)
    monkeypatch.setattr(runs_module, "dt", _SkewedClock(days))
    monkeypatch.setattr(sql_module, "now_utc", lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days))
    store.acquire_lease(run.id, "a", 60)
    # a client whose clock is a day off neither frees a live lease nor keeps a dead one
    with pytest.raises(RunBusy):
        store.acquire_lease(run.id, "b", 60)
    until = store.lease_of(run.id)[1]
    assert abs((until - store.db_now()).total_seconds() - 60) < 10
    assert not store.lease_expired(run.id)
    monkeypatch.undo()


def test_status_and_target_change_only_under_the_lease(store):
    from evo.store import LeaseLost

    run = make_run(store)
    store.acquire_lease(run.id, "a", 60)
    with pytest.raises(LeaseLost):
        store.update_run(run.id, owner="b", status="failed")
    with pytest.raises(LeaseLost):
        store.update_run(run.id, owner="b", generations_target=99)
    assert store.get_run("run-a").status == "running" and store.get_run("run-a").generations_target == 12
    store.update_run(run.id, owner="a", status="completed", generations_target=20)
    assert store.get_run("run-a").status == "completed" and store.get_run("run-a").generations_target == 20


def test_a_retried_persist_of_a_committed_generation_checks_the_lease(store):
    from evo.store import LeaseLost

    run = make_run(store)
    store.acquire_lease(run.id, "a", 60)
    assert persist(store, run.id, lease_owner="a", lease_seconds=60) is True
    assert persist(store, run.id, lease_owner="a", lease_seconds=60) is False  # the holder's retry: a no-op
    store.acquire_lease(run.id, "b", 60, stale_owner="a")  # a is gone, b took over
    with pytest.raises(LeaseLost, match="no longer holds"):
        persist(store, run.id, lease_owner="a", lease_seconds=60)


def test_trades_are_stored_and_trials_count_each_behaviour_once(store):
    """Two genomes with the same trade fingerprint are one trial of the deflated Sharpe ratio."""
    run = make_run(store)
    rows = columns(OFFSPRING, SURVIVORS)
    rows["offspring"] = rows["offspring"].set(trades=[111, 111, 222])  # h1 and h2 trade alike
    store.persist_generation(run_id=run.id, number=1, family=FAMILY, evaluation_key=KEY, checkpoint=CHECKPOINT,
                             stats=STATS, **rows)
    assert [store.cached_metrics(FAMILY, [h], KEY, METRICS)[h].trades for h in ("h1", "h2", "h3")] == [111, 111, 222]
    assert {m.genome_hash: m.trades for m in store.members_of(run.id, 1, "offspring")} == \
        {"h1": 111, "h2": 111, "h3": 222}
    assert len(store.trial_metrics(run.id, "total_return")) == 2


# -- 0006: metrics by name -------------------------------------------------------------------------
OLD_METRICS = ("total_return", "sharpe_ratio", "sortino_ratio", "max_drawdown", "n_trades", "win_rate", "exposure")


def test_upgrade_to_0006_keeps_each_evaluation_under_its_seven_metrics(url):
    """A database at 0005 (a column per metric, the key string on every row) keeps every value: each
    evaluation holds its seven metrics by name (NULL back as NaN), its per-asset metrics and trades, and
    counts as lacking any metric added since."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from evo import migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    old = Store(url)
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    cols = ", ".join(OLD_METRICS)
    with old.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO individuals (family, genome_hash, genes) VALUES "
            "('fam', 'ha', '{\"fast\": 5}'), ('fam', 'hb', '{\"fast\": 6}')"))
        ids = dict(conn.execute(text("SELECT genome_hash, id FROM individuals")).all())
        conn.execute(text(
            f"INSERT INTO evaluations (individual_id, evaluation_key, {cols}, per_asset, created_at, trades) VALUES "
            f"(:a, :k, 0.5, NULL, 1.25, -0.2, 12, 0.75, 0.4, NULL, CURRENT_TIMESTAMP, -9000000000000000000), "
            f"(:b, :k, -1, 2.5, 3.5, -0.5, 3, 0.25, 0.125, :pa, CURRENT_TIMESTAMP, NULL), "
            f"(:b, :other, 7, 7, 7, 7, 7, 7, 7, NULL, CURRENT_TIMESTAMP, NULL)"),
            {"a": ids["ha"], "b": ids["hb"], "k": "k" * 64, "other": "o" * 64, "pa": json.dumps([[1, 2, 3, 4, 5, 6, 7], [8, None, 10, 11, 12, 13, 14]])})
    old.dispose()
    s = Store(url)
    s.migrate()
    try:
        assert s.schema_revision() == HEAD
        got = s.cached_metrics("fam", ["ha", "hb"], "k" * 64, OLD_METRICS)
        a, b = got["ha"], got["hb"]
        assert a.metrics[0] == 0.5 and math.isnan(a.metrics[1]) and a.metrics[2:].tolist() == [1.25, -0.2, 12, 0.75, 0.4]
        assert a.trades == -9000000000000000000 and a.per_asset is None
        assert b.metrics.tolist() == [-1, 2.5, 3.5, -0.5, 3, 0.25, 0.125] and b.trades is None
        np.testing.assert_array_equal(b.per_asset, [[1, 2, 3, 4, 5, 6, 7], [8, np.nan, 10, 11, 12, 13, 14]])
        assert s.cached_metrics("fam", ["hb"], "o" * 64, OLD_METRICS)["hb"].metrics.tolist() == [7.0] * 7
        # a metric added since: the evaluation is there but lacks it
        lacking = s.cached_metrics("fam", ["ha"], "k" * 64, [*OLD_METRICS, "calmar_ratio"])["ha"]
        assert lacking.metrics is None and lacking.trades == -9000000000000000000
        with s.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM evaluation_keys")).scalar_one() == 2
            assert conn.execute(text("SELECT names FROM metric_sets")).scalars().all() == [json.dumps(list(OLD_METRICS))]
            uq = {u["name"]: u["column_names"] for u in inspect(conn).get_unique_constraints("evaluations")}
        assert uq == {"uq_evaluations_individual_key": ["individual_id", "key_id"]}
        # the database takes new evaluations under the same key: a store resolves the migrated key row
        from evo.store import EvaluationRows

        s.save_evaluations("fam", "k" * 64, EvaluationRows(["hc"], ['{"fast": 7}'], METRICS,
                                                           np.array([metrics_row(1.0)]), [None], [None]))
        assert s.cached_metrics("fam", ["hc"], "k" * 64, METRICS)["hc"].metrics.tolist() == metrics_row(1.0)
    finally:
        s.dispose()


def test_downgrade_from_0006_gives_the_columns_back(url):
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from evo import migrations
    from evo.store import EvaluationRows

    s = Store(url)
    s.migrate()
    s.save_evaluations("fam", KEY, EvaluationRows(["ha"], ['{"a": 1}'], METRICS, np.array([metrics_row(1.0, 1)]),
                                                  [None], [5]))
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with s.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with s.engine.connect() as conn:
        row = conn.execute(text(f"SELECT evaluation_key, trades, {', '.join(OLD_METRICS)} FROM evaluations")).mappings().one()
    s.dispose()
    assert row["evaluation_key"] == KEY and row["trades"] == 5 and row["sharpe_ratio"] is None
    assert [row[m] for m in OLD_METRICS if m != "sharpe_ratio"] == \
        [v for m, v in zip(METRICS, metrics_row(1.0)) if m in OLD_METRICS and m != "sharpe_ratio"]


def test_generation_stats_read_rows_of_any_age():
    """Stats stored before a field existed read it as its default; fields this code does not know are
    kept and written back as they were."""
    old = {"generation": 3, "hypervolume": 0.5, "best": {"sharpe_ratio": 1.5}, "n_feasible": 4, "n_offspring": 8,
           "evaluated": 6, "cache_hits": 2, "eval_seconds": 0.25, "chunks": {"sizes": [6]}, "peak_rss": 10,
           "seconds": 1.0, "future": [1, 2]}
    st = GenerationStats.from_json(old)
    assert (st.generation, st.pareto_size, st.chunks.sizes, st.chunks.workers, st.reevaluated) == (3, 0, [6], [], False)
    assert st.extra == {"future": [1, 2]} and st.to_json()["future"] == [1, 2]
    new = GenerationStats(generation=2, reevaluated=True, data_fingerprint="f" * 64)
    assert GenerationStats.from_json(json.loads(json.dumps(new.to_json()))) == new
    assert "reevaluated" not in GenerationStats(generation=1).to_json()
