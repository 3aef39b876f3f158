"""The tier engine: ``evaluate(framework, state, stats, now) -> Decision``.

Pure: no I/O, no clock (time comes in as ``now``, an aware UTC datetime), no globals. The
runtime calls it for every line every few seconds and replay calls it for months of rows,
so the steady state (nothing changed) returns the very same ``state`` object and builds no
expensive strings.

Semantics, in the order one evaluation applies them:

1. **Out of hours.** When ``calendar`` says the line is closed: if it was open, a raised
   tier drops to 0 (``TierChanged(cause=CLOSED, reason="out of hours")``), then
   ``LineClosed``; the state becomes a closed calm state (timers, stale flags and the
   acknowledgement cleared; ``episode``, ``live``, ``last_stats_at``, the silence and the
   declaration kept — the planner undoes the live switches). While closed nothing is
   evaluated and nothing is raised; only a silence or declaration running out is recorded
   (``SilenceEnded``/``DeclarationEnded``), so the board tells the truth. On reopening:
   ``LineOpened`` and a fresh start (entry timers from now; stale from now).
2. **Expiries.** A silence whose ``until`` has come is cleared (``SilenceEnded(by="")``); an
   acknowledgement whose ``expires`` has come is cleared (``AcknowledgementExpired``; steps
   of the escalation chain already past are not run late); a
   declaration whose ``until`` has come is cleared (``DeclarationEnded(by="")``) and the
   tier then falls only through the normal clear rules.
3. **Stats.** Stats older than those already seen (``stats.at < state.last_stats_at``) are
   ignored and move no timer. Stats are *stale* when missing or older than
   ``framework.stale_after``. Stale data never changes the tier (up or down): entry timers
   ``when_since`` are kept (a gap neither starts nor breaks them), the clear timer is reset
   (a clear must be re-earned on fresh data), ``stale``/``stale_since`` are set
   (``stale_since`` = when the last fresh stats became stale, ``stats.at + stale_after``,
   or now when there never were stats or the line has just opened). After
   ``stale_alert_after`` one ``StatsStale`` per spell; fresh stats after an alerted spell
   give ``StatsFresh``.
4. **Entry** (fresh stats). ``when_since[i]`` is when tier ``i+1``'s ``when`` started to
   hold at fresh evaluations (None while it does not). The candidate is the highest level
   above the current tier whose ``when`` holds and has held for its ``for_``; the line jumps
   straight there (0 → 3 is allowed). A rise from 0 starts a new ``episode``. Entering a tier
   resets ``entered_at``, the reminder and escalation counters and the clear timer (restarted
   at now if the new tier's ``clear`` already holds). The acknowledgement object is kept but
   covers only the tier it was given for (``LineState.acknowledged``), so a rise above it
   needs a new one.
5. **Clear** (fresh stats, no rise). ``clear_since`` tracks the current tier's ``clear``.
   When it has held for the tier's ``clear_for``: with ``framework.step_down`` the line goes
   down one tier, whose own clear timer starts afresh (at now if its ``clear`` holds now), so
   3 → 0 takes three clear periods; without it the line drops to the highest lower tier whose
   ``when`` holds now (or 0). An active declaration is a floor the tier never falls below.
   Reaching 0 clears the acknowledgement.
6. **Declared floor.** While a declaration is active and the line open, a tier below the
   declared level is raised to it (``cause=DECLARED``) — e.g. on reopening the next morning.
7. **Timers.** While open, raised, unacknowledged and not silenced, due reminders and
   escalation steps are emitted (see ``escalation.py``).

An unknown measure makes a comparison false, so neither ``when`` nor ``clear`` holds on it:
the tier holds. Every ``Decision`` carries a one-sentence ``reason``; every ``TierChanged``
says which condition held and for how long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime, timedelta
from functools import partial

from risingtide.domain.escalation import advance
from risingtide.domain.model import (
    ALWAYS_OPEN,
    AcknowledgementExpired,
    Calendar,
    Cause,
    Decision,
    Declaration,
    DeclarationEnded,
    Escalated,
    Event,
    Framework,
    LineClosed,
    LineOpened,
    LineState,
    QueueStats,
    Reminder,
    SilenceEnded,
    StatsFresh,
    StatsStale,
    Tier,
    TierChanged,
)

__all__ = ["evaluate", "format_duration", "initial_state", "tier_label"]

# ``evaluate`` rebuilds LineState positionally (several times faster than
# ``dataclasses.replace`` in the hot path). Fail at import, not silently, if its fields change.
_LINE_STATE_FIELDS = (
    "line", "tier", "entered_at", "episode", "when_since", "clear_since", "last_stats_at",
    "stale", "stale_since", "stale_alerted", "open", "ack", "silence", "declaration",
    "reminders_sent", "last_reminder_at", "escalation_steps_done", "live",
)  # fmt: skip
if tuple(f.name for f in fields(LineState)) != _LINE_STATE_FIELDS:  # pragma: no cover
    raise ImportError("LineState's fields changed: update evaluate() in risingtide.domain.tiers")

_NOT_EVALUATED = "out of hours: line closed, not evaluated"
_CALM_QUIET = "calm: no tier's entry condition met"


def initial_state(line: str, framework: Framework) -> LineState:
    """A new line's state: calm, open, with one entry timer per tier of ``framework``."""
    return LineState(line=line, when_since=(None,) * len(framework.tiers))


def format_duration(span: timedelta) -> str:
    """A duration the way people read it: ``45s``, ``2m``, ``1m30s``, ``2h5m``."""
    seconds = int(span.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m{secs}s" if secs else f"{sign}{minutes}m"
    return f"{sign}{secs}s"


def tier_label(framework: Framework, level: int) -> str:
    """``tier 2 high`` (or ``tier 0 calm``), for reasons."""
    return f"tier {level} {framework.tier_name(level)}"


def evaluate(
    framework: Framework,
    state: LineState,
    stats: QueueStats | None,
    now: datetime,
    *,
    calendar: Calendar = ALWAYS_OPEN,
) -> Decision:
    """Decide the line's tier at ``now`` from its latest ``stats`` (None when there are none).

    Returns the new state (``state`` itself when nothing changed), the events in the order
    they happened, and a one-sentence reason. See the module docstring for the rules.
    """
    if not calendar.always and not calendar.is_open(now):
        return _evaluate_closed(framework, state, now)

    tiers = framework.tiers
    events: list[Event] = []
    reopened = False
    if not state.open:
        state = _reopened(framework, state, now)
        events.append(LineOpened(line=state.line, at=now))
        reopened = True
    elif len(state.when_since) != len(tiers) or state.tier > len(tiers):
        state = _fit(framework, state)

    line = state.line
    tier = state.tier
    # Everything the evaluation may change, as locals: the state is rebuilt at most once.
    changed = reopened
    entered_at = state.entered_at
    episode = state.episode
    when_since = state.when_since
    clear_since = state.clear_since
    last_stats_at = state.last_stats_at
    stale = state.stale
    stale_since = state.stale_since
    stale_alerted = state.stale_alerted
    ack = state.ack
    reminders_sent = state.reminders_sent
    last_reminder_at = state.last_reminder_at
    steps_done = state.escalation_steps_done

    # ------------------------------------------------------------------ expiries
    silence = state.silence
    if silence is not None and now >= silence.until:
        events.append(SilenceEnded(line=line, at=now, by="", tier=tier))
        silence = None
        changed = True
    if ack is not None and ack.expires is not None and now >= ack.expires:
        # ack_expires: at_handover — the incoming duty manager is asked again (the planner
        # notifies); escalation steps that fell due while acknowledged are not run late.
        events.append(
            AcknowledgementExpired(line=line, at=now, tier=ack.tier, by=ack.by, episode=episode)
        )
        ack = None
        if 0 < tier <= len(tiers) and entered_at is not None:
            late = [s for s in tiers[tier - 1].escalation if now - entered_at >= s.after]
            steps_done = max(steps_done, len(late))
        changed = True
    declaration = state.declaration
    declaration_ended = False
    if declaration is not None and now >= declaration.until:
        events.append(DeclarationEnded(line=line, at=now, level=declaration.level, by=""))
        declaration = None
        declaration_ended = True
        changed = True
    floor = declaration.level if declaration is not None else 0

    new_tier = tier
    cause: Cause | None = None
    change_reason = ""
    # Steady-state reasons are written only if someone reads them (see Decision).
    reason: str | Callable[[], str] = ""

    # ------------------------------------------------------------------ stats
    if stats is not None and last_stats_at is not None and stats.at < last_stats_at:
        # Out of order (e.g. an unsorted replay file): neutral, no timer moves.
        reason = (
            f"ignored stats from {stats.at:%H:%M:%S}, older than the last seen "
            f"({last_stats_at:%H:%M:%S}); holding tier {tier}"
        )
    elif stats is None or now - stats.at > framework.stale_after:
        if stats is not None and (last_stats_at is None or stats.at > last_stats_at):
            last_stats_at = stats.at
            changed = True
        if clear_since is not None:
            clear_since = None
            changed = True
        if not stale:
            stale = True
            stale_alerted = False
            if reopened or last_stats_at is None:
                stale_since = now
            else:
                stale_since = min(last_stats_at + framework.stale_after, now)
            changed = True
        if last_stats_at is None:
            reason = f"stale: no stats yet; holding tier {tier}"
        else:
            reason = (
                f"stale: last stats {format_duration(now - last_stats_at)} old; holding tier {tier}"
            )
    else:
        # ---------------------------------------------------------- fresh stats
        if stale:
            if stale_alerted and stale_since is not None:
                events.append(StatsFresh(line=line, at=now, stale_for=now - stale_since, tier=tier))
            stale = False
            stale_since = None
            stale_alerted = False
            changed = True
        if last_stats_at != stats.at:
            last_stats_at = stats.at
            changed = True

        # Entry timers for every tier, and the highest tier above ours ready to enter.
        # The list is only copied when a timer starts or stops (rare), not every tick.
        new_since: list[datetime | None] | None = None
        ready = 0
        for i, t in enumerate(tiers):
            since = when_since[i]
            if t.when.holds(stats):
                if since is None:
                    since = now
                    if new_since is None:
                        new_since = list(when_since)
                    new_since[i] = now
                if i >= tier and now - since >= t.for_:
                    ready = i + 1
            elif since is not None:
                if new_since is None:
                    new_since = list(when_since)
                new_since[i] = None
        if new_since is not None:
            when_since = tuple(new_since)
            changed = True

        if ready > tier and ready >= floor:
            t = tiers[ready - 1]
            since = when_since[ready - 1]
            held = now - since if since is not None else timedelta(0)
            new_tier = ready
            cause = Cause.RAISED
            change_reason = (
                f"rising to {tier_label(framework, ready)}: {t.when.explain(stats)} "
                f"held for {format_duration(held)}"
            )
        elif tier > 0:
            t = tiers[tier - 1]
            if t.clear.holds(stats):
                if clear_since is None:
                    clear_since = now
                    changed = True
                held = now - clear_since
                if held >= t.clear_for and tier > floor:
                    if framework.step_down:
                        target = tier - 1
                    else:
                        target = 0
                        for level in range(tier - 1, 0, -1):
                            if when_since[level - 1] is not None:
                                target = level
                                break
                    new_tier = max(target, floor)
                    cause = Cause.DECLARATION_ENDED if declaration_ended else Cause.LOWERED
                    change_reason = (
                        f"falling to {tier_label(framework, new_tier)}: tier {tier} clear "
                        f"condition {t.clear.explain(stats)} held for {format_duration(held)}"
                    )
                elif tier <= floor:
                    reason = f"tier {tier} held: declared until {_hhmm(declaration)}"
                else:
                    reason = partial(_clear_progress, tier, t, stats, held)
            else:
                if clear_since is not None:
                    clear_since = None
                    changed = True
                reason = partial(_clear_unmet, tier, t, stats)
        else:
            reason = partial(_calm_reason, framework, when_since, stats, now)

    # ------------------------------------------------------------------ declared floor
    if floor > new_tier and declaration is not None:
        new_tier = floor
        cause = Cause.DECLARED
        change_reason = (
            f"declared {tier_label(framework, floor)} by {declaration.by} until "
            f"{_hhmm(declaration)}"
        )
        if declaration.reason:
            change_reason = f"{change_reason}: {declaration.reason}"

    # ------------------------------------------------------------------ tier change
    if cause is not None and new_tier != tier:
        changed = True
        if new_tier > tier and tier == 0:
            episode += 1
        entered_at = now
        reminders_sent = 0
        last_reminder_at = None
        steps_done = 0
        clear_since = None
        if (
            new_tier > 0
            and stats is not None
            and not stale
            and tiers[new_tier - 1].clear.holds(stats)
        ):
            clear_since = now
        if new_tier == 0:
            ack = None
        events.append(
            TierChanged(
                line=line,
                at=now,
                from_tier=tier,
                to_tier=new_tier,
                cause=cause,
                reason=change_reason,
                episode=episode,
            )
        )
        reason = change_reason

    if changed:
        state = LineState(
            line,
            new_tier,
            entered_at,
            episode,
            when_since,
            clear_since,
            last_stats_at,
            stale,
            stale_since,
            stale_alerted,
            True,
            ack,
            silence,
            declaration,
            reminders_sent,
            last_reminder_at,
            steps_done,
            state.live,
        )

    # ------------------------------------------------------------------ stale alert
    if (
        stale
        and not stale_alerted
        and stale_since is not None
        and now - stale_since >= framework.stale_alert_after
    ):
        stale_for = format_duration(now - stale_since)
        events.append(
            StatsStale(
                line=line,
                at=now,
                since=stale_since,
                tier=new_tier,
                reason=f"no fresh stats for {stale_for}; holding tier {new_tier}",
            )
        )
        state = replace(state, stale_alerted=True)

    # ------------------------------------------------------------------ timers
    if (
        new_tier > 0
        and silence is None
        and (ack is None or ack.tier < new_tier)
        and _timer_may_be_due(tiers[new_tier - 1], state, now)
    ):
        state, due = advance(tiers[new_tier - 1], state, now)
        if due:
            events.extend(due)
            reason = partial(_and, reason, _describe(due))

    return Decision(state, tuple(events) if events else (), reason)


# ---------------------------------------------------------------------- helpers


def _evaluate_closed(framework: Framework, state: LineState, now: datetime) -> Decision:
    """Out of hours: drop to a closed calm state once, then record only expiries."""
    events: list[Event] = []
    silence = state.silence
    if silence is not None and now >= silence.until:
        events.append(SilenceEnded(line=state.line, at=now, by="", tier=0))
        silence = None
    declaration = state.declaration
    if declaration is not None and now >= declaration.until:
        events.append(DeclarationEnded(line=state.line, at=now, level=declaration.level, by=""))
        declaration = None
    if not state.open:
        if not events:
            return Decision(state=state, events=(), reason=_NOT_EVALUATED)
        state = replace(state, silence=silence, declaration=declaration)
        return Decision(state=state, events=tuple(events), reason=_NOT_EVALUATED)

    reason = "out of hours: line closed"
    closing: list[Event] = []
    if state.tier > 0:
        closing.append(
            TierChanged(
                line=state.line,
                at=now,
                from_tier=state.tier,
                to_tier=0,
                cause=Cause.CLOSED,
                reason="out of hours",
                episode=state.episode,
            )
        )
        reason = f"out of hours: line closed, {tier_label(framework, state.tier)} dropped"
    closing.append(LineClosed(line=state.line, at=now))
    closed = LineState(
        line=state.line,
        tier=0,
        entered_at=now,
        episode=state.episode,
        when_since=(None,) * len(framework.tiers),
        last_stats_at=state.last_stats_at,
        open=False,
        silence=silence,
        declaration=declaration,
        live=state.live,
    )
    return Decision(state=closed, events=(*closing, *events), reason=reason)


def _reopened(framework: Framework, state: LineState, now: datetime) -> LineState:
    """The fresh calm state a line starts its opening hours with."""
    return replace(
        state,
        tier=0,
        entered_at=now,
        when_since=(None,) * len(framework.tiers),
        clear_since=None,
        stale=False,
        stale_since=None,
        stale_alerted=False,
        open=True,
        ack=None,
        reminders_sent=0,
        last_reminder_at=None,
        escalation_steps_done=0,
    )


def _fit(framework: Framework, state: LineState) -> LineState:
    """Fit a state kept across a config reload to a framework with a different tier count."""
    n = len(framework.tiers)
    return replace(
        state,
        tier=min(state.tier, n),
        when_since=(None,) * n,
        clear_since=None,
    )


def _clear_progress(tier: int, t: Tier, stats: QueueStats, held: timedelta) -> str:
    return (
        f"tier {tier} held: clear condition ({t.clear.explain(stats)}) held "
        f"{format_duration(held)} of {format_duration(t.clear_for)}"
    )


def _clear_unmet(tier: int, t: Tier, stats: QueueStats) -> str:
    return f"tier {tier} held: clear condition ({t.clear.explain(stats)}) not met"


def _and(first: str | Callable[[], str], then: str) -> str:
    return f"{first if isinstance(first, str) else first()}; {then}"


def _calm_reason(
    framework: Framework, since: tuple[datetime | None, ...], stats: QueueStats, now: datetime
) -> str:
    """Why a calm line stays calm: nothing holds, or the highest pending tier's progress."""
    for i in range(len(since) - 1, -1, -1):
        started = since[i]
        if started is not None:
            t = framework.tiers[i]
            return (
                f"calm: {tier_label(framework, i + 1)} condition ({t.when.explain(stats)}) "
                f"held {format_duration(now - started)} of {format_duration(t.for_)}"
            )
    return _CALM_QUIET


def _hhmm(declaration: Declaration | None) -> str:
    return "?" if declaration is None else f"{declaration.until:%Y-%m-%d %H:%M}"


def _timer_may_be_due(tier: Tier, state: LineState, now: datetime) -> bool:
    """A cheap look before ``advance``: could a reminder or escalation step be due?

    Evaluated for every raised line at every tick, so it avoids the event-building calls
    in the common case where nothing is due; ``advance`` makes the real decision.
    """
    entered = state.entered_at
    if entered is None:
        return False
    every = tier.repeat_every
    if every is not None and now - (state.last_reminder_at or entered) >= every:
        return True
    steps = tier.escalation
    done = state.escalation_steps_done
    return done < len(steps) and now - entered >= steps[done].after


def _describe(events: tuple[Event, ...]) -> str:
    parts: list[str] = []
    for e in events:
        if isinstance(e, Reminder):
            parts.append(f"reminder {e.number} due")
        elif isinstance(e, Escalated):
            parts.append(f"escalation step {e.step} due")
    return ", ".join(parts)
