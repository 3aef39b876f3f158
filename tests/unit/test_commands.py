"""The duty manager's commands: acknowledge, silence, lift, declare, clear a declaration."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_helpers import LINE, Line, at_tier, standard, state_with, t

from risingtide.domain.commands import (
    CommandRejected,
    acknowledge,
    clear_declaration,
    declare,
    lift_silence,
    silence,
)
from risingtide.domain.model import (
    Acknowledged,
    Cause,
    Declaration,
    DeclarationEnded,
    Declared,
    Silence,
    Silenced,
    SilenceEnded,
    TierChanged,
)

FW = standard()
RAISED = state_with(tier=2, entered_at=t(0), episode=4)


def test_command_rejected_is_a_value_error_with_a_reason():
    """Rejections carry a sentence for the user and are ValueErrors."""
    error = CommandRejected("no")
    assert isinstance(error, ValueError)
    assert error.reason == "no"


# ---------------------------------------------------------------------- acknowledge


def test_acknowledge_covers_the_current_tier():
    """An acknowledgement records who and when, for the current tier and episode."""
    decision = acknowledge(FW, RAISED, by="sam", note="surge staff called", now=t(3))
    assert decision.state.acknowledged
    ack = decision.state.ack
    assert ack is not None
    assert (ack.tier, ack.by, ack.at, ack.note) == (2, "sam", t(3), "surge staff called")
    (event,) = decision.events
    assert isinstance(event, Acknowledged)
    assert (event.tier, event.episode, event.by) == (2, 4, "sam")
    assert decision.reason == "tier 2 high acknowledged by sam"


def test_acknowledge_is_rejected_when_calm():
    """There is nothing to acknowledge at tier 0."""
    with pytest.raises(CommandRejected, match="is calm"):
        acknowledge(FW, state_with(), by="sam", note="", now=t(0))


def test_acknowledge_is_rejected_when_already_acknowledged():
    """A second acknowledgement of the same tier is rejected."""
    acked = acknowledge(FW, RAISED, by="sam", note="", now=t(3)).state
    with pytest.raises(CommandRejected, match="already acknowledged at tier 2 by sam"):
        acknowledge(FW, acked, by="kim", note="", now=t(4))


def test_acknowledge_again_after_a_rise():
    """A rise above the acknowledged tier can (and must) be acknowledged again."""
    acked = acknowledge(FW, RAISED, by="sam", note="", now=t(3)).state
    risen = replace(acked, tier=3)
    assert not risen.acknowledged
    again = acknowledge(FW, risen, by="kim", note="", now=t(5))
    assert again.state.ack is not None
    assert again.state.ack.tier == 3


# ---------------------------------------------------------------------- silence


def test_silence_records_the_silence_and_an_event():
    """A silence is kept in the state and announced with its end and reason."""
    decision = silence(RAISED, until=t(60), by="sam", reason="IVR upgrade", undo=True, now=t(0))
    assert decision.state.silence == Silence(
        until=t(60), by="sam", reason="IVR upgrade", at=t(0), undo=True
    )
    (event,) = decision.events
    assert isinstance(event, Silenced)
    assert (event.until, event.undo) == (t(60), True)
    assert decision.reason == "silenced by sam for 1h: IVR upgrade"


def test_silence_must_end_in_the_future():
    """A silence ending now or earlier is rejected."""
    with pytest.raises(CommandRejected, match="future"):
        silence(RAISED, until=t(0), by="sam", reason="", undo=False, now=t(0))


def test_a_new_silence_replaces_the_old():
    """Silencing a silenced line moves the end."""
    first = silence(RAISED, until=t(60), by="sam", reason="a", undo=False, now=t(0)).state
    second = silence(first, until=t(30), by="kim", reason="b", undo=False, now=t(1)).state
    assert second.silence is not None
    assert second.silence.until == t(30)


def test_lift_silence_ends_it_early():
    """Lifting a silence clears it and names who lifted it."""
    silenced = silence(RAISED, until=t(60), by="sam", reason="", undo=False, now=t(0)).state
    decision = lift_silence(silenced, by="kim", now=t(10))
    assert decision.state.silence is None
    (event,) = decision.events
    assert isinstance(event, SilenceEnded)
    assert (event.by, event.tier) == ("kim", 2)


def test_lift_silence_is_rejected_when_not_silenced():
    """Lifting a silence that is not there, or has run out, is rejected."""
    with pytest.raises(CommandRejected, match="not silenced"):
        lift_silence(RAISED, by="kim", now=t(0))
    expired = replace(RAISED, silence=Silence(until=t(5), by="sam", reason="", at=t(0)))
    with pytest.raises(CommandRejected, match="not silenced"):
        lift_silence(expired, by="kim", now=t(5))


# ---------------------------------------------------------------------- declarations


def test_declare_raises_a_calm_line_and_starts_an_episode():
    """Declaring above the current tier raises the line at once, cause DECLARED."""
    calm = state_with(episode=1)
    decision = declare(FW, calm, level=3, until=t(120), by="kim", reason="bills out", now=t(0))
    declared, change = decision.events
    assert isinstance(declared, Declared)
    assert isinstance(change, TierChanged)
    assert (change.from_tier, change.to_tier, change.cause, change.episode) == (
        0,
        3,
        Cause.DECLARED,
        2,
    )
    assert change.reason == "declared tier 3 flood by kim until 2026-01-05 11:00: bills out"
    state = decision.state
    assert (state.tier, state.episode, state.entered_at) == (3, 2, t(0))
    assert state.declaration == Declaration(
        level=3, until=t(120), by="kim", reason="bills out", at=t(0)
    )


def test_declare_at_or_below_the_current_tier_only_sets_the_floor():
    """Declaring a tier the line is already at or above changes no tier."""
    decision = declare(FW, RAISED, level=2, until=t(60), by="kim", reason="", now=t(0))
    assert [e.kind for e in decision.events] == ["declared"]
    assert decision.state.tier == 2
    assert decision.state.declaration is not None


def test_declare_resets_the_raised_tiers_counters():
    """A declared rise is a tier entry: reminders and escalation start again."""
    busy = replace(RAISED, reminders_sent=3, last_reminder_at=t(5), escalation_steps_done=1)
    state = declare(FW, busy, level=4, until=t(60), by="kim", reason="", now=t(9)).state
    assert (state.reminders_sent, state.last_reminder_at, state.escalation_steps_done) == (
        0,
        None,
        0,
    )
    assert state.episode == 4


@pytest.mark.parametrize("level", [0, 5, -1])
def test_declare_rejects_a_tier_that_does_not_exist(level):
    """Only tiers 1..max_level can be declared."""
    with pytest.raises(CommandRejected, match="from 1 to 4"):
        declare(FW, RAISED, level=level, until=t(60), by="kim", reason="", now=t(0))


def test_declare_must_end_in_the_future():
    """A declaration ending now or earlier is rejected."""
    with pytest.raises(CommandRejected, match="future"):
        declare(FW, RAISED, level=3, until=t(0), by="kim", reason="", now=t(0))


def test_declare_out_of_hours_waits_for_opening():
    """A closed line records the declaration without raising anything."""
    closed = state_with(open=False)
    decision = declare(FW, closed, level=2, until=t(600), by="kim", reason="", now=t(0))
    assert [e.kind for e in decision.events] == ["declared"]
    assert decision.state.tier == 0
    assert decision.reason.endswith("applies when the line opens")


def test_clear_declaration_ends_it_without_lowering_the_tier():
    """Clearing a declaration emits DeclarationEnded and leaves the tier to the clear rules."""
    declared = declare(FW, state_with(), level=2, until=t(60), by="kim", reason="", now=t(0))
    decision = clear_declaration(FW, declared.state, by="sam", now=t(10))
    (event,) = decision.events
    assert isinstance(event, DeclarationEnded)
    assert (event.level, event.by, event.line) == (2, "sam", LINE)
    assert decision.state.declaration is None
    assert decision.state.tier == 2


def test_clear_declaration_is_rejected_without_one():
    """There is nothing to clear on a line with no (live) declaration."""
    with pytest.raises(CommandRejected, match="no declared tier"):
        clear_declaration(FW, RAISED, by="sam", now=t(0))


def test_after_clearing_a_declaration_the_tier_falls_by_the_clear_rules():
    """A cleared declaration lets the tier fall once the clear has held long enough."""
    line = Line()
    line.apply(declare(FW, line.state, level=2, until=t(600), by="kim", reason="", now=t(0)))
    line.hold(t(1), t(20), 100)
    assert line.state.tier == 2
    line.apply(clear_declaration(FW, line.state, by="kim", now=t(20)))
    decision = line.at(t(20, 15), 100)
    assert decision.state.tier == 1
    assert line.changes()[-1].cause is Cause.LOWERED


def test_commands_work_on_a_line_the_engine_raised():
    """Acknowledging a tier the engine raised is recorded in the next evaluation's state."""
    line = Line()
    at_tier(line, 1)
    line.apply(acknowledge(FW, line.state, by="sam", note="", now=t(6)))
    assert line.at(t(7), 200).state.acknowledged
