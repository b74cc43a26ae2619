"""Helpers the store's modules share: bulk inserts by column name, driver SQL, timestamps, error text."""

from __future__ import annotations

import datetime as dt
from itertools import repeat
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import DateTime

from evo.config.errors import first_line  # noqa: F401  (what the store modules quote of a driver's error)
from evo.store.records import StoreError

#: bound parameters per IN (...) query
IN_CHUNK = 500


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utc(v):
    """SQLite returns naive datetimes; every timestamp here was written in UTC."""
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.timezone.utc)
    return v


def chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def mark(conn) -> str:
    """The driver's parameter mark: driver SQL skips SQLAlchemy's compilation, which for a 500-parameter
    IN (...) costs more than running the query."""
    return "%s" if conn.dialect.name == "postgresql" else "?"


def stage(on_stage: Callable[[str], None] | None, name: str) -> None:
    if on_stage is not None:
        on_stage(name)


def _is_column(v) -> bool:
    return isinstance(v, (list, tuple, range)) or hasattr(v, "__array__")


def bulk_insert(conn, table, columns: Mapping[str, Any], *, conflict: tuple[str, ...] | None = None,
                replace: bool = False) -> None:
    """Insert rows given as columns by name: each value a sequence (a row per element) or one value
    for every row. With `conflict` (the unique key's columns), a row that exists is kept (ON CONFLICT
    DO NOTHING) or, with `replace`, overwritten (ON CONFLICT DO UPDATE).

    PostgreSQL gets COPY (through a temporary table when conflicts are possible), SQLite executemany
    straight to sqlite3: a generation is thousands of rows, and SQLAlchemy's per-row parameter
    processing would be most of a generation's commit.
    """
    n = max((len(v) for v in columns.values() if _is_column(v)), default=0)
    if n == 0:
        return
    name = conn.dialect.name
    if name not in ("postgresql", "sqlite"):  # pragma: no cover
        raise StoreError(f"unsupported database backend {name!r} (use SQLite or PostgreSQL)")
    names = list(columns)
    cols = []
    for c in names:
        v = columns[c]
        if name == "sqlite" and isinstance(table.c[c].type, DateTime):
            # stored as SQLAlchemy stores them on SQLite, so either reads them back
            fmt = lambda x: None if x is None else x.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
            v = list(map(fmt, v)) if _is_column(v) else fmt(v)
        cols.append(v if _is_column(v) else repeat(v, n))
    rows = list(zip(*cols))
    if name == "postgresql":
        _pg_copy_insert(conn, table, names, rows, conflict, replace)
        return
    quoted = ", ".join(f'"{c}"' for c in names)  # column names come from our own Table objects
    sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(names))})'
    if conflict is not None:
        sql += _on_conflict(names, conflict, replace)
    conn.exec_driver_sql(sql, rows)


def _on_conflict(names: list[str], conflict: tuple[str, ...], replace: bool) -> str:
    keys = ", ".join(f'"{k}"' for k in conflict)
    if not replace:
        return f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in names if c not in conflict)
    return f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def _pg_copy_insert(conn, table, names: list[str], rows: list[tuple], conflict, replace: bool) -> None:
    quoted = ", ".join(f'"{c}"' for c in names)  # column names come from our own Table objects
    cur = conn.connection.driver_connection.cursor()
    target = table.name
    if conflict is not None:
        target = f"_evo_bulk_{table.name}"
        cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{target}" AS SELECT {quoted} FROM "{table.name}" WITH NO DATA')
        cur.execute(f'TRUNCATE "{target}"')
    with cur.copy(f'COPY "{target}" ({quoted}) FROM STDIN') as copy:
        for r in rows:
            copy.write_row(r)
    if conflict is not None:
        cur.execute(f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{target}"'
                    + _on_conflict(names, conflict, replace))


def sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives any crash of the process; only a power loss or an OS crash
    # can take the last commits back, and evolution is deterministic, so `evo resume` then recomputes
    # exactly those generations. FULL fsyncs every commit, several milliseconds of a fast generation.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # a generation of 10,000 inserts index entries at random places (content hashes): with SQLite's
    # default 2 MB page cache their pages kept being evicted and re-read
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()
