"""The duty manager's commands, as pure functions: acknowledge, silence, declare.

Each takes the line's state and ``now`` and returns a :class:`Decision` (new state, events,
reason) exactly as ``evaluate`` does, so the runtime stores and plans them the same way.
A command that makes no sense raises :class:`CommandRejected` with a reason fit to show the
user; nothing is changed then.

* ``acknowledge`` — "I've got this": covers the current tier and the ones below, stops its
  reminders and escalation chain, until ``expires`` when given (the rota's handover).
  Rejected at tier 0 and when the tier is already covered.
* ``silence`` / ``lift_silence`` — planned work: tiers still move (the board shows the
  truth) but no responses are applied until ``until``; ``undo=True`` also undoes the live
  switches now (the planner sees the ``Silenced`` event). A new silence replaces the old.
* ``declare`` / ``clear_declaration`` — a tier declared ahead of a known event: if above
  the current tier the line rises to it at once (``TierChanged(cause=DECLARED)``; a rise from
  0 starts an episode); while it lasts the line never falls below it. Out of hours the
  declaration is recorded and applied when the line opens. Ending it does not lower the
  tier: the tier then falls only through the normal clear rules.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from risingtide.domain.model import (
    Acknowledged,
    Acknowledgement,
    Cause,
    Decision,
    Declaration,
    DeclarationEnded,
    Declared,
    Event,
    Framework,
    LineState,
    Silence,
    Silenced,
    SilenceEnded,
    TierChanged,
)
from risingtide.domain.tiers import format_duration, tier_label

__all__ = [
    "CommandRejected",
    "acknowledge",
    "clear_declaration",
    "declare",
    "lift_silence",
    "silence",
]


class CommandRejected(ValueError):  # noqa: N818 - the name is the public API
    """A command that makes no sense for the line as it stands; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        """Reject with a sentence fit to show the user."""
        super().__init__(reason)
        self.reason = reason


def acknowledge(
    framework: Framework,
    state: LineState,
    *,
    by: str,
    note: str,
    now: datetime,
    expires: datetime | None = None,
) -> Decision:
    """Acknowledge the line's current tier on behalf of ``by``.

    ``expires``: when the acknowledgement lapses (the duty rota's next handover, worked out
    by the caller under ``ack_expires: at_handover``); None, or a time not after ``now``,
    for one that lasts as long as the tier.
    """
    if state.tier <= 0:
        raise CommandRejected(f"{state.line} is calm; there is nothing to acknowledge")
    if state.acknowledged and state.ack is not None:
        raise CommandRejected(
            f"{state.line} is already acknowledged at tier {state.ack.tier} by {state.ack.by}"
        )
    lapses = expires if expires is not None and expires > now else None
    ack = Acknowledgement(tier=state.tier, by=by, at=now, note=note, expires=lapses)
    event = Acknowledged(
        line=state.line, at=now, tier=state.tier, by=by, note=note, episode=state.episode
    )
    until = " until the duty rota's handover" if lapses is not None else ""
    return Decision(
        state=replace(state, ack=ack),
        events=(event,),
        reason=f"{tier_label(framework, state.tier)} acknowledged by {by}{until}",
    )


def silence(
    state: LineState, *, until: datetime, by: str, reason: str, undo: bool, now: datetime
) -> Decision:
    """Silence the line until ``until`` (which must be later than ``now``)."""
    if until <= now:
        raise CommandRejected("a silence must end in the future")
    event = Silenced(line=state.line, at=now, until=until, by=by, reason=reason, undo=undo)
    quiet = Silence(until=until, by=by, reason=reason, at=now, undo=undo)
    undoing = "; live switches undone" if undo and state.live else ""
    return Decision(
        state=replace(state, silence=quiet),
        events=(event,),
        reason=f"silenced by {by} for {format_duration(until - now)}: {reason}{undoing}",
    )


def lift_silence(state: LineState, *, by: str, now: datetime) -> Decision:
    """End the line's silence early."""
    if state.silence is None or state.silence.until <= now:
        raise CommandRejected(f"{state.line} is not silenced")
    event = SilenceEnded(line=state.line, at=now, by=by, tier=state.tier)
    return Decision(
        state=replace(state, silence=None), events=(event,), reason=f"silence lifted by {by}"
    )


def declare(
    framework: Framework,
    state: LineState,
    *,
    level: int,
    until: datetime,
    by: str,
    reason: str,
    now: datetime,
) -> Decision:
    """Declare tier ``level`` (1..max_level) for the line until ``until``."""
    if not 1 <= level <= framework.max_level:
        raise CommandRejected(
            f"tier {level} does not exist; declare a tier from 1 to {framework.max_level}"
        )
    if until <= now:
        raise CommandRejected("a declaration must end in the future")
    declaration = Declaration(level=level, until=until, by=by, reason=reason, at=now)
    events: list[Event] = [
        Declared(line=state.line, at=now, level=level, until=until, by=by, reason=reason)
    ]
    label = tier_label(framework, level)
    if not state.open:
        return Decision(
            state=replace(state, declaration=declaration),
            events=tuple(events),
            reason=f"{label} declared by {by}; applies when the line opens",
        )
    if level <= state.tier:
        return Decision(
            state=replace(state, declaration=declaration),
            events=tuple(events),
            reason=f"{label} declared by {by}; the line is already at tier {state.tier}",
        )
    episode = state.episode + 1 if state.tier == 0 else state.episode
    change = (
        f"declared {label} by {by} until {until:%Y-%m-%d %H:%M}: {reason}"
        if reason
        else f"declared {label} by {by} until {until:%Y-%m-%d %H:%M}"
    )
    events.append(
        TierChanged(
            line=state.line,
            at=now,
            from_tier=state.tier,
            to_tier=level,
            cause=Cause.DECLARED,
            reason=change,
            episode=episode,
        )
    )
    raised = replace(
        state,
        tier=level,
        entered_at=now,
        episode=episode,
        # No stats here: the next evaluation restarts the clear timer if the clear holds.
        clear_since=None,
        declaration=declaration,
        reminders_sent=0,
        last_reminder_at=None,
        escalation_steps_done=0,
    )
    return Decision(state=raised, events=tuple(events), reason=change)


def clear_declaration(
    framework: Framework, state: LineState, *, by: str, now: datetime
) -> Decision:
    """End the line's declaration early; the tier then falls through the clear rules."""
    declaration = state.declaration
    if declaration is None or declaration.until <= now:
        raise CommandRejected(f"{state.line} has no declared tier")
    event = DeclarationEnded(line=state.line, at=now, level=declaration.level, by=by)
    return Decision(
        state=replace(state, declaration=None),
        events=(event,),
        reason=(
            f"declaration of {tier_label(framework, declaration.level)} cleared by {by}; "
            f"tier {state.tier} now falls only when its clear condition holds"
        ),
    )
