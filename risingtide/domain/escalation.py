"""Acknowledgement, repeat and escalation timers: what is due for a raised tier, and when.

A raised tier that nobody has acknowledged nags: a :class:`~risingtide.domain.model.Reminder`
falls due every ``tier.repeat_every`` after the tier was entered, and each of the tier's
escalation steps falls due ``step.after`` its entry (PagerDuty-style timed levels).

Rules (the engine's contract; see ``tiers.py`` for the rest):

* Timers run only while the line is open, at a tier above 0, not acknowledged for that tier
  (``LineState.acknowledged``), not declared at or above it, and not silenced. An
  acknowledgement covers its tier and the tiers below it, so it stops the reminders and the
  escalation chain; a rise above the acknowledged tier needs a new one.
* Reminder ``n`` (1-based) is due ``repeat_every`` after the previous reminder actually sent,
  the first ``repeat_every`` after ``entered_at``. At most one reminder per evaluation: after
  a long gap (a silence, a stopped daemon) one reminder goes out, not a burst, and the next is
  measured from it.
* Escalation step ``k`` (0-based index into ``tier.escalation``) is due when
  ``now - entered_at >= escalation[k].after`` and ``k >= escalation_steps_done``. Every due
  step goes out (a long gap may fire several at once), each exactly once, in order. Steps are
  expected in ascending ``after`` order (the config loader's job); the chain stops at the
  first step that is not yet due. :attr:`Escalated.step` is the step's 1-based *number*
  (``escalation[step - 1]``), like :attr:`Reminder.number`.
* Entering or leaving a tier resets the counters (``tiers.py`` does that), so each tier
  entry starts its own chain.

Everything here is pure: time comes in as ``now``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from risingtide.domain.model import Escalated, Event, Framework, LineState, Reminder, Tier

__all__ = ["advance", "due_escalations", "due_reminder", "next_due", "timers_blocked"]

# A line becomes stale strictly after ``stale_after``; next_due reports the first instant
# at which an evaluation would see it stale.
_TICK = timedelta(microseconds=1)


def timers_blocked(state: LineState) -> bool:
    """True when no reminder or escalation may run for the line's current tier.

    Blocked when the line is closed, calm, acknowledged at (or above) its tier, silenced, or
    held by a declaration at (or above) its tier: whoever declared a tier is dealing with
    it, so a declaration counts as their acknowledgement. The caller is expected to have
    expired a silence, declaration or acknowledgement that has run out (``evaluate`` does).
    """
    tier = state.tier
    if tier <= 0 or not state.open or state.silence is not None:
        return True
    ack = state.ack
    if ack is not None and ack.tier >= tier:
        return True
    declaration = state.declaration
    return declaration is not None and declaration.level >= tier


def due_reminder(tier: Tier, state: LineState, now: datetime) -> Reminder | None:
    """The reminder due for ``tier`` at ``now``, or None.

    ``tier`` must be the line's current tier; any other tier, a tier without
    ``repeat_every``, or a blocked line (see :func:`timers_blocked`) has no reminder due.
    """
    every = tier.repeat_every
    if every is None or every <= timedelta(0) or state.tier != tier.level:
        return None
    if timers_blocked(state):
        return None
    base = state.last_reminder_at or state.entered_at
    if base is None or now - base < every:
        return None
    return Reminder(
        line=state.line,
        at=now,
        tier=tier.level,
        number=state.reminders_sent + 1,
        episode=state.episode,
    )


def due_escalations(tier: Tier, state: LineState, now: datetime) -> tuple[Escalated, ...]:
    """Every escalation step of ``tier`` due at ``now`` and not yet run, in order."""
    steps = tier.escalation
    done = state.escalation_steps_done
    if done >= len(steps) or state.tier != tier.level or timers_blocked(state):
        return ()
    entered = state.entered_at
    if entered is None:
        return ()
    elapsed = now - entered
    due: list[Escalated] = []
    k = done
    while k < len(steps) and elapsed >= steps[k].after:
        due.append(
            Escalated(
                line=state.line,
                at=now,
                tier=tier.level,
                step=k + 1,
                responses=steps[k].responses,
                episode=state.episode,
            )
        )
        k += 1
    return tuple(due)


def advance(tier: Tier, state: LineState, now: datetime) -> tuple[LineState, tuple[Event, ...]]:
    """Run the tier's timers: the events due now and the state that records them.

    Returns ``state`` itself (and no events) when nothing is due, so the engine's steady
    state allocates nothing.
    """
    reminder = due_reminder(tier, state, now)
    steps = due_escalations(tier, state, now)
    if reminder is None and not steps:
        return state, ()
    events: tuple[Event, ...] = ((reminder,) if reminder is not None else ()) + steps
    if reminder is not None and steps:
        state = replace(
            state,
            reminders_sent=reminder.number,
            last_reminder_at=now,
            escalation_steps_done=steps[-1].step,
        )
    elif reminder is not None:
        state = replace(state, reminders_sent=reminder.number, last_reminder_at=now)
    else:
        state = replace(state, escalation_steps_done=steps[-1].step)
    return state, events


def next_due(
    framework: Framework, state: LineState, now: datetime, *, going_stale: bool = True
) -> datetime | None:
    """The earliest instant after ``now`` at which evaluating the line could change something
    with no new stats arriving; None when nothing is pending.

    Covers: the silence's, the declaration's and the acknowledgement's expiry; the stats
    going stale (unless ``going_stale`` is False: a driver that knows when the next figures
    come, such as replay, places that instant itself) and the stale alert; entry timers of the
    tiers above the current one and the current tier's clear timer (unless the data is stale
    or a declaration holds the tier); the next reminder and the next escalation step. Opening
    hours are the calendar's: ``tiers.next_deadline`` adds them.

    ``state`` is expected to be the result of evaluating at ``now``: anything due at or
    before ``now`` has then already happened, and such instants are not reported.
    """
    candidates: list[datetime] = []
    if state.silence is not None:
        candidates.append(state.silence.until)
    declaration = state.declaration
    if declaration is not None:
        candidates.append(declaration.until)
    if state.ack is not None and state.ack.expires is not None:
        candidates.append(state.ack.expires)
    if state.open:
        _open_candidates(framework, state, candidates, going_stale=going_stale)
    later = [c for c in candidates if c > now]
    return min(later) if later else None


def _open_candidates(
    framework: Framework, state: LineState, out: list[datetime], *, going_stale: bool
) -> None:
    tiers = framework.tiers
    level = state.tier
    if state.stale:
        if not state.stale_alerted and state.stale_since is not None:
            out.append(state.stale_since + framework.stale_alert_after)
    else:
        if going_stale and state.last_stats_at is not None:
            out.append(state.last_stats_at + framework.stale_after + _TICK)
        for i in range(level, min(len(tiers), len(state.when_since))):
            since = state.when_since[i]
            if since is not None:
                out.append(since + tiers[i].for_)
        declaration = state.declaration
        floor = declaration.level if declaration is not None else 0
        if 0 < level <= len(tiers) and state.clear_since is not None and level > floor:
            out.append(state.clear_since + tiers[level - 1].clear_for)
    if 0 < level <= len(tiers) and not timers_blocked(state):
        tier = tiers[level - 1]
        entered = state.entered_at
        every = tier.repeat_every
        if every is not None and every > timedelta(0):
            base = state.last_reminder_at or entered
            if base is not None:
                out.append(base + every)
        done = state.escalation_steps_done
        if entered is not None and done < len(tier.escalation):
            out.append(entered + tier.escalation[done].after)
