"""A dispatcher on a failing store logs the spell once with its traceback, and its end once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from risingtide.clock import FakeClock
from risingtide.dispatch import Dispatcher
from risingtide.domain.model import ResponseOrder
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
