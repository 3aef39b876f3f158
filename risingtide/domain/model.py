"""The domain's vocabulary: queue statistics, conditions, tiers, frameworks, line state, events.

Everything here is a frozen dataclass with no I/O and no third-party imports, so the tier
engine, replay, tests and benchmarks can build and compare these values freely.

Times are timezone-aware ``datetime`` values in UTC; durations are ``timedelta``; measures
are plain floats in seconds, counts, or ratios between 0 and 1.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# --------------------------------------------------------------------------- measures

Measure = Literal[
    "avg_wait",
    "longest_wait",
    "calls_waiting",
    "agents_available",
    "abandon_rate",
    "answered_rate",
    "offered",
    "agents_needed",
    "capacity_gap",
    "capacity_gap_ratio",
    "predicted_wait",
    "forecast_wait",
]

MEASURES: tuple[Measure, ...] = (
    "avg_wait",
    "longest_wait",
    "calls_waiting",
    "agents_available",
    "abandon_rate",
    "answered_rate",
    "offered",
    "agents_needed",
    "capacity_gap",
    "capacity_gap_ratio",
    "predicted_wait",
    "forecast_wait",
)

#: How each measure is written in messages: seconds, a count or a ratio.
MEASURE_UNITS: Mapping[Measure, Literal["seconds", "count", "ratio"]] = {
    "avg_wait": "seconds",
    "longest_wait": "seconds",
    "calls_waiting": "count",
    "agents_available": "count",
    "abandon_rate": "ratio",
    "answered_rate": "ratio",
    "offered": "count",
    "agents_needed": "count",
    "capacity_gap": "count",
    "capacity_gap_ratio": "ratio",
    "predicted_wait": "seconds",
    "forecast_wait": "seconds",
}


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One observation of one line's queue, as a source reports it.

    ``at`` is when the figures were true (the platform's timestamp where it gives one).
    Any figure a source cannot provide is ``None`` ("unknown"); a condition on an unknown
    measure is never met. ``offered``, ``answered`` and ``abandoned`` count calls over the
    trailing ``window`` (seconds); the other figures are "now".

    The capacity figures (``agents_needed`` … ``handle_time``) are not a source's: the
    capacity model (``risingtide.domain.demand``) fills them in from the line's smoothed
    demand before the tiers see the figures. ``capacity_gap`` is agents needed − staffed
    (negative: spare agents), ``capacity_gap_ratio`` that gap over agents needed,
    ``predicted_wait`` Erlang C's mean wait with the agents staffed (seconds, capped),
    ``forecast_wait`` the worst wait the forecast sees within the line's horizon.
    """

    line: str
    at: datetime
    calls_waiting: int | None = None
    avg_wait: float | None = None
    longest_wait: float | None = None
    agents_available: int | None = None
    agents_staffed: int | None = None
    offered: int | None = None
    answered: int | None = None
    abandoned: int | None = None
    window: float | None = None
    avg_handle_time: float | None = None
    agents_needed: int | None = None
    capacity_gap: int | None = None
    capacity_gap_ratio: float | None = None
    predicted_wait: float | None = None
    forecast_wait: float | None = None
    arrivals_per_hour: float | None = None
    handle_time: float | None = None

    @property
    def abandon_rate(self) -> float | None:
        """Share of offered calls abandoned over the window (0–1), or None if unknown."""
        if self.abandoned is None or not self.offered:
            return None
        return self.abandoned / self.offered

    @property
    def answered_rate(self) -> float | None:
        """Share of offered calls answered over the window (0–1), or None if unknown."""
        if self.answered is None or not self.offered:
            return None
        return self.answered / self.offered

    def measure(self, name: Measure) -> float | None:
        """The value of a named measure, or None when the source does not know it."""
        value: float | None = getattr(self, name)
        return value


# --------------------------------------------------------------------------- conditions


class Op(enum.Enum):
    """A comparison in a condition. ``above``/``below`` are strict."""

    ABOVE = "above"
    BELOW = "below"
    AT_LEAST = "at_least"
    AT_MOST = "at_most"

    @property
    def symbol(self) -> str:
        """The comparison as a symbol, for reasons."""
        return _OP_SYMBOLS[self.value]


_OP_SYMBOLS = {"above": ">", "below": "<", "at_least": "≥", "at_most": "≤"}
_COMPARISONS: Mapping[Op, Callable[[float, float], bool]] = {
    Op.ABOVE: operator.gt,
    Op.BELOW: operator.lt,
    Op.AT_LEAST: operator.ge,
    Op.AT_MOST: operator.le,
}


def format_measure(measure: Measure, value: float) -> str:
    """Write a measure's value the way people read it: ``412s``, ``7``, ``12.5%``."""
    unit = MEASURE_UNITS[measure]
    if unit == "seconds":
        return f"{value:.0f}s"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    return f"{value:.0f}"


@dataclass(frozen=True, slots=True)
class Compare:
    """``measure op threshold``, with the threshold already resolved for the line."""

    measure: Measure
    op: Op
    threshold: float
    # The comparison as a C function, chosen once: conditions run millions of times in replay.
    _test: Callable[[float, float], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Pick the comparison function for ``op``."""
        object.__setattr__(self, "_test", _COMPARISONS[self.op])

    def holds(self, stats: QueueStats) -> bool:
        """True when the measure is known and the comparison holds."""
        value = getattr(stats, self.measure)
        return value is not None and self._test(value, self.threshold)

    def explain(self, stats: QueueStats) -> str:
        """Why this comparison holds or not, e.g. ``avg_wait 412s > 300s``."""
        value = stats.measure(self.measure)
        limit = format_measure(self.measure, self.threshold)
        if value is None:
            return f"{self.measure} unknown (needs {self.op.symbol} {limit})"
        return f"{self.measure} {format_measure(self.measure, value)} {self.op.symbol} {limit}"

    def measures(self) -> frozenset[Measure]:
        """The measures this condition reads."""
        return frozenset((self.measure,))


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part must hold."""

    parts: tuple[Condition, ...]

    def holds(self, stats: QueueStats) -> bool:
        """True when every part holds."""
        for p in self.parts:  # noqa: SIM110 - a plain loop is faster than all() over a genexpr
            if not p.holds(stats):
                return False
        return True

    def explain(self, stats: QueueStats) -> str:
        """The parts, joined with "and"."""
        return " and ".join(p.explain(stats) for p in self.parts)

    def measures(self) -> frozenset[Measure]:
        """The measures this condition reads."""
        return frozenset().union(*(p.measures() for p in self.parts))


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part must hold."""

    parts: tuple[Condition, ...]

    def holds(self, stats: QueueStats) -> bool:
        """True when any part holds."""
        for p in self.parts:  # noqa: SIM110 - a plain loop is faster than any() over a genexpr
            if p.holds(stats):
                return True
        return False

    def explain(self, stats: QueueStats) -> str:
        """The parts that hold (or all of them, when none does), joined with "or"."""
        held = [p for p in self.parts if p.holds(stats)]
        return " or ".join(p.explain(stats) for p in (held or self.parts))

    def measures(self) -> frozenset[Measure]:
        """The measures this condition reads."""
        return frozenset().union(*(p.measures() for p in self.parts))


@dataclass(frozen=True, slots=True)
class Not:
    """The opposite of a condition; the default ``clear`` of a tier is ``Not(when)``.

    Unknown measures make ``Not`` false too, so missing data can never clear a tier.
    """

    part: Condition
    _reads: tuple[Measure, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Work out once which measures the part reads."""
        object.__setattr__(self, "_reads", tuple(sorted(self.part.measures())))

    def holds(self, stats: QueueStats) -> bool:
        """True when every measure the part reads is known and the part does not hold."""
        for m in self._reads:
            if getattr(stats, m) is None:
                return False
        return not self.part.holds(stats)

    def explain(self, stats: QueueStats) -> str:
        """``not (…)``."""
        return f"not ({self.part.explain(stats)})"

    def measures(self) -> frozenset[Measure]:
        """The measures this condition reads."""
        return self.part.measures()


Condition = Compare | AllOf | AnyOf | Not


# --------------------------------------------------------------------------- frameworks


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """If a tier is still unacknowledged ``after`` its entry, run ``responses``."""

    after: timedelta
    responses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier of a framework, with its thresholds resolved for one line.

    ``when`` must hold for ``for_`` before the tier is entered; ``clear`` must hold for
    ``clear_for`` before it is left. ``responses`` run on entry (those that change the world
    are undone on exit); ``on_exit`` run when the tier is left; ``repeat_responses`` run every
    ``repeat_every`` while the tier is unacknowledged; ``escalation`` steps run when due.
    """

    level: int
    name: str
    when: Condition
    for_: timedelta
    clear: Condition
    clear_for: timedelta
    responses: tuple[str, ...] = ()
    on_exit: tuple[str, ...] = ()
    repeat_every: timedelta | None = None
    repeat_responses: tuple[str, ...] = ()
    escalation: tuple[EscalationStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Framework:
    """A line's tiers (levels 1..N in order; level 0 is "calm") and its timing rules.

    ``step_down``: when True, falling goes one tier at a time, each step waiting for its own
    clear condition; when False a line drops straight to the highest tier whose entry
    condition still holds (or 0). ``stale_after``: stats older than this are stale (the line
    holds its tier). ``stale_alert_after``: a line stale this long raises a StatsStale event,
    which runs ``stale_responses``.
    """

    name: str
    tiers: tuple[Tier, ...]
    step_down: bool = True
    stale_after: timedelta = timedelta(minutes=2)
    stale_alert_after: timedelta = timedelta(minutes=10)
    calm_name: str = "calm"
    stale_responses: tuple[str, ...] = ()
    #: ``ack_expires: at_handover``: an acknowledgement lapses at the duty rota's handover.
    ack_expires_at_handover: bool = False

    @property
    def max_level(self) -> int:
        """The highest tier's level."""
        return self.tiers[-1].level if self.tiers else 0

    def tier(self, level: int) -> Tier | None:
        """The tier at ``level`` (None for 0 "calm")."""
        if level <= 0:
            return None
        return self.tiers[level - 1]

    def tier_name(self, level: int) -> str:
        """The name of a level, "calm" for 0."""
        t = self.tier(level)
        return self.calm_name if t is None else t.name


# --------------------------------------------------------------------------- calendars

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How far ahead :meth:`Calendar.next_change` looks (a year and a bit: the longest closure
#: a council plausibly configures).
CALENDAR_HORIZON_DAYS = 400


@dataclass(frozen=True, slots=True)
class Calendar:
    """When a line is open: hours per weekday in a timezone, less closed dates.

    ``hours[i]`` lists (open, close) local times for weekday ``i`` (Monday is 0); an empty
    tuple means closed all day. ``closed`` holds whole dates closed (bank holidays resolved
    by the config loader, and the council's own closures). ``always`` skips every check.
    """

    name: str
    tz: ZoneInfo
    hours: tuple[tuple[tuple[time, time], ...], ...] = ((),) * 7
    closed: frozenset[date] = frozenset()
    always: bool = False
    # The last answer of next_change and the instant it was asked for: the answer holds for
    # every later instant before it, so drivers asking once per evaluation scan no days.
    _memo: list[datetime | None] = field(
        default_factory=lambda: [None, None], compare=False, repr=False, hash=False
    )

    def is_open(self, now: datetime) -> bool:
        """True when the line is open at ``now`` (an aware datetime)."""
        if self.always:
            return True
        local = now.astimezone(self.tz)
        if local.date() in self.closed:
            return False
        t = local.time().replace(tzinfo=None)
        return any(start <= t < end for start, end in self.hours[local.weekday()])

    def next_change(self, now: datetime) -> datetime | None:
        """The first instant after ``now`` at which :meth:`is_open` gives another answer.

        None for an always-open calendar, or one that never changes within the next
        :data:`CALENDAR_HORIZON_DAYS` days. Boundaries are the opening and closing times of
        each day and the midnights that start and end a closed date, in the calendar's
        timezone (so clock changes move them, as they move the doors). The engine uses this
        as a deadline: a line closes at 18:00:00 whether or not any figures arrive then.
        """
        if self.always:
            return None
        asked, answer = self._memo
        if (
            asked is not None
            and asked <= now
            and (now < answer if answer is not None else now - asked < timedelta(days=1))
        ):
            return answer
        answer = self._scan(now)
        self._memo[:] = [now, answer]
        return answer

    def _scan(self, now: datetime) -> datetime | None:
        is_open = self.is_open(now)
        start = now.astimezone(self.tz).date()
        for offset in range(CALENDAR_HORIZON_DAYS + 1):
            day = start + timedelta(days=offset)
            for moment in self._boundaries(day):
                if moment > now and self.is_open(moment) != is_open:
                    return moment
        return None

    def _boundaries(self, day: date) -> list[datetime]:
        """Every instant of ``day`` at which the answer may change, in UTC, in order."""
        local = [datetime.combine(day, time(0), tzinfo=self.tz)]
        for opens, closes in self.hours[day.weekday()]:
            local.append(datetime.combine(day, opens, tzinfo=self.tz))
            local.append(datetime.combine(day, closes, tzinfo=self.tz))
        return sorted(moment.astimezone(UTC) for moment in local)


ALWAYS_OPEN = Calendar(name="always", tz=ZoneInfo("UTC"), always=True)


# --------------------------------------------------------------------------- line state


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A duty manager's "I've got this" for a tier (covers that tier and lower ones).

    ``expires``: when the acknowledgement lapses (the duty rota's handover, under a
    framework's ``ack_expires: at_handover``), so the incoming duty manager is asked again;
    None for an acknowledgement that lasts as long as the tier.
    """

    tier: int
    by: str
    at: datetime
    note: str = ""
    expires: datetime | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """Planned work: no responses run for the line until ``until``.

    ``undo``: undo the line's live switches when the silence starts.
    """

    until: datetime
    by: str
    reason: str
    at: datetime
    undo: bool = False


@dataclass(frozen=True, slots=True)
class Declaration:
    """A tier declared ahead of a known event: the line stays at ``level`` or above
    until ``until``."""

    level: int
    until: datetime
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LineState:
    """Everything the engine remembers about one line between evaluations.

    ``when_since[i]`` is when tier ``i+1``'s entry condition started to hold continuously
    (None if it does not hold). ``clear_since`` is when the current tier's clear condition
    started to hold. ``episode`` counts rises from calm; with ``tier`` it identifies an
    alert for idempotency keys and acknowledgement links. ``live`` lists switch responses
    applied and not yet undone.
    """

    line: str
    tier: int = 0
    entered_at: datetime | None = None
    episode: int = 0
    when_since: tuple[datetime | None, ...] = ()
    clear_since: datetime | None = None
    last_stats_at: datetime | None = None
    stale: bool = False
    stale_since: datetime | None = None
    stale_alerted: bool = False
    open: bool = True
    ack: Acknowledgement | None = None
    silence: Silence | None = None
    declaration: Declaration | None = None
    reminders_sent: int = 0
    last_reminder_at: datetime | None = None
    escalation_steps_done: int = 0
    live: frozenset[str] = frozenset()
    #: The demand calendar's actions already taken (``prearm:NAME@START``,
    #: ``responses:NAME@START``), so each happens once per event; pruned when it ends.
    calendar_done: frozenset[str] = frozenset()

    @property
    def acknowledged(self) -> bool:
        """True when the current tier (>0) is covered by an acknowledgement."""
        return self.tier > 0 and self.ack is not None and self.ack.tier >= self.tier


# --------------------------------------------------------------------------- events


class Cause(enum.Enum):
    """Why a tier changed."""

    RAISED = "raised"  # an entry condition held for its duration
    LOWERED = "lowered"  # a clear condition held for its duration
    DECLARED = "declared"  # a duty manager declared a tier
    DECLARATION_ENDED = "declaration_ended"
    CLOSED = "closed"  # the line went out of hours


@dataclass(frozen=True, slots=True)
class TierChanged:
    """The line moved from one tier to another."""

    line: str
    at: datetime
    from_tier: int
    to_tier: int
    cause: Cause
    reason: str
    episode: int
    kind: Literal["tier_changed"] = field(default="tier_changed", init=False)


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A duty manager acknowledged the line's tier."""

    line: str
    at: datetime
    tier: int
    by: str
    note: str
    episode: int
    kind: Literal["acknowledged"] = field(default="acknowledged", init=False)


@dataclass(frozen=True, slots=True)
class AcknowledgementExpired:
    """An acknowledgement lapsed at its ``expires`` (the duty rota's handover)."""

    line: str
    at: datetime
    tier: int
    by: str
    episode: int
    kind: Literal["acknowledgement_expired"] = field(default="acknowledgement_expired", init=False)


@dataclass(frozen=True, slots=True)
class Silenced:
    """The line was silenced for planned work."""

    line: str
    at: datetime
    until: datetime
    by: str
    reason: str
    undo: bool
    kind: Literal["silenced"] = field(default="silenced", init=False)


@dataclass(frozen=True, slots=True)
class SilenceEnded:
    """A silence expired or was lifted early (``by`` is empty on expiry)."""

    line: str
    at: datetime
    by: str
    tier: int
    kind: Literal["silence_ended"] = field(default="silence_ended", init=False)


@dataclass(frozen=True, slots=True)
class Declared:
    """A tier was declared for the line ahead of a known event."""

    line: str
    at: datetime
    level: int
    until: datetime
    by: str
    reason: str
    kind: Literal["declared"] = field(default="declared", init=False)


@dataclass(frozen=True, slots=True)
class DeclarationEnded:
    """A declared tier expired or was cleared early (``by`` is empty on expiry)."""

    line: str
    at: datetime
    level: int
    by: str
    kind: Literal["declaration_ended"] = field(default="declaration_ended", init=False)


@dataclass(frozen=True, slots=True)
class StatsStale:
    """The line's stats have been stale for the framework's ``stale_alert_after``."""

    line: str
    at: datetime
    since: datetime
    tier: int
    reason: str
    kind: Literal["stats_stale"] = field(default="stats_stale", init=False)


@dataclass(frozen=True, slots=True)
class StatsFresh:
    """Fresh stats arrived for a line that was stale."""

    line: str
    at: datetime
    stale_for: timedelta
    tier: int
    kind: Literal["stats_fresh"] = field(default="stats_fresh", init=False)


@dataclass(frozen=True, slots=True)
class Reminder:
    """The tier is still unacknowledged; the ``number``-th reminder is due."""

    line: str
    at: datetime
    tier: int
    number: int
    episode: int
    kind: Literal["reminder"] = field(default="reminder", init=False)


@dataclass(frozen=True, slots=True)
class Escalated:
    """An escalation step of the tier fell due while it was unacknowledged."""

    line: str
    at: datetime
    tier: int
    step: int
    responses: tuple[str, ...]
    episode: int
    kind: Literal["escalated"] = field(default="escalated", init=False)


@dataclass(frozen=True, slots=True)
class LineOpened:
    """The line came into its opening hours."""

    line: str
    at: datetime
    kind: Literal["line_opened"] = field(default="line_opened", init=False)


@dataclass(frozen=True, slots=True)
class LineClosed:
    """The line went out of hours (any tier has already been dropped by a TierChanged)."""

    line: str
    at: datetime
    kind: Literal["line_closed"] = field(default="line_closed", init=False)


@dataclass(frozen=True, slots=True)
class DemandEventDue:
    """A demand calendar event's lead time has come: its own responses are due (once)."""

    line: str
    at: datetime
    name: str
    start: datetime
    responses: tuple[str, ...]
    kind: Literal["demand_event_due"] = field(default="demand_event_due", init=False)


Event = (
    TierChanged
    | Acknowledged
    | AcknowledgementExpired
    | Silenced
    | SilenceEnded
    | Declared
    | DeclarationEnded
    | StatsStale
    | StatsFresh
    | Reminder
    | Escalated
    | LineOpened
    | LineClosed
    | DemandEventDue
)


class Decision:
    """What one evaluation decided: the new state, the events, and why.

    ``reason`` explains the outcome in one sentence even when nothing changed (e.g.
    "tier 2 held: clear condition avg_wait 260s < 240s not met"). The engine may hand in a
    function that writes it: replay evaluates millions of rows whose reason nobody reads,
    so the sentence is only written when someone asks for it (and then kept).
    """

    __slots__ = ("_reason", "events", "state")

    def __init__(
        self, state: LineState, events: tuple[Event, ...], reason: str | Callable[[], str]
    ) -> None:
        """A decision; ``reason`` is the sentence or a function that writes it."""
        self.state = state
        self.events = events
        self._reason = reason

    @property
    def reason(self) -> str:
        """Why, in one sentence."""
        if not isinstance(self._reason, str):
            self._reason = self._reason()
        return self._reason

    def __eq__(self, other: object) -> bool:
        """Decisions are equal when state, events and reason are."""
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.state, self.events, self.reason) == (other.state, other.events, other.reason)

    def __hash__(self) -> int:
        """Hash of state and events (the reason follows from them)."""
        return hash((self.state, self.events))

    def __repr__(self) -> str:
        """``Decision(state=…, events=…, reason=…)``."""
        return f"Decision(state={self.state!r}, events={self.events!r}, reason={self.reason!r})"


# --------------------------------------------------------------------------- responses


class Action(enum.Enum):
    """What to do with a response: run it, or undo a switch it turned on."""

    APPLY = "apply"
    UNDO = "undo"


@dataclass(frozen=True, slots=True)
class ResponseOrder:
    """One response to run, as the planner emits it and the outbox stores it.

    ``key`` is the idempotency key: the same order planned twice has the same key, and a
    responder that honours keys never acts twice for one key.
    """

    key: str
    line: str
    response: str
    action: Action
    tier: int
    episode: int
    trigger: str  # the event kind that caused it, e.g. "tier_changed", "reminder"
    at: datetime
    reason: str
