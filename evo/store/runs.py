"""Runs and the lease: creating, finding and updating runs, and the one process that advances a run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from evo.store.models import generations, runs
from evo.store.records import LeaseLost, RunBusy, RunRecord, StoreError
from evo.store.sql import utc


def busy_message(name: str | None, holder: str | None, until: dt.datetime | None) -> str:
    return (
        f"run {name!r} is busy: another process ({holder}) is advancing it"
        + (f" (lease until {until:%Y-%m-%d %H:%M:%S} UTC)" if until else "")
        + "; wait for it to finish, or for its lease to expire if it died on another host"
    )


def run_record(row) -> RunRecord:
    return RunRecord(**{k: utc(row[k]) for k in RunRecord.__dataclass_fields__})


class RunsMixin:
    """Store methods for runs and their lease (mixed into `Store`)."""

    # -- runs ----------------------------------------------------------------------------------
    def get_run(self, name: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.name == name)).mappings().first()
        return run_record(row) if row else None

    def run_by_id(self, run_id: int) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        return run_record(row) if row else None

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
            return [(run_record(r), int(r["done"])) for r in conn.execute(q).mappings()]

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
        return row.lease_owner, utc(row.lease_expires)
