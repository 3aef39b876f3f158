"""A surge through a whole Runtime on a FakeClock becomes one episode with its figures.

The shipped ``scripted`` source feeds a line figures every 30 s; the ``log`` responder
notifies. Nothing is mocked: the samples reach the real SQLite store through the runtime's
poll hook, and the episode is read back from that store.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.episodes import build_episode, find_episodes
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

CONFIG = """
server:
  state_file: {state}
  evaluate_every: 5s
sources:
  feed: {{ type: scripted, interval: 30s, timeout: 1s }}
lines:
  revenues: {{ name: Revenues & Benefits, source: {{ use: feed, avg_wait: 100 }} }}
defaults:
  framework: standard
frameworks:
  standard:
    stale_after: 10m
    stale_alert_after: 20m
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
        for: 1m
        clear: {{ avg_wait: {{ below: 0.8 * target }} }}
        clear_for: 1m
        responses: [notify]
      - level: 2
        name: high
        when: {{ avg_wait: {{ above: 300s }} }}
        for: 1m
        clear: {{ avg_wait: {{ below: 240s }} }}
        clear_for: 1m
        responses: [notify]
responses:
  notify: {{ type: log, message: duty manager please look }}
"""


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.sqlite"))
    rt = Runtime(load_config(path), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    yield rt
    await rt.shutdown()


async def drive(rt: Runtime, minutes: int, avg_wait: float) -> None:
    """Every 30 s: figures in, one evaluation, the due responses run."""
    clock = rt.clock
    src = rt.sources["feed"]
    assert isinstance(clock, FakeClock) and isinstance(src, ScriptedSource)
    assert rt.poller is not None and rt.dispatcher is not None
    for _ in range(minutes * 2):
        clock.advance(30)
        src.push(
            QueueStats(
                line="revenues", at=clock.now(), avg_wait=avg_wait, longest_wait=avg_wait * 2,
                calls_waiting=5, agents_staffed=20, offered=60, answered=50, abandoned=10,
                window=600.0, avg_handle_time=300.0,
            )
        )  # fmt: skip
        await rt.poller.poll("feed")
        rt.evaluate_all(clock.now())
        await rt.dispatcher.run_due()
        await rt.samples.drain()  # the minute's samples go to the store in a worker thread


async def test_a_surge_is_one_episode_with_its_figures_kept_around_it(runtime: Runtime) -> None:
    """Calm 30 min, 20 min at 400 s, then calm: one episode, tier 2, samples only around it."""
    await drive(runtime, 30, 100)
    await drive(runtime, 20, 400)
    await drive(runtime, 40, 100)
    store = runtime.store
    assert store is not None
    [ref] = find_episodes(store)
    assert ref.id == "revenues-1"
    # Figures from 09:30:30 on hold for a minute: the line jumps straight to tier 2.
    assert ref.started_at == T0 + 31 * MIN + timedelta(seconds=30)
    assert [(s.from_tier, s.to_tier) for s in ref.steps] == [(0, 2), (2, 1), (1, 0)]
    assert ref.peak_tier == 2
    assert ref.ended_at is not None
    ep = build_episode(store, ref, runtime.clock.now(), runtime.config)
    assert ep.peak("avg_wait") == 400.0
    assert ep.peak("longest_wait") == 800.0
    assert ep.peak("abandon_rate") == pytest.approx(10 / 60)
    # One sample a minute, from 15 minutes before the rise to 15 minutes after calm.
    kept = [s.at for s in ep.samples]
    assert kept == sorted(set(kept))
    assert kept[0] >= ref.started_at - 15 * MIN
    assert kept[-1] < ref.ended_at + 15 * MIN
    assert len(kept) >= 15 + int((ref.ended_at - ref.started_at) / MIN) + 14
    assert all(b - a <= MIN for a, b in itertools.pairwise(kept))
    everything = store.samples("revenues")
    assert [at for at, _ in everything] == kept  # nothing kept outside the episode's window
    # 60 offered per 10-minute window is 6 a minute, for the episode's minutes.
    minutes = (ref.ended_at - ref.started_at) / MIN
    assert ep.calls("offered") == pytest.approx(6 * minutes, abs=6)
    assert ep.calls("abandoned") == pytest.approx(minutes, abs=1)
    # Erlang C needs agents for 6 calls a minute of 5 minutes at a 180 s target: > 30.
    assert ep.capacity_gap and all(gap > 10 for _, gap in ep.capacity_gap)
    told = [(n.response, n.tier, n.outcome) for n in ep.notifications]
    assert told == [("notify", 2, "ok")]


async def test_the_last_hour_stays_in_memory_for_the_trend(runtime: Runtime) -> None:
    """The ring keeps one sample a minute for an hour, whatever the tier, and nothing older."""
    await drive(runtime, 90, 100)
    recent = runtime.samples.recent("revenues", runtime.clock.now())
    assert 60 <= len(recent) <= 61
    assert runtime.clock.now() - recent[0].at <= timedelta(hours=1)
    assert runtime.store is not None and runtime.store.samples("revenues") == []
