"""The one module that talks SQL. Everything else asks `Store` for plain data.

A generation is written by `persist_generation` in one transaction: the
generation row (checkpoint and stats), new individuals, new evaluations and
the membership rows. Either all of it is committed or none of it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import JSON, create_engine, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from evo.objectives import METRICS
from evo.store.models import evaluations, generations, individuals, members, runs, validations

DEFAULT_URL = "sqlite:///evo.db"
_IN_CHUNK = 500  # bound parameters per IN (...) query


class StoreError(RuntimeError):
    """A database problem stated in one line (unreachable, newer schema, ...)."""


class RunBusy(StoreError):
    """Another live process holds the run's lease."""


class LeaseLost(StoreError):
    """This process no longer holds the run's lease (it expired and another took it)."""


def resolve_url(url: str | None) -> str:
    """--db beats EVO_DATABASE_URL beats the default SQLite file."""
    url = url or os.environ.get("EVO_DATABASE_URL") or DEFAULT_URL
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def busy_message(name: str | None, holder: str | None, until: dt.datetime | None) -> str:
    return (
        f"run {name!r} is busy: another process ({holder}) is advancing it"
        + (f" (lease until {until:%Y-%m-%d %H:%M:%S} UTC)" if until else "")
        + "; wait for it to finish, or for its lease to expire if it died on another host"
    )


def has_password(url: str | None) -> bool:
    if not url:
        return False
    try:
        return make_url(resolve_url(url)).password is not None
    except Exception:
        return False


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***: the only form that is ever printed or logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _num(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _unnum(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    config: dict
    config_hash: str
    family: str
    data_fingerprint: str
    evaluation_key: str
    seed: int
    status: str
    generations_target: int
    created_at: dt.datetime
    updated_at: dt.datetime
    report_path: str | None = None


@dataclass(frozen=True)
class GenerationRecord:
    number: int
    checkpoint: dict
    stats: dict
    flow_run_id: str | None
    created_at: dt.datetime
    evaluation_key: str


@dataclass
class OffspringRow:
    genome_hash: str
    genes: dict
    metrics: Sequence[float]  # METRICS order
    per_asset: list | None
    objectives: list  # JSON-safe F row
    new_evaluation: bool  # False when the metrics came from the cache


@dataclass
class SurvivorRow:
    genome_hash: str
    rank: int | None
    crowding: float | None
    objectives: list


class Store:
    def __init__(self, url: str | None = None):
        self.url = resolve_url(url)
        self.masked_url = mask_url(self.url)
        kw: dict[str, Any] = {"future": True}
        try:
            u = make_url(self.url)
        except Exception as e:
            raise StoreError(f"bad database URL {self.masked_url}: {_first_line(e)}") from None
        if u.get_backend_name() == "sqlite":
            db = u.database
            if db and db != ":memory:":
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kw["connect_args"] = {"timeout": 30}
        else:
            kw["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(self.url, **kw)
        except Exception as e:
            raise StoreError(f"bad database URL {self.masked_url}: {e}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema --------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Run Alembic `upgrade head`; refuse a database whose schema is newer than this code."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        import migrations

        script_location = str(Path(migrations.__file__).parent)
        cfg = Config()
        cfg.set_main_option("script_location", script_location)
        script = ScriptDirectory.from_config(cfg)
        heads = set(script.get_heads())
        try:
            with self.engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_heads()
                known = {r.revision for r in script.walk_revisions()}
                unknown = [r for r in current if r not in known]
                if unknown:
                    raise StoreError(
                        f"database {self.masked_url} has schema revision {unknown[0]}, newer than this "
                        f"version of evo knows (head {', '.join(sorted(heads))}); upgrade evo"
                    )
                if set(current) != heads:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
        except OperationalError as e:
            raise StoreError(f"cannot reach database {self.masked_url}: {_first_line(e)}") from None

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # -- runs ----------------------------------------------------------------------------------
    def get_run(self, name: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.name == name)).mappings().first()
        return _run_record(row) if row else None

    def list_runs(self) -> list[tuple[RunRecord, int]]:
        """Every run with its number of committed generations, newest first."""
        done = (
            select(generations.c.run_id, func.count().label("n"))
            .group_by(generations.c.run_id)
            .subquery()
        )
        q = (
            select(runs, func.coalesce(done.c.n, 0).label("done"))
            .outerjoin(done, done.c.run_id == runs.c.id)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [(_run_record(r), int(r["done"])) for r in conn.execute(q).mappings()]

    def create_run(
        self,
        *,
        name: str,
        config: dict,
        config_hash: str,
        family: str,
        data_fingerprint: str,
        evaluation_key: str,
        seed: int,
        generations_target: int,
    ) -> RunRecord:
        now = _now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(runs).values(
                        name=name,
                        config=config,
                        config_hash=config_hash,
                        family=family,
                        data_fingerprint=data_fingerprint,
                        evaluation_key=evaluation_key,
                        seed=seed,
                        status="running",
                        generations_target=generations_target,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise StoreError(f"a run named {name!r} already exists") from None
        rec = self.get_run(name)
        assert rec is not None
        return rec

    def update_run(self, run_id: int, **values: Any) -> None:
        allowed = {"status", "generations_target", "config", "report_path"}
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"cannot update run fields {sorted(bad)}")
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(updated_at=_now(), **values))

    # -- the lease: one process advances a run at a time ----------------------------------------
    def acquire_lease(self, run_id: int, owner: str, seconds: float, stale_owner: str | None = None) -> None:
        """Take the run's lease for `seconds`, or raise RunBusy.

        One conditional UPDATE decides (both backends serialise writers on the
        row), so of two processes racing for a free run exactly one wins. The
        lease is free when nobody holds it, when it expired, or when the caller
        proved its holder dead (`stale_owner`).
        """
        now = _now()
        cond = (
            (runs.c.lease_owner.is_(None))
            | (runs.c.lease_owner == owner)
            | (runs.c.lease_expires < now)
        )
        if stale_owner is not None:
            cond = cond | (runs.c.lease_owner == stale_owner)
        with self.engine.begin() as conn:
            got = conn.execute(
                update(runs)
                .where(runs.c.id == run_id, cond)
                .values(lease_owner=owner, lease_expires=now + dt.timedelta(seconds=seconds), updated_at=now)
            ).rowcount
        if got != 1:
            holder, until = self.lease_of(run_id)
            with self.engine.connect() as conn:
                name = conn.execute(select(runs.c.name).where(runs.c.id == run_id)).scalar()
            raise RunBusy(busy_message(name, holder, until))

    def renew_lease(self, run_id: int, owner: str, seconds: float) -> bool:
        now = _now()
        with self.engine.begin() as conn:
            return conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_expires=now + dt.timedelta(seconds=seconds))
            ).rowcount == 1

    def release_lease(self, run_id: int, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires=None)
            )

    def lease_of(self, run_id: int) -> tuple[str | None, dt.datetime | None]:
        """(owner, expiry) of the run's lease; expiry in UTC."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs.c.lease_owner, runs.c.lease_expires).where(runs.c.id == run_id)).first()
        if row is None:
            return None, None
        return row[0], _utc(row[1])

    # -- generations ---------------------------------------------------------------------------
    def last_generation(self, run_id: int) -> GenerationRecord | None:
        q = (
            select(generations)
            .where(generations.c.run_id == run_id)
            .order_by(generations.c.number.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _gen_record(row) if row else None

    def generation_stats(self, run_id: int) -> list[tuple[int, dict]]:
        q = select(generations.c.number, generations.c.stats).where(generations.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [(r.number, r.stats) for r in conn.execute(q.order_by(generations.c.number))]

    def generation(self, run_id: int, number: int) -> GenerationRecord | None:
        q = select(generations).where(generations.c.run_id == run_id, generations.c.number == number)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _gen_record(row) if row else None

    # -- evaluation cache ----------------------------------------------------------------------
    def cached_metrics(self, family: str, hashes: Sequence[str], evaluation_key: str) -> dict[str, tuple[list[float], Any]]:
        """Metrics already stored for these genomes under this evaluation key, by genome hash."""
        out: dict[str, tuple[list[float], Any]] = {}
        cols = [evaluations.c[m] for m in METRICS]
        with self.engine.connect() as conn:
            for part in _chunks(list(dict.fromkeys(hashes)), _IN_CHUNK):
                q = (
                    select(individuals.c.genome_hash, evaluations.c.per_asset, *cols)
                    .join(evaluations, evaluations.c.individual_id == individuals.c.id)
                    .where(
                        individuals.c.family == family,
                        individuals.c.genome_hash.in_(part),
                        evaluations.c.evaluation_key == evaluation_key,
                    )
                )
                for r in conn.execute(q):
                    out[r[0]] = ([_unnum(v) for v in r[2:]], r[1])
        return out

    # -- the atomic write ------------------------------------------------------------------------
    def persist_generation(
        self,
        *,
        run_id: int,
        number: int,
        family: str,
        evaluation_key: str,
        offspring: Sequence[OffspringRow],
        survivors: Sequence[SurvivorRow],
        checkpoint: dict,
        stats: dict,
        flow_run_id: str | None = None,
        lease_owner: str | None = None,
        lease_seconds: float = 0.0,
        new_data: tuple[str, str] | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> bool:
        """Commit generation `number` of a run, all or nothing.

        Returns False (and writes nothing) if that generation was already
        committed with the same checkpoint: a retried persist is a no-op.
        A different checkpoint for an existing generation is an error. With
        `lease_owner`, the commit also renews the run's lease and fails with
        LeaseLost if another process took it. `new_data` = (fingerprint,
        evaluation key) moves the run onto new market data in the same
        transaction. `on_stage(stage)` is called after
        each stage inside the transaction (the fault-injection tests use it).
        """
        now = _now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(generations).values(
                        run_id=run_id,
                        number=number,
                        checkpoint=checkpoint,
                        stats=stats,
                        evaluation_key=evaluation_key,
                        flow_run_id=flow_run_id,
                        created_at=now,
                    )
                )
                _stage(on_stage, "generation")
                ids = self._ensure_individuals(
                    conn, family, {o.genome_hash: o.genes for o in offspring}
                )
                _stage(on_stage, "individuals")
                new_evals = [
                    {
                        "individual_id": ids[o.genome_hash],
                        "evaluation_key": evaluation_key,
                        "per_asset": o.per_asset,
                        "created_at": now,
                        **{m: _num(v) for m, v in zip(METRICS, o.metrics)},
                    }
                    for o in offspring
                    if o.new_evaluation
                ]
                if new_evals:
                    _bulk_insert(conn, evaluations, new_evals, ["individual_id", "evaluation_key"])
                _stage(on_stage, "evaluations")
                rows = [
                    {
                        "run_id": run_id,
                        "generation": number,
                        "individual_id": ids[o.genome_hash],
                        "role": "offspring",
                        "rank": None,
                        "crowding": None,
                        "objectives": o.objectives,
                    }
                    for o in offspring
                ]
                missing = [s.genome_hash for s in survivors if s.genome_hash not in ids]
                if missing:
                    ids.update(self._ids_by_hash(conn, family, missing))
                rows += [
                    {
                        "run_id": run_id,
                        "generation": number,
                        "individual_id": ids[s.genome_hash],
                        "role": "survivor",
                        "rank": s.rank,
                        "crowding": s.crowding,
                        "objectives": s.objectives,
                    }
                    for s in survivors
                ]
                if rows:
                    _bulk_insert(conn, members, rows)
                _stage(on_stage, "members")
                touch = update(runs).where(runs.c.id == run_id)
                values: dict[str, Any] = {"updated_at": now}
                if new_data is not None:
                    values["data_fingerprint"], values["evaluation_key"] = new_data
                if lease_owner is not None:
                    touch = touch.where(runs.c.lease_owner == lease_owner)
                    values["lease_expires"] = now + dt.timedelta(seconds=lease_seconds)
                if conn.execute(touch.values(**values)).rowcount != 1 and lease_owner is not None:
                    raise LeaseLost(
                        f"run {run_id}: this process no longer holds the run (its lease expired and another "
                        f"process took it); generation {number} was not committed"
                    )
                _stage(on_stage, "commit")
        except IntegrityError as e:
            existing = self.generation(run_id, number)
            if existing is None:
                raise StoreError(f"cannot commit generation {number} of run {run_id}: {_first_line(e)}") from None
            if existing.checkpoint == checkpoint:
                return False
            raise StoreError(
                f"generation {number} of run {run_id} is already committed with a different state"
            ) from None
        return True

    def _ensure_individuals(self, conn, family: str, genes_by_hash: dict[str, dict]) -> dict[str, int]:
        if not genes_by_hash:
            return {}
        _bulk_insert(
            conn,
            individuals,
            [{"family": family, "genome_hash": h, "genes": g} for h, g in genes_by_hash.items()],
            ["family", "genome_hash"],
        )
        if conn.dialect.name == "postgresql":
            # the rows just copied are still in the temporary table: join instead of 1000 parameters
            cur = conn.connection.driver_connection.cursor()
            cur.execute(
                'SELECT i.genome_hash, i.id FROM "_evo_bulk_individuals" t JOIN individuals i '
                "ON i.family = t.family AND i.genome_hash = t.genome_hash"
            )
            return dict(cur.fetchall())
        return self._ids_by_hash(conn, family, list(genes_by_hash))

    @staticmethod
    def _ids_by_hash(conn, family: str, hashes: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for part in _chunks(list(hashes), _IN_CHUNK):
            q = select(individuals.c.genome_hash, individuals.c.id).where(
                individuals.c.family == family, individuals.c.genome_hash.in_(part)
            )
            out.update({h: i for h, i in conn.execute(q)})
        return out

    # -- reading results -----------------------------------------------------------------------
    def members_of(self, run_id: int, number: int, role: str) -> list[dict]:
        """Members of one generation with their genes and metrics, in insertion order."""
        cols = [evaluations.c[m] for m in METRICS]
        key = (
            select(generations.c.evaluation_key)
            .where(generations.c.run_id == run_id, generations.c.number == number)
            .scalar_subquery()
        )
        q = (
            select(
                individuals.c.genome_hash,
                individuals.c.genes,
                members.c.rank,
                members.c.crowding,
                members.c.objectives,
                evaluations.c.per_asset,
                *cols,
            )
            .join(individuals, individuals.c.id == members.c.individual_id)
            .outerjoin(
                evaluations,
                (evaluations.c.individual_id == members.c.individual_id)
                & (evaluations.c.evaluation_key == key),
            )
            .where(members.c.run_id == run_id, members.c.generation == number, members.c.role == role)
        )
        out = []
        with self.engine.connect() as conn:
            for r in conn.execute(q).mappings():
                out.append(
                    {
                        "genome_hash": r["genome_hash"],
                        "genes": r["genes"],
                        "rank": r["rank"],
                        "crowding": r["crowding"],
                        "objectives": r["objectives"],
                        "per_asset": r["per_asset"],
                        "metrics": {m: _unnum(r[m]) for m in METRICS},
                    }
                )
        return out

    # -- validation ----------------------------------------------------------------------------
    def save_evaluations(self, family: str, rows: Sequence[tuple[str, dict, str, Sequence[float], Any]]) -> None:
        """Store (genome_hash, genes, evaluation_key, metrics, per_asset) rows; existing ones are kept."""
        if not rows:
            return
        now = _now()
        with self.engine.begin() as conn:
            ids = self._ensure_individuals(conn, family, {h: g for h, g, _, _, _ in rows})
            _bulk_insert(
                conn,
                evaluations,
                [
                    {"individual_id": ids[h], "evaluation_key": key, "per_asset": pa, "created_at": now,
                     **{m: _num(v) for m, v in zip(METRICS, metrics)}}
                    for h, _, key, metrics, pa in rows
                ],
                ["individual_id", "evaluation_key"],
            )

    def save_validation(self, run_id: int, kind: str, generation: int, result: dict) -> None:
        """The verdict on one generation's Pareto set; a second one for the same generation replaces it."""
        with self.engine.begin() as conn:
            conn.execute(
                validations.delete().where(
                    validations.c.run_id == run_id, validations.c.kind == kind, validations.c.generation == generation
                )
            )
            conn.execute(
                insert(validations).values(
                    run_id=run_id, kind=kind, generation=generation, result=result, created_at=_now()
                )
            )

    def latest_validation(self, run_id: int, kind: str) -> tuple[int, dict] | None:
        q = (
            select(validations.c.generation, validations.c.result)
            .where(validations.c.run_id == run_id, validations.c.kind == kind)
            .order_by(validations.c.generation.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return (row[0], row[1]) if row else None

    def trial_metrics(self, run_id: int, metric: str) -> list[float]:
        """`metric` of every distinct strategy the run evaluated, each under its generation's key."""
        q = (
            select(individuals.c.id, generations.c.evaluation_key, evaluations.c[metric])
            .select_from(members)
            .join(individuals, individuals.c.id == members.c.individual_id)
            .join(generations, (generations.c.run_id == members.c.run_id) & (generations.c.number == members.c.generation))
            .join(
                evaluations,
                (evaluations.c.individual_id == members.c.individual_id)
                & (evaluations.c.evaluation_key == generations.c.evaluation_key),
            )
            .where(members.c.run_id == run_id, members.c.role == "offspring")
            .distinct()
        )
        with self.engine.connect() as conn:
            return [_unnum(r[2]) for r in conn.execute(q)]

    def count_rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (runs, generations, individuals, evaluations, members)
            }


def _utc(v):
    # SQLite returns naive datetimes; every timestamp here was written in UTC
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.timezone.utc)
    return v


def _run_record(row) -> RunRecord:
    return RunRecord(**{k: _utc(row[k]) for k in RunRecord.__dataclass_fields__})


def _gen_record(row) -> GenerationRecord:
    return GenerationRecord(**{k: _utc(row[k]) for k in GenerationRecord.__dataclass_fields__})


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _bulk_insert(conn, table, rows: list[dict], conflict_keys: list[str] | None = None) -> None:
    """Insert many rows; with `conflict_keys`, rows that already exist are skipped (ON CONFLICT DO NOTHING).

    PostgreSQL gets COPY (through a temporary table when conflicts are possible):
    a generation is thousands of rows, and executemany spends ~30 us a row there.
    """
    if not rows:
        return
    name = conn.dialect.name
    if name == "postgresql":
        _pg_copy_insert(conn, table, rows, conflict_keys)
        return
    if name != "sqlite":  # pragma: no cover
        raise StoreError(f"unsupported database backend {name!r} (use SQLite or PostgreSQL)")
    if conflict_keys is None:
        conn.execute(insert(table), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict_keys), rows)


def _pg_copy_insert(conn, table, rows: list[dict], conflict_keys: list[str] | None) -> None:
    cols = list(rows[0])
    json_cols = {c for c in cols if isinstance(table.c[c].type, JSON)}
    quoted = ", ".join(f'"{c}"' for c in cols)  # column names come from our own Table objects
    cur = conn.connection.driver_connection.cursor()
    target = table.name
    if conflict_keys is not None:
        target = f"_evo_bulk_{table.name}"
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{target}" AS SELECT {quoted} FROM "{table.name}" WITH NO DATA')
        cur.execute(f'TRUNCATE "{target}"')
    with cur.copy(f'COPY "{target}" ({quoted}) FROM STDIN') as copy:
        for r in rows:
            copy.write_row([json.dumps(r[c]) if c in json_cols and r[c] is not None else r[c] for c in cols])
    if conflict_keys is not None:
        keys = ", ".join(f'"{k}"' for k in conflict_keys)
        cur.execute(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{target}" ON CONFLICT ({keys}) DO NOTHING'
        )


def _stage(on_stage: Callable[[str], None] | None, stage: str) -> None:
    if on_stage is not None:
        on_stage(stage)


def _first_line(e: Exception) -> str:
    msg = str(getattr(e, "orig", e) or e)
    return msg.strip().splitlines()[0] if msg.strip() else type(e).__name__


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
