"""Generations: the one transaction that commits a generation, and reading committed ones back."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from evo.config import codec
from evo.config.errors import EvoError
from evo.config.metrics import METRICS
from evo.search.population import Population
from evo.store.evaluations import EvaluationRows
from evo.store.models import generations, individuals, members, runs
from evo.store.records import GenerationRecord, GenerationStats, LeaseLost, StoreError
from evo.store.sql import IN_CHUNK, bulk_insert, chunks, first_line, mark, stage, utc


def objectives_json(F: np.ndarray) -> list[str]:
    """Each row of an objective matrix as JSON text (non-finite values as evo.config.codec writes them),
    formatted in bulk: a generation has thousands."""
    F = np.asarray(F, dtype=np.float64)
    finite = np.isfinite(F).all(axis=1).tolist()
    # finite rows are formatted here, as json.dumps would (floats as their repr): a call per row costs
    return ["[" + ",".join(map(repr, r)) + "]" if ok else codec.row_json(r, False) for r, ok in zip(F.tolist(), finite)]


def nullable(a: np.ndarray) -> list:
    """A float array as a list with None where it is NaN (SQL NULL)."""
    a = np.asarray(a, dtype=np.float64)
    if not np.isnan(a).any():
        return a.tolist()
    out = a.astype(object)
    out[np.isnan(a)] = None
    return out.tolist()


def _record(row) -> GenerationRecord:
    return GenerationRecord(number=row["number"], checkpoint=row["checkpoint"],
                            stats=GenerationStats.from_json(row["stats"]), flow_run_id=row["flow_run_id"],
                            created_at=utc(row["created_at"]), evaluation_key=row["evaluation_key"])


class GenerationsMixin:
    """Store methods for generations (mixed into `Store`)."""

    def persist_generation(
        self,
        *,
        run_id: int,
        number: int,
        family: str,
        evaluation_key: str,
        offspring: Population,
        survivors: Population,
        genes_json: Sequence[str],
        objective_signs: Sequence[float],
        checkpoint: dict,
        stats: GenerationStats,
        flow_run_id: str | None = None,
        lease_owner: str | None = None,
        lease_seconds: float = 0.0,
        new_data: tuple[str, str] | None = None,
        on_stage: Callable[[str], None] | None = None,
        neighbours: Population | None = None,
        neighbour_genes_json: Sequence[str] = (),
        blocks: Mapping[int, np.ndarray] | None = None,
    ) -> bool:
        """Commit generation `number` of a run, all or nothing: the generation row (checkpoint, stats), the
        offspring's new individuals (`genes_json`: their genes as JSON text), the evaluations made in this
        generation (`offspring.evaluated`), and the members (`objective_signs` turns F into metric units).

        Returns False (and writes nothing) if that generation was already committed with the same
        checkpoint: a retried persist is a no-op. A different checkpoint for an existing generation is
        an error. With `lease_owner`, the commit also renews the run's lease and fails with LeaseLost if
        another process took it. `new_data` = (fingerprint, evaluation key) moves the run onto new market
        data in the same transaction. `on_stage(stage)` is called after each stage inside the
        transaction (the fault-injection tests use it). `neighbours` (robust fitness: genomes evaluated
        only as the offspring's neighbours, genes as `neighbour_genes_json`) become individuals, and their
        evaluations made in this generation are written with the offspring's; they are not members.
        `blocks`: the block sums of the behaviours evaluated, by trade fingerprint: stored on the first new
        evaluation of each behaviour that has none under the key (evo.store.blocks).
        """
        key_id = self.key_id(evaluation_key)
        set_id = self.metric_set_id(METRICS)
        try:
            with self.engine.begin() as conn:
                now = self.db_now(conn)
                conn.execute(insert(generations).values(
                    run_id=run_id, number=number, checkpoint=checkpoint, stats=stats.to_json(),
                    evaluation_key=evaluation_key, flow_run_id=flow_run_id, created_at=now))
                stage(on_stage, "generation")
                pool = offspring if neighbours is None else Population.merge(offspring, neighbours)
                ids = self._ensure_individuals(conn, family, pool.hash.tolist(), genes_json if neighbours is None
                                               else [*genes_json, *neighbour_genes_json])
                stage(on_stage, "individuals")
                new = pool[pool.evaluated]
                blobs, stored = self._blobs(conn, key_id, new.trades.tolist(), blocks or {})
                self._write_evaluations(conn, ids, key_id, set_id, EvaluationRows(
                    new.hash.tolist(), (), METRICS, new.metrics, new.per_asset.tolist(), new.trades.tolist(),
                    blobs), now)
                stage(on_stage, "evaluations")
                self._write_members(conn, run_id, number, ids, family, offspring, survivors, objective_signs)
                stage(on_stage, "members")
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
                stage(on_stage, "commit")
            self._committed_blobs(key_id, stored)
        except IntegrityError as e:
            existing = self.generation(run_id, number)
            if existing is None:
                raise StoreError(f"cannot commit generation {number} of run {run_id}: {first_line(e)}") from None
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

    def _write_members(self, conn, run_id: int, number: int, ids: dict[str, int], family: str,
                       offspring: Population, survivors: Population, signs: Sequence[float]) -> None:
        """The offspring and the survivors of a generation as members, objectives in metric units."""
        off, surv = offspring.hash.tolist(), survivors.hash.tolist()
        missing = [h for h in surv if h not in ids]  # survivors of earlier generations
        if missing:
            ids.update(self._ids_by_hash(conn, family, missing))
        signs = np.asarray(signs, dtype=np.float64)
        ranks = [None if r is None else int(r) for r in nullable(survivors.rank)]
        bulk_insert(conn, members, {
            "run_id": run_id,
            "generation": number,
            "individual_id": [ids[h] for h in off] + [ids[h] for h in surv],
            "role": ["offspring"] * len(off) + ["survivor"] * len(surv),
            "rank": [None] * len(off) + ranks,
            "crowding": [None] * len(off) + nullable(survivors.crowding),
            "objectives": objectives_json(offspring.F * signs) + objectives_json(survivors.F * signs),
        })

    def _ensure_individuals(self, conn, family: str, hashes: Sequence[str], genes_json: Sequence[str]) -> dict[str, int]:
        """Insert the individuals that are new; the ids of all of them, by genome hash."""
        if not len(hashes):
            return {}
        unique = dict(zip(hashes, genes_json))
        bulk_insert(conn, individuals, {"family": family, "genome_hash": list(unique), "genes": list(unique.values())},
                    conflict=("family", "genome_hash"))
        if conn.dialect.name == "postgresql":
            # the rows just copied are still in the temporary table: join instead of 1000 parameters
            found = conn.exec_driver_sql(
                'SELECT i.genome_hash AS genome_hash, i.id AS id FROM "_evo_bulk_individuals" t JOIN individuals i '
                "ON i.family = t.family AND i.genome_hash = t.genome_hash"
            )
            return {r.genome_hash: r.id for r in found}
        return self._ids_by_hash(conn, family, list(unique))

    @staticmethod
    def _ids_by_hash(conn, family: str, hashes: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        m = mark(conn)
        for part in chunks(list(hashes), IN_CHUNK):
            sql = (f"SELECT genome_hash, id FROM individuals WHERE family = {m} "
                   f"AND genome_hash IN ({', '.join([m] * len(part))})")
            out.update((r.genome_hash, r.id) for r in conn.exec_driver_sql(sql, (family, *part)).all())
        return out

    # -- reading -----------------------------------------------------------------------------------
    def last_generation(self, run_id: int) -> GenerationRecord | None:
        q = select(generations).where(generations.c.run_id == run_id).order_by(generations.c.number.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _record(row) if row else None

    def generation(self, run_id: int, number: int) -> GenerationRecord | None:
        q = select(generations).where(generations.c.run_id == run_id, generations.c.number == number)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _record(row) if row else None

    def generation_stats(self, run_id: int) -> list[GenerationStats]:
        """The stats of every committed generation of a run, in order."""
        q = select(generations.c.stats).where(generations.c.run_id == run_id).order_by(generations.c.number)
        with self.engine.connect() as conn:
            return [GenerationStats.from_json(r.stats) for r in conn.execute(q)]
