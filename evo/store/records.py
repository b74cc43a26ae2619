"""What the store hands back and takes: typed records, read by attribute, and the store's errors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


from evo.config.errors import LeaseLost, RunBusy, StoreError  # noqa: F401  (the store's errors, re-exported)


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


@dataclass
class ChunkStats:
    """How a generation's unseen offspring were split into evaluate tasks, and what each chunk cost."""

    sizes: list[int] = field(default_factory=list)
    budget_bytes: int = 0
    bytes_per_strategy: int = 0
    parallel: int = 0
    available_bytes: int = 0
    fixed_bytes: int = 0
    cluster: list[list] = field(default_factory=list)  # the workers planned for: [address, threads, memory limit]
    rss_before_after: list[list[int]] = field(default_factory=list)  # per chunk
    workers: list[list[int]] = field(default_factory=list)  # per chunk: [pid, markets that process loaded]
    addresses: list[str] = field(default_factory=list)  # per chunk: the Dask worker that ran it ("": no worker)


@dataclass
class GenerationStats:
    """What one generation did, as stored with it and shown in the log, the artifacts, `evo show` and the
    report. `to_json` gives the stored JSON; `from_json` reads it back, also from rows written before a
    field existed (it takes its default) or after one was added (kept in `extra`, written back as it was)."""

    generation: int
    hypervolume: float = 0.0
    best: dict[str, float | None] = field(default_factory=dict)  # per objective metric, in metric units
    n_feasible: int = 0
    pareto_size: int = 0
    n_offspring: int = 0
    evaluated: int = 0
    cache_hits: int = 0
    eval_seconds: float = 0.0
    chunks: ChunkStats = field(default_factory=ChunkStats)
    peak_rss: int = 0
    seconds: float = 0.0
    reevaluated: bool = False  # the survivors again, on changed market data
    data_fingerprint: str | None = None  # the new data's, when reevaluated
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("reevaluated", "data_fingerprint", "extra"):
                continue
            v = getattr(self, f.name)
            out[f.name] = _chunks_json(v) if f.name == "chunks" else v
        if self.reevaluated:
            out.update(reevaluated=True, data_fingerprint=self.data_fingerprint)
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "GenerationStats":
        known = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in known}
        if "chunks" in kw:
            c = dict(kw["chunks"] or {})
            names = {f.name for f in fields(ChunkStats)}
            kw["chunks"] = ChunkStats(**{k: v for k, v in c.items() if k in names})
        kw["extra"] = {k: v for k, v in d.items() if k not in known}
        return cls(**kw)


def _chunks_json(c: ChunkStats) -> dict:
    return {f.name: getattr(c, f.name) for f in fields(c)}


@dataclass(frozen=True)
class GenerationRecord:
    number: int
    checkpoint: dict
    stats: GenerationStats
    flow_run_id: str | None
    created_at: dt.datetime
    evaluation_key: str


@dataclass(frozen=True)
class Evaluated:
    """A stored evaluation of one genome under one key. `metrics` holds the names asked for, in that
    order, and is None when the evaluation lacks any of them (stored before a metric existed): such an
    evaluation is to be computed again, never read as NaN. `per_asset` is (n_assets, len(names)) the same
    way (None for a one-symbol market); `trades` is the trade fingerprint (None: unknown)."""

    metrics: np.ndarray | None
    per_asset: np.ndarray | None
    trades: int | None


@dataclass(frozen=True)
class Member:
    """A member of a generation with its genes and its evaluation under the generation's key. `metrics`
    has every metric of the table by name (NaN where its evaluation lacks one); `per_asset` is by name
    too, a list per metric with a value per symbol (None for one symbol)."""

    genome_hash: str
    genes: dict
    rank: int | None
    crowding: float | None
    objectives: list
    metrics: dict[str, float]
    per_asset: dict[str, list[float]] | None
    trades: int | None
