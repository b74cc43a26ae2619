"""Persistence: SQLAlchemy tables (models.py), the one module that talks SQL (store.py), database URLs (url.py)."""

from evo.store.store import (
    GenerationRecord,
    LeaseLost,
    OffspringRow,
    RunBusy,
    RunRecord,
    Store,
    StoreError,
    SurvivorRow,
    open_store,
)
from evo.store.url import URLError

__all__ = [
    "GenerationRecord",
    "LeaseLost",
    "OffspringRow",
    "RunBusy",
    "RunRecord",
    "Store",
    "StoreError",
    "SurvivorRow",
    "URLError",
    "open_store",
]
