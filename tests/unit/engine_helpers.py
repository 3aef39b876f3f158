"""Builders for the tier-engine tests: a DESIGN.md-like framework, stats, and a line driver.

Named ``engine_helpers`` (not ``helpers``) because pytest imports test-folder modules by
their bare name, and another folder's ``helpers.py`` would collide with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from risingtide.domain.model import (
    ALWAYS_OPEN,
    AnyOf,
    Calendar,
    Compare,
    Decision,
    EscalationStep,
    Event,
    Framework,
    LineState,
    Measure,
    Op,
    QueueStats,
    ResponseOrder,
    Tier,
    TierChanged,
)
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning
LINE = "revenues"
SWITCHES = frozenset({"callback_on", "ivr_deflection", "webchat_open"})
MINUTE = timedelta(minutes=1)

# avg_wait thresholds per tier: entry above, clear below (a hysteresis band).
ENTRY = (180.0, 300.0, 600.0, 900.0)
CLEAR = (144.0, 240.0, 480.0, 720.0)


def t(minutes: float = 0, seconds: float = 0) -> datetime:
    """``T0`` plus an offset."""
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def q(at: datetime, avg_wait: float | None = None, **figures: float | int | None) -> QueueStats:
    """Stats for the test line at ``at``; the longest wait defaults to the average."""
    figures.setdefault("longest_wait", avg_wait)
    return QueueStats(line=LINE, at=at, avg_wait=avg_wait, **figures)  # type: ignore[arg-type]


def above(value: float, measure: Measure = "avg_wait") -> Compare:
    """``measure > value``."""
    return Compare(measure, Op.ABOVE, value)


def below(value: float, measure: Measure = "avg_wait") -> Compare:
    """``measure < value``."""
    return Compare(measure, Op.BELOW, value)


def standard(
    *,
    step_down: bool = True,
    for_: tuple[timedelta, ...] = (5 * MINUTE, 5 * MINUTE, 2 * MINUTE, MINUTE),
    clear_for: tuple[timedelta, ...] = (10 * MINUTE, 10 * MINUTE, 10 * MINUTE, 15 * MINUTE),
    repeat_every: timedelta | None = None,
    escalation: tuple[EscalationStep, ...] = (),
) -> Framework:
    """A 4-tier framework like DESIGN.md's; reminders/escalation only where asked (all tiers)."""
    names = ("rising", "high", "flood", "major incident")
    responses = (
        ("notify_duty_manager", "callback_on"),
        ("notify_duty_manager", "page_surge_staff", "ivr_deflection"),
        ("notify_senior_managers", "webchat_open"),
        ("notify_service_director", "declare_incident"),
    )
    whens = (
        above(ENTRY[0]),
        AnyOf((above(ENTRY[1]), above(0.10, "abandon_rate"))),
        above(ENTRY[2]),
        AnyOf((above(ENTRY[3]), above(1200, "longest_wait"))),
    )
    tiers = tuple(
        Tier(
            level=i + 1,
            name=names[i],
            when=whens[i],
            for_=for_[i],
            clear=below(CLEAR[i]),
            clear_for=clear_for[i],
            responses=responses[i],
            on_exit=("notify_stood_down",) if i == 1 else (),
            repeat_every=repeat_every,
            repeat_responses=("notify_duty_manager",) if repeat_every else (),
            escalation=escalation,
        )
        for i in range(4)
    )
    return Framework(
        name="standard",
        tiers=tiers,
        step_down=step_down,
        stale_after=2 * MINUTE,
        stale_alert_after=10 * MINUTE,
        stale_responses=("notify_data_team",),
    )


def office_hours() -> Calendar:
    """Monday to Friday 08:00–18:00 in London."""
    day = ((time(8), time(18)),)
    return Calendar(name="office", tz=ZoneInfo("Europe/London"), hours=(day,) * 5 + ((),) * 2)


@dataclass
class Line:
    """Drives one line through ``evaluate`` and ``plan``, keeping the state and a log."""

    framework: Framework = field(default_factory=standard)
    calendar: Calendar = ALWAYS_OPEN
    switches: frozenset[str] = SWITCHES
    state: LineState = field(init=False)
    events: list[Event] = field(default_factory=list)
    orders: list[ResponseOrder] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = initial_state(LINE, self.framework)

    def at(
        self, now: datetime, avg_wait: float | None = None, **figures: float | int | None
    ) -> Decision:
        """Evaluate at ``now`` with fresh stats taken at ``now``."""
        return self.step(now, q(now, avg_wait, **figures))

    def step(self, now: datetime, stats: QueueStats | None) -> Decision:
        """Evaluate at ``now`` with ``stats`` (possibly None or old), and plan."""
        return self.apply(evaluate(self.framework, self.state, stats, now, calendar=self.calendar))

    def apply(self, decision: Decision) -> Decision:
        """Plan a decision (from ``evaluate`` or a command) and keep its outcome."""
        self.state, orders = plan(self.framework, self.switches, self.state, decision)
        self.events.extend(decision.events)
        self.orders.extend(orders)
        self.decisions.append(decision)
        return decision

    def hold(
        self,
        start: datetime,
        end: datetime,
        avg_wait: float | None,
        every: timedelta = timedelta(seconds=15),
        **figures: float | int | None,
    ) -> list[Decision]:
        """Fresh stats every ``every`` from ``start`` to ``end`` inclusive."""
        out = []
        now = start
        while now <= end:
            out.append(self.at(now, avg_wait, **figures))
            now += every
        return out

    def changes(self) -> list[TierChanged]:
        """Every tier change so far."""
        return [e for e in self.events if isinstance(e, TierChanged)]

    def kinds(self) -> list[str]:
        """The kinds of every event so far."""
        return [e.kind for e in self.events]


def at_tier(line: Line, level: int, now: datetime = T0) -> datetime:
    """Bring ``line`` to ``level`` with avg_wait just above its entry threshold, one reading a
    minute from ``now``; return when it got there (t(5), t(5), t(2), t(1) from T0)."""
    wait = ENTRY[level - 1] + 1
    for minute in range(31):
        decision = line.at(now + minute * MINUTE, wait)
        if decision.state.tier == level:
            assert decision.state.entered_at is not None
            return decision.state.entered_at
    raise AssertionError(f"the line never reached tier {level}")


def state_with(**changes: object) -> LineState:
    """A state for the test line with ``changes`` applied."""
    base = initial_state(LINE, standard())
    return replace(base, **changes)  # type: ignore[arg-type]
