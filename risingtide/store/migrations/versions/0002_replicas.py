"""The replicas' tables: partition leases, the replicas alive, relayed commands.

Used when replicas share one PostgreSQL database; a daemon on a SQLite file leaves them
empty. Lease times are ``timestamptz`` on PostgreSQL (the database's own clock decides
when a lease has run out). A store opened by a development build between the tables'
arrival and Alembic's may have them already; they are adopted as they are.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    """Create ``lease``, ``replica`` and ``command``."""
    if _missing("lease"):
        op.create_table(
            "lease",
            sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("holder", sa.String(), nullable=True),
            sa.Column("token", sa.BigInteger(), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
            sa.CheckConstraint("token >= 0", name="ck_lease_token"),
        )
    if _missing("replica"):
        op.create_table(
            "replica",
            sa.Column("name", sa.String(), primary_key=True),
            sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        )
    if _missing("command"):
        op.create_table(
            "command",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("line", sa.String(), nullable=False),
            sa.Column("partition", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("args", sa.Text(), nullable=False),
            sa.Column("requested_at", sa.String(32), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("result", sa.Text(), nullable=True),
            sa.Column("done_at", sa.String(32), nullable=True),
            sa.CheckConstraint(
                "status IN ('pending', 'done', 'rejected', 'failed')", name="ck_command_status"
            ),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_command_status_partition", "command", ["status", "partition"])


def downgrade() -> None:
    """Drop the replicas' tables."""
    for table in ("command", "replica", "lease"):
        op.drop_table(table)
