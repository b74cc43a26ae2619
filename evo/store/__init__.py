"""Persistence: SQLAlchemy tables (models.py), the store (store.py and the modules it is made of: runs,
generations, evaluations, results), typed records (records.py), database URLs (url.py)."""

from evo.store.evaluations import EvaluationRows
from evo.store.records import (
    ChunkStats,
    Evaluated,
    GenerationRecord,
    GenerationStats,
    LeaseLost,
    Member,
    RunBusy,
    RunRecord,
    StoreError,
)
from evo.store.store import Store, open_store
from evo.config.errors import URLError

__all__ = [
    "ChunkStats",
    "EvaluationRows",
    "Evaluated",
    "GenerationRecord",
    "GenerationStats",
    "LeaseLost",
    "Member",
    "RunBusy",
    "RunRecord",
    "Store",
    "StoreError",
    "URLError",
    "open_store",
]
