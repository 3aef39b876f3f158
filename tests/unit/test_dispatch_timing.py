"""Retry back-off is timed from the end of an attempt: after a 10 s timeout the documented
2, 4, 8 s waits hold, the log's ``retry_in`` is the real wait, and outcomes are stamped when
the attempt ended."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from risingtide.clock import FakeClock
from risingtide.dispatch import Dispatcher, RetryPolicy
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import ResponseContext
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def context_for(order: ResponseOrder) -> ResponseContext:
    return ResponseContext(line_name=order.line, tier_name="rising", stats=None, target_wait=180)


def order(key: str, action: Action = Action.APPLY) -> ResponseOrder:
    return ResponseOrder(key, "revenues", "notify", action, 1, 1, "tier_changed", T0, "rising")


class SlowPlatform:
    """A platform that takes ``seconds`` of the (fake) clock per call, then either hangs past
    the dispatcher's timeout or answers."""

    undoable = False

    def __init__(self, clock: FakeClock, seconds: float, *, answer: bool = False) -> None:
        self.name = "notify"
        self.clock = clock
        self.seconds = seconds
        self.answer = answer
        self.started: list[datetime] = []

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        self.started.append(self.clock.now())
        self.clock.advance(self.seconds)
        if self.answer:
            return "done"
        await asyncio.sleep(5)  # the dispatcher's real timeout cuts this short
        return "late"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store(tmp_path / "rt.sqlite", clock) as s:
        yield s


def dispatcher(store: Store, clock: FakeClock, platform: SlowPlatform) -> Dispatcher:
    return Dispatcher(
        store, {"notify": platform}, context_for, clock, RetryPolicy(jitter=0),
        timeout=timedelta(seconds=0.05),
    )  # fmt: skip


async def test_after_a_10s_timeout_the_waits_are_2_4_8_seconds_from_its_end(
    store: Store, clock: FakeClock
) -> None:
    """Each retry starts 2, 4 then 8 s after the previous attempt ended, never at once."""
    platform = SlowPlatform(clock, 10)
    d = dispatcher(store, clock, platform)
    store.commit([], [], [order("k1")])
    ends: list[datetime] = []
    with capture_logs() as logs:
        for _ in range(3):
            entry = store.outbox_entry("k1")
            assert entry is not None
            clock.set(max(clock.now(), entry.next_attempt_at))
            assert await d.run_due() == 1
            ends.append(clock.now())
            # Straight after the attempt nothing is due: the wait starts at its end.
            assert await d.run_due() == 0
    waits = [
        (start - end).total_seconds()
        for start, end in zip(platform.started[1:], ends, strict=False)
    ]
    assert waits == [2.0, 4.0]
    entry = store.outbox_entry("k1")
    assert entry is not None and entry.next_attempt_at == ends[-1] + timedelta(seconds=8)
    retry_in = [e["retry_in"] for e in logs if e["event"] == "response failed; will retry"]
    assert retry_in == [2.0, 4.0, 8.0]
    stamped = [e.at for e in reversed(store.history(kinds=["response"]))]
    assert stamped == ends


async def test_finished_at_and_history_are_stamped_when_the_attempt_ended(
    store: Store, clock: FakeClock
) -> None:
    """A run that took 3 s is finished, and recorded, 3 s after it started."""
    platform = SlowPlatform(clock, 3, answer=True)
    d = dispatcher(store, clock, platform)
    store.commit([], [], [order("k1", action=Action.APPLY)])
    assert await d.run_due() == 1
    entry = store.outbox_entry("k1")
    assert entry is not None and entry.status == "done"
    assert entry.finished_at == T0 + timedelta(seconds=3)
    (record,) = store.history(kinds=["response"])
    assert record.at == T0 + timedelta(seconds=3)
