"""The sample recorder against a real store (SQLite and PostgreSQL): the ring, and what is
kept around episodes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.config.model import Config
from risingtide.domain.model import LineState, QueueStats
from risingtide.samples import SampleRecorder
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DEMO = Path(__file__).parents[2] / "config" / "rising-tide.yaml"


@dataclass
class Daemon:
    """What the recorder reads from the runtime: config, states, store, clock."""

    config: Config
    store: Store | None
    clock: FakeClock
    states: dict[str, LineState] = field(default_factory=dict)


@pytest.fixture
def daemon(store_target: Path | str) -> Iterator[Daemon]:
    clock = FakeClock(T0)
    with Store(store_target, clock) as store:
        yield Daemon(load_config(DEMO), store, clock)


def feed(rec: SampleRecorder, d: Daemon, minutes: int, wait: float = 100.0) -> None:
    """A poll of revenues every 30 s for ``minutes``."""
    for _ in range(minutes * 2):
        d.clock.advance(30)
        stats = QueueStats(line="revenues", at=d.clock.now(), avg_wait=wait)
        rec.observe(d, {"revenues": stats, "not_a_line": stats})


def kept(d: Daemon) -> list[datetime]:
    assert d.store is not None
    return [at for at, _ in d.store.samples("revenues")]


def test_nothing_is_kept_while_calm_and_the_ring_holds_an_hour(daemon: Daemon) -> None:
    """A calm line writes no row; the ring keeps one sample a minute, the minute's last."""
    rec = SampleRecorder()
    daemon.states["revenues"] = LineState("revenues")
    feed(rec, daemon, 90)
    assert kept(daemon) == []
    recent = rec.recent("revenues", daemon.clock.now())
    assert len(recent) == 61
    # The later of each minute's two polls; the newest minute has had one so far.
    assert all(s.at.second == 30 for s in recent[:-1])
    assert recent[-1].at == daemon.clock.now()
    assert rec.recent("not_a_line", daemon.clock.now()) == []


def test_a_rise_keeps_the_quarter_hour_before_it_and_the_quarter_hour_after_calm(
    daemon: Daemon,
) -> None:
    """From 15 minutes before the first rise to 15 minutes after calm, one a minute."""
    rec = SampleRecorder()
    daemon.states["revenues"] = LineState("revenues")
    feed(rec, daemon, 40)
    rise = daemon.clock.now()
    daemon.states["revenues"] = LineState("revenues", tier=1, entered_at=rise, episode=1)
    feed(rec, daemon, 10, wait=400)
    calm = daemon.clock.now()
    daemon.states["revenues"] = LineState("revenues", tier=0, entered_at=calm, episode=1)
    feed(rec, daemon, 40)
    times = kept(daemon)
    assert times[0] >= rise - 15 * MIN
    assert times[0] < rise - 14 * MIN
    assert times[-1] < calm + 15 * MIN
    assert times[-1] >= calm + 14 * MIN
    assert len(times) == 15 + 10 + 15


def test_a_failed_write_is_tried_again_and_loses_nothing(daemon: Daemon, tmp_path: Path) -> None:
    """While the store fails, samples wait; the next minute's batch writes them all."""
    rec = SampleRecorder()
    daemon.states["revenues"] = LineState("revenues", tier=2, entered_at=T0, episode=1)
    good = daemon.store
    assert good is not None
    broken = Store(tmp_path / "other.sqlite", daemon.clock)
    broken.close()  # every write now raises StoreError
    daemon.store = broken
    feed(rec, daemon, 5, wait=500)
    daemon.store = good
    assert kept(daemon) == []
    feed(rec, daemon, 2, wait=500)
    assert len(kept(daemon)) == 7


def test_after_a_restart_mid_episode_each_minute_is_kept_once(daemon: Daemon) -> None:
    """A new recorder (a restart) given figures already kept writes each minute only once."""
    daemon.states["revenues"] = LineState("revenues", tier=1, entered_at=T0, episode=1)
    polls = []
    first = SampleRecorder()
    for _ in range(10):
        daemon.clock.advance(30)
        polls.append({"revenues": QueueStats(line="revenues", at=daemon.clock.now(), avg_wait=9)})
        first.observe(daemon, polls[-1])
    before = kept(daemon)
    daemon.clock.advance(60)
    second = SampleRecorder()
    for poll in polls:  # the same figures again, as a source may repeat its last ones
        second.observe(daemon, poll)
    daemon.clock.advance(60)
    second.observe(daemon, {})
    after = kept(daemon)
    assert len(before) >= 4
    assert after == sorted(set(after))
    assert len(after) == 6  # 09:00 to 09:05, the minutes of the ten polls, each once


async def test_under_the_event_loop_the_write_happens_in_a_worker_thread(daemon: Daemon) -> None:
    """With a running loop, observe hands the batch to a thread; drain waits for it."""
    rec = SampleRecorder()
    daemon.states["revenues"] = LineState("revenues", tier=2, entered_at=T0, episode=1)
    feed(rec, daemon, 3, wait=500)
    await rec.drain()
    assert len(kept(daemon)) >= 1
    written_by = []
    real_write = daemon.store.write_samples if daemon.store else None
    assert real_write is not None

    def spy(rows: object) -> None:
        written_by.append(threading.current_thread() is threading.main_thread())
        real_write(rows)  # type: ignore[arg-type]

    daemon.store.write_samples = spy  # type: ignore[method-assign,union-attr]
    feed(rec, daemon, 2, wait=500)
    await rec.drain()
    assert written_by
    assert not any(written_by)  # never on the loop's (main) thread
