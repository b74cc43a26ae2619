"""Persistence: SQLAlchemy tables (models.py) and the one module that talks SQL (store.py)."""

from evo.store.store import (
    DEFAULT_URL,
    GenerationRecord,
    LeaseLost,
    OffspringRow,
    RunBusy,
    RunRecord,
    Store,
    StoreError,
    SurvivorRow,
    has_password,
    mask_url,
    resolve_url,
)

__all__ = [
    "DEFAULT_URL",
    "GenerationRecord",
    "LeaseLost",
    "OffspringRow",
    "RunBusy",
    "RunRecord",
    "Store",
    "StoreError",
    "SurvivorRow",
    "has_password",
    "mask_url",
    "resolve_url",
]
