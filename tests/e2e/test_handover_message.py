"""What the incoming duty manager reads when an acknowledgement lapses at the handover.

The demo's rota hands over from Asha Patel to Ben Okafor at 14:00; the runtime's own order
and context for the handover's notification are rendered as every channel renders them.
"""

from __future__ import annotations

from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.messages import facts_from, render
from tests.e2e.demo_harness import MONDAY_10AM, start, step, with_state_file

DEMO = Path(__file__).resolve().parents[2] / "config" / "rising-tide.yaml"


async def test_the_handover_message_says_whose_acknowledgement_lapsed(tmp_path: Path) -> None:
    """The lapse's notification reads "Asha Patel's acknowledgement of Council Tax at tier 2
    lapsed at the 14:00 handover; please acknowledge", not a catch-up "is at tier 2"."""
    config = with_state_file(load_config(DEMO), tmp_path / "state.sqlite")
    clock = FakeClock(MONDAY_10AM)
    runtime = await start(config, clock)
    try:
        await step(runtime, clock, 240)
        assert runtime.states["council_tax"].tier == 2
        runtime.acknowledge("council_tax", by="Asha Patel")
        ack = runtime.states["council_tax"].ack
        assert ack is not None and ack.expires is not None
        clock.set(ack.expires)
        runtime.evaluate_all(clock.now())
        assert runtime.store is not None
        (entry,) = [
            e for e in runtime.store.pending() if e.order.trigger == "acknowledgement_expired"
        ]
        message = render(facts_from(entry.order, runtime._context_for(entry.order)))
    finally:
        await runtime.shutdown()
    name = config.lines["council_tax"].name
    expected = (
        f"Asha Patel's acknowledgement of {name} at tier 2 lapsed at the 14:00 handover; "
        "please acknowledge"
    )
    assert message.subject == expected
    assert message.sms.startswith(expected)
