"""What the store raises.

Errors::

    StoreError          the database failed, or holds something this version cannot use
    ├── StoreLocked     another process holds the state file's lock (SQLite)
    ├── SchemaTooNewError    the database was written by a newer Rising Tide
    ├── Fenced          another replica now leads a line the write touches (PostgreSQL)
    └── NotDeadError    requeue or dismiss of an entry that is not a dead letter
        └── UnknownEntryError    … or of a key the outbox does not have
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

#: ``dismissed`` (schema 3): a dead letter an operator chose not to retry.
OutboxStatus = Literal["pending", "done", "dead", "dismissed"]


class StoreError(RuntimeError):
    """The state store failed, or holds something this version cannot use."""


class StoreLocked(StoreError):  # noqa: N818 - the name is part of the store's API
    """Another process (another Rising Tide, usually) holds the state file."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer Rising Tide, whose tables this one cannot read."""


class NotDeadError(StoreError):
    """Only a dead letter can be requeued or dismissed; ``status`` is what the entry is."""

    def __init__(self, message: str, *, key: str, status: OutboxStatus | None) -> None:
        """``status`` is None when the outbox has no entry with ``key``."""
        super().__init__(message)
        self.key = key
        self.status = status


class UnknownEntryError(NotDeadError):
    """The outbox has no entry with that key."""


class Fenced(StoreError):  # noqa: N818 - the name is part of the store's API
    """A write refused by the database: another replica now leads a line it touches."""

    def __init__(self, message: str, *, partitions: Collection[int]) -> None:
        """``partitions``: those whose lease no longer carries this replica's token."""
        super().__init__(message)
        self.partitions = frozenset(partitions)
