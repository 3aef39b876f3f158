"""The demand calendar live and in replay: a pre-armed tier declared at start − lead by the
event's name, lifted at the end, and the event's own responses sent once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats, ResponseOrder
from risingtide.replay import replay
from risingtide.runtime import Runtime
from risingtide.sources.csv_file import read_rows
from risingtide.sources.scripted import ScriptedSource

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CONFIG = """
server: {{ state_file: {state} }}
sources:
  feed: {{ type: scripted, interval: 1m }}
lines:
  council_tax: {{ name: Council Tax, source: feed }}
defaults: {{ framework: standard }}
frameworks:
  standard:
    stale_after: 10m
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
        responses: [ivr_on]
responses:
  notify: {{ type: log, message: look }}
  ivr_on: {{ type: log, message: ivr on }}
  page_surge_staff: {{ type: log, message: surge staff please }}
demand:
  - name: Council Tax reminders
    lines: [council_tax]
    start: {start}
    {until}
    multiply: 3
    prearm: {{ level: 2, lead: 2m }}
    responses: [page_surge_staff]
    lead: 5m
"""


def write(tmp_path: Path, start: str, until: str) -> Path:
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.sqlite", start=start, until=until))
    return path


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = load_config(write(tmp_path, "+10m", "for: 10m"))
    rt = Runtime(config, clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    yield rt
    await rt.shutdown()


async def test_a_prearmed_tier_is_declared_before_the_event_and_lifts_itself(
    runtime: Runtime,
) -> None:
    """On a fake clock: the daemon's own deadlines bring the lead-time page at +5m, the
    declared tier 2 at +8m (by the event's name) and its end at +20m, with calm figures."""
    assert runtime.store is not None and runtime.poller is not None
    clock = runtime.clock
    assert isinstance(clock, FakeClock)
    source = runtime.sources["feed"]
    assert isinstance(source, ScriptedSource)
    orders: list[ResponseOrder] = []
    real_commit = runtime.store.commit

    def commit(states: Any, events: Any, planned: Any) -> None:
        real_commit(states, events, planned)  # the real write, then note the orders
        orders.extend(planned)

    runtime.store.commit = commit  # type: ignore[method-assign]
    for minute in range(0, 26):
        now = T0 + timedelta(minutes=minute)
        clock.set(now)
        source.push(QueueStats(line="council_tax", at=now, avg_wait=60.0))
        await runtime.poller.poll("feed")
        runtime.run_due(now)
        if minute == 12:
            assert runtime.states["council_tax"].tier == 2
    history = list(reversed(runtime.store.history(line="council_tax", limit=500)))
    declared = [e for e in history if e.kind == "declared"]
    assert [(e.at, e.data["by"], e.data["level"]) for e in declared] == [
        (T0 + timedelta(minutes=8), "Council Tax reminders", 2)
    ]
    ended = [e for e in history if e.kind == "declaration_ended"]
    assert [e.at for e in ended] == [T0 + timedelta(minutes=20)]
    due = [e for e in history if e.kind == "demand_event_due"]
    assert [e.at for e in due] == [T0 + timedelta(minutes=5)]
    paged = [o for o in orders if o.response == "page_surge_staff"]
    assert [(o.at, o.trigger) for o in paged] == [(T0 + timedelta(minutes=5), "demand_event_due")]
    assert "ivr_on" in {o.response for o in orders if o.at == T0 + timedelta(minutes=8)}
    assert runtime.states["council_tax"].tier == 0
    assert runtime.states["council_tax"].declaration is None


def test_replay_honours_the_calendar_from_a_csv(tmp_path: Path) -> None:
    """Replaying a CSV with a dated event: the declared floor appears at start − lead and
    lifts at the end, and the lead-time response is among the orders."""
    config = load_config(
        write(tmp_path, '"2026-06-01T10:06:00+01:00"', 'end: "2026-06-01T10:10:00+01:00"')
    )
    rows = list(read_rows(Path(__file__).parents[1] / "data" / "replay-council-tax.csv"))
    result = replay(config, rows)
    declared = [e for e in result.events if e.kind == "declared"]
    assert [(e.at, e.by) for e in declared] == [  # type: ignore[union-attr]
        (datetime(2026, 6, 1, 9, 4, tzinfo=UTC), "Council Tax reminders")
    ]
    ended = [e for e in result.events if e.kind == "declaration_ended"]
    assert [e.at for e in ended] == [datetime(2026, 6, 1, 9, 10, tzinfo=UTC)]
    raised = [e for e in result.events if e.kind == "tier_changed" and e.at == declared[0].at]
    assert raised and raised[0].to_tier == 2  # type: ignore[union-attr]
    paged = [o for o in result.orders if o.response == "page_surge_staff"]
    assert [o.at for o in paged] == [datetime(2026, 6, 1, 9, 1, tzinfo=UTC)]


def test_replay_leaves_out_events_relative_to_a_daemon_start_unless_given_one(
    tmp_path: Path,
) -> None:
    """``start: +10m`` belongs to a live demo: ``risingtide replay`` (no ``started``) leaves
    it out; with ``started`` it is placed after it, as the daemon would."""
    config = load_config(write(tmp_path, "+10m", "for: 10m"))
    rows = list(read_rows(Path(__file__).parents[1] / "data" / "replay-council-tax.csv"))
    assert not [e for e in replay(config, rows).events if e.kind == "declared"]
    started = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    declared = [e for e in replay(config, rows, started=started).events if e.kind == "declared"]
    assert [e.at for e in declared] == [started + timedelta(minutes=8)]


async def test_a_restart_does_not_page_or_prearm_again(tmp_path: Path) -> None:
    """The calendar's actions are remembered in the stored line state: a daemon restarted
    during the event neither pages the surge staff nor declares the tier a second time."""
    config = load_config(
        write(tmp_path, '"2026-01-05T09:10:00+00:00"', 'end: "2026-01-05T09:40:00+00:00"')
    )
    kinds: list[str] = []
    for minute in (9, 20):  # after both lead times; then again after a restart
        now = T0 + timedelta(minutes=minute)
        rt = Runtime(config, clock=FakeClock(now))
        await rt.start(serve_http=False, schedule=False)
        assert rt.store is not None
        rt.latest["council_tax"] = QueueStats(line="council_tax", at=now, avg_wait=60.0)
        rt.evaluate_all(now)
        kinds.extend(e.kind for e in rt.store.history(line="council_tax", since=now, limit=50))
        await rt.shutdown()
    assert kinds.count("declared") == 1
    assert kinds.count("demand_event_due") == 1
