"""The ``command`` table: duty-manager commands relayed from one replica to another.

A replica that does not lead a line (a standby, or one leading other partitions) takes a
duty manager's command for it (acknowledge, silence, declare…) and writes it here; the
leader of the line's partition runs it and writes back its answer, which the first replica
reads and returns to the duty manager as if it had run the command itself. See
``risingtide.relay`` for both ends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from risingtide.store.schema import command

__all__ = ["Outcome", "RelayTable", "Relayed"]

Transaction = Callable[..., AbstractContextManager[Connection]]
Outcome = Literal["done", "rejected", "failed"]


@dataclass(frozen=True, slots=True)
class Relayed:
    """A command waiting for the leader of its line."""

    id: int
    line: str
    name: str
    args: dict[str, Any]


class RelayTable:
    """Writes and reads of the ``command`` table, each one short transaction."""

    def __init__(self, transaction: Transaction) -> None:
        """``transaction``: ``Store.transaction``."""
        self._transaction = transaction

    def put(self, line: str, partition: int, name: str, args: dict[str, Any], now: datetime) -> int:
        """Queue a command for the leader of ``partition``; its id."""
        with self._transaction(write=True) as conn:
            return int(
                conn.execute(
                    insert(command).returning(command.c.id),
                    {"line": line, "partition": partition, "name": name, "args": args,
                     "requested_at": now, "status": "pending"},
                ).scalar_one()
            )  # fmt: skip

    def answer(self, command_id: int) -> tuple[str, Any] | None:
        """``(status, result)`` once the command has been run, None while it waits."""
        with self._transaction(write=False) as conn:
            row = conn.execute(
                select(command.c.status, command.c.result).where(command.c.id == command_id)
            ).first()
        if row is None or row.status == "pending":
            return None
        return row.status, row.result

    def withdraw(self, command_id: int, now: datetime, why: str) -> bool:
        """Mark a still-waiting command failed (nobody ran it in time), so no leader runs it
        later; False when a leader got to it first (read its ``answer``)."""
        with self._transaction(write=True) as conn:
            done = conn.execute(
                update(command)
                .where(command.c.id == command_id, command.c.status == "pending")
                .values(status="failed", result={"error": why}, done_at=now)
            )
        return done.rowcount == 1

    def waiting(self, partitions: Collection[int], limit: int = 50) -> list[Relayed]:
        """Commands waiting for the leader of any of ``partitions``, oldest first."""
        if not partitions:
            return []
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                select(command.c.id, command.c.line, command.c.name, command.c.args)
                .where(command.c.status == "pending", command.c.partition.in_(sorted(partitions)))
                .order_by(command.c.id)
                .limit(limit)
            ).all()
        return [Relayed(r.id, r.line, r.name, dict(r.args)) for r in rows]

    def run(self, waiting: Relayed, runner: Callable[[Relayed], tuple[Outcome, Any]],
            now: datetime) -> bool:  # fmt: skip
        """Run ``waiting`` with ``runner`` and write its answer, holding the command's row
        all the while, so a requester giving up (``withdraw``) waits for the answer rather
        than racing it; False when it was withdrawn before this leader got to it."""
        with self._transaction(write=True) as conn:
            still = conn.execute(
                select(command.c.id)
                .where(command.c.id == waiting.id, command.c.status == "pending")
                .with_for_update()
            ).first()
            if still is None:
                return False
            status, result = runner(waiting)
            conn.execute(
                update(command)
                .where(command.c.id == waiting.id)
                .values(status=status, result=result, done_at=now)
            )
        return True
