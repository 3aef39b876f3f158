"""The response planner: what runs on the way up, what is undone on the way down, and keys."""

from __future__ import annotations

from dataclasses import replace

from engine_helpers import (
    LINE,
    MINUTE,
    SWITCHES,
    Line,
    at_tier,
    office_hours,
    q,
    standard,
    state_with,
    t,
)

from risingtide.domain.commands import acknowledge, declare, lift_silence, silence
from risingtide.domain.model import (
    Action,
    Decision,
    EscalationStep,
    Reminder,
    ResponseOrder,
    Silence,
)
from risingtide.domain.responses import plan, reassert


def applied(orders: list[ResponseOrder]) -> list[str]:
    """The responses applied, in order."""
    return [o.response for o in orders if o.action is Action.APPLY]


def undone(orders: list[ResponseOrder]) -> list[str]:
    """The responses undone, in order."""
    return [o.response for o in orders if o.action is Action.UNDO]


def test_no_events_no_orders_same_state():
    """A decision without events plans nothing and keeps the state object."""
    line = Line()
    decision = Decision(state=line.state, events=(), reason="calm")
    state, orders = plan(line.framework, SWITCHES, line.state, decision)
    assert state is line.state
    assert orders == ()


def test_entering_a_tier_applies_its_responses_and_switches_go_live():
    """A rise to tier 1 notifies and turns call-back on, which becomes live."""
    line = Line()
    at_tier(line, 1)
    assert applied(line.orders) == ["notify_duty_manager", "callback_on"]
    assert line.state.live == frozenset({"callback_on"})
    order = line.orders[0]
    assert order.key == (
        f"{LINE}/1/tier_changed/1/0-1@2026-01-05T09:05:00+00:00/notify_duty_manager/apply"
    )
    assert (order.line, order.tier, order.episode, order.trigger, order.at) == (
        LINE,
        1,
        1,
        "tier_changed",
        t(5),
    )
    assert order.reason == "entering tier 1 rising"


def test_a_flood_jumping_tiers_gets_every_tiers_responses_once():
    """0 → 3 applies the responses of tiers 1, 2 and 3, each response id once."""
    line = Line()
    at_tier(line, 3)
    assert applied(line.orders) == [
        "notify_duty_manager",
        "callback_on",
        "page_surge_staff",
        "ivr_deflection",
        "notify_senior_managers",
        "webchat_open",
    ]
    assert line.state.live == SWITCHES
    assert {o.tier for o in line.orders} == {3}


def test_a_live_switch_is_not_applied_again():
    """Rising 1 → 2 notifies again but does not re-apply call-back."""
    fw = standard()
    shared = replace(fw.tiers[1], responses=(*fw.tiers[1].responses, "callback_on"))
    line = Line(replace(fw, tiers=(fw.tiers[0], shared, *fw.tiers[2:])))
    at_tier(line, 1)
    line.orders.clear()
    line.hold(t(6), t(11), 301, every=MINUTE)
    assert line.state.tier == 2
    assert applied(line.orders) == ["notify_duty_manager", "page_surge_staff", "ivr_deflection"]


def test_leaving_a_tier_runs_its_exit_responses_and_undoes_its_switches():
    """2 → 1 stands surge staff down and switches IVR deflection off; call-back stays on."""
    line = Line()
    at_tier(line, 2)
    line.orders.clear()
    line.hold(t(6), t(16), 200, every=MINUTE)
    assert line.state.tier == 1
    assert applied(line.orders) == ["notify_stood_down"]
    assert undone(line.orders) == ["ivr_deflection"]
    assert line.state.live == frozenset({"callback_on"})
    assert line.orders[-1].reason == "leaving tier 2 high"


def test_a_switch_a_lower_tier_still_needs_stays_on():
    """A switch listed by both the tier left and a remaining tier is not undone."""
    fw = standard()
    shared = replace(fw.tiers[1], responses=(*fw.tiers[1].responses, "callback_on"))
    line = Line(replace(fw, tiers=(fw.tiers[0], shared, *fw.tiers[2:])))
    at_tier(line, 2)
    line.hold(t(6), t(16), 200, every=MINUTE)
    assert line.state.tier == 1
    assert "callback_on" in line.state.live


def test_returning_to_calm_undoes_every_switch_exactly_once():
    """Once a flood has ebbed to 0 every switch has been undone once and nothing is live."""
    line = Line()
    at_tier(line, 3)
    line.hold(t(3), t(40), 100, every=MINUTE)
    assert line.state.tier == 0
    assert sorted(undone(line.orders)) == sorted(SWITCHES)
    assert line.state.live == frozenset()


def test_closing_undoes_the_live_switches_and_applies_nothing():
    """Out of hours the line's switches are undone and no exit notification is sent."""
    line = Line(calendar=office_hours())
    at_tier(line, 2)
    line.orders.clear()
    line.at(t(9 * 60), 301)
    assert applied(line.orders) == []
    assert undone(line.orders) == ["callback_on", "ivr_deflection"]
    assert {o.trigger for o in line.orders} == {"tier_changed"}
    assert line.state.live == frozenset()


def test_silence_with_undo_switches_everything_off():
    """A silence asking for undo turns every live switch off at once."""
    line = Line()
    at_tier(line, 2)
    line.orders.clear()
    line.apply(silence(line.state, until=t(60), by="sam", reason="IVR work", undo=True, now=t(6)))
    assert undone(line.orders) == ["callback_on", "ivr_deflection"]
    assert applied(line.orders) == []
    assert line.state.live == frozenset()
    assert line.orders[0].reason == "silenced by sam: IVR work"


def test_silence_without_undo_leaves_the_switches_on():
    """A plain silence turns nothing off."""
    line = Line()
    at_tier(line, 2)
    line.orders.clear()
    line.apply(silence(line.state, until=t(60), by="sam", reason="", undo=False, now=t(6)))
    assert line.orders == []
    assert line.state.live == frozenset({"callback_on", "ivr_deflection"})


def test_while_silenced_nothing_is_applied_but_undo_still_goes_out():
    """A silenced line rises with no APPLY orders, and still undoes switches as it falls."""
    line = Line()
    at_tier(line, 1)
    line.apply(silence(line.state, until=t(120), by="sam", reason="", undo=False, now=t(6)))
    line.orders.clear()
    line.hold(t(6), t(11), 301, every=MINUTE)
    assert line.state.tier == 2
    assert line.orders == []
    line.hold(t(12), t(40), 100, every=MINUTE)
    assert line.state.tier == 0
    assert applied(line.orders) == []
    assert undone(line.orders) == ["callback_on"]


def test_when_a_silence_ends_the_line_catches_up():
    """Lifting a silence re-applies the missing switches and sends the current notifications."""
    line = Line()
    at_tier(line, 2)
    line.apply(silence(line.state, until=t(120), by="sam", reason="", undo=True, now=t(6)))
    line.orders.clear()
    line.apply(lift_silence(line.state, by="kim", now=t(30)))
    assert applied(line.orders) == [
        "callback_on",
        "ivr_deflection",
        "notify_duty_manager",
        "page_surge_staff",
    ]
    assert line.state.live == frozenset({"callback_on", "ivr_deflection"})
    assert {o.trigger for o in line.orders} == {"silence_ended"}


def test_a_silence_ending_on_a_calm_line_runs_nothing():
    """A silence that ends at tier 0 has nothing to catch up."""
    line = Line()
    line.apply(silence(line.state, until=t(10), by="sam", reason="", undo=False, now=t(0)))
    line.at(t(10), 100)
    assert line.orders == []


def test_a_declared_rise_applies_like_a_raised_one():
    """Declaring tier 2 on a calm line applies tiers 1 and 2's responses."""
    line = Line()
    line.apply(declare(line.framework, line.state, level=2, until=t(60), by="kim", reason="",
                       now=t(0)))  # fmt: skip
    assert applied(line.orders) == [
        "notify_duty_manager",
        "callback_on",
        "page_surge_staff",
        "ivr_deflection",
    ]


def test_reminders_and_escalation_steps_run_their_responses():
    """A reminder runs the tier's repeat responses; a step, its own responses."""
    steps = (EscalationStep(after=20 * MINUTE, responses=("page_head_of_service",)),)
    line = Line(standard(repeat_every=15 * MINUTE, escalation=steps))
    at_tier(line, 1)
    line.orders.clear()
    line.hold(t(6), t(25), 170, every=MINUTE)
    assert [(o.trigger, o.response, o.at) for o in line.orders] == [
        ("reminder", "notify_duty_manager", t(20)),
        ("escalated", "page_head_of_service", t(25)),
    ]
    reminder, step = line.orders
    assert reminder.key == (
        f"{LINE}/1/reminder/1/2026-01-05T09:05:00+00:00#1/notify_duty_manager/apply"
    )
    assert step.key == (
        f"{LINE}/1/escalated/1/2026-01-05T09:05:00+00:00#1/page_head_of_service/apply"
    )


def test_acknowledging_runs_nothing():
    """An acknowledgement is recorded, not acted on."""
    line = Line()
    at_tier(line, 1)
    line.orders.clear()
    line.apply(acknowledge(line.framework, line.state, by="sam", note="", now=t(6)))
    assert line.orders == []


def test_stale_alert_runs_the_stale_responses_and_fresh_data_undoes_stale_switches():
    """StatsStale runs the framework's stale responses; a stale switch is undone when fresh."""
    fw = replace(standard(), stale_responses=("notify_data_team", "ivr_fallback"))
    line = Line(fw, switches=SWITCHES | {"ivr_fallback"})
    line.at(t(0), 100)
    for minute in range(1, 14):
        line.step(t(minute), q(t(0), 100))
    assert [(o.trigger, o.response, o.action) for o in line.orders] == [
        ("stats_stale", "notify_data_team", Action.APPLY),
        ("stats_stale", "ivr_fallback", Action.APPLY),
    ]
    assert line.orders[0].key == (
        f"{LINE}/0/stats_stale/0/2026-01-05T09:02:00+00:00/notify_data_team/apply"
    )
    line.at(t(14), 100)
    assert (line.orders[-1].response, line.orders[-1].action) == ("ivr_fallback", Action.UNDO)
    assert line.state.live == frozenset()


def test_planning_the_same_decision_twice_gives_the_same_keys():
    """Keys are a pure function of the input: re-planning a decision repeats its keys."""
    line = Line(standard(repeat_every=10 * MINUTE))
    at_tier(line, 3)
    line.hold(t(3), t(60), 100, every=MINUTE)
    keys = [o.key for o in line.orders]
    assert len(keys) == len(set(keys))
    replay = Line(standard(repeat_every=10 * MINUTE))
    at_tier(replay, 3)
    replay.hold(t(3), t(60), 100, every=MINUTE)
    assert [o.key for o in replay.orders] == keys


def test_a_silence_ending_with_a_reminder_due_notifies_once():
    """Catch-up and a due reminder in one evaluation send the notification only once."""
    line = Line(standard(repeat_every=10 * MINUTE))
    at_tier(line, 1)
    line.apply(silence(line.state, until=t(60), by="sam", reason="", undo=False, now=t(6)))
    line.hold(t(6), t(59), 170, every=MINUTE)
    line.orders.clear()
    decision = line.at(t(60), 170)
    assert [e.kind for e in decision.events] == ["silence_ended", "reminder"]
    assert [(o.trigger, o.response) for o in line.orders] == [
        ("silence_ended", "notify_duty_manager")
    ]


def test_events_for_tiers_a_reloaded_framework_no_longer_has_are_planned_safely():
    """A reminder for a tier beyond the current framework plans nothing instead of failing."""
    line = Line()
    at_tier(line, 2)
    small = replace(line.framework, tiers=line.framework.tiers[:1])
    reminder = Reminder(line=LINE, at=t(9), tier=2, number=1, episode=1)
    decision = Decision(state=line.state, events=(reminder,), reason="")
    state, orders = plan(small, SWITCHES, line.state, decision)
    assert orders == ()
    assert state is line.state


def test_reassert_applies_every_live_switch_again_unless_silenced():
    """After a restart the live switches are applied again (idempotently); a silence stops it."""
    state = state_with(tier=2, episode=3, live=frozenset({"ivr_deflection", "callback_on"}))
    orders = reassert(state, t(5))
    assert [(o.response, o.action, o.trigger, o.tier) for o in orders] == [
        ("callback_on", Action.APPLY, "reassert", 2),
        ("ivr_deflection", Action.APPLY, "reassert", 2),
    ]
    assert len({o.key for o in orders}) == 2
    assert reassert(state, t(6))[0].key != orders[0].key  # a later restart is a new order
    hushed = replace(state, silence=Silence(until=t(60), by="dm", reason="works", at=t(0)))
    assert reassert(hushed, t(5)) == ()
    assert reassert(replace(state, live=frozenset()), t(5)) == ()
