"""The demand calendar's pure functions and the engine's demand stage (issue 11, item 3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine_helpers import LINE, MINUTE, SWITCHES, T0, q, standard, t

from risingtide.domain.commands import clear_declaration, declare
from risingtide.domain.demand_calendar import (
    DemandEvent,
    Prearm,
    Tighten,
    active_events,
    after_start,
    expected_demand,
    next_change,
    resolve,
    tightened,
    upcoming,
)
from risingtide.domain.model import (
    DeclarationEnded,
    Declared,
    DemandEventDue,
    Event,
    LineState,
    ResponseOrder,
    TierChanged,
)
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state, next_deadline
from risingtide.messages import facts_from, render
from risingtide.ports import ResponseContext

BILLS = DemandEvent(
    name="Council Tax reminders",
    lines=(LINE,),
    start=t(60),
    end=t(120),
    multiply=3.0,
    prearm=Prearm(level=2, lead=30 * MINUTE),
    responses=("page_surge_staff",),
    lead=timedelta(minutes=45),
)


def drive(
    events: tuple[DemandEvent, ...], until: datetime, wait: float = 60.0
) -> tuple[LineState, list[Event], list[ResponseOrder]]:
    """Run the line as the daemon does: figures every 5 minutes, and at every deadline."""
    framework = standard()
    state = initial_state(LINE, framework)
    seen: list[Event] = []
    orders: list[ResponseOrder] = []
    now = T0
    while now <= until:
        stats = q(now - (now - T0) % (5 * MINUTE), wait)
        decision = evaluate(framework, state, stats, now, demand=events)
        state, planned = plan(framework, SWITCHES, state, decision)
        seen.extend(decision.events)
        orders.extend(planned)
        due = next_deadline(framework, state, now, demand=events, going_stale=False)
        nxt = now - (now - T0) % (5 * MINUTE) + 5 * MINUTE
        now = min(nxt, due) if due is not None else nxt
    return state, seen, orders


def test_active_events_run_from_start_to_just_before_end() -> None:
    """An event is active from its start, inclusive, to its end, exclusive, on its lines."""
    assert active_events((BILLS,), LINE, t(59)) == ()
    assert active_events((BILLS,), LINE, t(60)) == (BILLS,)
    assert active_events((BILLS,), LINE, t(120)) == ()
    assert active_events((BILLS,), "waste", t(90)) == ()


def test_next_change_walks_lead_times_then_the_end() -> None:
    """The calendar's instants come in order: responses lead, pre-arm lead, end."""
    assert next_change((BILLS,), LINE, T0) == t(15)
    assert next_change((BILLS,), LINE, t(15)) == t(30)
    assert next_change((BILLS,), LINE, t(30)) == t(120)
    assert next_change((BILLS,), LINE, t(120)) is None
    assert next_change((BILLS,), "waste", T0) is None


def test_expected_demand_multiplies_overlapping_events() -> None:
    """Overlapping multipliers multiply and the highest calls-per-hour wins, for the forecast."""
    storm = DemandEvent("Storm", ("all",), t(90), t(100), multiply=2.0, calls_per_hour=400.0)
    assert expected_demand((BILLS, storm), LINE, t(30)) is None
    found = expected_demand((BILLS, storm), LINE, t(95))
    assert found is not None
    assert (found.multiply, found.calls_per_hour) == (6.0, 400.0)
    assert found.events == ("Council Tax reminders", "Storm")


def test_relative_events_are_placed_after_the_origin() -> None:
    """``start: +2m`` is two minutes after the daemon's start once resolved."""
    demo = DemandEvent(
        "Demo", (LINE,), after_start(2 * MINUTE), after_start(20 * MINUTE), relative=True
    )
    (placed,) = resolve((demo,), T0)
    assert (placed.start, placed.end, placed.relative) == (t(2), t(20), False)


def test_upcoming_includes_an_event_whose_prearm_starts_within_the_horizon() -> None:
    """The board's week ahead lists an event from its first lead time until it ends."""
    assert upcoming((BILLS,), LINE, T0, timedelta(minutes=10)) == ()
    assert upcoming((BILLS,), LINE, T0, timedelta(minutes=20)) == (BILLS,)
    assert upcoming((BILLS,), LINE, t(119), timedelta(minutes=1)) == (BILLS,)
    assert upcoming((BILLS,), LINE, t(120), timedelta(days=7)) == ()


def test_prearm_declares_at_start_minus_lead_and_lifts_itself_at_the_end() -> None:
    """Calm figures throughout: tier 2 is declared at start − lead by the event, and the
    declaration ends at the event's end, after which the line falls through its clear rules."""
    state, events, orders = drive((BILLS,), t(150))
    declared = [e for e in events if isinstance(e, Declared)]
    assert [(e.at, e.level, e.by, e.until) for e in declared] == [
        (t(30), 2, "Council Tax reminders", t(120))
    ]
    rises = [e for e in events if isinstance(e, TierChanged) and e.to_tier > e.from_tier]
    assert [(e.at, e.to_tier) for e in rises] == [(t(30), 2)]
    ended = [e for e in events if isinstance(e, DeclarationEnded)]
    assert [(e.at, e.by) for e in ended] == [(t(120), "")]
    falls = [e for e in events if isinstance(e, TierChanged) and e.to_tier < e.from_tier]
    assert falls and falls[0].at == t(120)
    assert state.tier == 0 and state.declaration is None
    assert {o.response for o in orders if o.trigger == "tier_changed"} >= {"ivr_deflection"}


def test_lead_time_responses_are_sent_once_per_event() -> None:
    """The event's own responses go out at start − lead, once, keyed by the event."""
    _, events, orders = drive((BILLS,), t(150))
    due = [e for e in events if isinstance(e, DemandEventDue)]
    assert [(e.at, e.responses) for e in due] == [(t(15), ("page_surge_staff",))]
    paged = [o for o in orders if o.trigger == "demand_event_due"]
    assert [(o.response, o.at) for o in paged] == [("page_surge_staff", t(15))]
    assert "Council Tax reminders@" in paged[0].key


def test_a_line_first_seen_during_the_event_is_prearmed_and_paged_at_once() -> None:
    """A daemon started after the lead times (the demo's ``start: -4m``) still arms and pages."""
    framework = standard()
    state = initial_state(LINE, framework)
    decision = evaluate(framework, state, q(t(70), 60.0), t(70), demand=(BILLS,))
    kinds = [e.kind for e in decision.events]
    assert kinds[:2] == ["declared", "demand_event_due"]
    assert decision.state.tier == 2
    again = evaluate(framework, decision.state, q(t(71), 60.0), t(71), demand=(BILLS,))
    assert not any(isinstance(e, Declared | DemandEventDue) for e in again.events)


def test_tighten_shortens_for_only_while_the_event_runs() -> None:
    """Tier 1's 5-minute ``for`` becomes 1 minute during the event, and is 5 minutes again after."""
    event = DemandEvent("Summonses", (LINE,), t(10), t(30), tighten=(Tighten(1, MINUTE),))
    framework = standard()
    assert tightened(framework, (event,), t(5)) is framework
    assert tightened(framework, (event,), t(10)).tiers[0].for_ == MINUTE
    assert tightened(framework, (event,), t(10)).tiers[1].for_ == 5 * MINUTE
    state = initial_state(LINE, framework)
    for minute in (11, 12):
        decision = evaluate(framework, state, q(t(minute), 200.0), t(minute), demand=(event,))
        state = decision.state
    assert state.tier == 1
    state = initial_state(LINE, framework)
    for minute in (31, 32):
        state = evaluate(framework, state, q(t(minute), 200.0), t(minute), demand=(event,)).state
    assert state.tier == 0


def test_a_line_without_events_is_evaluated_as_before() -> None:
    """No demand: the same decision, and the calendar adds no deadline."""
    framework = standard()
    state = initial_state(LINE, framework)
    plain = evaluate(framework, state, q(T0, 60.0), T0)
    assert evaluate(framework, state, q(T0, 60.0), T0, demand=()) == plain
    other = DemandEvent("Elsewhere", ("waste",), t(1), t(2), prearm=Prearm(2))
    assert next_deadline(framework, plain.state, T0, demand=(other,)) == next_deadline(
        framework, plain.state, T0
    )


def test_a_lead_time_notification_says_which_event_is_coming_even_when_calm() -> None:
    """A notification sent at an event's lead time is headed with the event, not "back to
    calm", though the line is at tier 0."""
    _, _, orders = drive((BILLS,), t(20))
    (paged,) = [o for o in orders if o.trigger == "demand_event_due"]
    assert paged.tier == 0
    context = ResponseContext("Council Tax", "calm", None, target_wait=180.0)
    subject = render(facts_from(paged, context)).subject
    assert (
        subject
        == "Council Tax: Council Tax reminders starts 2026-01-05 10:00 UTC (demand calendar)"
    )


def test_a_cleared_prearm_is_not_armed_again_and_a_higher_declaration_is_kept() -> None:
    """Once a duty manager ends the pre-armed declaration the calendar leaves it ended; a
    declaration at or above the pre-armed level is not replaced."""
    framework = standard()
    armed = evaluate(framework, initial_state(LINE, framework), q(t(31)), t(31), demand=(BILLS,))
    assert armed.state.declaration is not None
    cleared = clear_declaration(framework, armed.state, by="Priya", now=t(32))
    later = evaluate(framework, cleared.state, q(t(33), 60.0), t(33), demand=(BILLS,))
    assert later.state.declaration is None
    assert not any(isinstance(e, Declared) for e in later.events)
    higher = declare(framework, initial_state(LINE, framework), level=3, until=t(200),
                     by="Priya", reason="flood", now=t(1))  # fmt: skip
    kept = evaluate(framework, higher.state, q(t(31), 60.0), t(31), demand=(BILLS,))
    assert kept.state.declaration is not None and kept.state.declaration.by == "Priya"
