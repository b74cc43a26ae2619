"""Reading what a run found: members with their metrics, the trials of the verdict, validation results."""

from __future__ import annotations

import math
import struct

from sqlalchemy import delete, func, insert, select

from evo.config.metrics import METRICS
from evo.store.evaluations import unpack
from evo.store.models import evaluation_keys, evaluations, generations, individuals, members, runs, validations
from evo.store.records import Member
from evo.store.sql import now_utc


class ResultsMixin:
    """Store methods that read results (mixed into `Store`)."""

    def _by_name(self, conn, set_id: int | None, blob, per_asset, known: dict) -> tuple[dict[str, float], dict | None]:
        """An evaluation's metrics (and per-asset metrics) by name, every metric of the table present:
        NaN where the evaluation lacks one (or there is no evaluation)."""
        if set_id is None:
            return {m: math.nan for m in METRICS}, None
        names = self.metric_set(conn, set_id, known).names
        values = dict(zip(names, unpack(bytes(blob), len(names))[0].tolist()))
        by_name = {m: values.get(m, math.nan) for m in METRICS}
        pa = None
        if per_asset is not None:
            cols = dict(zip(names, unpack(bytes(per_asset), len(names)).T.tolist()))
            pa = {m: cols[m] for m in METRICS if m in cols}
        return by_name, pa

    def members_of(self, run_id: int, number: int, role: str) -> list[Member]:
        """Members of one generation with their genes and metrics, in insertion order."""
        key_id = (
            select(evaluation_keys.c.id)
            .join(generations, generations.c.evaluation_key == evaluation_keys.c.key)
            .where(generations.c.run_id == run_id, generations.c.number == number)
            .scalar_subquery()
        )
        q = (
            select(individuals.c.genome_hash, individuals.c.genes, members.c.rank, members.c.crowding,
                   members.c.objectives, evaluations.c.metric_set_id, evaluations.c.metrics,
                   evaluations.c.per_asset, evaluations.c.trades)
            .join(individuals, individuals.c.id == members.c.individual_id)
            .outerjoin(evaluations, (evaluations.c.individual_id == members.c.individual_id)
                       & (evaluations.c.key_id == key_id))
            .where(members.c.run_id == run_id, members.c.generation == number, members.c.role == role)
        )
        out, known = [], {}
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                metrics, per_asset = self._by_name(conn, r.metric_set_id, r.metrics, r.per_asset, known)
                out.append(Member(genome_hash=r.genome_hash, genes=r.genes, rank=r.rank, crowding=r.crowding,
                                  objectives=r.objectives, metrics=metrics, per_asset=per_asset, trades=r.trades))
        return out

    def genomes_of(self, run_id: int, prefix: str = "") -> dict[str, dict]:
        """Genes by genome hash of every individual the run ever held (any generation, any role), only
        those whose hash starts with `prefix` (lower-case hex) when given."""
        held = select(members.c.individual_id).where(members.c.run_id == run_id)
        q = select(individuals.c.genome_hash, individuals.c.genes).where(individuals.c.id.in_(held))
        if prefix:
            q = q.where(individuals.c.genome_hash.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return {r.genome_hash: r.genes for r in conn.execute(q)}

    def hashes_of(self, run_id: int) -> list[str]:
        """The genome hash of every individual the run ever held."""
        held = select(members.c.individual_id).where(members.c.run_id == run_id)
        with self.engine.connect() as conn:
            return list(conn.execute(select(individuals.c.genome_hash).where(individuals.c.id.in_(held))).scalars())

    def _trials(self, conn, run_id: int, *columns):
        """One row per distinct behaviour the run evaluated, each under its generation's key: genomes whose
        trades are identical (the same trade fingerprint) count once; an evaluation stored before
        fingerprints existed counts as its own behaviour."""
        seen = set()
        for r in self._trial_rows(conn, run_id, *columns):
            ident = self._trial_ident(r)
            if ident not in seen:
                seen.add(ident)
                yield r

    @staticmethod
    def _trial_ident(r) -> tuple:
        """What makes a row of _trial_rows a behaviour of its own."""
        return (r.key_id, r.trades) if r.trades is not None else (r.key_id, "individual", r.individual)

    def _trial_rows(self, conn, run_id: int, *columns) -> list:
        """Every evaluation of the run's offspring under its generation's key (individual, key_id, trades
        and `columns`), by individual id: _trials keeps the first of each behaviour."""
        q = (
            select(individuals.c.id.label("individual"), evaluations.c.key_id, evaluations.c.trades, *columns)
            .select_from(members)
            .join(individuals, individuals.c.id == members.c.individual_id)
            .join(generations, (generations.c.run_id == members.c.run_id) & (generations.c.number == members.c.generation))
            .join(evaluation_keys, evaluation_keys.c.key == generations.c.evaluation_key)
            .join(evaluations, (evaluations.c.individual_id == members.c.individual_id)
                  & (evaluations.c.key_id == evaluation_keys.c.id))
            .where(members.c.run_id == run_id, members.c.role == "offspring")
            .distinct()
            .order_by(individuals.c.id)
        )
        return conn.execute(q).all()

    def trial_metrics(self, run_id: int, metric: str) -> list[float]:
        """`metric` of every distinct behaviour the run evaluated (`_trials`). NaN where an evaluation
        lacks the metric."""
        out = []
        offset: dict[int, int | None] = {}  # byte offset of the metric in each set's blobs
        with self.engine.connect() as conn:
            for r in self._trials(conn, run_id, evaluations.c.metric_set_id, evaluations.c.metrics):
                if r.metric_set_id not in offset:
                    names = self.metric_set(conn, r.metric_set_id).names
                    offset[r.metric_set_id] = 8 * names.index(metric) if metric in names else None
                at = offset[r.metric_set_id]
                out.append(math.nan if at is None else struct.unpack_from("<d", r.metrics, at)[0])
        return out

    # -- validation --------------------------------------------------------------------------------
    def save_validation(self, run_id: int, kind: str, generation: int, result: dict) -> None:
        """The verdict on one generation's Pareto set; a second one for the same generation replaces it."""
        with self.engine.begin() as conn:
            conn.execute(delete(validations).where(
                validations.c.run_id == run_id, validations.c.kind == kind, validations.c.generation == generation))
            conn.execute(insert(validations).values(
                run_id=run_id, kind=kind, generation=generation, result=result, created_at=now_utc()))

    def latest_validation(self, run_id: int, kind: str) -> tuple[int, dict] | None:
        """(generation, result) of the run's latest validation of this kind."""
        q = (
            select(validations.c.generation, validations.c.result)
            .where(validations.c.run_id == run_id, validations.c.kind == kind)
            .order_by(validations.c.generation.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return (row.generation, row.result) if row else None

    def count_rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (runs, generations, individuals, evaluations, members)
            }
