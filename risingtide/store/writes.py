"""The writes whose SQL differs between SQLite and PostgreSQL: upserts, and row locks.

SQLite keeps its fast path: line states and samples are encoded here as the schema's
column types would (compact JSON, fixed-width UTC text) and sent through the driver's
executemany — at 10,000 lines SQLAlchemy's per-row type processing was most of a commit.
SQLite needs no row locks: a write transaction opens with BEGIN IMMEDIATE and so holds the
whole file.

PostgreSQL gets the dialect's own ``INSERT … ON CONFLICT`` (no hand-written SQL), and a
read-then-write transaction locks the rows it read (``SELECT … FOR UPDATE``): two replicas
recording the same outbox entry queue on its row, and the second finds it done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from risingtide.store.schema import line_state, meta, outbox, samples

S = TypeVar("S", bound=Select[Any])


class Writes(Protocol):
    """The dialect-specific statements a ``Store`` runs."""

    def state_rows(self, rows: Sequence[tuple[str, Any]], now: datetime) -> list[Any]:
        """``(line, encoded state)`` pairs stamped ``now``, ready for ``upsert_states`` (built
        before a transaction opens, so a bad value fails without holding any lock)."""

    def upsert_states(self, conn: Connection, rows: list[Any]) -> None:
        """Insert or replace the line states made by ``state_rows``."""

    def sample_rows(self, rows: Sequence[tuple[str, datetime, Mapping[str, Any]]]) -> list[Any]:
        """``(line, at, figures)`` samples, ready for ``insert_samples``."""

    def insert_samples(self, conn: Connection, rows: list[Any]) -> None:
        """Insert the samples made by ``sample_rows``, keeping one already there."""

    def insert_orders(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert new outbox rows, ignoring a key already in the outbox."""

    def upsert_meta(self, conn: Connection, key: str, value: str) -> None:
        """Set ``meta[key] = value``."""

    def locked(self, query: S) -> S:
        """``query`` locking the rows it reads until the transaction ends."""


def json_text(value: Any) -> str:
    """``value`` as ``schema.JSONText`` keeps it (compact, non-ASCII kept as is)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def aware(at: datetime) -> datetime:
    """``at``, refused when naive (the store keeps only aware times)."""
    if at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: the store keeps only aware UTC times")
    return at


def utc_text(at: datetime) -> str:
    """``at`` as ``schema.UTCDateTime`` keeps it (fixed-width UTC text)."""
    return aware(at).astimezone(UTC).isoformat(timespec="microseconds")


class SQLiteWrites:
    """The SQLite file's statements (see the module docstring)."""

    _UPSERT_STATE = (
        "INSERT INTO line_state (line, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (line) "
        "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
    )
    # A minute's sample written twice (a restart, a repeated flush) is kept once.
    _INSERT_SAMPLE = (
        "INSERT INTO samples (line, at, figures) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
    )
    # Planning the same order twice (same key) must not run it twice.
    _insert_order = sqlite_insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.key])
    _upsert_meta = sqlite_insert(meta)
    _upsert_meta = _upsert_meta.on_conflict_do_update(
        index_elements=[meta.c.key], set_={"value": _upsert_meta.excluded.value}
    )

    def state_rows(self, rows: Sequence[tuple[str, Any]], now: datetime) -> list[Any]:
        """Encoded as the columns would keep them, for the driver's executemany."""
        stamp = utc_text(now)
        return [(line, json_text(state), stamp) for line, state in rows]

    def upsert_states(self, conn: Connection, rows: list[Any]) -> None:
        """One prepared statement through executemany, however many lines."""
        conn.exec_driver_sql(self._UPSERT_STATE, rows)

    def sample_rows(self, rows: Sequence[tuple[str, datetime, Mapping[str, Any]]]) -> list[Any]:
        """Encoded as the columns would keep them, for the driver's executemany."""
        return [(line, utc_text(at), json_text(f)) for line, at, f in rows]

    def insert_samples(self, conn: Connection, rows: list[Any]) -> None:
        """One prepared statement through executemany."""
        conn.exec_driver_sql(self._INSERT_SAMPLE, rows)

    def insert_orders(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """``INSERT … ON CONFLICT (key) DO NOTHING``."""
        conn.execute(self._insert_order, list(rows))

    def upsert_meta(self, conn: Connection, key: str, value: str) -> None:
        """``INSERT … ON CONFLICT (key) DO UPDATE``."""
        conn.execute(self._upsert_meta, {"key": key, "value": value})

    def locked(self, query: S) -> S:
        """The query as it is: BEGIN IMMEDIATE already holds the whole file."""
        return query


class PostgresWrites:
    """PostgreSQL's statements (see the module docstring)."""

    _upsert_state = pg_insert(line_state)
    _upsert_state = _upsert_state.on_conflict_do_update(
        index_elements=[line_state.c.line],
        set_={
            "state": _upsert_state.excluded.state,
            "updated_at": _upsert_state.excluded.updated_at,
        },
    )
    _insert_sample = pg_insert(samples).on_conflict_do_nothing(
        index_elements=[samples.c.line, samples.c.at]
    )
    _insert_order = pg_insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.key])
    _upsert_meta = pg_insert(meta)
    _upsert_meta = _upsert_meta.on_conflict_do_update(
        index_elements=[meta.c.key], set_={"value": _upsert_meta.excluded.value}
    )

    def state_rows(self, rows: Sequence[tuple[str, Any]], now: datetime) -> list[Any]:
        """Parameter dicts; the columns' types encode them (the time is checked here)."""
        stamp = aware(now)
        return [{"line": line, "state": state, "updated_at": stamp} for line, state in rows]

    def upsert_states(self, conn: Connection, rows: list[Any]) -> None:
        """``INSERT … ON CONFLICT (line) DO UPDATE``, one executemany."""
        conn.execute(self._upsert_state, rows)

    def sample_rows(self, rows: Sequence[tuple[str, datetime, Mapping[str, Any]]]) -> list[Any]:
        """Parameter dicts; the columns' types encode them (times are checked here)."""
        return [{"line": line, "at": aware(at), "figures": dict(f)} for line, at, f in rows]

    def insert_samples(self, conn: Connection, rows: list[Any]) -> None:
        """``INSERT … ON CONFLICT DO NOTHING``, one executemany."""
        conn.execute(self._insert_sample, rows)

    def insert_orders(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """``INSERT … ON CONFLICT (key) DO NOTHING``."""
        conn.execute(self._insert_order, list(rows))

    def upsert_meta(self, conn: Connection, key: str, value: str) -> None:
        """``INSERT … ON CONFLICT (key) DO UPDATE``."""
        conn.execute(self._upsert_meta, {"key": key, "value": value})

    def locked(self, query: S) -> S:
        """``SELECT … FOR UPDATE``: held until the transaction commits or rolls back."""
        return query.with_for_update()
