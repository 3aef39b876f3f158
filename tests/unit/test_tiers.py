"""The tier engine, rule by rule: entry, clear, staleness, opening hours, expiries, timers."""

from __future__ import annotations

from datetime import timedelta

from engine_helpers import (
    LINE,
    MINUTE,
    T0,
    Line,
    at_tier,
    office_hours,
    q,
    standard,
    t,
)

from risingtide.domain.commands import acknowledge, declare, silence
from risingtide.domain.model import (
    Cause,
    DeclarationEnded,
    Escalated,
    EscalationStep,
    LineClosed,
    LineOpened,
    Reminder,
    SilenceEnded,
    StatsFresh,
    StatsStale,
    TierChanged,
)
from risingtide.domain.tiers import evaluate, format_duration, initial_state

HOUR = timedelta(hours=1)


def tiers_of(line: Line) -> list[tuple[int, int]]:
    """(from, to) of every tier change so far."""
    return [(c.from_tier, c.to_tier) for c in line.changes()]


# ---------------------------------------------------------------------- basics


def test_initial_state_is_calm_with_one_entry_timer_per_tier():
    """A new line is calm and open, with an empty entry timer for each of the four tiers."""
    state = initial_state(LINE, standard())
    assert (state.tier, state.open, state.episode) == (0, True, 0)
    assert state.when_since == (None, None, None, None)


def test_format_duration_reads_like_people_write():
    """Durations in reasons read as 45s, 2m, 1m30s, 2h5m."""
    assert [format_duration(timedelta(seconds=s)) for s in (0, 45, 120, 90, 7500, 3600)] == [
        "0s",
        "45s",
        "2m",
        "1m30s",
        "2h5m",
        "1h",
    ]


def test_nothing_changed_returns_the_same_state_object():
    """Evaluating the same calm stats again allocates no new state."""
    line = Line()
    stats = q(t(0), 100)
    first = line.step(t(0), stats)
    again = evaluate(line.framework, first.state, stats, t(0, 15))
    assert again.state is first.state
    assert again.events == ()
    assert again.reason == "calm: no tier's entry condition met"


# ---------------------------------------------------------------------- entry


def test_entry_waits_for_the_for_duration():
    """A tier is entered only once its condition has held for its whole ``for``."""
    line = Line()
    line.hold(t(0), t(4, 45), 200)
    assert line.state.tier == 0
    decision = line.at(t(5), 200)
    assert decision.state.tier == 1
    (change,) = line.changes()
    assert change.cause is Cause.RAISED
    assert change.reason == "rising to tier 1 rising: avg_wait 200s > 180s held for 5m"
    assert decision.reason == change.reason


def test_pending_entry_is_explained_while_calm():
    """While an entry condition is building up, the reason says how far it has got."""
    line = Line()
    line.at(t(0), 200)
    decision = line.at(t(2), 200)
    assert decision.reason == "calm: tier 1 rising condition (avg_wait 200s > 180s) held 2m of 5m"


def test_entry_timer_restarts_when_the_condition_breaks():
    """One reading below the threshold restarts the entry timer."""
    line = Line()
    line.hold(t(0), t(3), 200)
    line.at(t(3, 15), 150)
    line.hold(t(3, 30), t(8, 15), 200)
    assert line.state.tier == 0
    assert line.at(t(8, 30), 200).state.tier == 1


def test_a_flood_jumps_straight_to_the_highest_ready_tier():
    """0 → 3 in one step when tier 3's condition has held for its (shorter) ``for``."""
    line = Line()
    line.hold(t(0), t(2), 700)
    assert tiers_of(line) == [(0, 3)]
    (change,) = line.changes()
    assert change.at == t(2)
    assert change.episode == 1
    assert "avg_wait 700s > 600s held for 2m" in change.reason


def test_episode_counts_rises_from_calm_only():
    """A rise from 1 to 2 stays in the episode; a new rise from calm starts the next one."""
    line = Line()
    at_tier(line, 1)
    line.hold(t(6), t(11), 301, every=MINUTE)
    assert line.state.tier == 2
    assert line.state.episode == 1
    line.hold(t(12), t(40), 100, every=MINUTE)
    assert line.state.tier == 0
    line.hold(t(41), t(46), 200, every=MINUTE)
    assert line.state.tier == 1
    assert line.state.episode == 2
    assert [c.episode for c in line.changes()] == [1, 1, 1, 1, 2]


def test_abandonment_alone_can_raise_tier_two():
    """Tier 2 also rises on abandonment above 10 % with a short average wait."""
    line = Line()
    line.hold(t(0), t(5), 100, offered=100, abandoned=15)
    assert tiers_of(line) == [(0, 2)]
    assert "abandon_rate 15.0% > 10.0%" in line.changes()[0].reason


def test_entering_a_tier_resets_its_counters():
    """Entering a tier sets ``entered_at`` and zeroes the reminder and escalation counters."""
    line = Line(standard(repeat_every=10 * MINUTE))
    at_tier(line, 1)
    line.hold(t(6), t(16), 170, every=MINUTE)
    assert line.state.reminders_sent == 1
    line.hold(t(17), t(22), 301, every=MINUTE)
    assert line.state.tier == 2
    assert line.state.entered_at == t(22)
    assert (line.state.reminders_sent, line.state.last_reminder_at) == (0, None)


# ---------------------------------------------------------------------- clear


def test_clear_waits_for_its_own_duration():
    """A tier is left only once its clear condition has held for ``clear_for``."""
    line = Line()
    at_tier(line, 1)
    line.hold(t(6), t(15, 45), 100)
    assert line.state.tier == 1
    decision = line.at(t(16), 100)
    assert decision.state.tier == 0
    change = line.changes()[-1]
    assert change.cause is Cause.LOWERED
    assert change.reason == (
        "falling to tier 0 calm: tier 1 clear condition avg_wait 100s < 144s held for 10m"
    )


def test_clear_timer_restarts_when_the_clear_condition_breaks():
    """A reading inside the hysteresis band restarts the clear timer."""
    line = Line()
    at_tier(line, 1)
    line.hold(t(6), t(12), 100)
    line.at(t(12, 15), 170)
    line.hold(t(12, 30), t(22, 15), 100)
    assert line.state.tier == 1
    assert line.at(t(22, 30), 100).state.tier == 0


def test_held_tier_explains_the_clear_condition():
    """A held tier says which clear condition is not met, or how long it has held."""
    line = Line()
    at_tier(line, 2)
    held = line.at(t(6), 260)
    assert held.reason == "tier 2 held: clear condition (avg_wait 260s < 240s) not met"
    line.at(t(7), 200)
    clearing = line.at(t(10), 200)
    assert clearing.reason == "tier 2 held: clear condition (avg_wait 200s < 240s) held 3m of 10m"


def test_step_down_one_tier_at_a_time_each_waiting_its_own_clear_for():
    """3 → 0 takes three clear periods: each lower tier's clear timer starts afresh."""
    line = Line()
    at_tier(line, 3)
    line.hold(t(3), t(40), 100, every=MINUTE)
    assert tiers_of(line) == [(0, 3), (3, 2), (2, 1), (1, 0)]
    assert [c.at for c in line.changes()] == [t(2), t(13), t(23), t(33)]
    assert line.state.ack is None


def test_without_step_down_the_line_drops_to_the_highest_tier_still_holding():
    """With ``step_down`` off a line drops to the highest lower tier whose entry holds."""
    line = Line(standard(step_down=False))
    at_tier(line, 3)
    line.hold(t(3), t(20), 350, every=MINUTE)
    assert tiers_of(line) == [(0, 3), (3, 2)]
    assert line.changes()[-1].at == t(13)


def test_without_step_down_a_calm_line_drops_to_zero_at_once():
    """With ``step_down`` off, 3 → 0 is one step after tier 3's clear period."""
    line = Line(standard(step_down=False))
    at_tier(line, 3)
    line.hold(t(3), t(20), 100, every=MINUTE)
    assert tiers_of(line) == [(0, 3), (3, 0)]


# ---------------------------------------------------------------------- stale data


def test_stale_data_holds_the_tier_and_neither_starts_nor_breaks_the_clear_timer():
    """Stale stats never lower a tier; a fall waits for fresh figures showing the clear.

    The clear timer runs across the gap as an entry timer does (issue #10 B: rows further
    apart than ``stale_after`` must not keep a line raised for ever).
    """
    line = Line()
    at_tier(line, 1)
    line.hold(t(6), t(13), 100, every=MINUTE)
    last = q(t(13), 100)
    decision = line.step(t(16), last)  # 3m old: stale, though the clear "would" be done
    assert decision.state.tier == 1
    assert decision.state.stale
    assert decision.state.clear_since == t(6)
    assert decision.reason == "stale: last stats 3m old; holding tier 1"
    assert line.at(t(17), 100).state.tier == 0  # fresh and clear: held since 09:06, 11m


def test_fresh_figures_after_a_gap_that_do_not_clear_break_the_clear_timer():
    """The first fresh figures after a gap decide: not clear, and the clear starts again."""
    line = Line()
    at_tier(line, 1)
    line.hold(t(6), t(13), 100, every=MINUTE)
    line.step(t(16), q(t(13), 100))  # stale
    assert line.at(t(17), 170).state.clear_since is None  # 170 s is not below 144 s
    line.hold(t(18), t(27), 100, every=MINUTE)
    assert line.state.tier == 1
    assert line.at(t(28), 100).state.tier == 0


def test_a_gap_in_the_data_neither_starts_nor_breaks_an_entry_timer():
    """An entry timer running before a stale gap keeps running across it."""
    line = Line()
    line.hold(t(0), t(3), 200, every=MINUTE)
    decision = line.step(t(6), q(t(3), 200))
    assert decision.state.stale
    assert decision.state.tier == 0
    assert decision.state.when_since[0] == t(0)
    assert line.at(t(6, 30), 200).state.tier == 1


def test_missing_data_never_lowers_a_tier():
    """A line whose stats stop arriving stays at its tier for hours."""
    line = Line()
    at_tier(line, 2)
    last = q(t(5), 301)
    for minute in range(6, 600, 7):
        assert line.step(t(minute), last).state.tier == 2
    for minute in range(600, 700, 7):
        assert line.step(t(minute), None).state.tier == 2


def test_an_unknown_measure_holds_the_tier():
    """Stats without the measure a condition reads neither raise nor clear a tier."""
    line = Line()
    at_tier(line, 1)
    for minute in range(6, 60):
        decision = line.at(t(minute), None, calls_waiting=3)
        assert decision.state.tier == 1
        assert not decision.state.stale
    assert "avg_wait unknown" in decision.reason


def test_stats_stale_once_per_spell_then_stats_fresh():
    """A stale spell raises one StatsStale after ``stale_alert_after``; fresh data, StatsFresh."""
    line = Line()
    at_tier(line, 2)
    line.hold(t(6), t(10), 301, every=MINUTE)
    last = q(t(10), 301)
    for minute in range(11, 41):
        line.step(t(minute), last)
    stale = [e for e in line.events if isinstance(e, StatsStale)]
    assert len(stale) == 1
    assert (stale[0].at, stale[0].since, stale[0].tier) == (t(22), t(12), 2)
    assert line.state.stale_alerted
    line.at(t(41), 301)
    (fresh,) = [e for e in line.events if isinstance(e, StatsFresh)]
    assert fresh.stale_for == timedelta(minutes=29)
    assert not line.state.stale
    last = q(t(41), 301)
    for minute in range(42, 60):
        line.step(t(minute), last)
    assert len([e for e in line.events if isinstance(e, StatsStale)]) == 2
    assert line.state.tier == 2


def test_a_short_stale_spell_clears_without_any_event():
    """Fresh data after a spell too short to alert clears the flag and says nothing."""
    line = Line()
    line.at(t(0), 100)
    decision = line.step(t(5), q(t(0), 100))
    assert decision.state.stale
    assert decision.state.stale_since == t(2)
    decision = line.at(t(6), 100)
    assert not decision.state.stale
    assert decision.state.stale_since is None
    assert line.kinds() == []


def test_a_line_that_never_had_stats_is_stale_from_its_first_evaluation():
    """With no stats at all the stale spell starts at the first evaluation."""
    line = Line()
    decision = line.step(t(0), None)
    assert decision.state.stale
    assert decision.state.stale_since == t(0)
    assert decision.reason == "stale: no stats yet; holding tier 0"
    line.step(t(9), None)
    assert line.kinds() == []
    line.step(t(10), None)
    assert line.kinds() == ["stats_stale"]


def test_out_of_order_stats_are_ignored():
    """Stats older than the latest seen move no timer and change nothing."""
    line = Line()
    line.at(t(5), 200)
    before = line.state
    decision = line.step(t(5, 15), q(t(4), 700))
    assert decision.state is before
    assert decision.events == ()
    assert decision.reason.startswith("ignored stats from 09:04:00, older than the last seen")


# ---------------------------------------------------------------------- opening hours


def test_out_of_hours_the_line_closes_and_raises_nothing():
    """At closing time a raised tier drops to 0 and the line closes; the night is silent."""
    line = Line(calendar=office_hours())
    at_tier(line, 2)
    line.at(t(8 * 60 + 59), 301)  # 17:59
    decision = line.at(t(9 * 60), 301)  # 18:00
    closing, closed = decision.events
    assert isinstance(closing, TierChanged)
    assert (closing.from_tier, closing.to_tier, closing.cause) == (2, 0, Cause.CLOSED)
    assert closing.reason == "out of hours"
    assert isinstance(closed, LineClosed)
    state = line.state
    assert (state.tier, state.open, state.ack, state.episode) == (0, False, None, 1)
    assert state.when_since == (None,) * 4
    assert state.live == frozenset()
    count = len(line.events)
    for minute in range(9 * 60 + 1, 23 * 60, 10):  # the night: floods, then no data at all
        line.at(t(minute), 2000)
        line.step(t(minute + 5), None)
    assert len(line.events) == count
    assert line.state is state


def test_reopening_starts_fresh():
    """The next morning the line opens calm and every entry timer starts from opening."""
    line = Line(calendar=office_hours())
    at_tier(line, 3)
    line.at(t(9 * 60), 700)
    opened = line.at(t(23 * 60), 700)  # Tuesday 08:00
    assert isinstance(opened.events[0], LineOpened)
    assert opened.state.open
    assert opened.state.tier == 0
    assert opened.state.when_since[2] == t(23 * 60)
    assert line.at(t(23 * 60 + 1), 700).state.tier == 0
    raised = line.at(t(23 * 60 + 2), 700)
    assert raised.state.tier == 3
    assert raised.state.episode == 2


def test_reopening_without_data_is_stale_from_opening():
    """A line that opens with no fresh data is stale from opening time, not from the night."""
    line = Line(calendar=office_hours())
    line.at(t(8 * 60), 100)  # 17:00, then no more stats
    line.step(t(9 * 60), q(t(8 * 60), 100))
    opened = line.step(t(23 * 60), q(t(8 * 60), 100))
    assert opened.state.stale_since == t(23 * 60)
    line.step(t(23 * 60 + 9), q(t(8 * 60), 100))
    assert "stats_stale" not in line.kinds()
    line.step(t(23 * 60 + 10), q(t(8 * 60), 100))
    assert line.kinds().count("stats_stale") == 1


# ---------------------------------------------------------------------- silence and declarations


def test_a_silence_expires_in_evaluate():
    """When a silence runs out, evaluate clears it and says so (with no author)."""
    line = Line()
    line.apply(silence(line.state, until=t(30), by="sam", reason="IVR work", undo=False, now=t(0)))
    line.at(t(29, 59), 100)
    assert line.state.silence is not None
    decision = line.at(t(30), 100)
    assert decision.state.silence is None
    (ended,) = decision.events
    assert isinstance(ended, SilenceEnded)
    assert ended.by == ""


def test_tiers_still_move_while_silenced():
    """A silenced line still rises, so the board shows the truth."""
    line = Line()
    line.apply(silence(line.state, until=t(60), by="sam", reason="drill", undo=False, now=t(0)))
    line.hold(t(0), t(5), 200)
    assert line.state.tier == 1


def test_a_declared_tier_is_a_floor_until_it_expires():
    """A declared tier holds against calm data; at expiry the tier falls by the clear rules."""
    line = Line()
    fw = line.framework
    line.apply(declare(fw, line.state, level=2, until=t(60), by="kim", reason="bills", now=t(0)))
    assert line.state.tier == 2
    for minute in range(1, 60):
        decision = line.at(t(minute), 100)
        assert decision.state.tier == 2
    assert decision.reason == "tier 2 held: declared until 2026-01-05 10:00"
    decision = line.at(t(60), 100)
    assert isinstance(decision.events[0], DeclarationEnded)
    assert decision.state.tier == 1
    assert line.changes()[-1].cause is Cause.DECLARATION_ENDED
    line.hold(t(61), t(70), 100, every=MINUTE)
    assert tiers_of(line) == [(0, 2), (2, 1), (1, 0)]


def test_a_declaration_expiring_without_a_clear_keeps_the_tier():
    """When a declaration ends while its tier's clear does not hold, the tier holds."""
    line = Line()
    fw = line.framework
    line.apply(declare(fw, line.state, level=2, until=t(30), by="kim", reason="", now=t(0)))
    line.hold(t(1), t(40), 260, every=MINUTE)
    assert line.state.tier == 2
    assert line.state.declaration is None


def test_a_declaration_made_out_of_hours_applies_when_the_line_opens():
    """A tier declared overnight is raised at opening, as a declared floor."""
    line = Line(calendar=office_hours())
    line.at(t(9 * 60), 100)  # closes
    fw = line.framework
    line.apply(
        declare(fw, line.state, level=2, until=t(48 * 60), by="kim", reason="bills", now=t(600))
    )
    assert line.state.tier == 0
    opened = line.at(t(23 * 60), 100)
    assert [e.kind for e in opened.events] == ["line_opened", "tier_changed"]
    assert opened.state.tier == 2
    assert line.changes()[-1].cause is Cause.DECLARED


# ---------------------------------------------------------------------- reminders and escalation


def test_reminders_repeat_and_never_burst_after_a_gap():
    """Reminders come every ``repeat_every``; after a long gap one comes, then the rhythm."""
    line = Line(standard(repeat_every=30 * MINUTE))
    entered = at_tier(line, 1)
    assert entered == t(5)
    line.hold(t(6), t(95), 170)
    reminders = [e for e in line.events if isinstance(e, Reminder)]
    assert [(r.number, r.at) for r in reminders] == [(1, t(35)), (2, t(65)), (3, t(95))]
    line.at(t(200), 170)
    line.at(t(200, 15), 170)
    line.hold(t(201), t(230), 170, every=MINUTE)
    reminders = [e for e in line.events if isinstance(e, Reminder)]
    assert [(r.number, r.at) for r in reminders][3:] == [(4, t(200)), (5, t(230))]


def test_escalation_steps_fire_once_each_in_order():
    """Each escalation step fires once, when due, in order."""
    steps = tuple(
        EscalationStep(after=m * MINUTE, responses=(f"escalate_{m}",)) for m in (10, 20, 40)
    )
    line = Line(standard(escalation=steps))
    at_tier(line, 1)
    line.hold(t(6), t(90), 170, every=MINUTE)
    fired = [e for e in line.events if isinstance(e, Escalated)]
    assert [(e.step, e.at, e.responses) for e in fired] == [
        (1, t(15), ("escalate_10",)),
        (2, t(25), ("escalate_20",)),
        (3, t(45), ("escalate_40",)),
    ]


def test_a_long_gap_fires_every_due_escalation_step_at_once():
    """After a gap, every step now due goes out in one evaluation, in order."""
    steps = tuple(EscalationStep(after=m * MINUTE, responses=("page",)) for m in (10, 20, 40))
    line = Line(standard(escalation=steps))
    at_tier(line, 1)
    decision = line.at(t(50), 170)
    assert [e.step for e in decision.events if isinstance(e, Escalated)] == [1, 2, 3]
    assert decision.state.escalation_steps_done == 3
    assert decision.reason.endswith(
        "escalation step 1 due, escalation step 2 due, escalation step 3 due"
    )


def test_acknowledgement_stops_reminders_and_escalation():
    """An acknowledged tier sends no more reminders and its escalation chain stops."""
    steps = (EscalationStep(after=20 * MINUTE, responses=("page",)),)
    line = Line(standard(repeat_every=10 * MINUTE, escalation=steps))
    at_tier(line, 1)
    line.hold(t(6), t(15), 170, every=MINUTE)
    assert line.kinds().count("reminder") == 1
    line.apply(acknowledge(line.framework, line.state, by="sam", note="on it", now=t(16)))
    line.hold(t(16), t(120), 170, every=MINUTE)
    assert line.kinds().count("reminder") == 1
    assert "escalated" not in line.kinds()


def test_a_higher_tier_needs_a_new_acknowledgement():
    """After a rise above the acknowledged tier the reminders start again."""
    line = Line(standard(repeat_every=10 * MINUTE))
    at_tier(line, 1)
    line.apply(acknowledge(line.framework, line.state, by="sam", note="", now=t(6)))
    line.hold(t(6), t(11), 301, every=MINUTE)
    assert line.state.tier == 2
    assert not line.state.acknowledged
    assert line.state.ack is not None
    line.hold(t(12), t(21), 301, every=MINUTE)
    reminders = [e for e in line.events if isinstance(e, Reminder)]
    assert [(r.tier, r.at) for r in reminders] == [(2, t(21))]


def test_falling_keeps_the_acknowledgement_and_calm_clears_it():
    """An acknowledgement covers the tiers below it and is dropped once the line is calm."""
    line = Line()
    at_tier(line, 2)
    line.apply(acknowledge(line.framework, line.state, by="sam", note="", now=t(6)))
    line.hold(t(6), t(16), 200, every=MINUTE)
    assert line.state.tier == 1
    assert line.state.acknowledged
    line.hold(t(17), t(27), 100, every=MINUTE)
    assert line.state.tier == 0
    assert line.state.ack is None


def test_no_reminders_while_silenced():
    """A silenced line's timers wait; when the silence ends one reminder catches up."""
    line = Line(standard(repeat_every=10 * MINUTE))
    at_tier(line, 1)
    line.apply(silence(line.state, until=t(60), by="sam", reason="drill", undo=False, now=t(6)))
    line.hold(t(6), t(59), 170, every=MINUTE)
    assert "reminder" not in line.kinds()
    line.hold(t(60), t(69), 170, every=MINUTE)
    assert [e.at for e in line.events if isinstance(e, Reminder)] == [t(60)]


def test_every_decision_carries_a_reason():
    """Every evaluation explains itself in one sentence, whatever happened."""
    line = Line(standard(repeat_every=10 * MINUTE), calendar=office_hours())
    line.hold(t(0), t(60), 700)
    line.step(t(70), q(t(60), 700))
    line.hold(t(80), t(9 * 60 + 30), 100, every=7 * MINUTE)
    assert all(d.reason and "\n" not in d.reason for d in line.decisions)
    assert T0.tzinfo is not None
