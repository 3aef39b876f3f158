"""The store's tables (SQLAlchemy Core) and the column types that keep values exact.

Times are stored as fixed-width ISO-8601 text in UTC with microseconds
(``2026-01-05T09:00:00.000000+00:00``): readable in the ``sqlite3`` shell, and because every
value has the same width and offset, text order is time order, so range queries and the
``(status, next_attempt_at)`` index work on plain text comparison. JSON columns hold compact
JSON text written by ``json.dumps``.

``SCHEMA_VERSION`` goes up whenever a change needs a migration; a store refuses to open a
file written by a newer version rather than misread it, and migrates an older one when it
opens it (``MIGRATIONS``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

#: The version of the tables below, kept in ``meta`` under ``schema_version``.
SCHEMA_VERSION = 2


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as fixed-width ISO-8601 UTC text; naive values are refused."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        """Aware datetime → ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``."""
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps only aware UTC times")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        """The stored text back to an aware UTC datetime."""
        if value is None:
            return None
        return datetime.fromisoformat(value)


class JSONText(TypeDecorator[Any]):
    """A JSON-able value stored as compact JSON text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Value → compact JSON (non-ASCII kept as is: names of people and lines)."""
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        """JSON text → value."""
        if value is None:
            return None
        return json.loads(value)


metadata = MetaData()

#: One row per line: the engine's ``LineState``, encoded by ``codec.encode_state``.
line_state = Table(
    "line_state",
    metadata,
    Column("line", String, primary_key=True),
    Column("state", JSONText, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: The append-only audit trail: domain events, response outcomes, config reloads.
#: AUTOINCREMENT so an id is never reused, which keeps ``before_id`` paging stable.
history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("line", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("tier", Integer, nullable=True),
    Column("data", JSONText, nullable=False),
    Index("ix_history_line_id", "line", "id"),
    Index("ix_history_at", "at"),
    sqlite_autoincrement=True,
)

#: Responses to run. ``key`` is the order's idempotency key: planning the same order twice
#: inserts it once. ``order`` holds the whole ``ResponseOrder`` (``codec.encode_order``);
#: ``line``, ``response`` and ``action`` are copied out of it for queries and the sqlite3 shell.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String, nullable=False, unique=True),
    Column("line", String, nullable=False),
    Column("response", String, nullable=False),
    Column("action", String, nullable=False),
    Column("order", JSONText, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # The batch a notification was sent in (schema 2): its members go out together, with
    # the batch's key, on every retry and after a restart.
    Column("batch", String, nullable=True),
    CheckConstraint("status IN ('pending', 'done', 'dead')", name="ck_outbox_status"),
    CheckConstraint("action IN ('apply', 'undo')", name="ck_outbox_action"),
    CheckConstraint("attempts >= 0", name="ck_outbox_attempts"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

#: The statements that bring a file from version N-1 to N, by N.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE outbox ADD COLUMN batch VARCHAR",),
}

#: Facts about the file itself; ``schema_version`` for now.
meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)
