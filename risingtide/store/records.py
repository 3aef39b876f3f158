"""The store's records as the rest of Rising Tide sees them, and the rows they are made of.

``HistoryEntry`` and ``OutboxEntry`` are what the store's readers return; the functions
below build the rows its writers insert (a new outbox order, the history record of a
response's outcome or of an operator's requeue or dismissal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from risingtide.domain.model import Event, ResponseOrder
from risingtide.store import codec
from risingtide.store.errors import OutboxStatus


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One record of the append-only history, newest first from ``Store.history``.

    ``data`` holds the record's own fields as JSON-able values (for a domain event, the
    encoded event less ``line``, ``at`` and ``kind``).
    """

    id: int
    at: datetime
    line: str
    kind: str
    tier: int | None
    data: dict[str, Any]

    def event(self) -> Event | None:
        """The domain event this entry records, or None for other kinds (responses, reloads)."""
        if self.kind not in codec.EVENT_TYPES:
            return None
        return codec.decode_event(
            {**self.data, "line": self.line, "at": codec.encode_time(self.at), "kind": self.kind}
        )


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One response order in the outbox, with its delivery state.

    ``attempts`` counts the runs so far (a success included); ``next_attempt_at`` is when a
    pending entry may run next; ``finished_at`` is set once it is done or dead.
    """

    id: int
    order: ResponseOrder
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    #: The key of the batch this entry was sent in, once it has been (notifications only).
    batch: str | None = None


@dataclass(frozen=True, slots=True)
class PendingRow:
    """What recording an outcome needs of a pending entry (``order`` as stored JSON)."""

    id: int
    attempts: int
    order: dict[str, Any]


def order_row(order: ResponseOrder, now: datetime) -> dict[str, Any]:
    """A new pending outbox row for ``order``: first run at ``order.at``."""
    return {
        "key": order.key,
        "line": order.line,
        "response": order.response,
        "action": order.action.value,
        "order": codec.encode_order(order),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": order.at,
        "last_error": None,
        "created_at": now,
        "finished_at": None,
    }


def keys_of(key: str | Sequence[str]) -> tuple[str, ...]:
    """One idempotency key, or a batch's keys, as a tuple."""
    return (key,) if isinstance(key, str) else tuple(key)


def response_record(
    row: PendingRow, now: datetime, *, outcome: str, detail: str, attempts: int, **extra: Any
) -> dict[str, Any]:
    """The ``response`` history record of one run of the pending entry ``row``."""
    order = row.order
    return {
        "at": now,
        "line": order["line"],
        "kind": "response",
        "tier": order["tier"],
        "data": {
            "response": order["response"],
            "action": order["action"],
            "outcome": outcome,
            "detail": detail,
            "attempts": attempts,
            "key": order["key"],
            "trigger": order["trigger"],
            **extra,
        },
    }


def operator_record(row: Row[Any], now: datetime, kind: str, by: str, note: str) -> dict[str, Any]:
    """The history record of an operator's requeue or dismissal of the dead letter ``row``."""
    order = row.order
    data: dict[str, Any] = {
        "response": order["response"],
        "action": order["action"],
        "key": order["key"],
        "trigger": order["trigger"],
        "by": by,
        "note": note,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "dead_at": None if row.finished_at is None else codec.encode_time(row.finished_at),
    }
    if row.batch is not None:
        data["batch"] = row.batch
    return {"at": now, "line": order["line"], "kind": kind, "tier": order["tier"], "data": data}


def outbox_entry(row: Row[Any]) -> OutboxEntry:
    """An outbox row as the entry the store's readers return."""
    return OutboxEntry(
        id=row.id,
        order=codec.decode_order(row.order),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        batch=row.batch,
    )
