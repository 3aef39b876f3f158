"""The demo's acknowledgement lapses at the duty managers' handover, through the whole runtime.

The shipped demo says ``ack_expires: at_handover``; its duty managers' rota hands over from
Asha Patel to Ben Okafor at 14:00 on weekdays. Asha acknowledges Council Tax during the
surge; at 14:00 the acknowledgement lapses and Ben, now on duty, is asked.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from risingtide.briefing import notified
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import Reminder
from tests.e2e.demo_harness import MONDAY_10AM, start, step, with_state_file

DEMO = Path(__file__).resolve().parents[2] / "config" / "rising-tide.yaml"
LONDON = ZoneInfo("Europe/London")


async def test_the_acknowledgement_lapses_at_handover_and_the_incoming_manager_is_asked(
    tmp_path: Path,
) -> None:
    """Acknowledged by Asha at 10:04, Council Tax is covered (no reminder) until 14:00; then
    the history records the lapse and the duty manager's notification goes out again."""
    config = with_state_file(load_config(DEMO), tmp_path / "state.sqlite")
    clock = FakeClock(MONDAY_10AM)
    runtime = await start(config, clock)
    try:
        await step(runtime, clock, 240)
        assert runtime.states["council_tax"].tier == 2
        runtime.acknowledge("council_tax", by="Asha Patel")
        ack = runtime.states["council_tax"].ack
        assert ack is not None and ack.expires is not None
        assert ack.expires.astimezone(LONDON).strftime("%H:%M") == "14:00"
        handover = ack.expires
        # Just before the handover: still acknowledged.
        clock.set(handover - timedelta(seconds=1))
        runtime.evaluate_all(clock.now())
        assert runtime.states["council_tax"].acknowledged
        assert runtime.store is not None and runtime.dispatcher is not None
        clock.set(handover)
        runtime.evaluate_all(clock.now())
        clock.advance(6)  # the notification's group_wait (5s) gathers other lines' orders
        await runtime.dispatcher.run_due()
        state = runtime.states["council_tax"]
        assert not state.acknowledged and state.tier == 2
        lapsed = runtime.store.history(line="council_tax", kinds={"acknowledgement_expired"})
        assert [(e.data["by"], e.tier) for e in lapsed] == [("Asha Patel", 2)]
        asked = [
            e
            for e in runtime.store.history(line="council_tax", kinds={"response"})
            if e.data["trigger"] == "acknowledgement_expired"
        ]
        assert [(e.data["response"], e.data["outcome"]) for e in asked] == [
            ("notify_duty_manager", "ok")
        ]
        told = notified(config, "council_tax", state.episode, asked, clock.now())
        assert told[0]["to"] == ["Ben Okafor"]  # the incoming duty manager, by the rota
        reminders = [
            e.event() for e in runtime.store.history(line="council_tax", kinds={"reminder"})
        ]
        assert all(isinstance(r, Reminder) and r.at >= handover for r in reminders)
    finally:
        await runtime.shutdown()
