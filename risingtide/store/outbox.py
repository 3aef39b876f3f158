"""The outbox's half of the store: responses to run, their outcomes, and dead letters.

Responses leave through the outbox: the dispatcher runs pending entries and records each
outcome, and an entry is marked done only after its responder returned — a crash in
between runs it once more, with the same idempotency key (at-least-once delivery;
responders de-duplicate by key).

Every method that reads an entry and then writes it locks the entry's row first (on
PostgreSQL, ``SELECT … FOR UPDATE``; SQLite's write transaction holds the whole file), so
two replicas can never both record the same entry: the second waits, then finds it done.

Dead letters: an entry the dispatcher gave up on stays ``dead`` until an operator either
requeues it (``requeue``: pending again, as a fresh order) or dismisses it (``dismiss``:
``dismissed``, never to run); each is recorded in the history with who did it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from risingtide.domain.model import ResponseOrder
from risingtide.store import codec
from risingtide.store.errors import NotDeadError, OutboxStatus, StoreError, UnknownEntryError
from risingtide.store.fence import Fence
from risingtide.store.records import (
    OutboxEntry,
    PendingRow,
    keys_of,
    operator_record,
    order_row,
    outbox_entry,
    response_record,
)
from risingtide.store.schema import history, outbox
from risingtide.store.writes import Writes

_insert_history = insert(history)


class OutboxMethods:
    """The outbox's methods of ``Store`` (see the module docstring)."""

    fence: Fence | None
    _writes: Writes

    def _transaction(self, *, write: bool) -> AbstractContextManager[Connection]:
        raise NotImplementedError  # pragma: no cover - Store defines it

    def due(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Pending entries whose next attempt is at or before ``now``, oldest first."""
        query = (
            select(outbox)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            return [outbox_entry(r) for r in conn.execute(query)]

    def pending(self) -> list[OutboxEntry]:
        """Every pending entry, due or not, oldest first."""
        query = select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id)
        with self._transaction(write=False) as conn:
            return [outbox_entry(r) for r in conn.execute(query)]

    def pending_count(self) -> int:
        """How many entries are pending."""
        return self._count("pending")

    def dead_count(self) -> int:
        """How many entries gave up (dead letters)."""
        return self._count("dead")

    def _count(self, status: OutboxStatus) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.status == status)
        with self._transaction(write=False) as conn:
            count: int = conn.execute(query).scalar_one()
        return count

    def outbox_entry(self, key: str) -> OutboxEntry | None:
        """The outbox entry with idempotency key ``key``, whatever its status."""
        with self._transaction(write=False) as conn:
            row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
        return None if row is None else outbox_entry(row)

    def assign_batch(self, keys: Sequence[str], batch: str) -> None:
        """Put pending entries into one batch before it is first sent, in one transaction.

        From then on they go out together under the batch's key, so that a retry or a
        restart sends the same message with the same key, never a regrouped one.
        """
        with self._transaction(write=True) as conn:
            rows = [self._pending_row(conn, key) for key in keys]
            self._check_fence(conn, rows)
            for row in rows:
                conn.execute(update(outbox).where(outbox.c.id == row.id).values(batch=batch))

    def claim(self, keys: Sequence[str]) -> None:
        """Take pending entries to run them now; refused (``Fenced``) once another replica
        leads their lines, so a replica that lost its lead sends nothing more.

        Writes nothing of its own: the claim is the fence's check in a write transaction,
        which holds the leases' rows until it ends. With no fence, only checks that every
        key is still pending (``StoreError`` otherwise).
        """
        with self._transaction(write=True) as conn:
            self._check_fence(conn, [self._pending_row(conn, key) for key in keys])

    def _check_fence(self, conn: Connection, rows: Sequence[PendingRow]) -> None:
        if self.fence is not None and rows:
            self.fence.check(conn, {row.order["line"] for row in rows})

    def record_success(self, key: str | Sequence[str], detail: str, now: datetime) -> None:
        """Mark pending entries done, each with a ``response`` history entry, in one transaction.

        ``key`` is one idempotency key or the keys of a batch sent together; ``detail`` is
        the responder's short outcome. Raises ``StoreError`` if a key has no pending entry
        (another replica recording it first included).
        """
        with self._transaction(write=True) as conn:
            rows = [self._pending_row(conn, one) for one in keys_of(key)]
            self._check_fence(conn, rows)
            for row in rows:
                attempts = row.attempts + 1
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(status="done", attempts=attempts, finished_at=now)
                )
                conn.execute(
                    _insert_history,
                    response_record(row, now, outcome="ok", detail=detail, attempts=attempts),
                )

    def record_failure(
        self,
        key: str | Sequence[str],
        error: str,
        reason: str,
        now: datetime,
        retry_at: datetime | None,
        *,
        enqueue: Sequence[ResponseOrder] = (),
    ) -> None:
        """Count a failed attempt of each entry, with a ``response`` history entry, in one
        transaction.

        With ``retry_at`` the entries stay pending until then (outcome ``retry``); with None
        they are dead (outcome ``dead``) and never run again. ``reason`` is the short label
        of the failure (``timeout``, ``http_5xx``…), ``error`` the message. ``enqueue``
        adds orders to the outbox in the same transaction (a dead letter's fallback), so a
        crash can never record the one without the other.
        """
        order_rows = [order_row(o, now) for o in enqueue]
        with self._transaction(write=True) as conn:
            rows = [self._pending_row(conn, one) for one in keys_of(key)]
            self._check_fence(conn, rows)
            if order_rows:
                self._writes.insert_orders(conn, order_rows)
            for row in rows:
                attempts = row.attempts + 1
                values: dict[str, Any] = {"attempts": attempts, "last_error": error}
                extra: dict[str, Any] = {"reason": reason}
                if retry_at is None:
                    outcome = "dead"
                    values.update(status="dead", finished_at=now)
                else:
                    outcome = "retry"
                    values.update(next_attempt_at=retry_at)
                    extra["retry_at"] = codec.encode_time(retry_at)
                conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))
                conn.execute(
                    _insert_history,
                    response_record(
                        row, now, outcome=outcome, detail=error, attempts=attempts, **extra
                    ),
                )

    # ------------------------------------------------------------------ dead letters

    def dead(self, limit: int | None = None) -> list[OutboxEntry]:
        """Dead letters, newest first (by when they were given up on), at most ``limit``."""
        query = (
            select(outbox)
            .where(outbox.c.status == "dead")
            .order_by(outbox.c.finished_at.desc(), outbox.c.id.desc())
        )
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must not be negative, got {limit}")
            query = query.limit(limit)
        with self._transaction(write=False) as conn:
            return [outbox_entry(r) for r in conn.execute(query)]

    def requeue(self, key: str, now: datetime, by: str, note: str = "") -> OutboxEntry:
        """Make the dead letter ``key`` pending again, due at ``now``, as a fresh order.

        Attempts start again from 0, and ``last_error`` and ``finished_at`` are cleared (the
        history's ``response_requeued`` record keeps them, with ``by`` and ``note``), all in
        one transaction. A member of a batch is requeued alone, out of its batch: it goes
        out again under its own key, grouped afresh with whatever else is due, never as
        part of the old message. Raises ``UnknownEntryError`` or ``NotDeadError``.
        """
        with self._transaction(write=True) as conn:
            row = self._dead_row(conn, key, "requeue", "requeued")
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    finished_at=None,
                    batch=None,
                )
            )
            record = operator_record(row, now, "response_requeued", by, note)
            conn.execute(_insert_history, record)
            return outbox_entry(conn.execute(select(outbox).where(outbox.c.id == row.id)).one())

    def dismiss(self, key: str, now: datetime, by: str, note: str = "") -> OutboxEntry:
        """Mark the dead letter ``key`` dismissed: it never runs, and no longer counts as dead.

        The history's ``response_dismissed`` record says who and why, in the same
        transaction. Raises ``UnknownEntryError`` or ``NotDeadError``.
        """
        with self._transaction(write=True) as conn:
            row = self._dead_row(conn, key, "dismiss", "dismissed")
            conn.execute(update(outbox).where(outbox.c.id == row.id).values(status="dismissed"))
            record = operator_record(row, now, "response_dismissed", by, note)
            conn.execute(_insert_history, record)
            return outbox_entry(conn.execute(select(outbox).where(outbox.c.id == row.id)).one())

    def _dead_row(self, conn: Connection, key: str, verb: str, done: str) -> Row[Any]:
        query = self._writes.locked(select(outbox).where(outbox.c.key == key))
        row = conn.execute(query).first()
        if row is None:
            raise UnknownEntryError(f"no outbox entry has the key {key!r}", key=key, status=None)
        if row.status != "dead":
            why = {
                "pending": "it is still pending (the dispatcher has not given up on it)",
                "done": "it is done (it ran successfully)",
                "dismissed": "it was dismissed",
            }.get(row.status, f"it is {row.status}")
            raise NotDeadError(
                f"cannot {verb} {key!r}: {why}; only a dead letter can be {done}",
                key=key,
                status=row.status,
            )
        return row

    def _pending_row(self, conn: Connection, key: str) -> PendingRow:
        query = self._writes.locked(
            select(outbox.c.id, outbox.c.attempts, outbox.c.status, outbox.c.order).where(
                outbox.c.key == key
            )
        )
        row = conn.execute(query).first()
        if row is None:
            raise StoreError(f"no outbox entry has the key {key!r}")
        if row.status != "pending":
            raise StoreError(f"the outbox entry {key!r} is already {row.status}")
        return PendingRow(id=row.id, attempts=row.attempts, order=row.order)
