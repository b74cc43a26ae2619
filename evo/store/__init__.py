"""Persistence: SQLAlchemy tables (models.py), the one module that talks SQL (store.py), database URLs (url.py)."""

from evo.store.store import (
    GenerationRecord,
    LeaseLost,
    Evaluated,
    OffspringRows,
    RunBusy,
    RunRecord,
    Store,
    StoreError,
    SurvivorRows,
    open_store,
)
from evo.store.url import URLError

__all__ = [
    "GenerationRecord",
    "LeaseLost",
    "Evaluated",
    "OffspringRows",
    "RunBusy",
    "RunRecord",
    "Store",
    "StoreError",
    "SurvivorRows",
    "URLError",
    "open_store",
]
