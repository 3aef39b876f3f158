"""Alembic's entry point: migrate on the connection the store opened, in its transaction.

The store passes its connection as ``config.attributes["connection"]``; there is no URL
here and no offline (SQL script) mode. The connection is already in a transaction, so
Alembic joins it: the migration commits, or rolls back, with the store's own checks.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection


def run() -> None:
    """Run the pending revisions on the store's connection."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "the store's migrations run only from risingtide.store.migrate, on an open connection"
        )
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


run()
