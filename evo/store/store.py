"""The store: one database behind one interface, the only code that talks SQL (with the modules beside
it). Everything else asks `Store` for plain data and typed records.

`Store` is assembled from one mixin per concern: runs and the lease (runs.py), generations and the
atomic write of one (generations.py), the evaluation cache (evaluations.py), reading results
(results.py), behaviours' block sums for CSCV (blocks.py), paper books and their ledger (paper.py). This module opens the database and keeps its schema: checked before anything is
written, created or migrated by Alembic only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from evo.store import url as urls
from evo.store.blocks import BlocksMixin
from evo.store.evaluations import EvaluationsMixin
from evo.store.generations import GenerationsMixin
from evo.store.models import metadata
from evo.store.paper import PaperMixin
from evo.store.records import StoreError
from evo.store.results import ResultsMixin
from evo.store.runs import RunsMixin
from evo.store.sql import first_line, sqlite_pragmas, utc

#: what an evo database holds; a database with any other table is not evo's
EVO_TABLES = frozenset({t.name for t in metadata.sorted_tables} | {"alembic_version"})


class Store(RunsMixin, GenerationsMixin, EvaluationsMixin, BlocksMixin, ResultsMixin, PaperMixin):
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
            raise StoreError(f"bad database URL {self.masked_url}: {urls.scrub(first_line(e), [self.url])}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", sqlite_pragmas)

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
        return f"cannot reach database {self.masked_url}: {urls.scrub(first_line(e), [self.url])}"

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

        from importlib.resources import files

        cfg = Config()
        # the migration scripts' folder, found as package data: the store does not import the package root
        # (which offers `evo.load`, a layer above)
        cfg.set_main_option("script_location", str(files("evo.migrations")))
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
                _one_migrator(conn)
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
        return utc(conn.execute(text("SELECT clock_timestamp()")).scalar_one()).astimezone(dt.timezone.utc)


#: the PostgreSQL advisory lock that one migration at a time holds (any constant of evo's own)
MIGRATION_LOCK = 0x65766F_6D6967  # "evo" "mig"


def _one_migrator(conn) -> None:
    """Make the migration transaction the only one: processes that open one empty database at once (the
    first runs of two hosts) would otherwise all see no schema and all create it, and all but one fail.
    The others wait here, then find the schema made. PostgreSQL: a transaction-scoped advisory lock;
    SQLite: the database's write lock, taken before the schema is read."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits up to the connection's busy_timeout


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
