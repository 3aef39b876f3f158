"""The store: line state, the append-only history and the outbox, in one SQLite file.

Every evaluation tick ends in one ``Store.commit``: all lines' new states, their events and
the response orders they planned go in as one transaction, so after a crash (even
``kill -9``) either all of a tick is on disk or none of it is. Responses then leave through
the outbox: the dispatcher runs pending entries and records each outcome, and an entry is
marked done only after its responder returned — a crash in between runs it once more, with
the same idempotency key (at-least-once delivery; responders de-duplicate by key).

The API is synchronous on purpose: SQLite in WAL mode with ``synchronous=NORMAL`` commits
in about a millisecond, which is cheaper than a hop to a worker thread. Only one daemon may
use a state file at a time; an advisory lock (``flock`` on ``<path>.lock``, released by the
kernel even on ``kill -9``) enforces it.

Dead letters: an entry the dispatcher gave up on stays ``dead`` until an operator either
requeues it (``requeue``: pending again, as a fresh order) or dismisses it (``dismiss``:
``dismissed``, never to run); each is recorded in the history with who did it.

Errors::

    StoreError          the database failed, or holds something this version cannot use
    ├── StoreLocked     another process holds the state file's lock
    ├── SchemaTooNewError    the file was written by a newer Rising Tide
    └── NotDeadError    requeue or dismiss of an entry that is not a dead letter
        └── UnknownEntryError    … or of a key the outbox does not have
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import structlog
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Row,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from risingtide.clock import Clock
from risingtide.domain.model import Event, LineState, ResponseOrder
from risingtide.store import codec
from risingtide.store.codec import CodecError
from risingtide.store.fence import Fence
from risingtide.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    history,
    line_state,
    meta,
    metadata,
    outbox,
    samples,
)

__all__ = [
    "HistoryEntry",
    "NotDeadError",
    "OutboxEntry",
    "OutboxStatus",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "StoreLocked",
    "UnknownEntryError",
]

log = structlog.get_logger(__name__)

#: ``dismissed`` (schema 3): a dead letter an operator chose not to retry.
OutboxStatus = Literal["pending", "done", "dead", "dismissed"]

#: A connection execution option: open its transaction with BEGIN IMMEDIATE.
_WRITE = "risingtide_write"

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # NORMAL in WAL mode: a commit survives a process crash; only a power cut can lose the
    # last few transactions (never corrupt the file). That is the trade the design makes.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


class StoreError(RuntimeError):
    """The state store failed, or holds something this version cannot use."""


class StoreLocked(StoreError):  # noqa: N818 - the name is part of the store's API
    """Another process (another Rising Tide, usually) holds the state file."""


class SchemaTooNewError(StoreError):
    """The state file was written by a newer Rising Tide, whose tables this one cannot read."""


class NotDeadError(StoreError):
    """Only a dead letter can be requeued or dismissed; ``status`` is what the entry is."""

    def __init__(self, message: str, *, key: str, status: OutboxStatus | None) -> None:
        """``status`` is None when the outbox has no entry with ``key``."""
        super().__init__(message)
        self.key = key
        self.status = status


class UnknownEntryError(NotDeadError):
    """The outbox has no entry with that key."""


class Fenced(StoreError):  # noqa: N818 - the name is part of the store's API
    """A write refused by the database: another replica now leads a line it touches."""

    def __init__(self, message: str, *, partitions: Collection[int]) -> None:
        """``partitions``: those whose lease no longer carries this replica's token."""
        super().__init__(message)
        self.partitions = frozenset(partitions)


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


# Statements built once; SQLAlchemy caches their compiled form.
# Line states go through the driver's executemany, encoded as the schema's column types
# would (compact JSON, fixed-width UTC text): SQLAlchemy's per-row type processing was
# most of a 10,000-line commit.
_UPSERT_STATE = (
    "INSERT INTO line_state (line, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (line) "
    "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
)
_insert_history = insert(history)
_upsert_meta = sqlite_insert(meta)
_upsert_meta = _upsert_meta.on_conflict_do_update(
    index_elements=[meta.c.key], set_={"value": _upsert_meta.excluded.value}
)
# A minute's sample written twice (a restart, a repeated flush) is kept once.
_INSERT_SAMPLE = "INSERT INTO samples (line, at, figures) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


def _json(value: Any) -> str:
    """``value`` as ``schema.JSONText`` keeps it (compact, non-ASCII kept as is)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sample_time(at: datetime) -> str:
    """``at`` as the ``samples.at`` column keeps it (``schema.UTCDateTime``'s text)."""
    if at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: the store keeps only aware UTC times")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# Planning the same order twice (same key) must not run it twice.
_insert_order = sqlite_insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.key])


class Store:
    """Line state, history and outbox in one SQLite file (see the module docstring)."""

    #: Whether other replicas may share this store (a SQLite file: never).
    shared = False

    def __init__(self, path: Path | str, clock: Clock, *, fresh: bool = False) -> None:
        """Open (or create) the state file at ``path``, taking its lock.

        Creates missing parent directories and tables; a new file and its side files
        (``-wal``, ``-shm``, ``.lock``) are readable by the owner only (0600). Raises
        ``StoreLocked`` when another process uses the file (a symlink to it included: the
        lock is taken on the real file), ``SchemaTooNewError`` when a newer version wrote
        it, and ``StoreError`` when the file is empty (0 bytes: unless ``fresh``, the
        operator's word to start afresh) or corrupt (SQLite's quick check).
        """
        self.path = Path(path)
        self._clock = clock
        self._closed = False
        #: Checks each effect-causing write against the partition leases (replicas on a
        #: shared database, ``risingtide.store.fence``); None: this daemon is the only one.
        self.fence: Fence | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Lock the real file, not the name as written: two daemons given two names for one
        # file (a symlink, a relative path) must still meet at the same lock.
        real = self.path.resolve()
        # Lock before opening the database, so a second daemon never touches a live file.
        self._lock_fd: int | None = _acquire_lock(Path(f"{real}.lock"), str(path))
        self._engine: Engine | None = None
        try:
            _create_or_check(real, str(path), fresh=fresh)
            self._engine = _make_engine(self.path)
            self._check_integrity()
            self._prepare()
        except BaseException:
            self.close()
            raise

    @classmethod
    def read_only(cls, path: Path | str, clock: Clock) -> Store:
        """Open an existing state file only to read it, beside a running daemon.

        Takes no lock and never writes (SQLite's ``mode=ro``): in WAL mode a reader sees
        the last committed transaction while the daemon goes on writing. For reports.
        Raises ``StoreError`` when there is no such file, ``SchemaTooNewError`` when a
        newer version wrote it.
        """
        store = cls.__new__(cls)
        store.path = Path(path)
        store._clock = clock
        store._closed = False
        store._lock_fd = None
        store.fence = None
        store._engine = None
        if not store.path.is_file():
            raise StoreError(f"no state file at {store.path}")
        store._engine = create_engine(f"sqlite:///file:{store.path}?mode=ro&uri=true")
        try:
            with store._transaction(write=False) as conn:
                version = conn.execute(
                    select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar_one_or_none()
        except BaseException:
            store.close()
            raise
        if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION:
            store.close()
            raise SchemaTooNewError(
                f"{store.path} was written by a newer Rising Tide (schema version {version})"
            )
        return store

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database and release the lock. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            # Leave the lock file in place: deleting it would race with a process opening it.
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> Self:
        """The store itself; ``close`` on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()

    def _prepare(self) -> None:
        with self._transaction(write=True) as conn:
            has_meta = conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
            ).first()
            version = None
            if has_meta:
                version = conn.execute(
                    select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar_one_or_none()
            if version is not None:
                try:
                    found = int(version)
                except ValueError:
                    raise StoreError(
                        f"{self.path} has a schema version Rising Tide cannot read: {version!r}"
                    ) from None
                # Checked before create_all: a newer schema may have renamed tables, and
                # creating ours beside them would only confuse the newer version later.
                if found > SCHEMA_VERSION:
                    raise SchemaTooNewError(
                        f"{self.path} was written by a newer Rising Tide (schema version "
                        f"{found}; this version reads up to {SCHEMA_VERSION}); upgrade Rising "
                        "Tide, or point this one at another state file"
                    )
                for step in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS.get(step, ()):
                        conn.execute(text(statement))
                if found < SCHEMA_VERSION:
                    conn.execute(
                        update(meta)
                        .where(meta.c.key == "schema_version")
                        .values(value=str(SCHEMA_VERSION))
                    )
            metadata.create_all(conn)
            if version is None:
                conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))

    def _check_integrity(self) -> None:
        """Refuse a corrupt file at once (``PRAGMA quick_check``), rather than failing every
        evaluation later with a store that can never work."""
        assert self._engine is not None
        try:
            with self._engine.connect() as conn:
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
        except SQLAlchemyError as exc:
            raise StoreError(_corrupt(self.path, str(getattr(exc, "orig", exc)))) from exc
        if rows != ["ok"]:
            raise StoreError(_corrupt(self.path, "; ".join(str(r) for r in rows[:3])))

    def transaction(self, *, write: bool) -> AbstractContextManager[Connection]:
        """A transaction on the store's database, for the store's companions (leases,
        commands relayed between replicas); ``StoreError`` on any database error."""
        return self._transaction(write=write)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """A transaction; a write one opens with BEGIN IMMEDIATE (takes the write lock)."""
        if self._engine is None:
            raise StoreError(f"the store at {self.path} is closed")
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc

    # ------------------------------------------------------------------ line state

    def load_states(self) -> dict[str, LineState]:
        """Every line's last committed state, by line id."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(select(line_state.c.line, line_state.c.state)).all()
        states: dict[str, LineState] = {}
        for line, data in rows:
            try:
                states[line] = codec.decode_state(data)
            except CodecError as exc:
                raise StoreError(
                    f"{self.path}: the state of line {line!r} is unreadable: {exc}"
                ) from exc
        return states

    def commit(
        self,
        states: Sequence[LineState],
        events: Sequence[Event],
        orders: Sequence[ResponseOrder],
    ) -> None:
        """Save one evaluation in ONE transaction: all of it, or (on any error) none of it.

        Upserts each line state, appends each event to the history, and adds each order to
        the outbox as pending (attempts 0, first run at ``order.at``). An order whose key is
        already in the outbox is ignored, so planning it twice runs it once.
        """
        now = self._clock.now()
        # Encode everything before the transaction opens: a bad value fails here, without
        # holding the write lock.
        stamp = _sample_time(now)
        state_rows = [(s.line, _json(codec.encode_state(s)), stamp) for s in states]
        history_rows = [
            {
                "at": e.at,
                "line": e.line,
                "kind": e.kind,
                "tier": codec.event_tier(e),
                "data": codec.event_data(e),
            }
            for e in events
        ]
        order_rows = [_order_row(o, now) for o in orders]
        with self._transaction(write=True) as conn:
            if self.fence is not None and (states or orders):
                self.fence.check(conn, {s.line for s in states} | {o.line for o in orders})
            # executemany: one prepared statement per table, however many lines.
            if state_rows:
                conn.exec_driver_sql(_UPSERT_STATE, state_rows)
            if history_rows:
                conn.execute(_insert_history, history_rows)
            if order_rows:
                conn.execute(_insert_order, order_rows)

    def note_observed(self, at: datetime) -> None:
        """Note ``at`` as when the daemon last saw its lines (read by ``observed_at``)."""
        with self._transaction(write=True) as conn:
            conn.execute(_upsert_meta, {"key": "observed_at", "value": _sample_time(at)})

    def observed_at(self) -> datetime | None:
        """When the daemon last saw its lines (a line stored fresh was fresh then), if noted."""
        with self._transaction(write=False) as conn:
            value = conn.execute(
                select(meta.c.value).where(meta.c.key == "observed_at")
            ).scalar_one_or_none()
        return None if value is None else datetime.fromisoformat(value)

    def retire_line(
        self, line: str, orders: Sequence[ResponseOrder], record: Mapping[str, Any], now: datetime
    ) -> None:
        """Close a removed line's episode in ONE transaction: queue ``orders`` (the UNDOs of
        its live switches), append a ``line_removed`` history record with ``record`` as its
        data, and delete its stored state, so a line added back later starts calm."""
        order_rows = [_order_row(o, now) for o in orders]
        history_row = {
            "at": now, "line": line, "kind": "line_removed", "tier": record.get("tier"),
            "data": dict(record),
        }  # fmt: skip
        with self._transaction(write=True) as conn:
            if self.fence is not None:
                self.fence.check(conn, (line,))
            if order_rows:
                conn.execute(_insert_order, order_rows)
            conn.execute(_insert_history, history_row)
            conn.execute(delete(line_state).where(line_state.c.line == line))

    # ------------------------------------------------------------------ history

    def history(
        self,
        *,
        line: str | None = None,
        kinds: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[HistoryEntry]:
        """History entries, newest first, at most ``limit``.

        Filters: one ``line``; ``kinds`` (an empty collection matches nothing); ``since``
        (inclusive) and ``until`` (exclusive) on the entry's time. For the next page pass the
        last entry's id as ``before_id``.
        """
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        if kinds is not None and not kinds:
            return []
        query = select(history).order_by(history.c.id.desc()).limit(limit)
        if line is not None:
            query = query.where(history.c.line == line)
        if kinds is not None:
            query = query.where(history.c.kind.in_(sorted(kinds)))
        if since is not None:
            query = query.where(history.c.at >= since)
        if until is not None:
            query = query.where(history.c.at < until)
        if before_id is not None:
            query = query.where(history.c.id < before_id)
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return [
            HistoryEntry(id=r.id, at=r.at, line=r.line, kind=r.kind, tier=r.tier, data=r.data)
            for r in rows
        ]

    def append_history(
        self, entries: Sequence[tuple[str, str, datetime, int | None, Mapping[str, Any]]]
    ) -> None:
        """Append records that are not domain events, as ``(line, kind, at, tier, data)``.

        For example ``("*", "config_reloaded", now, None, {"ok": True})``; ``data`` must be
        JSON-able.
        """
        rows = [
            {"line": line, "kind": kind, "at": at, "tier": tier, "data": dict(data)}
            for line, kind, at, tier, data in entries
        ]
        if not rows:
            return
        with self._transaction(write=True) as conn:
            conn.execute(_insert_history, rows)

    # ------------------------------------------------------------------ samples

    def write_samples(self, rows: Sequence[tuple[str, datetime, Mapping[str, Any]]]) -> None:
        """Keep ``(line, at, figures)`` samples, all in one transaction.

        A sample already kept for the same line and time is left as it is, so writing the
        same minute twice (after a restart, say) keeps one.
        """
        # Encoded here, as the schema's column types would (fixed-width UTC text, compact
        # JSON), and sent as one executemany: at 10,000 lines a minute the per-row work of
        # SQLAlchemy's type processing was most of the cost.
        values = [
            (line, _sample_time(at), json.dumps(f, separators=(",", ":"), ensure_ascii=False))
            for line, at, f in rows
        ]
        if not values:
            return
        with self._transaction(write=True) as conn:
            conn.exec_driver_sql(_INSERT_SAMPLE, values)

    def samples(
        self, line: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """A line's kept samples as ``(at, figures)``, oldest first; ``since`` inclusive,
        ``until`` exclusive."""
        query = select(samples.c.at, samples.c.figures).where(samples.c.line == line)
        if since is not None:
            query = query.where(samples.c.at >= since)
        if until is not None:
            query = query.where(samples.c.at < until)
        with self._transaction(write=False) as conn:
            return [(r.at, r.figures) for r in conn.execute(query.order_by(samples.c.at))]

    def delete_samples_before(self, at: datetime) -> int:
        """Forget samples older than ``at`` (the history's retention); how many went."""
        with self._transaction(write=True) as conn:
            gone: int = conn.execute(samples.delete().where(samples.c.at < at)).rowcount
        return gone

    # ------------------------------------------------------------------ retention

    def prune(
        self, *, history_before: datetime, done_before: datetime, batch: int = 2000
    ) -> tuple[int, int]:
        """Delete history older than ``history_before`` and outbox entries done before
        ``done_before`` (and dismissed ones older than ``history_before``); return how many
        of each.

        Pending and dead entries are never deleted: they are work still to do or to look
        at. Deletes go in batches of ``batch`` rows, each its own short transaction, so a
        first run over a year of rows never holds the write lock for long.
        """
        old_history = select(history.c.id).where(history.c.at < history_before).limit(batch)
        finished = or_(
            and_(outbox.c.status == "done", outbox.c.finished_at < done_before),
            and_(outbox.c.status == "dismissed", outbox.c.created_at < history_before),
        )
        old_outbox = select(outbox.c.id).where(finished).limit(batch)
        return (
            self._delete_batches(history, old_history),
            self._delete_batches(outbox, old_outbox),
        )

    def _delete_batches(self, table: Any, ids: Any) -> int:
        deleted = 0
        for _ in range(1_000_000):  # bounded: each round deletes up to a batch, or stops
            with self._transaction(write=True) as conn:
                count = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
            deleted += count
            if not count:
                break
        return deleted

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the file and truncate it to 0 bytes
        (``PRAGMA wal_checkpoint(TRUNCATE)``), so the ``-wal`` file cannot grow without
        bound between restarts. A busy database is left for the next time."""
        if self._engine is None:
            raise StoreError(f"the store at {self.path} is closed")
        try:
            # The raw connection: outside any transaction, which a checkpoint needs.
            raw = self._engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cursor.fetchall()
                cursor.close()
            finally:
                raw.close()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc

    def size_bytes(self) -> int:
        """The bytes the store takes on disk: the file and its write-ahead log."""
        total = 0
        for part in (self.path, Path(f"{self.path}-wal")):
            with suppress(OSError):
                total += part.stat().st_size
        return total

    # ------------------------------------------------------------------ outbox

    def due(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Pending entries whose next attempt is at or before ``now``, oldest first."""
        query = (
            select(outbox)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            return [_outbox_entry(r) for r in conn.execute(query)]

    def pending(self) -> list[OutboxEntry]:
        """Every pending entry, due or not, oldest first."""
        query = select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id)
        with self._transaction(write=False) as conn:
            return [_outbox_entry(r) for r in conn.execute(query)]

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
        return None if row is None else _outbox_entry(row)

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

    def _check_fence(self, conn: Connection, rows: Sequence[_PendingRow]) -> None:
        if self.fence is not None and rows:
            self.fence.check(conn, {row.order["line"] for row in rows})

    def record_success(self, key: str | Sequence[str], detail: str, now: datetime) -> None:
        """Mark pending entries done, each with a ``response`` history entry, in one transaction.

        ``key`` is one idempotency key or the keys of a batch sent together; ``detail`` is
        the responder's short outcome. Raises ``StoreError`` if a key has no pending entry.
        """
        with self._transaction(write=True) as conn:
            rows = [self._pending_row(conn, one) for one in _keys(key)]
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
                    _response_record(row, now, outcome="ok", detail=detail, attempts=attempts),
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
        order_rows = [_order_row(o, now) for o in enqueue]
        with self._transaction(write=True) as conn:
            rows = [self._pending_row(conn, one) for one in _keys(key)]
            self._check_fence(conn, rows)
            if order_rows:
                conn.execute(_insert_order, order_rows)
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
                    _response_record(
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
            return [_outbox_entry(r) for r in conn.execute(query)]

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
            record = _operator_record(row, now, "response_requeued", by, note)
            conn.execute(_insert_history, record)
            return _outbox_entry(conn.execute(select(outbox).where(outbox.c.id == row.id)).one())

    def dismiss(self, key: str, now: datetime, by: str, note: str = "") -> OutboxEntry:
        """Mark the dead letter ``key`` dismissed: it never runs, and no longer counts as dead.

        The history's ``response_dismissed`` record says who and why, in the same
        transaction. Raises ``UnknownEntryError`` or ``NotDeadError``.
        """
        with self._transaction(write=True) as conn:
            row = self._dead_row(conn, key, "dismiss", "dismissed")
            conn.execute(update(outbox).where(outbox.c.id == row.id).values(status="dismissed"))
            record = _operator_record(row, now, "response_dismissed", by, note)
            conn.execute(_insert_history, record)
            return _outbox_entry(conn.execute(select(outbox).where(outbox.c.id == row.id)).one())

    def _dead_row(self, conn: Connection, key: str, verb: str, done: str) -> Row[Any]:
        row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
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

    def _pending_row(self, conn: Connection, key: str) -> _PendingRow:
        row = conn.execute(
            select(outbox.c.id, outbox.c.attempts, outbox.c.status, outbox.c.order).where(
                outbox.c.key == key
            )
        ).first()
        if row is None:
            raise StoreError(f"no outbox entry has the key {key!r}")
        if row.status != "pending":
            raise StoreError(f"the outbox entry {key!r} is already {row.status}")
        return _PendingRow(id=row.id, attempts=row.attempts, order=row.order)


@dataclass(frozen=True, slots=True)
class _PendingRow:
    """What recording an outcome needs of a pending entry (``order`` as stored JSON)."""

    id: int
    attempts: int
    order: dict[str, Any]


def _order_row(order: ResponseOrder, now: datetime) -> dict[str, Any]:
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


def _keys(key: str | Sequence[str]) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)


def _response_record(
    row: _PendingRow, now: datetime, *, outcome: str, detail: str, attempts: int, **extra: Any
) -> dict[str, Any]:
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


def _operator_record(row: Row[Any], now: datetime, kind: str, by: str, note: str) -> dict[str, Any]:
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


def _outbox_entry(row: Row[Any]) -> OutboxEntry:
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


def _make_engine(path: Path) -> Engine:
    engine = create_engine(URL.create("sqlite", database=str(path)))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the sqlite3 module from opening transactions on its own (it would defer BEGIN
        # until the first write); the "begin" hook below opens them instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE for writes: take the write lock up front, so a read-then-write
        # transaction (record_success) can never fail half-way on a lock upgrade.
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _corrupt(path: Path, detail: str) -> str:
    return (
        f"{path} is not a readable Rising Tide state file (SQLite's quick check says: "
        f"{detail}); restore it from a backup, or move it aside and start with "
        "`risingtide run --fresh-state` (the lines start calm and every live switch is "
        "forgotten)"
    )


def _create_or_check(real: Path, shown: str, *, fresh: bool) -> None:
    """Create a missing state file 0600 (SQLite gives ``-wal`` and ``-shm`` the same mode);
    refuse a 0-byte one unless ``fresh``.

    A 0-byte file is what a truncation or a failed copy leaves: taking it as a new store
    would forget every line's tier and live switch without a word.
    """
    try:
        fd = os.open(real, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)
        return
    wal = Path(f"{real}-wal")
    if real.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0) and not fresh:
        raise StoreError(
            f"{shown} is empty (0 bytes), so it holds no line state: it may have been "
            "truncated or copied badly. Restore it from a backup; or, to start afresh (every "
            "line calm, no switch known to be on), run `risingtide run --fresh-state`"
        )


def _acquire_lock(lock_path: Path, db_name: str) -> int:
    """Take the exclusive advisory lock on ``lock_path`` and write our pid into it."""
    # os.open's descriptors are not inherited by child processes (PEP 446), so a responder
    # that spawns a program cannot keep the lock alive after the daemon dies.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreLocked(
            f"another Rising Tide (pid {holder}) is using {db_name}; stop it first, "
            "or give this one its own state file"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
