"""The store: line state, the append-only history and the outbox, on SQLite or PostgreSQL.

Every evaluation tick ends in one ``Store.commit``: all lines' new states, their events and
the response orders they planned go in as one transaction, so after a crash (even
``kill -9``) either all of a tick is in the database or none of it is. Responses then
leave through the outbox (``risingtide.store.outbox``).

One daemon keeps its state in one SQLite file (``server.state_file``, the default): in
WAL mode with ``synchronous=NORMAL`` a commit takes about a millisecond, which is why the
API is synchronous, and a lock file keeps a second daemon out. Replicas share one
PostgreSQL database instead (``server.database``): no lock (the partition leases and the
fence decide who writes what), row locks where a method reads and then writes, and the
same tables, migrated by Alembic on both (``risingtide.store.migrate``).

Errors are listed in ``risingtide.store.errors``; every database error is a ``StoreError``
whose message never holds the database's password.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog
from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, text
from sqlalchemy.exc import SQLAlchemyError

from risingtide.clock import Clock
from risingtide.domain.model import Event, LineState, ResponseOrder
from risingtide.store import codec, engines, migrate
from risingtide.store.codec import CodecError
from risingtide.store.errors import StoreError
from risingtide.store.fence import Fence
from risingtide.store.outbox import OutboxMethods
from risingtide.store.records import HistoryEntry, order_row
from risingtide.store.schema import history, line_state, meta, outbox, samples
from risingtide.store.writes import PostgresWrites, SQLiteWrites, Writes, utc_text

if TYPE_CHECKING:
    from risingtide.config.model import ServerConfig

log = structlog.get_logger(__name__)

_insert_history = insert(history)

#: How long ``size_bytes`` on PostgreSQL answers from its last reading (it is read at
#: every /metrics scrape, and must not query, or fail, that often).
_SIZE_KEPT = 60.0


def open_store(server: ServerConfig, clock: Clock, *, fresh: bool = False) -> Store:
    """The daemon's store as ``server`` says: the SQLite file at ``server.state_file``, or
    the PostgreSQL database at ``server.database`` when one is set."""
    target: Path | str = server.state_file if server.database is None else server.database
    return Store(target, clock, fresh=fresh)


class Store(OutboxMethods):
    """Line state, history and outbox in a SQLite file or a PostgreSQL database."""

    _engine: Engine | None

    def __init__(self, target: Path | str, clock: Clock, *, fresh: bool = False) -> None:
        """Open (or create) the store at ``target``: a SQLite file's path, or a
        ``postgresql://`` URL.

        SQLite: creates missing parent directories; a new file and its side files (``-wal``,
        ``-shm``, ``.lock``) are readable by the owner only (0600). Raises ``StoreLocked``
        when another process uses the file (a symlink to it included: the lock is taken on
        the real file), and ``StoreError`` when the file is empty (0 bytes: unless
        ``fresh``, the operator's word to start afresh) or corrupt (SQLite's quick check).
        PostgreSQL: any number of replicas may open the same database; ``fresh`` does
        nothing there. Either way the tables are migrated to this version's
        (``SchemaTooNewError`` when a newer version wrote them).
        """
        self._setup(target, clock)
        try:
            if self.path is None:
                self._engine = engines.postgres_engine(str(target))
            else:
                self._open_file(self.path, fresh=fresh)
            with self._transaction(write=True) as conn:
                migrate.migrate(conn, self.describe)
        except BaseException:
            self.close()
            raise

    def _setup(self, target: Path | str, clock: Clock) -> None:
        self._clock = clock
        self._closed = False
        self._engine = None
        self._lock_fd: int | None = None
        #: True on PostgreSQL: replicas may share this store.
        self.shared = engines.is_url(target)
        #: The SQLite file, or None on PostgreSQL.
        self.path: Path | None = None if self.shared else Path(target)
        #: What to log for the store: the file's path, or the URL with its password hidden.
        self.describe = engines.describe(target) if self.shared else str(self.path)
        self._password = engines.password_of(target)
        self._writes: Writes = PostgresWrites() if self.shared else SQLiteWrites()
        self._size: tuple[float, int] | None = None
        #: Checks each effect-causing write against the partition leases (replicas on a
        #: shared database, ``risingtide.store.fence``); None: this daemon is the only one.
        self.fence: Fence | None = None

    def _open_file(self, path: Path, *, fresh: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Lock the real file, not the name as written: two daemons given two names for one
        # file (a symlink, a relative path) must still meet at the same lock.
        real = path.resolve()
        # Lock before opening the database, so a second daemon never touches a live file.
        self._lock_fd = engines.acquire_lock(Path(f"{real}.lock"), str(path))
        engines.create_or_check(real, str(path), fresh=fresh)
        self._engine = engines.sqlite_engine(path)
        engines.check_integrity(self._engine, path)

    @classmethod
    def read_only(cls, target: Path | str, clock: Clock) -> Store:
        """Open an existing store only to read it, beside a running daemon: a SQLite file's
        path or a ``postgresql://`` URL. For reports.

        Takes no lock and never writes (SQLite's ``mode=ro``; PostgreSQL's read-only
        transactions): a reader sees the last committed transaction while the daemon goes
        on writing. Raises ``StoreError`` when there is no such store, ``SchemaTooNewError``
        when a newer version wrote it.
        """
        store = cls.__new__(cls)
        store._setup(target, clock)
        if store.path is None:
            store._engine = engines.postgres_engine(str(target), read_only=True)
        elif not store.path.is_file():
            raise StoreError(f"no state file at {store.path}")
        else:
            store._engine = engines.sqlite_read_only_engine(store.path)
        try:
            with store._transaction(write=False) as conn:
                found = migrate.check(conn, store.describe)
            if "meta" not in found.tables:
                raise StoreError(f"{store.describe} holds no Rising Tide store")
        except BaseException:
            store.close()
            raise
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
            engines.release_lock(fd)

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

    def transaction(self, *, write: bool) -> AbstractContextManager[Connection]:
        """A transaction on the store's database, for the store's companions (leases,
        commands relayed between replicas); ``StoreError`` on any database error."""
        return self._transaction(write=write)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """A transaction; on SQLite a write one opens with BEGIN IMMEDIATE (takes the
        write lock)."""
        if self._engine is None:
            raise StoreError(f"the store at {self.describe} is closed")
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{engines.WRITE: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(self._hidden(f"state store {self.describe}: {exc}")) from exc

    def _hidden(self, message: str) -> str:
        """``message`` with the database's password, should a driver quote it, hidden."""
        return message.replace(self._password, "***") if self._password else message

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
                    f"{self.describe}: the state of line {line!r} is unreadable: {exc}"
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
        state_rows = self._writes.state_rows([(s.line, codec.encode_state(s)) for s in states], now)
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
        order_rows = [order_row(o, now) for o in orders]
        with self._transaction(write=True) as conn:
            if self.fence is not None and (states or orders):
                self.fence.check(conn, {s.line for s in states} | {o.line for o in orders})
            if state_rows:
                self._writes.upsert_states(conn, state_rows)
            if history_rows:
                conn.execute(_insert_history, history_rows)
            if order_rows:
                self._writes.insert_orders(conn, order_rows)

    def note_observed(self, at: datetime) -> None:
        """Note ``at`` as when the daemon last saw its lines (read by ``observed_at``)."""
        with self._transaction(write=True) as conn:
            self._writes.upsert_meta(conn, "observed_at", utc_text(at))

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
        order_rows = [order_row(o, now) for o in orders]
        history_row = {
            "at": now, "line": line, "kind": "line_removed", "tier": record.get("tier"),
            "data": dict(record),
        }  # fmt: skip
        with self._transaction(write=True) as conn:
            if self.fence is not None:
                self.fence.check(conn, (line,))
            if order_rows:
                self._writes.insert_orders(conn, order_rows)
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
        values = self._writes.sample_rows(rows)
        if not values:
            return
        with self._transaction(write=True) as conn:
            self._writes.insert_samples(conn, values)

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
        """Copy SQLite's write-ahead log into the file and truncate it to 0 bytes
        (``PRAGMA wal_checkpoint(TRUNCATE)``), so the ``-wal`` file cannot grow without
        bound between restarts. A busy database is left for the next time. Nothing to do
        on PostgreSQL (its own checkpointer and autovacuum look after its files)."""
        if self._engine is None:
            raise StoreError(f"the store at {self.describe} is closed")
        if self.path is None:
            return
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
        """The bytes the store takes on disk: the SQLite file and its write-ahead log, or
        the PostgreSQL database (``pg_database_size``).

        On PostgreSQL the figure is read at most once a minute, and while the database
        cannot be reached the last figure read stands (0 before any): ``/metrics`` reads it
        at every scrape and must answer even then.
        """
        if self.path is None:
            return self._database_size()
        total = 0
        for part in (self.path, Path(f"{self.path}-wal")):
            with suppress(OSError):
                total += part.stat().st_size
        return total

    def _database_size(self) -> int:
        now = time.monotonic()
        if self._size is not None and now - self._size[0] < _SIZE_KEPT:
            return self._size[1]
        try:
            with self._transaction(write=False) as conn:
                size = int(
                    conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
                )
        except StoreError as exc:
            log.warning("store size not read", store=self.describe, error=str(exc))
            return 0 if self._size is None else self._size[1]
        self._size = (now, size)
        return size
