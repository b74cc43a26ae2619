"""The evaluation cache: metrics by genome and evaluation key, stored by name.

An evaluation's metrics are one float64 blob (exact for NaN and infinities, one bound parameter per row
whatever the number of metrics) and a reference to the `metric_sets` row naming its values in blob
order. A lookup asks for the names it needs: an evaluation whose set lacks any of them is stored but not
found, so it is computed again and replaces the old row, instead of reading NaN for a metric that did
not exist when it was stored. Evaluation keys are rows of their own, referenced by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sqlalchemy import select

from evo.store.models import evaluation_keys, evaluations, metric_sets
from evo.store.records import Evaluated
from evo.store.sql import IN_CHUNK, bulk_insert, chunks, mark

#: how metric values are laid out in a blob
FLOAT = np.dtype("<f8")


def pack(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=FLOAT).tobytes()


def unpack(blob: bytes, width: int) -> np.ndarray:
    """A blob's values as rows of `width` (one row: the metrics; a row per symbol: per-asset metrics)."""
    return np.frombuffer(blob, dtype=FLOAT).reshape(-1, width)


@dataclass(frozen=True)
class MetricSet:
    """The names of a blob's values, in order."""

    id: int
    names: tuple[str, ...]

    def order(self, wanted: Sequence[str]) -> np.ndarray | None:
        """Positions of `wanted` in a blob of this set (None: the set lacks one of them)."""
        where = {n: i for i, n in enumerate(self.names)}
        if any(n not in where for n in wanted):
            return None
        return np.array([where[n] for n in wanted], dtype=np.intp)


@dataclass
class EvaluationRows:
    """New evaluations to store, as columns: row i of each is evaluation i. `metrics` has a column per
    name of `names`; `per_asset` is (n_assets, len(names)) per row, or None."""

    hashes: Sequence[str]
    genes_json: Sequence[str]  # the genomes' decoded genes as JSON text (GeneSpace.genes_json)
    names: Sequence[str]
    metrics: np.ndarray
    per_asset: Sequence[np.ndarray | None]
    trades: Sequence[int | None]
    blocks: Sequence[bytes | None] | None = None  # block-sums blobs (evo.store.blocks), or None for all

    def __len__(self) -> int:
        return len(self.hashes)


class EvaluationsMixin:
    """Store methods for the evaluation cache (mixed into `Store`)."""

    # The ids of dictionary rows (metric sets, evaluation keys) are read each time, never kept between
    # calls: a database recreated at the same URL (or migrated down and up) under a long-lived process,
    # such as `evo serve`, numbers them anew. One small query per generation.

    # -- dictionary rows ---------------------------------------------------------------------------
    def metric_set(self, conn, set_id: int, known: dict | None = None) -> MetricSet:
        """The metric set with this id (`known`: sets already read by the caller, by id)."""
        if known is not None and set_id in known:
            return known[set_id]
        names = conn.execute(select(metric_sets.c.names).where(metric_sets.c.id == set_id)).scalar_one()
        ms = MetricSet(set_id, tuple(json.loads(names)))
        if known is not None:
            known[set_id] = ms
        return ms

    def _dictionary_id(self, table, column: str, value: str) -> int:
        """The id of the row holding `value`, inserted first if it is new. It commits on its own: such a
        row states a fact (a key, a list of names) that holds whether or not a generation commits."""
        with self.engine.begin() as conn:
            bulk_insert(conn, table, {column: [value]}, conflict=(column,))
            return conn.execute(select(table.c.id).where(table.c[column] == value)).scalar_one()

    def metric_set_id(self, names: Sequence[str]) -> int:
        return self._dictionary_id(metric_sets, "names", json.dumps(list(names)))

    def key_id(self, key: str) -> int:
        return self._dictionary_id(evaluation_keys, "key", key)

    @staticmethod
    def _known_key_id(conn, key: str) -> int | None:
        """The key's id, or None when nothing was ever stored under it (and nothing is written)."""
        return conn.execute(select(evaluation_keys.c.id).where(evaluation_keys.c.key == key)).scalar()

    # -- reading -----------------------------------------------------------------------------------
    def cached_metrics(self, family: str, hashes: Sequence[str], evaluation_key: str,
                       names: Sequence[str]) -> dict[str, Evaluated]:
        """What the store holds for these genomes under this evaluation key, by genome hash, with the
        metrics `names` in that order (`Evaluated.metrics` is None where the stored set lacks one)."""
        out: dict[str, Evaluated] = {}
        with self.engine.connect() as conn:
            kid = self._known_key_id(conn, evaluation_key)
            if kid is None:
                return out
            m = mark(conn)
            found = []
            for part in chunks(list(dict.fromkeys(hashes)), IN_CHUNK):
                sql = (f"SELECT i.genome_hash AS genome_hash, e.metric_set_id AS metric_set_id, e.metrics AS metrics, "
                       f"e.per_asset AS per_asset, e.trades AS trades FROM individuals i "
                       f"JOIN evaluations e ON e.individual_id = i.id "
                       f"WHERE i.family = {m} AND e.key_id = {m} AND i.genome_hash IN ({', '.join([m] * len(part))})")
                found += conn.exec_driver_sql(sql, (family, kid, *part)).all()
            sets = {sid: self.metric_set(conn, sid) for sid in {r.metric_set_id for r in found}}
        for set_id, ms in sets.items():
            order = ms.order(names)
            rows = [r for r in found if r.metric_set_id == set_id]
            values = unpack(b"".join(map(bytes, (r.metrics for r in rows))), len(ms.names))
            values = values[:, order] if order is not None else None
            for j, r in enumerate(rows):
                pa = None
                if r.per_asset is not None and order is not None:
                    pa = unpack(bytes(r.per_asset), len(ms.names))[:, order]
                out[r.genome_hash] = Evaluated(None if values is None else values[j], pa, r.trades)
        return out

    # -- writing -----------------------------------------------------------------------------------
    def _write_evaluations(self, conn, ids: dict[str, int], key_id: int, set_id: int, rows: EvaluationRows,
                           now) -> None:
        """Insert the evaluations, replacing a stored one of the same genome and key (one that lacked a
        metric, or whatever another run stored meanwhile: an evaluation depends on nothing else). The
        caller resolved the key's and the metric set's ids just before its transaction began."""
        if not len(rows):
            return
        metrics = np.ascontiguousarray(rows.metrics, dtype=FLOAT)
        bulk_insert(conn, evaluations, {
            "individual_id": [ids[h] for h in rows.hashes],
            "key_id": key_id,
            "metric_set_id": set_id,
            "metrics": [row.tobytes() for row in metrics],
            "per_asset": [None if pa is None else pack(pa) for pa in rows.per_asset],
            "created_at": now,
            "trades": list(rows.trades),
            "blocks": list(rows.blocks) if rows.blocks is not None else None,
        }, conflict=("individual_id", "key_id"), replace=True)

    def save_evaluations(self, family: str, evaluation_key: str, rows: EvaluationRows) -> None:
        """Store evaluations of genomes under one key (validation: the holdout, walk-forward folds)."""
        if not len(rows):
            return
        key_id = self.key_id(evaluation_key)
        set_id = self.metric_set_id(rows.names)
        with self.engine.begin() as conn:
            ids = self._ensure_individuals(conn, family, rows.hashes, rows.genes_json)
            self._write_evaluations(conn, ids, key_id, set_id, rows, self.db_now(conn))
