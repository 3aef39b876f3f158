"""The tier engine: ``evaluate(framework, state, stats, now) -> Decision``.

Pure: no I/O, no clock (time comes in as ``now``, an aware UTC datetime), no globals. The
runtime calls it for every line every few seconds and replay calls it for months of rows,
so the steady state (nothing changed) returns the very same ``state`` object and builds no
expensive strings.

Semantics, in the order one evaluation applies them:

0. **Demand calendar** (only when the line has ``demand`` events; see
   ``demand_calendar.py``). A pre-arm falling due becomes a declaration by the event's name
   until the event's end (``Declared``), so stages 2 and 6 lift it and hold its floor; an
   event's lead-time responses give ``DemandEventDue``, once per event; a running event's
   ``tighten`` replaces tiers' ``for`` for this evaluation.
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
   of the escalation chain already past are not run late); a declaration whose ``until``
   has come is cleared (``DeclarationEnded(by="")``) and the tier then falls only through
   the normal clear rules.
3. **Stats.** Stats older than those already seen (``stats.at < state.last_stats_at``) are
   ignored and move no timer. Stats are *stale* when missing or older than
   ``framework.stale_after``. Stale data never changes the tier (up or down): the entry
   timers ``when_since`` and the clear timer ``clear_since`` are kept (a gap neither starts
   nor breaks them: only fresh figures do, so a fall still needs fresh figures showing the
   clear), ``stale``/``stale_since`` are set
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

from risingtide.domain import demand_calendar
from risingtide.domain.demand_calendar import DemandEvent
from risingtide.domain.escalation import advance, next_due
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

__all__ = ["evaluate", "format_duration", "initial_state", "next_deadline", "tier_label"]

# ``evaluate`` rebuilds LineState positionally (several times faster than
# ``dataclasses.replace`` in the hot path). Fail at import, not silently, if its fields change.
_LINE_STATE_FIELDS = (
    "line", "tier", "entered_at", "episode", "when_since", "clear_since", "last_stats_at",
    "stale", "stale_since", "stale_alerted", "open", "ack", "silence", "declaration",
    "reminders_sent", "last_reminder_at", "escalation_steps_done", "live", "calendar_done",
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
    demand: tuple[DemandEvent, ...] = (),
) -> Decision:
    """Decide the line's tier at ``now`` from its latest ``stats`` (None when there are none).

    Returns the new state (``state`` itself when nothing changed), the events in the order
    they happened, and a one-sentence reason. The stages below run in the order of the
    module docstring; each reads and writes one working copy of the state (``_Pass``), which
    is turned back into a ``LineState`` at most once. ``demand`` is the line's demand
    calendar events (see :func:`_demand_stage`).
    """
    if demand:
        return _demand_stage(framework, state, stats, now, calendar, demand)
    if not calendar.always and not calendar.is_open(now):
        return _evaluate_closed(framework, state, now)
    work = _Pass(framework, state, now)
    if state.silence is not None or state.declaration is not None or state.ack is not None:
        _expiries(work)
    if stats is not None and work.last_stats_at is not None and stats.at < work.last_stats_at:
        work.reason = _ignored(stats, work)  # out of order (e.g. an unsorted file): neutral
    elif stats is None or now - stats.at > framework.stale_after:
        _stale(work, stats)
    else:
        _fresh(work, stats)
        if _entry(work, stats) == 0:
            _clear(work, stats)
    if work.floor > work.new_tier and work.declaration is not None:
        _declared_floor(work)
    if work.cause is not None and work.new_tier != work.tier:
        _tier_change(work, stats)
        while stats is not None and _falls_again(work):
            _clear(work, stats)
            if work.cause is None or work.new_tier == work.tier:
                break
            _tier_change(work, stats)
    return _finish(work)


def _demand_stage(
    framework: Framework,
    state: LineState,
    stats: QueueStats | None,
    now: datetime,
    calendar: Calendar,
    demand: tuple[DemandEvent, ...],
) -> Decision:
    """Stage 0, the demand calendar: its due pre-arms become declarations (a floor the
    declared-floor stage raises the tier to) and its lead-time responses fall due, once per
    event; while an event runs its ``tighten`` shortens tiers' ``for:``. Then the usual
    stages run on that state and framework."""
    state, early = demand_calendar.due_actions(framework, state, now, demand)
    decision = evaluate(
        demand_calendar.tightened(framework, demand, now), state, stats, now, calendar=calendar
    )
    if not early:
        return decision
    return Decision(decision.state, (*early, *decision.events), lambda: decision.reason)


def _falls_again(work: _Pass) -> bool:
    """After a fall into a tier whose ``clear_for`` is 0 and whose clear already holds, the
    next step down is due at this very instant: take it now (one event per step), rather
    than leave it to whenever the line is next evaluated."""
    level = work.new_tier
    if work.cause not in (Cause.LOWERED, Cause.DECLARATION_ENDED) or level <= work.floor:
        return False
    if work.clear_since != work.now or work.framework.tiers[level - 1].clear_for:
        return False
    work.tier = level
    work.cause = None
    work.declaration_ended = False
    return True


def next_deadline(
    framework: Framework,
    state: LineState,
    now: datetime,
    *,
    calendar: Calendar = ALWAYS_OPEN,
    going_stale: bool = True,
    demand: tuple[DemandEvent, ...] = (),
) -> datetime | None:
    """When the line must next be evaluated if no new figures arrive; None if never.

    The engine's own deadlines after ``now`` (``escalation.next_due``: a ``for`` or
    ``clear_for`` elapsing, the figures going stale and the stale alert, reminders and
    escalation steps, a silence or declaration running out), the line's next opening or
    closing, and the demand calendar's next change (``demand``: the line's events, whose
    running ``tighten`` also shortens ``for``). ``state`` must be the result of evaluating
    at ``now``. Both drivers — the daemon and replay — evaluate at these instants and
    whenever figures arrive, which is what makes replay tell the daemon's story to the
    second.
    """
    if demand:
        framework = demand_calendar.tightened(framework, demand, now)
    due = next_due(framework, state, now, going_stale=going_stale)
    if demand:
        due = _sooner(due, demand_calendar.next_change(demand, state.line, now))
    return _sooner(due, calendar.next_change(now))


def _sooner(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two optional instants."""
    if a is None:
        return b
    return a if b is None or a <= b else b


class _Pass:
    """One evaluation's working copy of a line's state (the hot path: plain slots)."""

    __slots__ = (
        "ack", "cause", "change_reason", "changed", "clear_since", "declaration",
        "declaration_ended", "entered_at", "episode", "events", "floor", "framework",
        "last_reminder_at", "last_stats_at", "new_tier", "now", "reason", "reminders_sent",
        "silence", "stale", "stale_alerted", "stale_since", "state", "steps_done", "tier",
        "when_since",
    )  # fmt: skip

    def __init__(self, framework: Framework, state: LineState, now: datetime) -> None:
        self.framework = framework
        self.now = now
        self.events: list[Event] = []
        self.changed = False
        if not state.open:
            state = _reopened(framework, state, now)
            self.events.append(LineOpened(line=state.line, at=now))
            self.changed = True
        elif len(state.when_since) != len(framework.tiers) or state.tier > len(framework.tiers):
            state = _fit(framework, state)
        self.state = state
        self.tier = self.new_tier = state.tier
        self.entered_at = state.entered_at
        self.episode = state.episode
        self.when_since = state.when_since
        self.clear_since = state.clear_since
        self.last_stats_at = state.last_stats_at
        self.stale = state.stale
        self.stale_since = state.stale_since
        self.stale_alerted = state.stale_alerted
        self.ack = state.ack
        self.silence = state.silence
        self.declaration = state.declaration
        self.declaration_ended = False
        self.floor = state.declaration.level if state.declaration is not None else 0
        self.reminders_sent = state.reminders_sent
        self.last_reminder_at = state.last_reminder_at
        self.steps_done = state.escalation_steps_done
        self.cause: Cause | None = None
        self.change_reason = ""
        # Steady-state reasons are written only if someone reads them (see Decision).
        self.reason: str | Callable[[], str] = ""


def _expiries(work: _Pass) -> None:
    """A silence or declaration whose ``until`` has come ends (by nobody: it ran out)."""
    now, line = work.now, work.state.line
    silence = work.silence
    if silence is not None and now >= silence.until:
        work.events.append(SilenceEnded(line=line, at=now, by="", tier=work.tier))
        work.silence = None
        work.changed = True
    ack = work.ack
    if ack is not None and ack.expires is not None and now >= ack.expires:
        _acknowledgement_expired(work)
    declaration = work.declaration
    if declaration is not None and now >= declaration.until:
        work.events.append(DeclarationEnded(line=line, at=now, level=declaration.level, by=""))
        work.declaration = None
        work.declaration_ended = True
        work.floor = 0
        work.changed = True


def _acknowledgement_expired(work: _Pass) -> None:
    """``ack_expires: at_handover``: the incoming duty manager is asked again (the planner
    notifies); escalation steps that fell due while acknowledged are not run late."""
    ack = work.ack
    assert ack is not None
    work.events.append(
        AcknowledgementExpired(
            line=work.state.line, at=work.now, tier=ack.tier, by=ack.by, episode=work.episode
        )
    )
    work.ack = None
    tiers, tier, entered_at = work.framework.tiers, work.tier, work.entered_at
    if 0 < tier <= len(tiers) and entered_at is not None:
        late = [s for s in tiers[tier - 1].escalation if work.now - entered_at >= s.after]
        work.steps_done = max(work.steps_done, len(late))
    work.changed = True


def _ignored(stats: QueueStats, work: _Pass) -> str:
    return (
        f"ignored stats from {stats.at:%H:%M:%S}, older than the last seen "
        f"({work.last_stats_at:%H:%M:%S}); holding tier {work.tier}"
    )


def _stale(work: _Pass, stats: QueueStats | None) -> None:
    """Missing or old figures: hold the tier and every timer; mark the line stale.

    A gap neither starts nor breaks an entry or clear timer: only fresh figures do, so
    missing data can never change the tier by itself.
    """
    now = work.now
    if stats is not None and (work.last_stats_at is None or stats.at > work.last_stats_at):
        work.last_stats_at = stats.at
        work.changed = True
    if not work.stale:
        work.stale = True
        work.stale_alerted = False
        if work.last_stats_at is None or _just_opened(work):
            work.stale_since = now
        else:
            assert work.last_stats_at is not None
            work.stale_since = min(work.last_stats_at + work.framework.stale_after, now)
        work.changed = True
    if work.last_stats_at is None:
        work.reason = f"stale: no stats yet; holding tier {work.tier}"
    else:
        age = format_duration(now - work.last_stats_at)
        work.reason = f"stale: last stats {age} old; holding tier {work.tier}"


def _just_opened(work: _Pass) -> bool:
    events = work.events
    return bool(events) and isinstance(events[0], LineOpened)


def _fresh(work: _Pass, stats: QueueStats) -> None:
    """Fresh figures: end a stale spell (``StatsFresh`` if it was alerted), note the time."""
    if work.stale:
        if work.stale_alerted and work.stale_since is not None:
            stale_for = work.now - work.stale_since
            work.events.append(
                StatsFresh(line=work.state.line, at=work.now, stale_for=stale_for, tier=work.tier)
            )
        work.stale = False
        work.stale_since = None
        work.stale_alerted = False
        work.changed = True
    if work.last_stats_at != stats.at:
        work.last_stats_at = stats.at
        work.changed = True


def _entry(work: _Pass, stats: QueueStats) -> int:
    """Move every tier's entry timer; rise to the highest tier ready above ours.

    Returns the level risen to (0 when there is no rise). The timer tuple is copied only
    when a timer starts or stops (rare), not at every evaluation.
    """
    now, tier, tiers = work.now, work.tier, work.framework.tiers
    when_since = work.when_since
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
        work.when_since = when_since = tuple(new_since)
        work.changed = True
    if ready <= tier or ready < work.floor:
        return 0
    t = tiers[ready - 1]
    started = when_since[ready - 1]
    held = now - started if started is not None else timedelta(0)
    work.new_tier = ready
    work.cause = Cause.RAISED
    work.change_reason = (
        f"rising to {tier_label(work.framework, ready)}: {t.when.explain(stats)} "
        f"held for {format_duration(held)}"
    )
    return ready


def _clear(work: _Pass, stats: QueueStats) -> None:
    """Move the current tier's clear timer; fall when it has held for ``clear_for``."""
    tier = work.tier
    if tier == 0:
        work.reason = partial(_calm_reason, work.framework, work.when_since, stats, work.now)
        return
    t = work.framework.tiers[tier - 1]
    if not t.clear.holds(stats):
        if work.clear_since is not None:
            work.clear_since = None
            work.changed = True
        work.reason = partial(_clear_unmet, tier, t, stats)
        return
    if work.clear_since is None:
        work.clear_since = work.now
        work.changed = True
    held = work.now - work.clear_since
    if held >= t.clear_for and tier > work.floor:
        target = _fall_to(work)
        work.new_tier = max(target, work.floor)
        work.cause = Cause.DECLARATION_ENDED if work.declaration_ended else Cause.LOWERED
        work.change_reason = (
            f"falling to {tier_label(work.framework, work.new_tier)}: tier {tier} clear "
            f"condition {t.clear.explain(stats)} held for {format_duration(held)}"
        )
    elif tier <= work.floor:
        work.reason = f"tier {tier} held: declared until {_hhmm(work.declaration)}"
    else:
        work.reason = partial(_clear_progress, tier, t, stats, held)


def _fall_to(work: _Pass) -> int:
    """One tier down (``step_down``), or to the highest lower tier whose ``when`` holds."""
    if work.framework.step_down:
        return work.tier - 1
    for level in range(work.tier - 1, 0, -1):
        if work.when_since[level - 1] is not None:
            return level
    return 0


def _declared_floor(work: _Pass) -> None:
    """A declaration is a floor: a tier below it is raised to it (e.g. on reopening)."""
    declaration = work.declaration
    assert declaration is not None
    work.new_tier = work.floor
    work.cause = Cause.DECLARED
    reason = (
        f"declared {tier_label(work.framework, work.floor)} by {declaration.by} until "
        f"{_hhmm(declaration)}"
    )
    work.change_reason = f"{reason}: {declaration.reason}" if declaration.reason else reason


def _tier_change(work: _Pass, stats: QueueStats | None) -> None:
    """Enter the new tier: a new episode from calm, timers and counters afresh."""
    now, tier, new_tier = work.now, work.tier, work.new_tier
    assert work.cause is not None
    work.changed = True
    if new_tier > tier and tier == 0:
        work.episode += 1
    work.entered_at = now
    work.reminders_sent = 0
    work.last_reminder_at = None
    work.steps_done = 0
    work.clear_since = None
    tiers = work.framework.tiers
    if (
        new_tier > 0
        and stats is not None
        and not work.stale
        and tiers[new_tier - 1].clear.holds(stats)
    ):
        work.clear_since = now
    if new_tier == 0:
        work.ack = None
    work.events.append(
        TierChanged(
            line=work.state.line,
            at=now,
            from_tier=tier,
            to_tier=new_tier,
            cause=work.cause,
            reason=work.change_reason,
            episode=work.episode,
        )
    )
    work.reason = work.change_reason


def _finish(work: _Pass) -> Decision:
    """The new state (built at most once), then the stale alert and the tier's timers."""
    state = work.state
    if work.changed:
        state = LineState(
            state.line, work.new_tier, work.entered_at, work.episode, work.when_since,
            work.clear_since, work.last_stats_at, work.stale, work.stale_since,
            work.stale_alerted, True, work.ack, work.silence, work.declaration,
            work.reminders_sent, work.last_reminder_at, work.steps_done, state.live,
            state.calendar_done,
        )  # fmt: skip
    events, now, new_tier = work.events, work.now, work.new_tier
    since = work.stale_since
    if (
        work.stale
        and not work.stale_alerted
        and since is not None
        and now - since >= work.framework.stale_alert_after
    ):
        stale_for = format_duration(now - since)
        events.append(
            StatsStale(
                line=state.line,
                at=now,
                since=since,
                tier=new_tier,
                reason=f"no fresh stats for {stale_for}; holding tier {new_tier}",
            )
        )
        state = replace(state, stale_alerted=True)
    reason = work.reason
    if new_tier > 0 and work.silence is None and (work.ack is None or work.ack.tier < new_tier):
        tier = work.framework.tiers[new_tier - 1]
        if _timer_may_be_due(tier, state, now):
            state, due = advance(tier, state, now)
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
        calendar_done=state.calendar_done,
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
