"""The board's answers in words (``risingtide.briefing``), over the shipped demo config."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from risingtide.briefing import (
    briefing,
    cause_in_words,
    clock_text,
    next_step,
    notified,
    ordered,
)
from risingtide.config import load_config
from risingtide.domain.model import (
    Acknowledgement,
    AllOf,
    AnyOf,
    Compare,
    Declaration,
    LineState,
    Op,
    QueueStats,
)
from risingtide.view import build_view

DEMO = load_config(Path(__file__).resolve().parents[2] / "config" / "rising-tide.yaml")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Asha Patel is the duty manager
TAX = DEMO.lines["council_tax"]


def stats(**figures: Any) -> QueueStats:
    return QueueStats(line="council_tax", at=MONDAY, **figures)


def raised(**changes: Any) -> LineState:
    base = LineState(line="council_tax", tier=2, entered_at=MONDAY, episode=3)
    return LineState(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


@dataclass
class Record:
    """A history record as ``Store.history`` gives it (the fields briefing reads)."""

    at: datetime
    data: dict[str, Any]
    kind: str = "response"
    line: str = "council_tax"
    tier: int | None = 2
    id: int = 0


def test_an_abandonment_rate_is_told_with_the_calls_offered() -> None:
    """``abandonment 20 % over 10 % with 67 offered``: the minimum offered folds in."""
    when = AnyOf((
        Compare("avg_wait", Op.ABOVE, 300),
        AllOf((Compare("abandon_rate", Op.ABOVE, 0.10), Compare("offered", Op.AT_LEAST, 20))),
    ))  # fmt: skip
    s = stats(avg_wait=100, offered=67, abandoned=13)
    assert cause_in_words(when, s) == "abandonment 19 % over 10 % with 67 offered"


def test_only_the_parts_that_hold_are_told_and_waits_read_as_minutes() -> None:
    """Of an "any" condition the held part is told; a wait reads ``6m 2s``."""
    when = AnyOf((Compare("avg_wait", Op.ABOVE, 300), Compare("longest_wait", Op.ABOVE, 1200)))
    assert cause_in_words(when, stats(avg_wait=362, longest_wait=400)) == (
        "average wait 6m 2s over 5m"
    )
    assert cause_in_words(Compare("calls_waiting", Op.AT_LEAST, 10), stats()) == (
        "calls waiting not known (raises at least 10)"
    )


def test_a_declared_tier_says_who_declared_it() -> None:
    """A tier held by a declaration is explained by the declaration, in UK time."""
    state = raised(declaration=Declaration(2, MONDAY + timedelta(hours=2), "Sam", "bills out",
                                           MONDAY))  # fmt: skip
    view = build_view(TAX, state, stats(avg_wait=10), MONDAY)
    assert briefing(DEMO, view)["cause"] == "declared by Sam until 12:00: bills out"


def test_the_next_reminder_and_escalation_due_together_are_both_told_with_whom() -> None:
    """Tier 2 at 10:00: reminder 1 and escalation step 1 fall due at 10:10, reaching the
    duty manager on the rota and the head of service."""
    step = next_step(DEMO, TAX, raised())
    assert step is not None
    assert step.what == "reminder 1 and escalation step 1"
    assert step.at == MONDAY + timedelta(minutes=10)
    assert step.to == ("Asha Patel", "Morgan Price")


def test_nothing_is_next_when_acknowledged_or_declared() -> None:
    """An acknowledged or declared tier has no next reminder or escalation."""
    ack = Acknowledgement(tier=2, by="Asha Patel", at=MONDAY)
    assert next_step(DEMO, TAX, raised(ack=ack)) is None
    declared = Declaration(2, MONDAY + timedelta(hours=1), "Sam", "", MONDAY)
    assert next_step(DEMO, TAX, raised(declaration=declared)) is None


def test_who_was_told_keeps_this_episodes_notifications_latest_outcome_first() -> None:
    """Notifications of the current episode, each order once with its latest outcome;
    switches and other episodes are left out."""
    key = "council_tax/3/tier_changed/2/x/notify_duty_manager/apply"
    records = [
        Record(MONDAY + timedelta(seconds=9), {"key": key, "response": "notify_duty_manager",
                                                "action": "apply", "outcome": "ok"}),
        Record(MONDAY + timedelta(seconds=5), {"key": key, "response": "notify_duty_manager",
                                                "action": "apply", "outcome": "retry"}),
        Record(MONDAY, {"key": "council_tax/3/tier_changed/2/x/callback_on/apply",
                        "response": "callback_on", "action": "apply", "outcome": "ok"}),
        Record(MONDAY, {"key": "council_tax/2/tier_changed/1/x/notify_duty_manager/apply",
                        "response": "notify_duty_manager", "action": "apply", "outcome": "ok"}),
    ]  # fmt: skip
    told = notified(DEMO, "council_tax", 3, records, MONDAY)
    assert [(t["title"], t["outcome"], t["to"], t["at_text"]) for t in told] == [
        ("Notify duty manager", "ok", ["Asha Patel"], "10:00")
    ]


def test_switches_read_by_title_and_the_agents_gap_is_needed_less_staffed() -> None:
    """Switched-on responses carry their config titles; the gap is needed − staffed."""
    state = raised(live=frozenset({"callback_on", "page_surge_staff"}))
    s = stats(avg_wait=400, agents_staffed=10, agents_available=0, calls_waiting=30,
              offered=100, answered=80, abandoned=20, window=300, avg_handle_time=300)  # fmt: skip
    view = build_view(TAX, state, s, MONDAY)
    out = briefing(DEMO, view)
    assert [x["title"] for x in out["switched_on"]] == ["Call-back offered", "Surge staff paged"]
    assert out["agents_needed"] == view.agents_needed
    assert out["agents_gap"] == view.agents_needed - 10  # type: ignore[operator]


def test_raised_lines_come_first_by_tier_then_time_then_calm_in_config_order() -> None:
    """Tier 3 before tier 2; of two tier-2 lines the one raised first; calm lines after."""

    def view(line: str, tier: int, minutes: int = 0) -> Any:
        lc = DEMO.lines[line]
        entered = MONDAY + timedelta(minutes=minutes) if tier else None
        return build_view(lc, LineState(line=line, tier=tier, entered_at=entered), None, MONDAY)

    views = [view("council_tax", 0), view("revenues", 2, 5), view("waste", 3, 9),
             view("highways", 2, 1), view("helping_hands", 0)]  # fmt: skip
    assert [v.id for v in ordered(views)] == [
        "waste",
        "highways",
        "revenues",
        "council_tax",
        "helping_hands",
    ]


def test_clock_text_is_uk_time_with_the_day_when_not_today() -> None:
    """``14:05`` today; ``Tue 24 Nov 09:00`` on another day; BST in summer."""
    assert clock_text(MONDAY + timedelta(hours=4, minutes=5), MONDAY) == "14:05"
    assert clock_text(MONDAY + timedelta(days=1, hours=-1), MONDAY) == "Tue 24 Nov 09:00"
    summer = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)
    assert clock_text(summer, summer) == "10:00"
