"""Reading line states another replica wrote: a standby's view of the tiers.

A replica that does not lead a line never evaluates it; it shows the tier, timers,
acknowledgement and switches the leader last committed, read back here: every so often
the states written since the last look, and at once the line a relayed command changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, select

from risingtide.domain.model import LineState
from risingtide.store import codec
from risingtide.store.codec import CodecError
from risingtide.store.schema import line_state
from risingtide.store.sqlite import StoreError

__all__ = ["read_states"]

Transaction = Callable[..., AbstractContextManager[Connection]]


def read_states(
    transaction: Transaction,
    *,
    lines: Collection[str] | None = None,
    since: datetime | None = None,
) -> dict[str, LineState]:
    """The stored states of ``lines`` (all when None) written at or after ``since``
    (by the writer's clock), by line id; an unreadable one is a ``StoreError``."""
    query = select(line_state.c.line, line_state.c.state)
    if lines is not None:
        query = query.where(line_state.c.line.in_(sorted(lines)))
    if since is not None:
        query = query.where(line_state.c.updated_at >= since)
    with transaction(write=False) as conn:
        rows = conn.execute(query).all()
    states: dict[str, LineState] = {}
    for line, data in rows:
        try:
            states[line] = codec.decode_state(data)
        except CodecError as exc:
            raise StoreError(f"the stored state of line {line!r} is unreadable: {exc}") from exc
    return states
