"""The store: line state, history, outbox, atomic commits, schema version and lock.

Tests taking the ``store`` fixture run on both backends (a SQLite file and a PostgreSQL
database); those about the SQLite file itself (its lock, WAL, migrations of old files) on
SQLite only.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from risingtide.clock import FakeClock
from risingtide.domain.model import (
    Acknowledged,
    Action,
    Cause,
    Event,
    LineState,
    ResponseOrder,
    Silence,
    TierChanged,
)
from risingtide.store import (
    NotDeadError,
    SchemaTooNewError,
    Store,
    StoreError,
    StoreLocked,
    UnknownEntryError,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A clock at Monday 09:00 UTC."""
    return FakeClock(T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the state file lives (its directory does not exist yet)."""
    return tmp_path / "state" / "rising-tide.sqlite"


@pytest.fixture
def store(store_target: Path | str, clock: FakeClock) -> Iterator[Store]:
    """An open store on a fresh file, or on an empty PostgreSQL database."""
    with Store(store_target, clock) as s:
        yield s


@pytest.fixture
def sqlite_store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    """An open store on a fresh SQLite file at ``db_path``."""
    with Store(db_path, clock) as s:
        yield s


def order(key: str, line: str = "revenues", *, at: datetime = T0, **kw: object) -> ResponseOrder:
    """A response order with sensible defaults."""
    fields: dict[str, object] = {
        "response": "notify_duty_manager",
        "action": Action.APPLY,
        "tier": 1,
        "episode": 1,
        "trigger": "tier_changed",
        "reason": "avg_wait 200s > 180s",
    }
    fields.update(kw)
    return ResponseOrder(key=key, line=line, at=at, **fields)  # type: ignore[arg-type]


def raised(line: str, at: datetime, to_tier: int = 1) -> TierChanged:
    """A tier change up to ``to_tier``."""
    return TierChanged(line, at, 0, to_tier, Cause.RAISED, "avg_wait over target", 1)


def evaluation(line: str = "revenues") -> tuple[list[LineState], list[Event], list[ResponseOrder]]:
    """One evaluation's worth: a state, an event and two orders."""
    state = LineState(line=line, tier=1, entered_at=T0, episode=1, when_since=(T0, None))
    return [state], [raised(line, T0)], [order(f"{line}/1"), order(f"{line}/2", response="cb")]


# --------------------------------------------------------------------------- opening


def test_creates_missing_directories(db_path: Path, clock: FakeClock) -> None:
    """Opening a store in a directory that does not exist creates it."""
    assert not db_path.parent.exists()
    with Store(db_path, clock):
        assert db_path.exists()
        assert Path(f"{db_path}.lock").read_text().strip() == str(os.getpid())


def test_file_is_in_wal_mode(sqlite_store: Store, db_path: Path) -> None:
    """The database uses write-ahead logging (fast commits, readers never block)."""
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_closed_store_refuses_work(db_path: Path, clock: FakeClock) -> None:
    """A closed store says so instead of failing obscurely; closing twice is fine."""
    s = Store(db_path, clock)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="is closed"):
        s.load_states()


def test_newer_schema_is_refused(db_path: Path, clock: FakeClock) -> None:
    """A file written by a newer version is not opened, and the lock is let go."""
    Store(db_path, clock).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaTooNewError, match=r"newer Rising Tide \(schema version 99; this"):
        Store(db_path, clock)
    # The failed open released the lock: the same error again, not StoreLocked.
    with pytest.raises(SchemaTooNewError):
        Store(db_path, clock)


def test_schema_version_is_written(store: Store) -> None:
    """A new store records the schema version older versions read (3: dismissed dead
    letters), and Alembic's newest revision."""
    with store.transaction(write=False) as conn:
        row = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").one()
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    assert tuple(row) == ("3",)
    assert revision == "0002"


def test_version_1_file_is_migrated_keeping_its_outbox(db_path: Path, clock: FakeClock) -> None:
    """A file from before batches gains the batch column; its pending orders survive."""
    with Store(db_path, clock) as s:
        s.commit([], [], [order("o1")])
    with sqlite3.connect(db_path) as conn:  # make it what version 1 wrote
        conn.execute("ALTER TABLE outbox DROP COLUMN batch")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store(db_path, clock) as s:
        (entry,) = s.pending()
        assert entry.order.key == "o1" and entry.batch is None
        s.assign_batch(["o1"], "batch-1")
        assert s.pending()[0].batch == "batch-1"
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row == ("3",)


# --------------------------------------------------------------------------- the lock


def test_second_store_in_same_process_is_locked_out(sqlite_store: Store, db_path: Path) -> None:
    """Opening the same file twice in one process raises StoreLocked, naming our pid."""
    with pytest.raises(StoreLocked) as caught:
        Store(db_path, FakeClock(T0))
    assert str(caught.value) == (
        f"another Rising Tide (pid {os.getpid()}) is using {db_path}; stop it first, "
        "or give this one its own state file"
    )


LOCK_PROBE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from risingtide.clock import FakeClock
    from risingtide.store import Store, StoreLocked
    try:
        Store(Path(sys.argv[1]), FakeClock()).close()
    except StoreLocked as exc:
        print(exc)
        sys.exit(3)
    """
)


def test_store_in_another_process_is_locked_out(
    db_path: Path, clock: FakeClock, tmp_path: Path
) -> None:
    """Another process cannot open the file while we hold it, and can once we close it."""
    store = Store(db_path, clock)
    probe = [sys.executable, "-c", LOCK_PROBE, str(db_path)]
    try:
        locked = subprocess.run(probe, capture_output=True, text=True, check=False, cwd=tmp_path)
        assert locked.returncode == 3, locked.stderr
        assert f"another Rising Tide (pid {os.getpid()}) is using" in locked.stdout
    finally:
        store.close()
    free = subprocess.run(probe, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert free.returncode == 0, free.stderr


def test_reopens_after_close(db_path: Path, clock: FakeClock) -> None:
    """Closing releases the lock, and the data is still there."""
    with Store(db_path, clock) as s:
        s.commit(*evaluation())
    with Store(db_path, clock) as s:
        assert set(s.load_states()) == {"revenues"}


# --------------------------------------------------------------------------- line state


def test_states_round_trip_and_latest_wins(store: Store) -> None:
    """Committed states load back equal, and a later commit replaces a line's state."""
    first = LineState(line="revenues", tier=1, entered_at=T0, when_since=(T0, None, None))
    other = LineState(
        line="waste",
        silence=Silence(until=T0 + timedelta(hours=2), by="Sam", reason="IVR work", at=T0),
        live=frozenset({"ivr_deflection"}),
    )
    store.commit([first, other], [], [])
    second = LineState(line="revenues", tier=2, entered_at=T0 + timedelta(minutes=5))
    store.commit([second], [], [])
    assert store.load_states() == {"revenues": second, "waste": other}


#: A trigger that fails every insert into the outbox, in each backend's words.
REFUSE_ORDERS = {
    "sqlite": [
        "CREATE TRIGGER refuse_orders BEFORE INSERT ON outbox "
        "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_orders() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$",
        "CREATE TRIGGER refuse_orders BEFORE INSERT ON outbox "
        "FOR EACH ROW EXECUTE FUNCTION refuse_orders()",
    ],
}


def test_commit_is_all_or_nothing(store: Store) -> None:
    """When the third insert (the outbox) fails, the state and history inserts are undone."""
    store.commit(*evaluation())
    before = (store.load_states(), store.history(), store.pending())
    with store.transaction(write=True) as conn:
        for statement in REFUSE_ORDERS[conn.dialect.name]:
            conn.exec_driver_sql(statement)
    changed = LineState(line="revenues", tier=3)
    with pytest.raises(StoreError, match="outbox refused"):
        store.commit(
            [changed, LineState(line="waste")],
            [raised("revenues", T0 + timedelta(minutes=1), 3)],
            [order("revenues/3", tier=3)],
        )
    assert (store.load_states(), store.history(), store.pending()) == before


def test_commit_encodes_before_writing(store: Store) -> None:
    """A value that cannot be stored fails the commit before anything is written."""
    naive = datetime(2026, 1, 5, 9, 0)  # naive on purpose
    with pytest.raises(ValueError, match="naive"):
        store.commit([LineState(line="a")], [raised("a", naive)], [])
    assert store.load_states() == {}


def test_duplicate_order_key_is_ignored(store: Store) -> None:
    """An order planned twice (same key) is queued once; the first one stays."""
    store.commit([], [], [order("k1", reason="first"), order("k1", reason="same tick")])
    store.commit([], [], [order("k1", reason="later tick")])
    pending = store.pending()
    assert [e.order.key for e in pending] == ["k1"]
    assert pending[0].order.reason == "first"


def test_empty_commit_is_fine(store: Store) -> None:
    """Committing nothing writes nothing and does not fail."""
    store.commit([], [], [])
    assert store.load_states() == {}


# --------------------------------------------------------------------------- history


@pytest.fixture
def filled(store: Store) -> Store:
    """A store with six events on two lines, one minute apart."""
    events: list[Event] = []
    for i in range(6):
        line = "revenues" if i % 2 == 0 else "waste"
        at = T0 + timedelta(minutes=i)
        if i % 3 == 2:
            events.append(Acknowledged(line, at, 1, "Priya", f"note {i}", 1))
        else:
            events.append(raised(line, at))
    store.commit([], events, [])
    return store


def minutes(entries: list) -> list[int]:  # type: ignore[type-arg]
    """The entries' times, as minutes after T0."""
    return [int((e.at - T0).total_seconds() // 60) for e in entries]


def test_history_is_newest_first_and_rebuilds_events(filled: Store) -> None:
    """History lists the newest entry first, each decodable back to its event."""
    entries = filled.history()
    assert minutes(entries) == [5, 4, 3, 2, 1, 0]
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    newest = entries[0]
    assert (newest.line, newest.kind, newest.tier) == ("waste", "acknowledged", 1)
    assert newest.data == {"tier": 1, "by": "Priya", "note": "note 5", "episode": 1}
    assert newest.event() == Acknowledged(
        "waste", T0 + timedelta(minutes=5), 1, "Priya", "note 5", 1
    )
    assert newest.at.tzinfo is not None


def test_history_filters(filled: Store) -> None:
    """History filters by line, kinds, time range (since inclusive, until exclusive), limit."""
    assert minutes(filled.history(line="revenues")) == [4, 2, 0]
    assert minutes(filled.history(kinds={"acknowledged"})) == [5, 2]
    assert minutes(filled.history(kinds=[])) == []
    assert minutes(filled.history(line="waste", kinds=["tier_changed"])) == [3, 1]
    since, until = T0 + timedelta(minutes=1), T0 + timedelta(minutes=4)
    assert minutes(filled.history(since=since, until=until)) == [3, 2, 1]
    assert minutes(filled.history(limit=2)) == [5, 4]
    assert filled.history(limit=0) == []


def test_history_pages_with_before_id(filled: Store) -> None:
    """Paging with the last id seen walks the whole history once, newest first."""
    seen: list[int] = []
    page = filled.history(limit=4)
    while page:
        seen += minutes(page)
        page = filled.history(limit=4, before_id=page[-1].id)
    assert seen == [5, 4, 3, 2, 1, 0]
    first_page = filled.history(line="revenues", limit=2)
    assert minutes(filled.history(line="revenues", before_id=first_page[-1].id)) == [0]


def test_history_times_are_utc_whatever_offset_came_in(store: Store) -> None:
    """A time with another offset is stored and returned as the same instant in UTC."""
    bst = timezone(timedelta(hours=1))
    store.commit([], [raised("a", datetime(2026, 6, 1, 10, 0, tzinfo=bst))], [])
    (entry,) = store.history()
    assert entry.at == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)


def test_append_history_keeps_other_records(store: Store) -> None:
    """Records that are not domain events (a config reload) go into the same history."""
    store.append_history([("*", "config_reloaded", T0, None, {"ok": True, "file": "rt.yaml"})])
    (entry,) = store.history(kinds=["config_reloaded"])
    assert (entry.line, entry.tier, entry.data) == ("*", None, {"ok": True, "file": "rt.yaml"})
    assert entry.event() is None


# --------------------------------------------------------------------------- outbox


def test_new_orders_are_pending_and_due_at_their_time(store: Store, clock: FakeClock) -> None:
    """An order is pending with no attempts, due from its own time, oldest first."""
    later = T0 + timedelta(minutes=1)
    store.commit([], [], [order("k1"), order("k2", at=later), order("k3")])
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert (entry.status, entry.attempts, entry.next_attempt_at) == ("pending", 0, T0)
    assert (entry.created_at, entry.finished_at, entry.last_error) == (T0, None, None)
    assert [e.order.key for e in store.due(T0)] == ["k1", "k3"]
    assert [e.order.key for e in store.due(later)] == ["k1", "k2", "k3"]
    assert [e.order.key for e in store.due(later, limit=1)] == ["k1"]
    assert store.pending_count() == 3
    assert store.outbox_entry("nope") is None


def test_record_success(store: Store) -> None:
    """Success marks the entry done and adds one "response" history entry."""
    store.commit([], [], [order("k1", tier=2)])
    done_at = T0 + timedelta(seconds=3)
    store.record_success("k1", "posted to Teams", done_at)
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert (entry.status, entry.attempts, entry.finished_at) == ("done", 1, done_at)
    assert store.pending_count() == 0
    assert store.due(done_at) == []
    (record,) = store.history(kinds=["response"])
    assert (record.line, record.tier, record.at) == ("revenues", 2, done_at)
    assert record.data == {
        "response": "notify_duty_manager",
        "action": "apply",
        "outcome": "ok",
        "detail": "posted to Teams",
        "attempts": 1,
        "key": "k1",
        "trigger": "tier_changed",
    }


def test_record_failure_retry_then_dead(store: Store) -> None:
    """A failure with a retry time stays pending until then; one without goes dead."""
    store.commit([], [], [order("k1")])
    retry_at = T0 + timedelta(seconds=2)
    store.record_failure("k1", "HTTP 503 from Teams", "http_5xx", T0, retry_at)
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert (entry.status, entry.attempts, entry.next_attempt_at) == ("pending", 1, retry_at)
    assert entry.last_error == "HTTP 503 from Teams"
    assert store.due(T0) == []
    assert [e.order.key for e in store.due(retry_at)] == ["k1"]

    store.record_failure("k1", "HTTP 400 from Teams", "http_4xx", retry_at, None)
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert (entry.status, entry.attempts, entry.finished_at) == ("dead", 2, retry_at)
    assert (store.pending_count(), store.dead_count()) == (0, 1)
    outcomes = [(r.data["outcome"], r.data["reason"]) for r in store.history(kinds=["response"])]
    assert outcomes == [("dead", "http_4xx"), ("retry", "http_5xx")]
    assert store.history(kinds=["response"])[1].data["retry_at"] == "2026-01-05T09:00:02+00:00"


def test_recording_a_finished_entry_fails(store: Store) -> None:
    """An outcome for an entry that is not pending (or unknown) is refused, changing nothing."""
    store.commit([], [], [order("k1")])
    store.record_success("k1", "ok", T0)
    with pytest.raises(StoreError, match="already done"):
        store.record_success("k1", "ok", T0)
    with pytest.raises(StoreError, match="no outbox entry"):
        store.record_failure("nope", "x", "error", T0, None)
    assert len(store.history(kinds=["response"])) == 1


def test_a_batch_is_recorded_in_one_transaction(store: Store) -> None:
    """Keys sent together are done together, each with its own history entry."""
    store.commit([], [], [order("a", "revenues"), order("b", "waste"), order("c", "highways")])
    store.assign_batch(["a", "b"], "digest-1")
    store.record_success(["a", "b"], "sent 1 text", T0 + timedelta(seconds=5))
    assert [e.order.key for e in store.pending()] == ["c"]
    outcomes = [(h.line, h.data["outcome"]) for h in store.history() if h.kind == "response"]
    assert sorted(outcomes) == [("revenues", "ok"), ("waste", "ok")]


def test_a_batch_failing_retries_all_its_members(store: Store) -> None:
    """A failed batch keeps every member pending until the same retry time; and a key that
    is not pending fails the whole record, leaving nothing half-written."""
    store.commit([], [], [order("a", "revenues"), order("b", "waste")])
    retry = T0 + timedelta(seconds=30)
    store.record_failure(["a", "b"], "boom", "http_5xx", T0, retry)
    assert {e.order.key: (e.attempts, e.next_attempt_at) for e in store.pending()} == {
        "a": (1, retry),
        "b": (1, retry),
    }
    with pytest.raises(StoreError, match="no outbox entry has the key 'zzz'"):
        store.record_success(["a", "zzz"], "ok", T0)
    assert [e.order.key for e in store.pending()] == ["a", "b"]


# --------------------------------------------------------------------------- dead letters


def kill(store: Store, key: str, at: datetime, error: str = "HTTP 400 from the webhook") -> None:
    """Give up on the pending entry ``key`` at ``at``."""
    store.record_failure(key, error, "http_4xx", at, None)


def test_dead_lists_dead_letters_newest_first(store: Store) -> None:
    """``dead()`` holds only dead entries, the last given up on first, with why and when."""
    store.commit([], [], [order("a"), order("b", "waste"), order("c"), order("d")])
    kill(store, "a", T0 + timedelta(seconds=1), "first")
    kill(store, "b", T0 + timedelta(seconds=3), "second")
    store.record_success("c", "ok", T0)
    dead = store.dead()
    assert [(e.order.key, e.status, e.attempts, e.last_error, e.finished_at) for e in dead] == [
        ("b", "dead", 1, "second", T0 + timedelta(seconds=3)),
        ("a", "dead", 1, "first", T0 + timedelta(seconds=1)),
    ]
    assert [e.order.key for e in store.dead(limit=1)] == ["b"]
    assert store.dead_count() == 2


def test_requeue_makes_a_dead_letter_a_fresh_pending_order(store: Store) -> None:
    """Requeued: pending, due now, attempts from 0, error cleared from the row but kept in
    the history record with who asked and why."""
    store.commit([], [], [order("k1", tier=2)])
    store.record_failure("k1", "HTTP 503", "http_5xx", T0, T0 + timedelta(seconds=2))
    kill(store, "k1", T0 + timedelta(seconds=2), "HTTP 401: bad API key")
    now = T0 + timedelta(minutes=30)
    entry = store.requeue("k1", now, "Priya Shah", "Notify key rotated")
    assert (entry.status, entry.attempts, entry.next_attempt_at) == ("pending", 0, now)
    assert (entry.last_error, entry.finished_at, entry.batch) == (None, None, None)
    assert store.outbox_entry("k1") == entry
    assert (store.pending_count(), store.dead_count()) == (1, 0)
    assert [e.order.key for e in store.due(now)] == ["k1"]
    (record,) = store.history(kinds=["response_requeued"])
    assert (record.at, record.line, record.tier) == (now, "revenues", 2)
    assert record.data == {
        "response": "notify_duty_manager",
        "action": "apply",
        "key": "k1",
        "trigger": "tier_changed",
        "by": "Priya Shah",
        "note": "Notify key rotated",
        "attempts": 2,
        "last_error": "HTTP 401: bad API key",
        "dead_at": "2026-01-05T09:00:02+00:00",
    }
    # It runs like any order from here: done on success.
    store.record_success("k1", "sent", now)
    done = store.outbox_entry("k1")
    assert done is not None and (done.status, done.attempts) == ("done", 1)


def test_a_batch_member_is_requeued_alone(store: Store) -> None:
    """A dead letter from a batch comes back out of it; the other members stay dead in it."""
    store.commit([], [], [order("a", "revenues"), order("b", "waste")])
    store.assign_batch(["a", "b"], "notify/batch/1")
    store.record_failure(["a", "b"], "HTTP 400", "http_4xx", T0, None)
    entry = store.requeue("a", T0 + timedelta(minutes=5), "Priya Shah")
    assert entry.batch is None
    other = store.outbox_entry("b")
    assert other is not None and (other.status, other.batch) == ("dead", "notify/batch/1")
    (record,) = store.history(kinds=["response_requeued"])
    assert record.data["batch"] == "notify/batch/1" and record.data["note"] == ""


def test_dismiss_marks_a_dead_letter_dismissed_with_who_and_why(store: Store) -> None:
    """Dismissed: never due, not counted as dead, and the history says who dismissed it."""
    store.commit([], [], [order("k1")])
    kill(store, "k1", T0)
    now = T0 + timedelta(hours=1)
    entry = store.dismiss("k1", now, "Priya Shah", "told the duty manager by phone")
    assert (entry.status, entry.finished_at, entry.attempts) == ("dismissed", T0, 1)
    assert (store.pending_count(), store.dead_count(), store.dead()) == (0, 0, [])
    assert store.due(now) == []
    (record,) = store.history(kinds=["response_dismissed"])
    assert (record.at, record.data["by"], record.data["note"]) == (
        now, "Priya Shah", "told the duty manager by phone",
    )  # fmt: skip
    assert record.data["last_error"] == "HTTP 400 from the webhook"


@pytest.mark.parametrize("command", ["requeue", "dismiss"])
def test_only_a_dead_letter_can_be_requeued_or_dismissed(store: Store, command: str) -> None:
    """Pending, done, dismissed and unknown keys are refused, saying why; nothing changes."""
    store.commit([], [], [order("pending"), order("done"), order("gone")])
    store.record_success("done", "ok", T0)
    kill(store, "gone", T0)
    store.dismiss("gone", T0, "Ada", "")
    act = getattr(store, command)
    verb = "requeued" if command == "requeue" else "dismissed"
    cases = {
        "pending": "it is still pending (the dispatcher has not given up on it)",
        "done": "it is done (it ran successfully)",
        "gone": "it was dismissed",
    }
    for key, why in cases.items():
        with pytest.raises(NotDeadError) as caught:
            act(key, T0, "Priya Shah", "")
        assert str(caught.value) == (
            f"cannot {command} {key!r}: {why}; only a dead letter can be {verb}"
        )
        assert caught.value.key == key
        assert caught.value.status == {"gone": "dismissed"}.get(key, key)
    with pytest.raises(UnknownEntryError, match="no outbox entry has the key 'nope'") as unknown:
        act("nope", T0, "Priya Shah", "")
    assert unknown.value.status is None and isinstance(unknown.value, StoreError)
    statuses = {k: e.status for k in ("pending", "done", "gone") if (e := store.outbox_entry(k))}
    assert statuses == {"pending": "pending", "done": "done", "gone": "dismissed"}
    assert len(store.history(kinds=["response_requeued", "response_dismissed"])) == 1


#: The outbox exactly as schema version 2 created it (its CHECK knows no "dismissed").
OUTBOX_V2 = """
CREATE TABLE outbox (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	"key" VARCHAR NOT NULL,
	line VARCHAR NOT NULL,
	response VARCHAR NOT NULL,
	action VARCHAR NOT NULL,
	"order" TEXT NOT NULL,
	status VARCHAR NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at VARCHAR(32) NOT NULL,
	last_error TEXT,
	created_at VARCHAR(32) NOT NULL,
	finished_at VARCHAR(32),
	batch VARCHAR,
	CONSTRAINT ck_outbox_status CHECK (status IN ('pending', 'done', 'dead')),
	CONSTRAINT ck_outbox_action CHECK (action IN ('apply', 'undo')),
	CONSTRAINT ck_outbox_attempts CHECK (attempts >= 0),
	UNIQUE ("key")
)
"""


def outbox_schema(path: Path) -> list[tuple[str, str, str]]:
    """The outbox's table and index definitions, whitespace and quoting aside."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'outbox' ORDER BY name"
        ).fetchall()
    return [
        (t, n, " ".join((sql or "").replace('"outbox"', "outbox").split())) for t, n, sql in rows
    ]


def test_version_2_file_is_migrated_keeping_every_outbox_row(
    db_path: Path, clock: FakeClock, tmp_path: Path
) -> None:
    """A version 2 file's outbox is rebuilt with the wider CHECK: every row (pending, done,
    dead, batched) keeps its id and values, ids are never reused, and the table and its
    indexes end up exactly as a new file's."""
    with Store(db_path, clock) as s:
        s.commit([], [], [order("p"), order("d"), order("x", "waste"), order("y", "highways")])
        s.record_success("d", "ok", T0)
        s.assign_batch(["x", "y"], "notify/batch/1")
        s.record_failure(["x", "y"], "HTTP 400", "http_4xx", T0, None)
        before = {k: s.outbox_entry(k) for k in "pdxy"}
        statuses = [e.status if e else None for e in before.values()]
        assert statuses == ["pending", "done", "dead", "dead"]
    with sqlite3.connect(db_path) as conn:  # make it what version 2 wrote
        conn.executescript(
            "BEGIN; ALTER TABLE outbox RENAME TO old; DROP INDEX ix_outbox_status_next;"
            + OUTBOX_V2
            + "; INSERT INTO outbox SELECT * FROM old; DROP TABLE old;"
            " CREATE INDEX ix_outbox_status_next ON outbox (status, next_attempt_at);"
            " UPDATE sqlite_sequence SET seq = 10 WHERE name = 'outbox';"
            " UPDATE meta SET value = '2' WHERE key = 'schema_version'; COMMIT;"
        )
        with pytest.raises(sqlite3.IntegrityError, match="ck_outbox_status"):
            conn.execute("UPDATE outbox SET status = 'dismissed' WHERE key = 'x'")

    with Store(db_path, clock) as s:
        assert {k: s.outbox_entry(k) for k in "pdxy"} == before
        assert s.dismiss("x", T0, "Priya Shah", "").status == "dismissed"
        assert s.requeue("y", T0, "Priya Shah", "").status == "pending"
        s.commit([], [], [order("new")])
        new = s.outbox_entry("new")
        assert new is not None and new.id == 11  # after the old high-water mark, not reused
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "3",
        )
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'outbox_v3'"
                            ).fetchone() == (0,)  # fmt: skip
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh, clock).close()
    assert outbox_schema(db_path) == outbox_schema(fresh)
