"""The fence every effect-causing write passes: a replica that lost its lead writes nothing.

With one daemon on a SQLite file there is no fence (the file's lock keeps a second daemon
out). With replicas sharing PostgreSQL, the store is given a ``Fence``
(``risingtide.store.leases.LeaseFence``): inside the same transaction as the write it
locks the lease row of each partition the write touches and checks that the row still
carries this replica's fencing token. A replica paused past its lease (SIGSTOP, a long
pause, a lost network) finds a newer token there once another has taken over, and the
database refuses the whole transaction (``Fenced``): no tier change, no outbox claim, no
recorded send.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from sqlalchemy import Connection


class Fence(Protocol):
    """Checks, inside a write's transaction, that this replica still leads ``lines``."""

    def check(self, conn: Connection, lines: Collection[str]) -> None:
        """Raise ``Fenced`` unless every line's partition lease still has our token."""
