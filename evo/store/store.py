"""The one module that talks SQL. Everything else asks `Store` for plain data.

A generation is written by `persist_generation` in one transaction: the
generation row (checkpoint and stats), new individuals, new evaluations and
the membership rows. Either all of it is committed or none of it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np
from sqlalchemy import JSON, DateTime, create_engine, event, func, insert, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from evo.config.errors import EvoError, LeaseLost, RunBusy, StoreError
from evo.config.errors import first_line as _first_line
from evo.config.metrics import METRICS
from evo.store import url as urls
from evo.store.models import evaluations, generations, individuals, members, metadata, runs, validations

#: what an evo database holds; a database with any other table is not evo's
EVO_TABLES = frozenset({t.name for t in metadata.sorted_tables} | {"alembic_version"})

_IN_CHUNK = 500  # bound parameters per IN (...) query


def busy_message(name: str | None, holder: str | None, until: dt.datetime | None) -> str:
    return (
        f"run {name!r} is busy: another process ({holder}) is advancing it"
        + (f" (lease until {until:%Y-%m-%d %H:%M:%S} UTC)" if until else "")
        + "; wait for it to finish, or for its lease to expire if it died on another host"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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
class OffspringRows:
    """A generation's offspring as columns: row i of each is offspring i."""

    hashes: Sequence[str]  # genome hashes
    genes_json: Sequence[str]  # decoded genes as JSON text (GeneSpace.genes_json)
    metrics: np.ndarray  # (n, N_METRICS) in slot order; NaN is stored as NULL
    per_asset: Sequence[list | None]  # per-symbol metrics, None for one symbol
    objectives: np.ndarray  # (n, n_objectives) in metric units
    new: np.ndarray  # (n,) bool: a new evaluation (False: the metrics came from the store)
    trades: Sequence[int | None]  # trade fingerprints (None: unknown)

    def __len__(self) -> int:
        return len(self.hashes)


class Evaluated(NamedTuple):
    """A stored evaluation: metrics in slot order, per-symbol metrics (or None), trade fingerprint (or None)."""

    metrics: list[float]
    per_asset: Any
    trades: int | None


@dataclass
class SurvivorRows:
    """A generation's survivors as columns."""

    hashes: Sequence[str]
    rank: np.ndarray  # NaN: not ranked (infeasible)
    crowding: np.ndarray  # NaN: none
    objectives: np.ndarray  # (n, n_objectives) in metric units

    def __len__(self) -> int:
        return len(self.hashes)


def json_floats(a: np.ndarray) -> list[str]:
    """Each row of a float matrix as a JSON list, non-finite values as the strings 'inf', '-inf', 'nan'
    (what evo.search.algorithm.encode_floats gives) - formatted in bulk: a generation has thousands."""
    a = np.asarray(a, dtype=np.float64)
    rows = a.tolist()
    finite = np.isfinite(a).all(axis=1)
    out = ["[" + ",".join(map(repr, r)) + "]" if ok else json.dumps([v if math.isfinite(v) else repr(v) for v in r])
           for r, ok in zip(rows, finite.tolist())]
    return out


def _nullable(a: np.ndarray) -> list:
    """A float array as a list with None where it is NaN."""
    a = np.asarray(a, dtype=np.float64)
    if not np.isnan(a).any():
        return a.tolist()
    out = a.astype(object)
    out[np.isnan(a)] = None
    return out.tolist()


class Store:
    """One database. Opening it (`open_store`) checks that it is evo's before anything is written."""

    def __init__(self, url: str):
        self.url = urls.normalize(url)
        self.masked_url = urls.mask(self.url)
        try:
            u = urls.check(self.url)
        except urls.URLError as e:
            raise StoreError(str(e)) from None
        kw: dict[str, Any] = {"future": True}
        self.sqlite_path: Path | None = None
        if u.get_backend_name() == "sqlite":
            self.sqlite_path = Path(u.database).expanduser()
            kw["connect_args"] = {"timeout": 30}
        else:
            kw["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(self.url, **kw)
        except Exception as e:
            raise StoreError(f"bad database URL {self.masked_url}: {urls.scrub(_first_line(e), [self.url])}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema --------------------------------------------------------------------------------
    def _tables(self) -> set[str] | None:
        """The tables in the database, read without writing anything (None: no SQLite file yet)."""
        if self.sqlite_path is not None:
            if not self.sqlite_path.exists():
                return None
            if self.sqlite_path.is_dir():
                raise StoreError(f"database path {self.sqlite_path} is a folder, not a SQLite file")
            import sqlite3

            try:  # read-only, before the engine's first connection switches the file to WAL
                con = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
                try:
                    names = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
                finally:
                    con.close()
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.sqlite_path} is not a SQLite database ({e})") from None
            return {n for (n,) in names if not n.startswith("sqlite_")}
        try:
            with self.engine.connect() as conn:
                return set(inspect(conn).get_table_names())
        except OperationalError as e:
            raise StoreError(self._unreachable(e)) from None

    def holds_tables(self) -> bool:
        """True when the database exists and holds any table (read without writing)."""
        return bool(self._tables())

    def _unreachable(self, e: Exception) -> str:
        return f"cannot reach database {self.masked_url}: {urls.scrub(_first_line(e), [self.url])}"

    def check_schema(self, *, write: bool) -> None:
        """Refuse a database that is not evo's, or whose schema this code cannot use.

        write=False (show, runs, report): the database must exist at this code's schema; nothing is
        created or migrated. write=True: an empty or missing database gets the schema, an older one
        is migrated (`migrate`). Either way a database holding other tables is refused untouched.
        """
        tables = self._tables()
        if not tables:
            if write:
                return
            what = "does not exist" if tables is None else "is empty"
            raise StoreError(f"no evo database at {self.masked_url}: it {what} (`evo run` creates one)")
        foreign = sorted(tables - EVO_TABLES)
        if foreign or "alembic_version" not in tables:
            shown = ", ".join(repr(t) for t in (foreign or sorted(tables))[:5])
            raise StoreError(
                f"database {self.masked_url} holds tables that are not evo's ({shown}); "
                "give evo an empty database or one of its own"
            )
        current, heads, known = self._revisions()
        unknown = [r for r in current if r not in known]
        if unknown:
            raise StoreError(
                f"database {self.masked_url} has schema revision {unknown[0]}, newer than this "
                f"version of evo knows (head {', '.join(sorted(heads))}); upgrade evo"
            )
        if not write and set(current) != heads:
            raise StoreError(
                f"database {self.masked_url} has an older evo schema ({', '.join(current) or 'none'}); "
                "`evo resume NAME` or `evo run` upgrades it"
            )

    @staticmethod
    def _alembic():
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from evo import migrations

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
        return cfg, ScriptDirectory.from_config(cfg)

    def _revisions(self) -> tuple[tuple[str, ...], set[str], set[str]]:
        from alembic.runtime.migration import MigrationContext

        _, script = self._alembic()
        try:
            with self.engine.connect() as conn:
                current = tuple(MigrationContext.configure(conn).get_current_heads())
        except OperationalError as e:
            raise StoreError(self._unreachable(e)) from None
        return current, set(script.get_heads()), {r.revision for r in script.walk_revisions()}

    def migrate(self) -> None:
        """Create the schema or bring it up to date (Alembic `upgrade head`), after `check_schema`."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        self.check_schema(write=True)
        cfg, script = self._alembic()
        if self.sqlite_path is not None:
            urls.check_sqlite_path(self.sqlite_path)
        try:
            with self.engine.begin() as conn:
                if set(MigrationContext.configure(conn).get_current_heads()) != set(script.get_heads()):
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
        except OperationalError as e:
            raise StoreError(self._unreachable(e)) from None

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def db_now(self, conn=None) -> dt.datetime:
        """The database's clock (UTC): leases expire by it, whatever the clocks of the hosts say."""
        if conn is None:
            with self.engine.connect() as c:
                return self.db_now(c)
        if conn.dialect.name == "sqlite":
            v = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return dt.datetime.fromisoformat(v).replace(tzinfo=dt.timezone.utc)
        return _utc(conn.execute(text("SELECT clock_timestamp()")).scalar_one()).astimezone(dt.timezone.utc)

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
        try:
            with self.engine.begin() as conn:
                now = self.db_now(conn)
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

    def update_run(self, run_id: int, *, owner: str | None = None, **values: Any) -> None:
        """Change a run's row. With `owner`, only while that process holds the run's lease (LeaseLost otherwise)."""
        allowed = {"status", "generations_target", "config", "report_path"}
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"cannot update run fields {sorted(bad)}")
        q = update(runs).where(runs.c.id == run_id)
        if owner is not None:
            q = q.where(runs.c.lease_owner == owner)
        with self.engine.begin() as conn:
            if conn.execute(q.values(updated_at=self.db_now(conn), **values)).rowcount != 1 and owner is not None:
                raise LeaseLost(f"run {run_id}: this process no longer holds the run; {sorted(values)} not changed")

    # -- the lease: one process advances a run at a time ----------------------------------------
    # Every expiry is computed and compared on the database's clock, so hosts whose clocks
    # disagree still agree on who holds a run.
    def acquire_lease(self, run_id: int, owner: str, seconds: float, stale_owner: str | None = None) -> None:
        """Take the run's lease for `seconds`, or raise RunBusy.

        One conditional UPDATE decides (both backends serialise writers on the
        row), so of two processes racing for a free run exactly one wins. The
        lease is free when nobody holds it, when it expired, or when the caller
        proved its holder dead (`stale_owner`).
        """
        with self.engine.begin() as conn:
            now = self.db_now(conn)
            cond = (
                (runs.c.lease_owner.is_(None))
                | (runs.c.lease_owner == owner)
                | (runs.c.lease_expires < now)
            )
            if stale_owner is not None:
                cond = cond | (runs.c.lease_owner == stale_owner)
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
        with self.engine.begin() as conn:
            now = self.db_now(conn)
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

    def lease_expired(self, run_id: int) -> bool:
        """True when nobody holds the run or its lease ran out (by the database's clock)."""
        holder, until = self.lease_of(run_id)
        return holder is None or until is None or until < self.db_now()

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
    def cached_metrics(self, family: str, hashes: Sequence[str], evaluation_key: str) -> dict[str, Evaluated]:
        """What the store holds for these genomes under this evaluation key, by genome hash."""
        out: dict[str, Evaluated] = {}
        cols = ", ".join(f'e."{m}"' for m in METRICS)
        with self.engine.connect() as conn:
            mark = "%s" if conn.dialect.name == "postgresql" else "?"
            for part in _chunks(list(dict.fromkeys(hashes)), _IN_CHUNK):
                # driver SQL: compiling a 500-parameter IN costs more than running it
                sql = (f"SELECT i.genome_hash, e.per_asset, e.trades, {cols} FROM individuals i "
                       f"JOIN evaluations e ON e.individual_id = i.id "
                       f"WHERE i.family = {mark} AND e.evaluation_key = {mark} "
                       f"AND i.genome_hash IN ({', '.join([mark] * len(part))})")
                for r in conn.exec_driver_sql(sql, (family, evaluation_key, *part)):
                    pa = r[1]
                    out[r[0]] = Evaluated([_unnum(v) for v in r[3:]], json.loads(pa) if isinstance(pa, str) else pa, r[2])
        return out

    # -- the atomic write ------------------------------------------------------------------------
    def persist_generation(
        self,
        *,
        run_id: int,
        number: int,
        family: str,
        evaluation_key: str,
        offspring: OffspringRows,
        survivors: SurvivorRows,
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
        try:
            with self.engine.begin() as conn:
                now = self.db_now(conn)
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
                ids = self._ensure_individuals(conn, family, offspring.hashes, offspring.genes_json)
                _stage(on_stage, "individuals")
                new = np.flatnonzero(offspring.new).tolist()
                if new:
                    _bulk_insert(conn, evaluations, EVALUATION_COLUMNS, [
                        (ids[offspring.hashes[i]], evaluation_key, _json_or_null(offspring.per_asset[i]), now,
                         offspring.trades[i], *m)
                        for i, m in zip(new, _nullable(offspring.metrics[new]))
                    ], ["individual_id", "evaluation_key"])
                _stage(on_stage, "evaluations")
                missing = [h for h in survivors.hashes if h not in ids]
                if missing:
                    ids.update(self._ids_by_hash(conn, family, missing))
                rows = [(run_id, number, ids[h], "offspring", None, None, o)
                        for h, o in zip(offspring.hashes, json_floats(offspring.objectives))]
                ranks = [None if r is None else int(r) for r in _nullable(survivors.rank)]
                rows += [(run_id, number, ids[h], "survivor", r, c, o)
                         for h, r, c, o in zip(survivors.hashes, ranks, _nullable(survivors.crowding),
                                               json_floats(survivors.objectives))]
                if rows:
                    _bulk_insert(conn, members, MEMBER_COLUMNS, rows)
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
                if lease_owner is not None and self.lease_of(run_id)[0] != lease_owner:
                    raise LeaseLost(
                        f"run {run_id}: generation {number} is committed, but this process no longer holds the run"
                    ) from None
                return False
            raise EvoError(
                f"generation {number} of run {run_id} is already committed with a different state"
            ) from None
        return True

    def _ensure_individuals(self, conn, family: str, hashes: Sequence[str], genes_json: Sequence[str]) -> dict[str, int]:
        """Insert the individuals that are new; the ids of all of them, by genome hash."""
        if not len(hashes):
            return {}
        rows = list({h: (family, h, g) for h, g in zip(hashes, genes_json)}.values())
        _bulk_insert(conn, individuals, ["family", "genome_hash", "genes"], rows, ["family", "genome_hash"])
        if conn.dialect.name == "postgresql":
            # the rows just copied are still in the temporary table: join instead of 1000 parameters
            cur = conn.connection.driver_connection.cursor()
            cur.execute(
                'SELECT i.genome_hash, i.id FROM "_evo_bulk_individuals" t JOIN individuals i '
                "ON i.family = t.family AND i.genome_hash = t.genome_hash"
            )
            return dict(cur.fetchall())
        return self._ids_by_hash(conn, family, [r[1] for r in rows])

    @staticmethod
    def _ids_by_hash(conn, family: str, hashes: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        for part in _chunks(list(hashes), _IN_CHUNK):
            # driver SQL: compiling a 500-parameter IN costs more than running it
            sql = (f"SELECT genome_hash, id FROM individuals WHERE family = {mark} "
                   f"AND genome_hash IN ({', '.join([mark] * len(part))})")
            out.update(conn.exec_driver_sql(sql, (family, *part)).all())
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
                evaluations.c.trades,
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
                        "trades": r["trades"],
                        "metrics": {m: _unnum(r[m]) for m in METRICS},
                    }
                )
        return out

    # -- validation ----------------------------------------------------------------------------
    def save_evaluations(self, family: str, rows: Sequence[tuple[str, dict, str, Sequence[float], Any, int | None]]) -> None:
        """Store (genome_hash, genes, evaluation_key, metrics, per_asset, trades) rows; existing ones are kept."""
        if not rows:
            return
        with self.engine.begin() as conn:
            now = self.db_now(conn)
            ids = self._ensure_individuals(conn, family, [r[0] for r in rows], [json.dumps(r[1]) for r in rows])
            _bulk_insert(conn, evaluations, EVALUATION_COLUMNS, [
                (ids[h], key, _json_or_null(pa), now, trades, *_nullable(np.asarray(metrics, dtype=np.float64)))
                for h, _, key, metrics, pa, trades in rows
            ], ["individual_id", "evaluation_key"])

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
        """`metric` of every distinct behaviour the run evaluated, each under its generation's key: genomes
        whose trades are identical (the same trade fingerprint) count once; an evaluation stored before
        fingerprints existed counts as its own behaviour."""
        q = (
            select(individuals.c.id, generations.c.evaluation_key, evaluations.c.trades, evaluations.c[metric])
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
        seen: dict = {}
        with self.engine.connect() as conn:
            for ind, key, trades, value in conn.execute(q):
                seen.setdefault((key, trades) if trades is not None else (key, "individual", ind), _unnum(value))
        return list(seen.values())

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


#: column order of the rows persist_generation and save_evaluations write
EVALUATION_COLUMNS = ["individual_id", "evaluation_key", "per_asset", "created_at", "trades", *METRICS]
MEMBER_COLUMNS = ["run_id", "generation", "individual_id", "role", "rank", "crowding", "objectives"]


def _json_or_null(v) -> str | None:
    return None if v is None else json.dumps(v)


def _bulk_insert(conn, table, cols: list[str], rows: list[tuple], conflict_keys: list[str] | None = None) -> None:
    """Insert many rows (tuples in `cols` order, JSON columns as JSON text); with `conflict_keys`, rows
    that already exist are skipped (ON CONFLICT DO NOTHING).

    PostgreSQL gets COPY (through a temporary table when conflicts are possible), SQLite executemany
    straight to sqlite3: a generation is thousands of rows, and SQLAlchemy's per-row parameter
    processing cost ~25 us a row there, most of a generation's commit.
    """
    if not rows:
        return
    name = conn.dialect.name
    if name == "postgresql":
        _pg_copy_insert(conn, table, cols, rows, conflict_keys)
        return
    if name != "sqlite":  # pragma: no cover
        raise StoreError(f"unsupported database backend {name!r} (use SQLite or PostgreSQL)")
    stamps = [i for i, c in enumerate(cols) if isinstance(table.c[c].type, DateTime)]
    if stamps:  # stored as SQLAlchemy stores them on SQLite, so either reads them back
        rows = [tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if i in stamps and v is not None else v
                      for i, v in enumerate(r)) for r in rows]
    quoted = ", ".join(f'"{c}"' for c in cols)  # column names come from our own Table objects
    sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(cols))})'
    if conflict_keys is not None:
        sql += f" ON CONFLICT ({', '.join(conflict_keys)}) DO NOTHING"
    conn.exec_driver_sql(sql, rows)


def _pg_copy_insert(conn, table, cols: list[str], rows: list[tuple], conflict_keys: list[str] | None) -> None:
    quoted = ", ".join(f'"{c}"' for c in cols)  # column names come from our own Table objects
    cur = conn.connection.driver_connection.cursor()
    target = table.name
    if conflict_keys is not None:
        target = f"_evo_bulk_{table.name}"
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{target}" AS SELECT {quoted} FROM "{table.name}" WITH NO DATA')
        cur.execute(f'TRUNCATE "{target}"')
    with cur.copy(f'COPY "{target}" ({quoted}) FROM STDIN') as copy:
        for r in rows:
            copy.write_row(r)
    if conflict_keys is not None:
        keys = ", ".join(f'"{k}"' for k in conflict_keys)
        cur.execute(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{target}" ON CONFLICT ({keys}) DO NOTHING'
        )


def _stage(on_stage: Callable[[str], None] | None, stage: str) -> None:
    if on_stage is not None:
        on_stage(stage)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives any crash of the process; only a power loss or an OS crash
    # can take the last commits back, and evolution is deterministic, so `evo resume` then recomputes
    # exactly those generations. FULL's fsync per commit cost a fast generation several milliseconds.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # a generation of 10,000 inserts index entries at random places (content hashes): with SQLite's
    # default 2 MB page cache their pages kept being evicted and re-read
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def open_store(url: str, *, write: bool) -> Store:
    """The evo database at `url`, checked before anything is written.

    write=True (run, resume, serve, walkforward): created or migrated when needed. write=False
    (show, runs, report): it must already be an evo database at this code's schema; nothing is
    created, migrated or switched (no file, no DDL, no WAL mode).
    """
    store = Store(url)
    if write:
        store.migrate()
    else:
        store.check_schema(write=False)
    return store
