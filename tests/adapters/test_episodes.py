"""Episodes read back from a real SQLite store's history and kept samples."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import (
    Acknowledged,
    Action,
    Cause,
    Declared,
    ResponseOrder,
    TierChanged,
)
from risingtide.episodes import (
    build_episode,
    episode_id,
    find_episode,
    find_episodes,
    parse_episode_id,
)
from risingtide.samples import Sample
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DEMO = Path(__file__).parents[2] / "config" / "rising-tide.yaml"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An open store on a fresh file."""
    with Store(tmp_path / "state.sqlite", FakeClock(T0)) as s:
        yield s


def change(at: datetime, a: int, b: int, episode: int, line: str = "revenues") -> TierChanged:
    cause = Cause.RAISED if b > a else Cause.LOWERED
    return TierChanged(line, at, a, b, cause, f"tier {a} to {b} because", episode)


def order(
    name: str, action: Action, at: datetime, episode: int = 1, tier: int = 1
) -> ResponseOrder:
    key = f"revenues/{episode}/tier_changed/{tier}/0/{name}/{action.value}"
    return ResponseOrder(key, "revenues", name, action, tier, episode, "tier_changed", at, "why")


def run(store: Store, o: ResponseOrder, at: datetime, ok: bool = True) -> None:
    """Plan ``o`` and record its outcome at ``at`` as the dispatcher would."""
    store.commit([], [], [o])
    if ok:
        store.record_success(o.key, "logged for Asha Patel", at)
    else:
        store.record_failure(o.key, "HTTP 500", "http_5xx", at, None)


def samples(store: Store, start: datetime, waits: list[float], **figures: object) -> None:
    rows = []
    for i, wait in enumerate(waits):
        s = Sample(at=start + i * MIN, avg_wait=wait, window=600.0, **figures)  # type: ignore[arg-type]
        rows.append(("revenues", s.at, s.figures()))
    store.write_samples(rows)


def story(store: Store) -> None:
    """Revenues rises at 09:10 to 1, to 2 at 09:20, back to 1 at 09:40 and calm at 09:50."""
    t = T0 + 10 * MIN
    store.commit([], [change(t, 0, 1, 1), change(t + 10 * MIN, 1, 2, 1)], [])
    store.commit([], [Acknowledged("revenues", t + 4 * MIN, 1, "Priya Shah", "on it", 1)], [])
    store.commit([], [change(t + 30 * MIN, 2, 1, 1), change(t + 40 * MIN, 1, 0, 1)], [])
    run(store, order("notify", Action.APPLY, t), t + timedelta(seconds=5))
    run(store, order("pager", Action.APPLY, t), t + timedelta(seconds=6), ok=False)
    run(store, order("ivr", Action.APPLY, t + 10 * MIN, tier=2), t + 10 * MIN)
    run(store, order("ivr", Action.UNDO, t + 30 * MIN, tier=2), t + 30 * MIN)
    # 15 minutes before the rise at 100 s, the episode at 400 s, 15 minutes after at 100 s.
    samples(store, T0 - 5 * MIN, [100.0] * 15 + [400.0] * 40 + [100.0] * 15, offered=60,
            answered=50, abandoned=10, agents_staffed=20, agents_needed=25)  # fmt: skip


def test_an_episode_runs_from_its_first_rise_to_calm(store: Store) -> None:
    """The episode's bounds, peak tier and minutes in each tier come from its tier changes."""
    story(store)
    [ref] = find_episodes(store)
    assert ref.id == "revenues-1"
    assert ref.started_at == T0 + 10 * MIN
    assert ref.ended_at == T0 + 50 * MIN
    assert ref.peak_tier == 2
    assert ref.minutes_in_tiers(T0 + 2 * 60 * MIN) == {1: 20.0, 2: 20.0}
    assert [(s.from_tier, s.to_tier) for s in ref.steps] == [(0, 1), (1, 2), (2, 1), (1, 0)]


def test_episodes_are_listed_newest_first_and_filtered_by_when_they_began(store: Store) -> None:
    """A second episode of another line lists first; ``since`` and ``until`` bound the rise."""
    story(store)
    later = T0 + 3 * 60 * MIN
    store.commit([], [change(later, 0, 3, 7, line="waste")], [])
    assert [r.id for r in find_episodes(store)] == ["waste-7", "revenues-1"]
    assert [r.id for r in find_episodes(store, until=later)] == ["revenues-1"]
    assert [r.id for r in find_episodes(store, since=T0 + 11 * MIN)] == ["waste-7"]
    assert [r.id for r in find_episodes(store, line="revenues")] == ["revenues-1"]
    assert find_episodes(store, limit=1)[0].ended_at is None  # waste is still raised


def test_the_story_has_acknowledgements_notifications_and_switches(store: Store) -> None:
    """Time to first ack, who was told and whether it arrived, and each switch's waits."""
    story(store)
    ref = find_episode(store, "revenues", 1)
    assert ref is not None
    ep = build_episode(store, ref, T0 + 2 * 60 * MIN)
    assert ep.time_to_first_ack == 240.0
    assert ep.first_ack is not None and ep.first_ack.by == "Priya Shah"
    sent = {(n.response, n.outcome, n.detail) for n in ep.notifications}
    assert sent == {("notify", "ok", "logged for Asha Patel"), ("pager", "dead", "HTTP 500")}
    [ivr] = ep.switches
    assert (ivr.response, ivr.applied_at, ivr.undone_at) == ("ivr", T0 + 20 * MIN, T0 + 40 * MIN)
    # Five minutes at 100 s and ten at 400 s before it; 400 s throughout after.
    assert ivr.wait_before == 300.0 and ivr.wait_after == 400.0


def test_figures_come_from_the_kept_samples(store: Store) -> None:
    """Peak wait, the capacity gap and the calls during the episode come from the samples."""
    story(store)
    ref = find_episode(store, "revenues", 1)
    assert ref is not None
    ep = build_episode(store, ref, T0 + 2 * 60 * MIN)
    assert ep.peak("avg_wait") == 400.0
    assert {gap for _, gap in ep.capacity_gap} == {5}
    # 60 offered per 600 s window is 6 a minute, over the episode's 40 minutes.
    assert ep.calls("offered") == 240
    assert ep.calls("abandoned") == 40
    assert len(ep.samples) == 70


def test_a_switch_is_compared_with_the_quarter_hour_before_and_after(store: Store) -> None:
    """The wait falling after the IVR message shows in its before and after averages."""
    t = T0 + 10 * MIN
    store.commit([], [change(t, 0, 1, 1)], [])
    run(store, order("ivr_deflection", Action.APPLY, t), t)
    samples(store, t - 15 * MIN, [300.0] * 15 + [120.0] * 15)
    ref = find_episode(store, "revenues", 1)
    assert ref is not None
    # Still on (no undo yet): only the config can say it is a switch.
    ep = build_episode(store, ref, t + 30 * MIN, load_config(DEMO))
    [ivr] = ep.switches
    assert (ivr.wait_before, ivr.wait_after, ivr.undone_at) == (300.0, 120.0, None)
    assert (ivr.channel, ep.name, ep.target_wait) == ("simulator", "Revenues & Benefits", 180.0)
    assert ep.thresholds == {1: 180.0, 2: 300.0, 3: 600.0, 4: 900.0}


def test_a_declared_tier_starts_an_episode_with_its_declaration(store: Store) -> None:
    """A declaration that raised the line is in the episode's story with who declared it."""
    t = T0 + 10 * MIN
    declared = Declared("revenues", t, 2, t + 60 * MIN, "Priya Shah", "bills go out")
    store.commit([], [declared, change(t, 0, 2, 1)], [])
    ref = find_episode(store, "revenues", 1)
    assert ref is not None
    ep = build_episode(store, ref, t + MIN)
    assert [(n.kind, n.by) for n in ep.notes] == [("declared", "Priya Shah")]
    assert "bills go out" in ep.notes[0].text


def test_lessons_learned_belong_to_their_episode(store: Store) -> None:
    """A lessons_learned record for episode 1 shows on it, and not on episode 2."""
    story(store)
    store.commit([], [change(T0 + 90 * MIN, 0, 1, 2)], [])
    store.append_history(
        [("revenues", "lessons_learned", T0 + 95 * MIN, None,
          {"episode": 1, "by": "Priya Shah", "text": "Open the IVR message sooner"})]
    )  # fmt: skip
    one, two = find_episode(store, "revenues", 1), find_episode(store, "revenues", 2)
    assert one is not None and two is not None
    now = T0 + 2 * 60 * MIN
    assert [n.text for n in build_episode(store, one, now).lessons] == [
        "Open the IVR message sooner"
    ]
    assert build_episode(store, two, now).lessons == ()


def test_episode_ids_round_trip_and_refuse_anything_else() -> None:
    """``<line>-<n>`` parses back; a line with dashes keeps them; junk is None."""
    assert parse_episode_id(episode_id("council-tax", 12)) == ("council-tax", 12)
    for bad in ("revenues", "revenues-0", "revenues-x", "Rev-1", "../etc-1", "a-1234567890"):
        assert parse_episode_id(bad) is None, bad
