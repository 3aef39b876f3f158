"""The demand calendar: known events (Council Tax reminders, summonses, storms) as pure values.

An event names the lines it affects, when it runs (``start`` to ``end``), the demand it is
expected to bring (a multiplier or calls per hour, for the forecast) and what it does:

* ``prearm`` — a scheduled declaration of a tier from ``start - lead`` to ``end`` that lifts
  itself (the engine installs it as a :class:`Declaration` by the event's name, once);
* ``tighten`` — tiers whose ``for:`` is replaced while the event runs (``start`` to ``end``);
* ``responses`` — the event's own responses, due once at ``start - lead`` (page surge staff
  the morning the bills land); a line first evaluated later, while the event has not yet
  ended, sends them then.

Everything here is pure: time comes in as ``now``. An event written relative to the
daemon's start (``start: +2m``, for demos and drills) carries ``offset`` until
:func:`resolve` gives it an ``origin``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from risingtide.domain.model import (
    Declaration,
    Declared,
    DemandEventDue,
    Event,
    Framework,
    LineState,
)

__all__ = [
    "ALL_LINES",
    "DemandEvent",
    "ExpectedDemand",
    "Prearm",
    "Tighten",
    "active_events",
    "after_start",
    "due_actions",
    "expected_demand",
    "for_line",
    "next_change",
    "resolve",
    "tightened",
    "upcoming",
]

#: ``lines: all`` — the event affects every line.
ALL_LINES = "all"
#: Where an unresolved relative event sits (never seen once resolved).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Prearm:
    """Declare tier ``level`` from ``lead`` before the event's start until its end."""

    level: int
    lead: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class Tighten:
    """Tier ``level``'s ``for:`` becomes ``for_`` while the event runs."""

    level: int
    for_: timedelta


@dataclass(frozen=True, slots=True)
class DemandEvent:
    """One known event on the demand calendar (times aware UTC; see :func:`resolve`)."""

    name: str
    lines: tuple[str, ...]
    start: datetime
    end: datetime
    multiply: float | None = None
    calls_per_hour: float | None = None
    prearm: Prearm | None = None
    tighten: tuple[Tighten, ...] = ()
    responses: tuple[str, ...] = ()
    #: How long before ``start`` the event's ``responses`` are sent.
    lead: timedelta = timedelta(0)
    #: Relative to the daemon's start (demos): ``start``/``end`` are offsets until resolved.
    relative: bool = False

    def affects(self, line: str) -> bool:
        """True when the event names ``line`` (or ``all``)."""
        return ALL_LINES in self.lines or line in self.lines

    @property
    def prearm_from(self) -> datetime | None:
        """When the pre-armed tier is declared (None without ``prearm``)."""
        return None if self.prearm is None else self.start - self.prearm.lead

    @property
    def responses_at(self) -> datetime | None:
        """When the event's own responses are due (None without ``responses``)."""
        return self.start - self.lead if self.responses else None

    @property
    def key(self) -> str:
        """Names this occurrence (a recurring event has one key per start)."""
        return f"{self.name}@{self.start.isoformat()}"


@dataclass(frozen=True, slots=True)
class ExpectedDemand:
    """What the calendar expects on a line at an instant, for the forecast."""

    multiply: float
    calls_per_hour: float | None
    events: tuple[str, ...]


def after_start(offset: timedelta) -> datetime:
    """The placeholder time of an event ``offset`` after the daemon's start."""
    return _EPOCH + offset


def resolve(events: Iterable[DemandEvent], origin: datetime) -> tuple[DemandEvent, ...]:
    """Every event with absolute times: relative ones placed after ``origin``."""
    out: list[DemandEvent] = []
    for e in events:
        if e.relative:
            e = replace(
                e, start=origin + (e.start - _EPOCH), end=origin + (e.end - _EPOCH), relative=False
            )
        out.append(e)
    return tuple(out)


def for_line(events: Iterable[DemandEvent], line: str) -> tuple[DemandEvent, ...]:
    """The events that affect ``line``, in start order."""
    return tuple(sorted((e for e in events if e.affects(line)), key=lambda e: e.start))


def active_events(
    events: Iterable[DemandEvent], line: str, now: datetime
) -> tuple[DemandEvent, ...]:
    """The events affecting ``line`` that run at ``now`` (``start <= now < end``)."""
    return tuple(e for e in events if e.affects(line) and e.start <= now < e.end)


def upcoming(
    events: Iterable[DemandEvent], line: str, now: datetime, horizon: timedelta
) -> tuple[DemandEvent, ...]:
    """Events affecting ``line`` not yet over that start (or pre-arm) before ``now + horizon``."""
    until = now + horizon
    found = []
    for e in events:
        first = min(t for t in (e.start, e.prearm_from, e.responses_at) if t is not None)
        if e.affects(line) and e.end > now and first < until:
            found.append(e)
    return tuple(sorted(found, key=lambda e: e.start))


def next_change(events: Iterable[DemandEvent], line: str, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the calendar changes something on ``line``.

    A pre-arm or response lead time falling due, a tightening starting, an event ending.
    """
    best: datetime | None = None
    for e in events:
        if not e.affects(line) or e.end <= now:
            continue
        for t in (e.prearm_from, e.responses_at, e.start if e.tighten else None, e.end):
            if t is not None and t > now and (best is None or t < best):
                best = t
    return best


def expected_demand(
    events: Iterable[DemandEvent], line: str, now: datetime
) -> ExpectedDemand | None:
    """The demand running events expect on ``line`` at ``now`` (None when none runs).

    Multipliers of overlapping events multiply; the highest ``calls_per_hour`` wins.
    """
    running = active_events(events, line, now)
    if not running:
        return None
    factor = 1.0
    rates = [e.calls_per_hour for e in running if e.calls_per_hour is not None]
    for e in running:
        if e.multiply is not None:
            factor *= e.multiply
    return ExpectedDemand(factor, max(rates) if rates else None, tuple(e.name for e in running))


def tightened(framework: Framework, events: Iterable[DemandEvent], now: datetime) -> Framework:
    """``framework`` with the ``for:`` of running events' ``tighten`` (the shortest wins)."""
    shorter: dict[int, timedelta] = {}
    for e in events:
        if e.tighten and e.start <= now < e.end:
            for t in e.tighten:
                if t.level not in shorter or t.for_ < shorter[t.level]:
                    shorter[t.level] = t.for_
    if not shorter:
        return framework
    tiers = tuple(
        replace(t, for_=shorter[t.level]) if t.level in shorter else t for t in framework.tiers
    )
    return replace(framework, tiers=tiers)


def due_actions(
    framework: Framework, state: LineState, now: datetime, events: Iterable[DemandEvent]
) -> tuple[LineState, tuple[Event, ...]]:
    """The calendar's actions due at ``now``: pre-arms declared, lead-time responses sent.

    Each happens once per event (remembered in ``state.calendar_done`` until the event
    ends). A pre-arm does not replace a declaration at its level or above.
    """
    done = set(state.calendar_done)
    ongoing: set[str] = set()
    out: list[Event] = []
    declaration = state.declaration
    for e in events:
        if e.end <= now or not e.affects(state.line):
            continue
        ongoing.update((f"prearm:{e.key}", f"responses:{e.key}"))
        arm = e.prearm_from
        if arm is not None and arm <= now and f"prearm:{e.key}" not in done:
            done.add(f"prearm:{e.key}")
            prearm = e.prearm
            assert prearm is not None
            level = min(prearm.level, framework.max_level)
            if level > 0 and (declaration is None or declaration.level < level):
                reason = f"pre-armed by the demand calendar: {e.name} at {e.start:%Y-%m-%d %H:%M}"
                declaration = Declaration(level, e.end, e.name, reason, now)
                out.append(
                    Declared(
                        line=state.line, at=now, level=level, until=e.end, by=e.name, reason=reason
                    )
                )
        due = e.responses_at
        if due is not None and due <= now and f"responses:{e.key}" not in done:
            done.add(f"responses:{e.key}")
            out.append(
                DemandEventDue(
                    line=state.line, at=now, name=e.name, start=e.start, responses=e.responses
                )
            )
    kept = frozenset(done & ongoing)
    if kept == state.calendar_done and declaration is state.declaration:
        return state, tuple(out)
    return replace(state, calendar_done=kept, declaration=declaration), tuple(out)
