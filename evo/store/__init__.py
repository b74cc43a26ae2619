"""Persistence: SQLAlchemy tables (models.py), the one module that talks SQL (store.py), database URLs (url.py)."""

from evo.config.errors import LeaseLost, RunBusy, StoreError, URLError
from evo.store.store import (
    Evaluated,
    GenerationRecord,
    OffspringRows,
    RunRecord,
    Store,
    SurvivorRows,
    open_store,
)

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
