"""Invariants of the engine and the planner over random stats streams (hypothesis).

Each stream mixes fresh readings from a random walk, delayed (possibly stale) readings,
repeated old readings, missing readings (None) and out-of-order readings, at random time
steps. The tests track, independently of the engine, which evaluations were fresh and
which conditions held, and check every tier change against that record.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from engine_helpers import LINE, SWITCHES, q, standard, t
from hypothesis import event, given, settings
from hypothesis import strategies as st

from risingtide.domain.commands import (
    CommandRejected,
    acknowledge,
    clear_declaration,
    declare,
    lift_silence,
    silence,
)
from risingtide.domain.model import (
    Action,
    Cause,
    Decision,
    Framework,
    LineState,
    QueueStats,
    ResponseOrder,
    TierChanged,
)
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state

SECONDS = st.sampled_from([0, 30, 60, 120, 300, 600])

# One reading: (seconds since the previous evaluation, what the source gives, how the
# average wait moves, abandoned calls per 100 offered). The wait mostly drifts and now and
# then jumps to a new level, so streams dwell in every tier long enough to rise and fall.
MOVE = st.one_of(
    st.tuples(st.just("by"), st.integers(-25, 25)),
    st.tuples(st.just("to"), st.sampled_from([0, 100, 170, 200, 260, 350, 550, 650, 800, 950])),
)
READING = st.tuples(
    st.integers(1, 120),
    st.sampled_from(["fresh"] * 12 + ["delayed", "repeat", "none", "old", "unknown"]),
    MOVE,
    st.sampled_from([0, 2, 5, 12, 20]),
)


@st.composite
def frameworks(draw: st.DrawFn, durations: st.SearchStrategy[int] = SECONDS) -> Framework:
    """The standard 4-tier framework with random for/clear durations and step-down rule."""
    for_ = tuple(timedelta(seconds=draw(durations)) for _ in range(4))
    clear_for = tuple(timedelta(seconds=draw(durations)) for _ in range(4))
    return standard(step_down=draw(st.booleans()), for_=for_, clear_for=clear_for)


@dataclass
class Record:
    """What the test saw at one evaluation, computed without the engine."""

    now: datetime
    fresh: bool
    neutral: bool  # out-of-order stats: neither fresh nor stale
    when: tuple[bool, ...]
    clear: tuple[bool, ...]


@dataclass
class Stream:
    """Turns drawn readings into (now, stats) pairs and keeps the independent record."""

    framework: Framework
    now: datetime = field(default_factory=lambda: t(0))
    wait: float = 150.0
    last: QueueStats | None = None
    last_seen: datetime | None = None
    records: list[Record] = field(default_factory=list)

    def next(
        self, reading: tuple[int, str, tuple[str, int], int]
    ) -> tuple[datetime, QueueStats | None]:
        """Advance time and produce this evaluation's stats."""
        seconds, kind, (how, amount), abandoned = reading
        self.now += timedelta(seconds=seconds)
        self.wait = float(amount) if how == "to" else min(1500.0, max(0.0, self.wait + amount))
        stats: QueueStats | None
        if kind == "fresh":
            stats = q(self.now, self.wait, offered=100, abandoned=abandoned)
        elif kind == "unknown":
            stats = QueueStats(line=LINE, at=self.now, calls_waiting=3)
        elif kind == "delayed":
            stats = q(self.now - timedelta(seconds=3 * seconds), self.wait)
        elif kind == "repeat":
            stats = self.last
        elif kind == "old":
            stats = q(self.now - timedelta(hours=1), 1500.0)
        else:
            stats = None
        self._record(stats)
        if stats is not None and (self.last is None or stats.at >= self.last.at):
            self.last = stats
        return self.now, stats

    def _record(self, stats: QueueStats | None) -> None:
        tiers = self.framework.tiers
        neutral = stats is not None and self.last_seen is not None and stats.at < self.last_seen
        fresh = (
            stats is not None and not neutral and self.now - stats.at <= self.framework.stale_after
        )
        if stats is not None and not neutral:
            self.last_seen = stats.at
        when = tuple(fresh and stats is not None and x.when.holds(stats) for x in tiers)
        clear = tuple(fresh and stats is not None and x.clear.holds(stats) for x in tiers)
        self.records.append(Record(self.now, fresh, neutral, when, clear))


def held_since(records: list[Record], holds: int, *, kind: str, since: datetime) -> datetime | None:
    """When the condition (``when``/``clear`` of tier ``holds``) last started to hold at every
    relevant evaluation up to the latest one, looking no further back than ``since``.

    For both, stale evaluations are gaps that neither break nor start the run (only fresh
    figures do). Out-of-order evaluations are ignored for both. None when it does not hold
    now.
    """
    start: datetime | None = None
    for r in reversed(records):
        if r.now < since:
            break
        if r.neutral:
            continue
        if not r.fresh:
            continue
        ok = r.when[holds] if kind == "when" else r.clear[holds]
        if not ok:
            break
        start = r.now
    return start


def check_change(
    fw: Framework, records: list[Record], change: TierChanged, entered: datetime
) -> None:
    """A tier change is justified by the independent record."""
    latest = records[-1]
    if change.cause is Cause.RAISED:
        level = change.to_tier
        assert latest.fresh, "a rise needs fresh data"
        start = held_since(records, level - 1, kind="when", since=t(-1))
        assert start is not None, f"tier {level} entry condition does not hold"
        assert change.at - start >= fw.tiers[level - 1].for_, "rise before its for: elapsed"
    elif change.cause in (Cause.LOWERED, Cause.DECLARATION_ENDED):
        level = change.from_tier
        assert latest.fresh, "missing or stale data lowered a tier"
        start = held_since(records, level - 1, kind="clear", since=entered)
        assert start is not None, f"tier {level} clear condition does not hold"
        assert change.at - start >= fw.tiers[level - 1].clear_for, "fall before clear_for"
        if fw.step_down:
            assert change.to_tier == change.from_tier - 1, "step-down fell more than one tier"


@settings(max_examples=200, deadline=None)
@given(fw=frameworks(), readings=st.lists(READING, min_size=40, max_size=250))
def test_every_tier_change_is_justified_by_the_data(fw, readings):
    """Tiers stay in range, rise only after ``for``, fall only after ``clear_for`` on fresh data."""
    stream = Stream(fw)
    state = initial_state(LINE, fw)
    entered = t(0)
    for reading in readings:
        now, stats = stream.next(reading)
        decision = evaluate(fw, state, stats, now)
        assert 0 <= decision.state.tier <= fw.max_level
        assert decision.reason
        changes = [e for e in decision.events if isinstance(e, TierChanged)]
        # One change per evaluation, but for a fall that lands in a tier whose clear_for
        # is 0 with its clear holding: the next step down is due at the same instant.
        for before, after in itertools.pairwise(changes):
            assert before.to_tier < before.from_tier and after.to_tier < after.from_tier
            assert fw.tiers[after.from_tier - 1].clear_for == timedelta(0)
        previous = state.tier
        for change in changes:
            assert change.from_tier == previous
            previous = change.to_tier
            check_change(fw, stream.records, change, entered)
            event("rose" if change.to_tier > change.from_tier else "fell")
            entered = now
        if not stream.records[-1].fresh:
            assert decision.state.tier >= state.tier, "stale data lowered a tier"
            assert decision.state.tier == state.tier, "stale data changed a tier"
        state = decision.state


@settings(max_examples=80, deadline=None)
@given(
    fw=frameworks(st.sampled_from([30, 60, 120, 300, 600])),
    level=st.integers(1, 4),
    around_clear=st.booleans(),
    period=st.integers(1, 20),
    gap=st.integers(1, 20),
    steps=st.integers(10, 400),
)
def test_a_hovering_value_cannot_flap_faster_than_the_durations_allow(
    fw, level, around_clear, period, gap, steps
):
    """A wait alternating just above and below a threshold makes few transitions."""
    entry = (180.0, 300.0, 600.0, 900.0)
    clear = (144.0, 240.0, 480.0, 720.0)
    threshold = clear[level - 1] if around_clear else entry[level - 1]
    state = initial_state(LINE, fw)
    if around_clear:  # start at the tier whose clear threshold the value hovers around
        state = replace(state, tier=level, entered_at=t(0), episode=1)
    now = t(0)
    transitions = 0
    for i in range(steps):
        now += timedelta(seconds=gap)
        value = threshold + (1 if (i // period) % 2 == 0 else -1)
        decision = evaluate(fw, state, q(now, value), now)
        transitions += sum(1 for e in decision.events if isinstance(e, TierChanged))
        state = decision.state
    event(f"transitions: {min(transitions, 3)}{'+' if transitions > 3 else ''}")
    shortest = min(min(x.for_, x.clear_for) for x in fw.tiers)
    assert transitions <= (now - t(0)) / shortest + 1


COMMAND = st.sampled_from(["ack", "silence", "silence_undo", "lift", "declare", "clear_decl"])


@settings(max_examples=200, deadline=None)
@given(
    fw=frameworks(),
    actions=st.lists(
        st.one_of(READING, st.tuples(COMMAND, st.integers(1, 4), st.integers(1, 120))),
        min_size=40,
        max_size=250,
    ),
)
def test_the_planner_applies_and_undoes_each_switch_at_most_once(fw, actions):
    """Switches alternate apply/undo, ``live`` stays within ``switches``, calm leaves none on."""
    stream = Stream(fw)
    state: LineState = initial_state(LINE, fw)
    outstanding: set[str] = set()
    keys: set[str] = set()
    for action in actions:
        decision: Decision | None
        if isinstance(action[0], int):
            now, stats = stream.next(action)
            decision = evaluate(fw, state, stats, now)
        else:
            stream.now += timedelta(seconds=1)
            decision = command(fw, state, action, stream.now)
        if decision is None:
            continue
        state, orders = plan(fw, SWITCHES, state, decision)
        check_orders(orders, outstanding, keys)
        assert state.live <= SWITCHES
        assert state.live == outstanding
        if state.silence is not None:
            assert all(o.action is Action.UNDO for o in orders)
        fell_to_calm = any(
            isinstance(e, TierChanged) and e.to_tier == 0 and e.from_tier > 0
            for e in decision.events
        )
        if fell_to_calm:
            event("fell to calm")
            assert state.live == frozenset()


def check_orders(orders: tuple[ResponseOrder, ...], outstanding: set[str], keys: set[str]) -> None:
    """Each switch is applied only when off and undone only when on; keys never repeat."""
    for order in orders:
        assert order.key not in keys, f"duplicate key {order.key}"
        keys.add(order.key)
        if order.response not in SWITCHES:
            assert order.action is Action.APPLY
            continue
        if order.action is Action.APPLY:
            assert order.response not in outstanding, f"{order.response} applied twice"
            outstanding.add(order.response)
        else:
            assert order.response in outstanding, f"{order.response} undone while off"
            outstanding.discard(order.response)


def command(
    fw: Framework, state: LineState, action: tuple[str, int, int], now: datetime
) -> Decision | None:
    """Run one duty-manager command, or None when the engine rightly rejects it."""
    name, level, minutes = action
    until = now + timedelta(minutes=minutes)
    try:
        if name == "ack":
            return acknowledge(fw, state, by="sam", note="", now=now)
        if name == "silence":
            return silence(state, until=until, by="sam", reason="", undo=False, now=now)
        if name == "silence_undo":
            return silence(state, until=until, by="sam", reason="", undo=True, now=now)
        if name == "lift":
            return lift_silence(state, by="sam", now=now)
        if name == "declare":
            return declare(fw, state, level=level, until=until, by="kim", reason="", now=now)
        return clear_declaration(fw, state, by="kim", now=now)
    except CommandRejected:
        return None
