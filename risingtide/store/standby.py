"""Reading line states another replica wrote: a standby's view of the tiers.

A replica that does not lead a line never evaluates it; it shows the tier, timers,
acknowledgement and switches the leader last committed, read back here: every round the
states written since a little before the last look (``StandbyReader``), and at once the
line a relayed command changed (``read_states``). Rows come back as their stored JSON text
and only those whose text changed since the last look are decoded: decoding every row of
a busy minute, every round, was most of a replica's CPU at 10,000 lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, select, type_coerce

from risingtide.domain.model import LineState
from risingtide.store import codec
from risingtide.store.codec import CodecError
from risingtide.store.schema import line_state
from risingtide.store.sqlite import StoreError

__all__ = ["StandbyReader", "read_states"]

Transaction = Callable[..., AbstractContextManager[Connection]]


def _rows(
    transaction: Transaction, lines: Collection[str] | None, since: datetime | None
) -> list[Any]:
    """(line, state as stored JSON text) of the chosen rows."""
    query = select(line_state.c.line, type_coerce(line_state.c.state, Text))
    if lines is not None:
        query = query.where(line_state.c.line.in_(sorted(lines)))
    if since is not None:
        query = query.where(line_state.c.updated_at >= since)
    with transaction(write=False) as conn:
        return list(conn.execute(query).all())


def _decode(line: str, text: str) -> LineState:
    try:
        return codec.decode_state(json.loads(text))
    except (CodecError, ValueError) as exc:
        raise StoreError(f"the stored state of line {line!r} is unreadable: {exc}") from exc


def read_states(
    transaction: Transaction,
    *,
    lines: Collection[str] | None = None,
    since: datetime | None = None,
) -> dict[str, LineState]:
    """The stored states of ``lines`` (all when None) written at or after ``since``
    (by the writer's clock), by line id; an unreadable one is a ``StoreError``."""
    return {line: _decode(line, text) for line, text in _rows(transaction, lines, since)}


class StandbyReader:
    """Reads back the states written since a time, decoding only what changed."""

    def __init__(self, transaction: Transaction) -> None:
        """``transaction``: ``Store.transaction``."""
        self._transaction = transaction
        self._seen: dict[str, str] = {}

    def changed_since(
        self, since: datetime | None, wanted: Callable[[str], bool]
    ) -> dict[str, LineState]:
        """The states of lines ``wanted`` written at or after ``since`` whose stored text
        differs from what this reader last returned for them."""
        changed: dict[str, LineState] = {}
        for line, text in _rows(self._transaction, None, since):
            if self._seen.get(line) == text or not wanted(line):
                continue
            changed[line] = _decode(line, text)
            self._seen[line] = text
        return changed
