"""The state store: line state, the append-only history and the outbox of responses.

``Store`` keeps them in one SQLite file (SQLAlchemy Core); ``codec`` turns domain values
into JSON and back; ``schema`` holds the tables.
"""

from risingtide.store.sqlite import (
    Fenced,
    HistoryEntry,
    NotDeadError,
    OutboxEntry,
    OutboxStatus,
    SchemaTooNewError,
    Store,
    StoreError,
    StoreLocked,
    UnknownEntryError,
)

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
]
