"""The state store: line state, the append-only history and the outbox of responses.

``Store`` keeps them in one SQLite file, or in a PostgreSQL database replicas share
(SQLAlchemy Core; ``core``, ``outbox``); ``open_store`` opens the one the config names.
``schema`` holds the tables and ``migrate`` brings a database to them (Alembic);
``codec`` turns domain values into JSON and back.
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
