"""The store as it shipped before Alembic: schema version 3.

Line state, the history, the outbox (with ``batch`` and the status CHECK that knows
``dismissed``), the samples kept around episodes, and ``meta``.

A SQLite file written before Alembic already has these tables: the hand-written steps in
``risingtide.store.schema.MIGRATIONS`` have brought it to version 3 before this revision
runs, and this revision then adopts it, creating only the tables it lacks (``samples`` came
to such files without a version bump, so an older file may not have it yet).

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

#: ``schema_version`` in ``meta``: what Rising Tide read before Alembic, and still reads to
#: refuse a file from a newer version.
SCHEMA_VERSION = "3"


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    """Create the version 3 tables a database lacks, and record ``schema_version``."""
    if _missing("line_state"):
        op.create_table(
            "line_state",
            sa.Column("line", sa.String(), primary_key=True),
            sa.Column("state", sa.Text(), nullable=False),
            sa.Column("updated_at", sa.String(32), nullable=False),
        )
    if _missing("history"):
        op.create_table(
            "history",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("at", sa.String(32), nullable=False),
            sa.Column("line", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("tier", sa.Integer(), nullable=True),
            sa.Column("data", sa.Text(), nullable=False),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_history_line_id", "history", ["line", "id"])
        op.create_index("ix_history_at", "history", ["at"])
    if _missing("outbox"):
        _create_outbox()
    if _missing("samples"):
        op.create_table(
            "samples",
            sa.Column("line", sa.String(), primary_key=True),
            sa.Column("at", sa.String(32), primary_key=True),
            sa.Column("figures", sa.Text(), nullable=False),
        )
        op.create_index("ix_samples_at", "samples", ["at"])
    if _missing("meta"):
        op.create_table(
            "meta",
            sa.Column("key", sa.String(), primary_key=True),
            sa.Column("value", sa.String(), nullable=False),
        )
    op.execute(
        sa.text(
            "INSERT INTO meta (key, value) SELECT 'schema_version', :version "
            "WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'schema_version')"
        ).bindparams(version=SCHEMA_VERSION)
    )


def _create_outbox() -> None:
    # Column and constraint order as version 3's hand-written rebuild has them, so a new
    # SQLite file and a migrated one hold the same table definition.
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(), nullable=False, unique=True),
        sa.Column("line", sa.String(), nullable=False),
        sa.Column("response", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("order", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(32), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.Column("batch", sa.String(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'dead', 'dismissed')", name="ck_outbox_status"
        ),
        sa.CheckConstraint("action IN ('apply', 'undo')", name="ck_outbox_action"),
        sa.CheckConstraint("attempts >= 0", name="ck_outbox_attempts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    """Drop every table (all the store's data goes with them)."""
    for table in ("meta", "samples", "outbox", "history", "line_state"):
        op.drop_table(table)
