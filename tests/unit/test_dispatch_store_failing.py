"""A dispatcher on a failing store logs the spell once with its traceback, and its end once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from risingtide.clock import FakeClock
from risingtide.dispatch import Dispatcher
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import ResponseContext
from risingtide.store import Store, StoreError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FailingFor:
    """A real store whose ``pending`` fails ``times`` times (a full disk, a bad page)."""

    def __init__(self, store: Store, times: int) -> None:
        self.store = store
        self.left = times
        self.calls = 0

    def pending(self) -> Any:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise StoreError("state store rt.sqlite: disk I/O error")
        return self.store.pending()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def context_for(order: ResponseOrder) -> ResponseContext:
    return ResponseContext(line_name=order.line, tier_name="rising", stats=None, target_wait=180)


async def test_a_spell_of_store_failures_is_one_error_then_one_recovery(tmp_path: Path) -> None:
    """Five failed passes log one traceback; the first good pass logs "dispatcher recovered"."""
    clock = FakeClock(T0)
    with Store(tmp_path / "rt.sqlite", clock) as real:
        store = FailingFor(real, 5)
        d = Dispatcher(store, {}, context_for, clock)  # type: ignore[arg-type]
        stop = asyncio.Event()
        with capture_logs() as logs:
            loop = asyncio.create_task(d.run_forever(stop, idle=timedelta(seconds=0.001)))
            for _ in range(2000):  # bounded: until a few good passes followed the failures
                if store.calls >= 8:
                    break
                await asyncio.sleep(0.001)
            stop.set()
            await asyncio.wait_for(loop, 5)
    assert store.calls >= 8
    failed = [e for e in logs if e["event"] == "dispatcher pass failed; will try again"]
    assert len(failed) == 1 and failed[0].get("exc_info")
    recovered = [e for e in logs if e["event"] == "dispatcher recovered"]
    assert [e["failures"] for e in recovered] == [5]


class Counting:
    """A responder that counts its runs."""

    undoable = False
    name = "notify"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        self.runs += 1
        return "sent"


class RefusesWrites:
    """A real store whose outcome writes fail while ``full`` (a full disk: reads still work)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.full = True

    def record_success(self, *args: Any, **kwargs: Any) -> None:
        if self.full:
            raise StoreError("state store rt.sqlite: database or disk is full")
        self.store.record_success(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_an_outcome_the_store_refuses_is_held_not_sent_again_and_written_later(
    tmp_path: Path,
) -> None:
    """On a full disk a sent response is not sent again on every pass; its outcome is held,
    logged once, and recorded when the store takes writes again."""
    clock = FakeClock(T0)
    with Store(tmp_path / "rt.sqlite", clock) as real:
        order = ResponseOrder("k1", "revenues", "notify", Action.APPLY, 1, 1, "t", T0, "r")
        real.commit([], [], [order])
        store = RefusesWrites(real)
        responder = Counting()
        d = Dispatcher(store, {"notify": responder}, context_for, clock)  # type: ignore[arg-type]
        with capture_logs() as logs:
            for _ in range(5):
                await d.run_due()
            assert responder.runs == 1, "a response whose outcome was not recorded was resent"
            store.full = False
            await d.run_due()
        entry = real.outbox_entry("k1")
        assert entry is not None and entry.status == "done"
        assert responder.runs == 1
        held = [e for e in logs if "could not be recorded" in e["event"]]
        assert len(held) == 1 and held[0].get("exc_info")
        assert [e["count"] for e in logs if e["event"] == "held outcomes recorded"] == [1]
