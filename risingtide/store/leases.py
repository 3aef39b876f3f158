"""Leases on the partitions of the lines, kept by PostgreSQL, and the fence they make.

Replicas sharing one database agree on who leads each partition through the ``lease``
table (``risingtide.store.schema``): a row per partition with its holder, an expiry on the
**database's** clock, and a fencing token that goes up by one every time the partition
changes hands. Why a lease row and not a session advisory lock: an advisory lock lives as
long as its connection, and a leader that is paused (SIGSTOP, a long pause, a half-dead
network) keeps its connection open, so the lock would never pass to another replica; a
lease row runs out on its own, whatever the old leader's connection is doing, and its
token lets the database refuse the old leader's writes afterwards (``LeaseFence``).

Every statement here is one short transaction; the expiry is computed by PostgreSQL
(``clock_timestamp() + lease``) so replicas' clocks never need to agree.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, text

from risingtide.store.sqlite import Fenced, StoreError

__all__ = ["Holding", "LeaseFence", "Leases", "partition_of"]

Transaction = Callable[..., AbstractContextManager[Connection]]


def partition_of(line: str, partitions: int) -> int:
    """The partition ``line`` belongs to: a stable hash of its id (the same in every
    replica and every run, unlike Python's ``hash``)."""
    if partitions <= 1:
        return 0
    return zlib.crc32(line.encode()) % partitions


@dataclass(frozen=True, slots=True)
class Holding:
    """Who holds a partition's lease, and until when (the database's clock)."""

    partition: int
    holder: str | None
    token: int
    expires_at: datetime | None


_PREPARE = text(
    "INSERT INTO lease (partition, holder, token, expires_at) "
    "SELECT p, NULL, 0, NULL FROM generate_series(0, :last) AS p "
    "ON CONFLICT (partition) DO NOTHING"
)
_PARTITIONS_SET = text("SELECT value FROM meta WHERE key = 'partitions'")
_OTHERS_ALIVE = text(
    "SELECT count(*) FROM replica WHERE name <> :me AND seen_at >= clock_timestamp() - :gone"
)
_PARTITIONS_NOTE = text(
    "INSERT INTO meta (key, value) VALUES ('partitions', :count) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_HEARTBEAT = text(
    "INSERT INTO replica (name, seen_at, started_at) "
    "VALUES (:me, clock_timestamp(), clock_timestamp()) "
    "ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at"
)
_FORGET_DEAD = text("DELETE FROM replica WHERE seen_at < clock_timestamp() - :gone")
_LEAVE = text("DELETE FROM replica WHERE name = :me")
_ALIVE = text("SELECT count(*) FROM replica WHERE seen_at >= clock_timestamp() - :gone")
_RENEW = text(
    "UPDATE lease SET expires_at = clock_timestamp() + :lease "
    "WHERE holder = :me AND partition IN :held RETURNING partition, token"
).bindparams(bindparam("held", expanding=True))
# Free or run-out partitions, lowest first; SKIP LOCKED so two replicas taking at once
# never wait for each other, and never take the same one (the row lock decides).
_ACQUIRE = text(
    "UPDATE lease SET holder = :me, token = token + 1, "
    "expires_at = clock_timestamp() + :lease "
    "WHERE partition IN (SELECT partition FROM lease "
    "WHERE partition < :count AND (holder IS NULL OR expires_at < clock_timestamp()) "
    "ORDER BY partition LIMIT :want FOR UPDATE SKIP LOCKED) "
    "RETURNING partition, token"
)
_RELEASE = text(
    "UPDATE lease SET holder = NULL, expires_at = NULL WHERE holder = :me AND partition IN :gone"
).bindparams(bindparam("gone", expanding=True))
_HOLDINGS = text(
    "SELECT partition, holder, token, expires_at FROM lease "
    "WHERE partition < :count ORDER BY partition"
)
# FOR SHARE: a takeover's UPDATE of the row waits until the checking write has committed,
# and a write that starts after a takeover committed sees the new token (PostgreSQL
# re-reads a locked row's newest version), so the check and the write are one step.
_FENCE = text("SELECT partition, token FROM lease WHERE partition IN :parts FOR SHARE").bindparams(
    bindparam("parts", expanding=True)
)


class Leases:
    """One replica's dealings with the ``lease`` and ``replica`` tables (PostgreSQL only)."""

    def __init__(
        self, transaction: Transaction, replica: str, partitions: int, lease: timedelta
    ) -> None:
        """``transaction``: ``Store.transaction``; ``replica``: this replica's name."""
        self._transaction = transaction
        self.replica = replica
        self.partitions = partitions
        self.lease = lease

    def prepare(self) -> None:
        """Make sure every partition has its lease row (idempotent, any replica may), and
        that the replicas alive share the lines out the same way.

        Raises ``StoreError`` when replicas alive use another ``server.partitions``: a
        line would belong to a different partition in each, and two could lead it at once.
        """
        with self._transaction(write=True) as conn:
            conn.execute(text("LOCK TABLE lease IN SHARE ROW EXCLUSIVE MODE"))
            noted = conn.execute(_PARTITIONS_SET).scalar_one_or_none()
            if noted is not None and int(noted) != self.partitions:
                others = conn.execute(
                    _OTHERS_ALIVE, {"me": self.replica, "gone": self.lease}
                ).scalar_one()
                if others:
                    raise StoreError(
                        f"the running replicas share the lines in {noted} partitions and this "
                        f"one in {self.partitions} (server.partitions): stop every replica to "
                        "change it, then start them all with the new value"
                    )
            conn.execute(_PARTITIONS_NOTE, {"count": str(self.partitions)})
            conn.execute(_PREPARE, {"last": self.partitions - 1})

    def heartbeat(self) -> int:
        """Say this replica is alive; how many replicas are (this one included).

        A replica renews every third of a lease, so one unseen for a whole lease is
        counted out: its leases run out at about the same time, and the survivors' fair
        share grows to take them."""
        with self._transaction(write=True) as conn:
            conn.execute(_HEARTBEAT, {"me": self.replica})
            conn.execute(_FORGET_DEAD, {"gone": self.lease * 100})
            alive = conn.execute(_ALIVE, {"gone": self.lease}).scalar_one()
        return max(int(alive), 1)

    def renew(self, held: Mapping[int, int]) -> dict[int, int]:
        """Extend the leases of ``held`` (partition → token); those still ours, with the
        same token. A partition missing from the answer has been taken over."""
        if not held:
            return {}
        with self._transaction(write=True) as conn:
            rows = conn.execute(
                _RENEW, {"me": self.replica, "held": sorted(held), "lease": self.lease}
            ).all()
        return {p: t for p, t in rows if held.get(p) == t}

    def acquire(self, want: int) -> dict[int, int]:
        """Take up to ``want`` free or run-out partitions; partition → new token."""
        if want <= 0:
            return {}
        with self._transaction(write=True) as conn:
            rows = conn.execute(
                _ACQUIRE,
                {"me": self.replica, "lease": self.lease, "count": self.partitions,
                 "want": want},
            ).all()  # fmt: skip
        return {int(p): int(t) for p, t in rows}

    def release(self, partitions: Iterable[int], *, leaving: bool = False) -> None:
        """Give up ``partitions`` now, so another replica takes them at its next look;
        ``leaving``: this replica stops, and is no longer counted among the alive."""
        gone = sorted(partitions)
        with self._transaction(write=True) as conn:
            if gone:
                conn.execute(_RELEASE, {"me": self.replica, "gone": gone})
            if leaving:
                conn.execute(_LEAVE, {"me": self.replica})

    def holdings(self) -> list[Holding]:
        """Every partition's lease, by partition."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(_HOLDINGS, {"count": self.partitions}).all()
        return [Holding(int(p), h, int(t), e) for p, h, t, e in rows]


class LeaseFence:
    """The store's fence (``risingtide.store.fence``) for a replica holding leases.

    ``tokens`` gives the partitions this replica leads and their tokens, as it believes
    them; the check locks those partitions' rows and refuses the write unless every one
    still carries that token.
    """

    def __init__(self, tokens: Callable[[], Mapping[int, int]], partitions: int) -> None:
        """``partitions``: how many the lines are spread over (``partition_of``)."""
        self._tokens = tokens
        self._partitions = partitions

    def check(self, conn: Connection, lines: Collection[str]) -> None:
        """Raise ``Fenced`` unless this replica still leads every line in ``lines``."""
        wanted = {partition_of(line, self._partitions) for line in lines}
        if not wanted:
            return
        held = self._tokens()
        stale = {p for p in wanted if p not in held}
        if not stale:
            rows = conn.execute(_FENCE, {"parts": sorted(wanted)}).all()
            found = {int(p): int(t) for p, t in rows}
            stale = {p for p in wanted if found.get(p) != held[p]}
        if stale:
            raise Fenced(
                f"refused: this replica no longer leads partition(s) {sorted(stale)}",
                partitions=stale,
            )
