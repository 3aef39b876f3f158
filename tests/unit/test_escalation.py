"""Reminder and escalation timers, and ``next_due``, the runtime's "sleep until" answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from engine_helpers import MINUTE, Line, at_tier, q, standard, state_with, t

from risingtide.domain.escalation import (
    advance,
    due_escalations,
    due_reminder,
    next_due,
    timers_blocked,
)
from risingtide.domain.model import (
    Acknowledgement,
    Declaration,
    EscalationStep,
    Silence,
)
from risingtide.domain.tiers import evaluate

STEPS = (
    EscalationStep(after=10 * MINUTE, responses=("page_head_of_service",)),
    EscalationStep(after=30 * MINUTE, responses=("page_director",)),
)
FW = standard(repeat_every=15 * MINUTE, escalation=STEPS)
TIER1 = FW.tiers[0]
RAISED = state_with(tier=1, entered_at=t(0), episode=3)


def test_first_reminder_is_due_one_period_after_entry():
    """Reminder 1 falls due ``repeat_every`` after the tier was entered."""
    assert due_reminder(TIER1, RAISED, t(14, 59)) is None
    reminder = due_reminder(TIER1, RAISED, t(15))
    assert reminder is not None
    assert (reminder.number, reminder.tier, reminder.episode, reminder.at) == (1, 1, 3, t(15))


def test_next_reminder_is_measured_from_the_last_one_sent():
    """Reminder n+1 is due a period after reminder n actually went out, not on a fixed grid."""
    sent = replace(RAISED, reminders_sent=1, last_reminder_at=t(40))
    assert due_reminder(TIER1, sent, t(54)) is None
    reminder = due_reminder(TIER1, sent, t(55))
    assert reminder is not None
    assert reminder.number == 2


def test_a_tier_without_repeat_has_no_reminders():
    """No ``repeat_every``, no reminders."""
    tier = standard().tiers[0]
    assert due_reminder(tier, RAISED, t(600)) is None


def test_reminders_belong_to_the_current_tier_only():
    """Asking about a tier the line is not at gives nothing."""
    assert due_reminder(FW.tiers[1], RAISED, t(60)) is None
    assert due_escalations(FW.tiers[1], RAISED, t(60)) == ()


@pytest.mark.parametrize(
    ("changes", "blocked"),
    [
        ({}, False),
        ({"tier": 0}, True),
        ({"open": False}, True),
        ({"ack": Acknowledgement(tier=1, by="sam", at=t(1))}, True),
        ({"ack": Acknowledgement(tier=2, by="sam", at=t(1))}, True),
        ({"tier": 2, "ack": Acknowledgement(tier=1, by="sam", at=t(1))}, False),
        ({"silence": Silence(until=t(90), by="sam", reason="work", at=t(1))}, True),
    ],
)
def test_timers_are_blocked_when_calm_closed_acknowledged_or_silenced(changes, blocked):
    """Timers run only for an open, raised, unacknowledged, unsilenced line."""
    assert timers_blocked(replace(RAISED, **changes)) is blocked


def test_an_acknowledged_tier_has_nothing_due():
    """An acknowledgement stops the reminders and the escalation chain."""
    acked = replace(RAISED, ack=Acknowledgement(tier=1, by="sam", at=t(1)))
    assert due_reminder(TIER1, acked, t(60)) is None
    assert due_escalations(TIER1, acked, t(60)) == ()


def test_escalation_steps_fall_due_by_time_since_entry():
    """Step k is due ``after`` its tier's entry, and only steps not yet run are returned."""
    assert due_escalations(TIER1, RAISED, t(9, 59)) == ()
    (first,) = due_escalations(TIER1, RAISED, t(10))
    assert (first.step, first.responses) == (1, ("page_head_of_service",))
    done_one = replace(RAISED, escalation_steps_done=1)
    assert due_escalations(TIER1, done_one, t(29)) == ()
    (second,) = due_escalations(TIER1, done_one, t(30))
    assert second.step == 2
    assert due_escalations(TIER1, replace(RAISED, escalation_steps_done=2), t(600)) == ()


def test_advance_records_what_it_emits():
    """``advance`` returns the events and a state that will not emit them again."""
    state, events = advance(TIER1, RAISED, t(30))
    assert [e.kind for e in events] == ["reminder", "escalated", "escalated"]
    assert (state.reminders_sent, state.last_reminder_at, state.escalation_steps_done) == (
        1,
        t(30),
        2,
    )
    again, nothing = advance(TIER1, state, t(30))
    assert nothing == ()
    assert again is state


def test_next_due_is_the_next_reminder_or_escalation_step():
    """A raised, unacknowledged line is next due at its first step, then its reminder."""
    assert next_due(FW, RAISED, t(1)) == t(10)
    done_one = replace(RAISED, escalation_steps_done=1)
    assert next_due(FW, done_one, t(11)) == t(15)


def test_next_due_covers_entry_and_clear_timers():
    """Pending entry and clear timers tell the runtime when the tier could move."""
    line = Line()
    line.at(t(0), 200)
    assert next_due(line.framework, line.state, t(0)) == t(2, 0.000001)  # stats go stale first
    line.at(t(1, 30), 200)
    assert next_due(line.framework, line.state, t(1, 30)) == t(3, 30.000001)
    calm = replace(line.state, last_stats_at=None)
    assert next_due(line.framework, calm, t(1, 30)) == t(5)
    at_tier(line, 1, t(10))
    line.at(t(16), 100)
    no_stale = replace(line.state, last_stats_at=None)
    assert next_due(line.framework, no_stale, t(16)) == t(26)


def test_next_due_covers_expiries_and_the_stale_alert():
    """Silence and declaration expiries, and the stale alert, are all reported."""
    declared = state_with(
        declaration=Declaration(level=2, until=t(90), by="kim", reason="", at=t(0))
    )
    assert next_due(FW, declared, t(0)) == t(90)
    silenced = replace(declared, silence=Silence(until=t(45), by="sam", reason="", at=t(0)))
    assert next_due(FW, silenced, t(0)) == t(45)
    decision = evaluate(FW, state_with(), None, t(0))
    assert next_due(FW, decision.state, t(0)) == t(10)


def test_next_due_skips_what_is_blocked_or_past():
    """A closed, acknowledged or fully escalated line reports nothing it would not act on."""
    acked = replace(RAISED, ack=Acknowledgement(tier=1, by="sam", at=t(1)))
    assert next_due(FW, acked, t(1)) is None
    assert next_due(FW, replace(RAISED, open=False), t(1)) is None
    assert next_due(FW, RAISED, t(600)) is None


def test_next_due_after_an_evaluation_is_in_the_future():
    """After evaluating at ``now`` nothing reported is already due."""
    line = Line(FW)
    now = t(0)
    for minute in range(0, 120, 3):
        now = t(minute)
        line.at(now, 250 if minute < 60 else 100)
        due = next_due(FW, line.state, now)
        assert due is None or due > now
    assert line.step(now + timedelta(minutes=1), q(now, 100)).state.tier >= 0
