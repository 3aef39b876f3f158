"""Escalation runs on time, and an acknowledgement stops it: the demo's framework, to the second.

The shipped demo's ``standard`` framework (tier 2 escalates to the head of service after
10 minutes and to the service director after 30) is run through the runtime with a
``scripted`` source and ``log`` responses, on a FakeClock ticking every 5 seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats, ResponseOrder
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from tests.adapters.desk import T0

DEMO = Path(__file__).resolve().parents[2] / "config" / "rising-tide.yaml"
TICK = 5


def demo_like(tmp_path: Path) -> Path:
    """The demo config with its framework kept and everything around it made scriptable."""
    doc: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    doc["server"] = {"state_file": str(tmp_path / "state.sqlite"), "evaluate_every": f"{TICK}s"}
    doc["defaults"] = {"target_wait": "180s", "framework": "standard", "hours": "always"}
    doc["sources"] = {"fixed": {"type": "scripted", "interval": f"{TICK}s"}}
    doc["lines"] = {"council_tax": {"name": "Council Tax", "source": {"use": "fixed"}}}
    doc["responses"] = {rid: {"type": "log", "message": rid} for rid in doc["responses"]}
    path = tmp_path / "demo-like.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Drive:
    """Ticks the runtime and keeps every order it queues, with the time it was queued."""

    def __init__(self, rt: Runtime, clock: FakeClock) -> None:
        self.rt, self.clock = rt, clock
        self.queued: dict[str, tuple[datetime, ResponseOrder]] = {}

    async def tick(self, avg_wait: float) -> None:
        src = self.rt.sources["fixed"]
        assert isinstance(src, ScriptedSource) and self.rt.poller is not None
        assert self.rt.store is not None
        src.push(QueueStats(line="council_tax", at=self.clock.now(), avg_wait=avg_wait))
        await self.rt.poller.poll("fixed")
        self.rt.evaluate_all(self.clock.now())
        # Read the outbox before anything awaits: the dispatcher has not run them yet.
        for entry in self.rt.store.pending():
            self.queued.setdefault(entry.order.key, (self.clock.now(), entry.order))
        self.clock.advance(TICK)

    async def until(self, when: datetime, avg_wait: float = 400) -> None:
        while self.clock.now() <= when:
            await self.tick(avg_wait)

    def escalations(self, response: str) -> list[tuple[datetime, ResponseOrder]]:
        return [(t, o) for t, o in self.queued.values()
                if o.response == response and o.trigger == "escalated"]  # fmt: skip


@pytest.fixture
async def drive(tmp_path: Path) -> AsyncIterator[Drive]:
    clock = FakeClock(T0)
    rt = Runtime(load_config(demo_like(tmp_path)), clock=clock)
    await rt.start(serve_http=False, schedule=False)
    try:
        yield Drive(rt, clock)
    finally:
        await rt.shutdown()


async def reach_tier_2(drive: Drive) -> datetime:
    while drive.rt.states["council_tax"].tier < 2:
        await drive.tick(avg_wait=400)
        assert drive.clock.now() < T0 + timedelta(minutes=5), "tier 2 never came"
    entered = drive.rt.states["council_tax"].entered_at
    assert entered is not None
    return entered


async def test_the_head_of_service_is_called_exactly_10_minutes_after_tier_2(drive: Drive) -> None:
    """notify_head_of_service is queued at entry + 10m to the tick, not a tick before."""
    entered = await reach_tier_2(drive)
    assert entered == T0 + timedelta(minutes=1)  # the demo's for: 1m
    await drive.until(entered + timedelta(minutes=10) - timedelta(seconds=TICK))
    assert drive.escalations("notify_head_of_service") == []

    await drive.until(entered + timedelta(minutes=10))
    [(queued_at, order)] = drive.escalations("notify_head_of_service")
    assert queued_at == order.at == entered + timedelta(minutes=10)
    assert (order.tier, order.episode) == (2, 1)
    assert drive.rt.store is not None
    [step] = drive.rt.store.history(kinds=["escalated"])
    assert (step.at, step.data["step"]) == (entered + timedelta(minutes=10), 1)

    await drive.until(entered + timedelta(minutes=30))
    [(director_at, _)] = drive.escalations("notify_service_director")
    assert director_at == entered + timedelta(minutes=30)


async def test_an_acknowledgement_stops_the_escalation(drive: Drive) -> None:
    """Acknowledged five minutes in, tier 2 never escalates and stops reminding."""
    entered = await reach_tier_2(drive)
    await drive.until(entered + timedelta(minutes=5))
    drive.rt.acknowledge("council_tax", by="Priya Shah", note="surge staff paged")
    await drive.until(entered + timedelta(minutes=40))
    assert drive.rt.states["council_tax"].tier == 2
    assert drive.escalations("notify_head_of_service") == []
    assert drive.escalations("notify_service_director") == []
    assert [o for _, o in drive.queued.values() if o.trigger == "reminder"] == []
