"""Nothing grows without bound: history past ``server.history_retention`` and outbox entries
done a week ago are deleted, the write-ahead log is truncated, and the store's size is on
``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.runtime import DONE_KEPT, Runtime
from risingtide.store import Store
from tests.adapters.test_runtime import raise_revenues, write_config
from tests.adapters.test_store import order, raised

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_prune_deletes_old_history_and_long_done_entries_only(store_target: Path | str) -> None:
    """Old history and entries done before the cut go; pending, dead and recent ones stay
    (on SQLite and on PostgreSQL)."""
    clock = FakeClock(T0)
    with Store(store_target, clock) as store:
        store.commit([], [raised("revenues", T0 - 400 * DAY), raised("waste", T0 - DAY)], [])
        store.commit([], [], [order(k, at=T0 - 30 * DAY) for k in ("old", "new", "wait", "dead")])
        store.record_success("old", "ok", T0 - 8 * DAY)
        store.record_success("new", "ok", T0 - DAY)
        store.record_failure("dead", "refused", "http_4xx", T0 - 300 * DAY, None)
        history, outbox = store.prune(
            history_before=T0 - 366 * DAY, done_before=T0 - 7 * DAY, batch=1
        )
        assert (history, outbox) == (1, 1)
        left = {e.line for e in store.history(kinds=["tier_changed"])}
        assert left == {"waste"}
        assert store.outbox_entry("old") is None
        kept = [store.outbox_entry(k) for k in ("new", "wait", "dead")]
        assert [e.status if e else None for e in kept] == ["done", "pending", "dead"]


def test_history_retention_defaults_to_a_year_and_a_day(tmp_path: Path) -> None:
    """``server.history_retention`` is 366 days unless the config says otherwise."""
    config = load_config(write_config(tmp_path))
    assert config.server.history_retention == timedelta(days=366)
    path = tmp_path / "rising-tide.yaml"
    path.write_text(path.read_text().replace("server:\n", "server:\n  history_retention: 30d\n"))
    assert load_config(path).server.history_retention == timedelta(days=30)


def size(path: Path) -> int:
    return path.stat().st_size


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(load_config(write_config(tmp_path)), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    yield rt
    await rt.shutdown()


async def test_maintenance_prunes_checkpoints_and_the_size_is_exported(runtime: Runtime) -> None:
    """A week on the done response's entry is gone, a year on the history too, the WAL is 0
    bytes after each run, and ``risingtide_store_bytes`` is the file plus its WAL."""
    clock = runtime.clock
    assert isinstance(clock, FakeClock) and runtime.store is not None
    assert runtime.scheduler is not None
    job = runtime.scheduler.get_job("maintain")
    assert job is not None and job.trigger.interval == timedelta(hours=1)
    await raise_revenues(runtime)
    assert runtime.dispatcher is not None
    await runtime.dispatcher.run_due()
    store = runtime.store
    (done,) = [e for e in store.history(kinds=["response"])]
    key = done.data["key"]
    wal = Path(f"{store.path}-wal")
    assert size(wal) > 0
    exported = runtime.registry.get_sample_value("risingtide_store_bytes")
    assert exported == size(store.path) + size(wal)

    clock.advance(DONE_KEPT + DAY)
    await runtime.maintain()
    assert store.outbox_entry(key) is None
    assert store.history(kinds=["response"]), "the history outlives the outbox entry"
    assert size(wal) == 0

    clock.advance(366 * DAY)
    await runtime.maintain()
    assert store.history(kinds=["response", "tier_changed"]) == []
    assert runtime.registry.get_sample_value("risingtide_store_bytes") == size(store.path)


@pytest.fixture
async def shared_runtime(tmp_path: Path, pg_url: str) -> AsyncIterator[Runtime]:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("server:\n", f"server:\n  database: {pg_url}\n"))
    rt = Runtime(load_config(path), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    yield rt
    await rt.shutdown()


async def test_maintenance_on_postgresql_prunes_and_exports_the_database_size(
    shared_runtime: Runtime, tmp_path: Path
) -> None:
    """On PostgreSQL maintenance prunes as on SQLite, has no file to checkpoint, and
    ``risingtide_store_bytes`` is the database's size; no state file is made."""
    runtime = shared_runtime
    clock = runtime.clock
    assert isinstance(clock, FakeClock) and runtime.store is not None
    assert runtime.store.shared and not (tmp_path / "state.sqlite").exists()
    await raise_revenues(runtime)
    assert runtime.dispatcher is not None
    await runtime.dispatcher.run_due()
    (done,) = runtime.store.history(kinds=["response"])
    clock.advance(DONE_KEPT + DAY)
    await runtime.maintain()
    assert runtime.store.outbox_entry(done.data["key"]) is None
    with runtime.store.transaction(write=False) as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    assert runtime.registry.get_sample_value("risingtide_store_bytes") == size
