"""Opening the store's database: a SQLite file (the default) or a PostgreSQL server.

SQLite: one file, one daemon. The file is locked (``flock`` on ``<path>.lock``, released
by the kernel even on ``kill -9``) before it is opened, created 0600, refused when it is 0
bytes (unless the operator says to start afresh) or fails SQLite's quick check, and used
in WAL mode with writes opening ``BEGIN IMMEDIATE``.

PostgreSQL (``postgresql://…``, used through psycopg 3): replicas share one database, so
there is no lock and no file to check; a small pool of connections, each checked before
use (a replica outlives a database restart), and a bounded connect so a database that is
down fails the call instead of hanging the daemon. The URL's password never leaves this
module in a message: ``describe`` hides it.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from risingtide.store.errors import StoreError, StoreLocked

#: A connection execution option: open its transaction with BEGIN IMMEDIATE (SQLite).
WRITE = "risingtide_write"

#: What a PostgreSQL target starts with (``postgresql://`` is used as psycopg's).
POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://")

#: Seconds to wait for PostgreSQL to answer a new connection before giving up.
CONNECT_TIMEOUT = 5
#: Connections a replica keeps open: the tick, the dispatcher, leases and API reads.
POOL_SIZE = 5

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # NORMAL in WAL mode: a commit survives a process crash; only a power cut can lose the
    # last few transactions (never corrupt the file). That is the trade the design makes.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


def is_url(target: Path | str) -> bool:
    """True when ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def postgres_url(url: str) -> URL:
    """``url`` as SQLAlchemy takes it, on psycopg 3; ``StoreError`` if it is not one."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"{describe(url)} is not a PostgreSQL URL") from None
    if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
        raise StoreError(f"{describe(url)} is not a postgresql:// URL")
    return parsed.set(drivername="postgresql+psycopg")


def describe(target: Path | str) -> str:
    """What to show of ``target`` in logs and messages: a path, or a URL with ``***`` for
    its password."""
    if not is_url(target):
        return str(target)
    try:
        return make_url(str(target)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return f"{str(target).split('://', 1)[0]}://***"


def password_of(target: Path | str) -> str | None:
    """The password written in a PostgreSQL URL, if any (to scrub it from messages)."""
    if not is_url(target):
        return None
    try:
        return make_url(str(target)).password or None
    except (ArgumentError, ValueError):
        return None


def postgres_engine(url: str, *, read_only: bool = False) -> Engine:
    """A pooled engine on the PostgreSQL database at ``url``; ``read_only`` sessions refuse
    every write (reports beside running replicas)."""
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "risingtide",
    }
    if read_only:
        connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        return create_engine(
            postgres_url(url),
            pool_size=1 if read_only else POOL_SIZE,
            max_overflow=POOL_SIZE,
            pool_pre_ping=True,
            pool_timeout=30,
            connect_args=connect_args,
        )
    except SQLAlchemyError as exc:
        raise StoreError(
            f"state store {describe(url)}: cannot use it: {type(exc).__name__}"
        ) from None


def sqlite_engine(path: Path) -> Engine:
    """An engine on the SQLite file at ``path``: WAL, and BEGIN IMMEDIATE for writes."""
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
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def sqlite_read_only_engine(path: Path) -> Engine:
    """An engine that only reads the SQLite file at ``path`` (``mode=ro``)."""
    return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")


def check_integrity(engine: Engine, path: Path) -> None:
    """Refuse a corrupt SQLite file at once (``PRAGMA quick_check``), rather than failing
    every evaluation later with a store that can never work."""
    try:
        with engine.connect() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    except SQLAlchemyError as exc:
        raise StoreError(_corrupt(path, str(getattr(exc, "orig", exc)))) from exc
    if rows != ["ok"]:
        raise StoreError(_corrupt(path, "; ".join(str(r) for r in rows[:3])))


def _corrupt(path: Path, detail: str) -> str:
    return (
        f"{path} is not a readable Rising Tide state file (SQLite's quick check says: "
        f"{detail}); restore it from a backup, or move it aside and start with "
        "`risingtide run --fresh-state` (the lines start calm and every live switch is "
        "forgotten)"
    )


def create_or_check(real: Path, shown: str, *, fresh: bool) -> None:
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


def acquire_lock(lock_path: Path, db_name: str) -> int:
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


def release_lock(fd: int) -> None:
    """Let go of the lock taken by ``acquire_lock``."""
    # Leave the lock file in place: deleting it would race with a process opening it.
    with suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
