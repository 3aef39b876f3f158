"""Acknowledgement that fits a shift (issue 12, item 4).

An acknowledgement may lapse at the duty rota's handover; a declared tier counts as
acknowledged by whoever declared it; lifting a silence does not page again for a tier that
is still acknowledged.
"""

from __future__ import annotations

from dataclasses import replace

from engine_helpers import MINUTE, Line, standard, t

from risingtide.domain.commands import acknowledge, declare, lift_silence, silence
from risingtide.domain.escalation import next_due, timers_blocked
from risingtide.domain.model import (
    AcknowledgementExpired,
    Action,
    Escalated,
    EscalationStep,
    Reminder,
)
from risingtide.store import codec

CHAIN = (EscalationStep(after=10 * MINUTE, responses=("notify_head_of_service",)),)


def _raised_line(**framework: object) -> Line:
    """A line at tier 2 (high), entered at minute 5."""
    line = Line(standard(**framework))  # type: ignore[arg-type]
    line.at(t(0), 400)
    line.at(t(5), 400)
    assert line.state.tier == 2
    return line


def _notifications(line: Line, since: int) -> list[str]:
    return [
        o.response
        for o in line.orders[since:]
        if o.action is Action.APPLY and o.response.startswith("notify_")
    ]


# ---------------------------------------------------------------------- declared = acknowledged


def test_a_declared_tier_sends_no_reminder_or_escalation():
    """Ten minutes after a duty manager declares tier 2, no reminder goes out and nobody is
    escalated to (the defect: both did)."""
    line = Line(standard(repeat_every=5 * MINUTE, escalation=CHAIN))
    line.at(t(0), 100)
    line.apply(declare(line.framework, line.state, level=2, until=t(120), by="Sam",
                       reason="bills out", now=t(1)))  # fmt: skip
    assert line.state.tier == 2
    before = len(line.events)
    for minute in range(2, 16):
        line.at(t(minute), 100)
    late = line.events[before:]
    assert not [e for e in late if isinstance(e, Reminder | Escalated)]
    assert timers_blocked(line.state)


def test_a_declaration_below_the_tier_does_not_count_as_its_acknowledgement():
    """A tier above the declared one still nags: the declaration covers only its own level."""
    line = _raised_line(repeat_every=5 * MINUTE)
    line.apply(declare(line.framework, line.state, level=1, until=t(120), by="Sam",
                       reason="", now=t(6)))  # fmt: skip
    assert not timers_blocked(line.state)
    line.at(t(10), 400)
    assert [e for e in line.events if isinstance(e, Reminder)]


def test_timers_resume_when_the_declaration_ends():
    """Once the declaration is over, an unacknowledged tier is reminded again."""
    line = Line(standard(repeat_every=5 * MINUTE))
    line.at(t(0), 400)
    line.apply(declare(line.framework, line.state, level=2, until=t(8), by="Sam",
                       reason="", now=t(1)))  # fmt: skip
    line.at(t(6), 400)
    assert not [e for e in line.events if isinstance(e, Reminder)]
    line.at(t(9), 400)
    assert [e for e in line.events if isinstance(e, Reminder)]


# ---------------------------------------------------------------------- lifting a silence


def test_lifting_a_silence_three_times_does_not_re_page_an_acknowledged_tier():
    """Silencing and lifting three times pages nobody again while the tier is acknowledged
    (the defect: three pages)."""
    line = _raised_line()
    line.apply(acknowledge(line.framework, line.state, by="Sam", note="", now=t(6)))
    before = len(line.orders)
    for k in range(3):
        start = t(7 + 2 * k)
        line.apply(silence(line.state, until=start + 30 * MINUTE, by="Sam", reason="test",
                           undo=False, now=start))  # fmt: skip
        line.apply(lift_silence(line.state, by="Sam", now=start + MINUTE))
    assert _notifications(line, before) == []


def test_lifting_a_silence_still_pages_an_unacknowledged_tier():
    """Without an acknowledgement the catch-up still notifies the duty manager."""
    line = _raised_line()
    before = len(line.orders)
    line.apply(silence(line.state, until=t(60), by="Sam", reason="", undo=False, now=t(6)))
    line.apply(lift_silence(line.state, by="Sam", now=t(7)))
    assert _notifications(line, before) == ["notify_duty_manager"]


def test_lifting_a_silence_still_catches_up_switches_when_acknowledged():
    """Switches undone by the silence come back on although nobody is paged."""
    line = _raised_line()
    line.apply(acknowledge(line.framework, line.state, by="Sam", note="", now=t(6)))
    line.apply(silence(line.state, until=t(60), by="Sam", reason="", undo=True, now=t(7)))
    assert line.state.live == frozenset()
    before = len(line.orders)
    line.apply(lift_silence(line.state, by="Sam", now=t(8)))
    applied = {o.response for o in line.orders[before:] if o.action is Action.APPLY}
    assert applied == {"callback_on", "ivr_deflection"}


# ---------------------------------------------------------------------- expiry at handover


def test_an_acknowledgement_records_when_it_lapses():
    """``expires`` is kept on the acknowledgement and named in the reason."""
    line = _raised_line()
    decision = acknowledge(line.framework, line.state, by="Sam", note="", now=t(6),
                           expires=t(60))  # fmt: skip
    assert decision.state.ack is not None
    assert decision.state.ack.expires == t(60)
    assert decision.reason == "tier 2 high acknowledged by Sam until the duty rota's handover"


def test_an_expiry_in_the_past_is_not_kept():
    """A handover time not after now gives an acknowledgement that does not lapse."""
    line = _raised_line()
    decision = acknowledge(line.framework, line.state, by="Sam", note="", now=t(6), expires=t(6))
    assert decision.state.ack is not None
    assert decision.state.ack.expires is None


def test_the_acknowledgement_lapses_at_handover_and_the_incoming_manager_is_asked():
    """At ``expires`` the acknowledgement is cleared, an AcknowledgementExpired is recorded
    and the tier's notification goes out again; overdue escalation is not run late."""
    line = _raised_line(repeat_every=30 * MINUTE, escalation=CHAIN)
    line.apply(acknowledge(line.framework, line.state, by="Sam", note="", now=t(6),
                           expires=t(60)))  # fmt: skip
    line.at(t(59), 400)
    assert line.state.acknowledged
    before_events, before_orders = len(line.events), len(line.orders)
    assert next_due(line.framework, line.state, t(59)) == t(60)
    line.at(t(60), 400)
    new = line.events[before_events:]
    expired = [e for e in new if isinstance(e, AcknowledgementExpired)]
    assert [(e.by, e.tier) for e in expired] == [("Sam", 2)]
    assert not line.state.acknowledged
    assert line.state.ack is None
    assert not [e for e in new if isinstance(e, Escalated)]
    assert _notifications(line, before_orders) == ["notify_duty_manager"]
    # The incoming duty manager can acknowledge again.
    again = acknowledge(line.framework, line.state, by="Kim", note="", now=t(61))
    assert again.state.acknowledged


def test_an_acknowledgement_without_expiry_never_lapses():
    """Without ``expires`` the acknowledgement lasts as long as the tier."""
    line = _raised_line()
    line.apply(acknowledge(line.framework, line.state, by="Sam", note="", now=t(6)))
    line.at(t(600), 400)
    assert line.state.acknowledged
    assert not [e for e in line.events if isinstance(e, AcknowledgementExpired)]


def test_the_codec_round_trips_the_expiry_and_loads_old_states():
    """``expires`` and the new event survive the store; a state stored before has None."""
    line = _raised_line()
    line.apply(acknowledge(line.framework, line.state, by="Sam", note="", now=t(6),
                           expires=t(60)))  # fmt: skip
    data = codec.encode_state(line.state)
    assert codec.decode_state(data) == line.state
    assert data["ack"]["expires"] == "2026-01-05T10:00:00+00:00"
    del data["ack"]["expires"]
    old = codec.decode_state(data)
    assert old.ack == replace(line.state.ack, expires=None)  # type: ignore[type-var]
    event = AcknowledgementExpired(line="revenues", at=t(60), tier=2, by="Sam", episode=1)
    assert codec.decode_event(codec.encode_event(event)) == event
    assert codec.event_tier(event) == 2
