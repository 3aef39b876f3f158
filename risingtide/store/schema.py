"""The store's tables (SQLAlchemy Core) and the column types that keep values exact.

Times are stored as fixed-width ISO-8601 text in UTC with microseconds
(``2026-01-05T09:00:00.000000+00:00``): readable in the ``sqlite3`` shell, and because every
value has the same width and offset, text order is time order, so range queries and the
``(status, next_attempt_at)`` index work on plain text comparison. JSON columns hold compact
JSON text written by ``json.dumps``.

The tables' history is Alembic's (``risingtide/store/migrations``, run by
``risingtide.store.migrate`` when a store opens): a change here needs a new revision there,
and ``tests/adapters/test_store_migrations.py`` fails until the migrated tables match these.
``SCHEMA_VERSION`` and ``MIGRATIONS`` are what came before Alembic: the hand-written steps
still bring a file from version 1 or 2 to 3, and ``schema_version`` stays 3 so that an
older Rising Tide (which reads only that) still opens a migrated file; a store refuses a
file whose version is newer rather than misread it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
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
SCHEMA_VERSION = 3


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
    # "dismissed" (schema 3): a dead letter an operator chose not to retry.
    CheckConstraint("status IN ('pending', 'done', 'dead', 'dismissed')", name="ck_outbox_status"),
    CheckConstraint("action IN ('apply', 'undo')", name="ck_outbox_action"),
    CheckConstraint("attempts >= 0", name="ck_outbox_attempts"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

_OUTBOX_COLUMNS = (
    'id, "key", line, response, action, "order", status, attempts, next_attempt_at, '
    "last_error, created_at, finished_at, batch"
)

#: Version 3 widens the outbox's status CHECK to allow "dismissed". SQLite cannot alter a
#: CHECK constraint, so the table is rebuilt as SQLite's ALTER TABLE page describes: create
#: the new table, copy every row (ids kept), carry over AUTOINCREMENT's high-water mark
#: (so an id is never reused), drop the old table, rename the new one and recreate its
#: index. Written out in full, not generated from ``outbox`` above: a migration must keep
#: doing what it did when later versions change the table again.
_OUTBOX_V3 = (
    """CREATE TABLE outbox_v3 (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	"key" VARCHAR NOT NULL,
	line VARCHAR NOT NULL,
	response VARCHAR NOT NULL,
	action VARCHAR NOT NULL,
	"order" TEXT NOT NULL,
	status VARCHAR NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at VARCHAR(32) NOT NULL,
	last_error TEXT,
	created_at VARCHAR(32) NOT NULL,
	finished_at VARCHAR(32),
	batch VARCHAR,
	CONSTRAINT ck_outbox_status CHECK (status IN ('pending', 'done', 'dead', 'dismissed')),
	CONSTRAINT ck_outbox_action CHECK (action IN ('apply', 'undo')),
	CONSTRAINT ck_outbox_attempts CHECK (attempts >= 0),
	UNIQUE ("key")
)""",
    f"INSERT INTO outbox_v3 ({_OUTBOX_COLUMNS}) SELECT {_OUTBOX_COLUMNS} FROM outbox",
    # Copying rows set outbox_v3's sequence to the highest id copied (no row when none
    # were); raise it to the old table's, which may be higher.
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_v3', seq FROM sqlite_sequence "
    "WHERE name = 'outbox' AND NOT EXISTS "
    "(SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_v3')",
    "UPDATE sqlite_sequence SET seq = max(seq, coalesce("
    "(SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)) WHERE name = 'outbox_v3'",
    "DROP TABLE outbox",
    "ALTER TABLE outbox_v3 RENAME TO outbox",
    "CREATE INDEX ix_outbox_status_next ON outbox (status, next_attempt_at)",
)

#: The statements that bring a file from version N-1 to N, by N.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE outbox ADD COLUMN batch VARCHAR",),
    3: _OUTBOX_V3,
}

#: A line's figures, one row a minute, kept only around episodes (``risingtide.samples``
#: writes them: during an episode, the 15 minutes before its first rise and the 15 after
#: calm). ``figures`` holds the sample's measures by name. Added without a version bump:
#: Alembic's revision 0001 creates it in an older file, and an older version ignores it.
samples = Table(
    "samples",
    metadata,
    Column("line", String, primary_key=True),
    Column("at", UTCDateTime, primary_key=True),
    Column("figures", JSONText, nullable=False),
    Index("ix_samples_at", "at"),
)

#: Facts about the file itself; ``schema_version`` for now.
meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)

# --------------------------------------------------------------------------- replicas
# The tables below serve replicas sharing one PostgreSQL database (``server.database``):
# who leads which partition of the lines, who is alive, and the commands one replica
# relays to the leader of a line. A daemon on a SQLite file leads everything alone and
# leaves them empty. Lease times are the database's own clock (``timestamptz``), never a
# replica's, so replicas with skewed clocks still agree on when a lease has run out.

#: One row per partition of the lines (``risingtide.partitions``). ``token`` is the fencing
#: token: it goes up by one every time the partition changes hands, and every write that
#: can cause an effect checks it (``risingtide.store.fence``).
lease = Table(
    "lease",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("holder", String, nullable=True),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("token >= 0", name="ck_lease_token"),
)

#: One row per running replica, renewed with its leases: how many are alive decides each
#: one's fair share of the partitions.
replica = Table(
    "replica",
    metadata,
    Column("name", String, primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
)

#: A duty manager's command (acknowledge, silence, declare…) taken by a replica that does
#: not lead the line, for the leader of its partition to run; ``result`` is what the
#: command answered (its reason, or why it was refused), read back by the replica that took
#: it. ``args`` holds the command's arguments as JSON.
command = Table(
    "command",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("line", String, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("name", String, nullable=False),
    Column("args", JSONText, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("status", String, nullable=False),
    Column("result", JSONText, nullable=True),
    Column("done_at", UTCDateTime, nullable=True),
    CheckConstraint(
        "status IN ('pending', 'done', 'rejected', 'failed')", name="ck_command_status"
    ),
    Index("ix_command_status_partition", "status", "partition"),
    sqlite_autoincrement=True,
)
