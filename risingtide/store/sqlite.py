"""Where ``Store`` lived when it kept only a SQLite file; kept so older imports still work.

The store now lives in ``risingtide.store.core`` (SQLite or PostgreSQL), its errors in
``risingtide.store.errors`` and its records in ``risingtide.store.records``.
"""

from risingtide.store.core import Store, open_store
from risingtide.store.errors import (
    Fenced,
    NotDeadError,
    OutboxStatus,
    SchemaTooNewError,
    StoreError,
    StoreLocked,
    UnknownEntryError,
)
from risingtide.store.records import HistoryEntry, OutboxEntry

__all__ = [
    "Fenced",
    "HistoryEntry",
    "NotDeadError",
    "OutboxEntry",
    "OutboxStatus",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "StoreLocked",
    "UnknownEntryError",
    "open_store",
]
