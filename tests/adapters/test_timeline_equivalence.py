"""One timeline, two drivers: the daemon, replay and an every-second reference agree (#10).

Hypothesis generates a config (``stale_after`` below and above the row step, ``for`` and
``clear_for`` from 0 to minutes, step-down on or off, reminders and an escalation step,
opening hours in short spells with bank holidays) and a stream of rows (gaps long and
short, flat runs, floods, flapping around the thresholds), and perhaps a demand calendar
event (a pre-arm, a tightened ``for``, lead-time responses) relative to the start. The
same stream goes to:

* the daemon's real ``Runtime`` on a ``FakeClock`` — rows pushed into its ``scripted``
  source and polled at their instants, the clock moved to each row or to the runtime's own
  next deadline (``Runtime.next_wakeup``), whichever is sooner; what it commits to its
  SQLite store is the record;
* ``risingtide.replay``, from rows in memory and from a CSV read as columns (its fast
  path, which visits only the rows where a condition changes its truth);
* a brute-force reference that evaluates every line at every second with the latest row.

All three must give the same events and the same responses and undos, to the second.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.config.model import Config
from risingtide.domain.demand_calendar import for_line, resolve
from risingtide.domain.model import QueueStats
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state
from risingtide.replay import replay, replay_lines
from risingtide.replay_rows import read_line_rows
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from risingtide.store.codec import encode

LINES = ("council_tax", "waste")
REMINDERS = "repeat: { every: 4m, responses: [notify_duty_manager] }"

CONFIG = """
server: {{ state_file: {state} }}
defaults: {{ target_wait: 180s, framework: standard, source: feed, hours: {hours} }}
calendars:
  spells:
    timezone: Europe/London
    hours: {{ mon-fri: "09:00-09:40, 10:00-10:30, 11:00-12:00", sat: "09:30-10:10" }}
    bank_holidays: england-and-wales
sources:
  feed: {{ type: scripted }}
lines:
  council_tax: {{ name: Council Tax }}
  waste: {{ name: Waste & Recycling }}
frameworks:
  standard:
    stale_after: {stale_after}s
    stale_alert_after: {stale_alert_after}s
    step_down: {step_down}
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
        for: {for1}s
        clear: {{ avg_wait: {{ below: 0.8 * target }} }}
        clear_for: {clear1}s
        responses: [notify_duty_manager, callback_on]
        {repeat}
      - level: 2
        name: high
        when:
          any:
            - {{ avg_wait: {{ above: 300s }} }}
            - all: [{{ abandon_rate: {{ above: 10% }} }}, {{ offered: {{ at_least: 20 }} }}]
        for: {for2}s
        clear: {{ all: [{{ avg_wait: {{ below: 240s }} }}, {{ abandon_rate: {{ below: 8% }} }}] }}
        clear_for: {clear2}s
        responses: [ivr_deflection]
        escalate:
          - {{ after: {escalate}s, responses: [notify_head_of_service] }}
      - level: 3
        name: flood
        when: {{ avg_wait: {{ above: 600s }} }}
        for: {for3}s
        clear: {{ avg_wait: {{ below: 480s }} }}
        clear_for: {clear3}s
        responses: [notify_head_of_service]
responses:
  notify_duty_manager: {{ type: log, message: a line has risen }}
  notify_head_of_service: {{ type: log, message: escalated }}
  callback_on:
    type: http_action
    apply: {{ method: POST, url: "http://127.0.0.1:9/callback/on" }}
    undo: {{ method: POST, url: "http://127.0.0.1:9/callback/off" }}
  ivr_deflection:
    type: http_action
    apply: {{ method: POST, url: "http://127.0.0.1:9/ivr/on" }}
    undo: {{ method: POST, url: "http://127.0.0.1:9/ivr/off" }}
{demand}"""

# A demand calendar event relative to the start: a pre-armed tier 2, a tightened tier 1
# and its own responses at a lead time (issue 11).
DEMAND = """demand:
  - name: Council Tax reminders
    lines: [{lines}]
    start: +{start}s
    for: {length}s
    multiply: 3
    prearm: {{ level: 2, lead: {prearm}s }}
    tighten: {{ level: 1, for: 0s }}
    responses: [notify_head_of_service]
    lead: {lead}s
"""

# A Monday morning, a Saturday, and Christmas Day (a bank holiday: closed all day).
STARTS = (
    datetime(2026, 11, 30, 8, 50, tzinfo=UTC),
    datetime(2026, 12, 5, 9, 20, tzinfo=UTC),
    datetime(2026, 12, 25, 9, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
)


@dataclass(frozen=True)
class Case:
    """One generated config and stream."""

    settings: dict[str, Any]
    rows: list[QueueStats]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    seconds = st.sampled_from([0, 30, 60, 90, 120, 300])
    step = draw(st.sampled_from([30, 60]))
    conf = {
        "hours": draw(st.sampled_from(["always", "spells"])),
        "stale_after": draw(st.sampled_from([20, 45, 90, 240])),  # below and above the step
        "stale_alert_after": draw(st.sampled_from([240, 300])),
        "step_down": draw(st.booleans()),
        "for1": draw(seconds), "for2": draw(seconds), "for3": draw(seconds),
        "clear1": draw(seconds), "clear2": draw(seconds), "clear3": draw(seconds),
        "escalate": draw(st.sampled_from([120, 600])),
        "repeat": draw(st.sampled_from(["", REMINDERS])),
        "demand": draw(st.sampled_from(["", DEMAND])).format(
            lines=draw(st.sampled_from(["council_tax", "council_tax, waste"])),
            start=draw(st.sampled_from([0, 300, 1200])),
            length=draw(st.sampled_from([60, 900, 2400])),
            prearm=draw(st.sampled_from([0, 120, 600])),
            lead=draw(st.sampled_from([0, 300, 2000])),
        ),
    }  # fmt: skip
    start = draw(st.sampled_from(STARTS))
    count = draw(st.integers(min_value=20, max_value=150))
    rows: list[QueueStats] = []
    for line in LINES:
        wait = draw(st.floats(min_value=0, max_value=700))
        skip = 0
        for i in range(count):
            move = draw(st.sampled_from(["hold", "drift", "flap", "flood", "ebb", "gap"]))
            if move == "drift":
                wait = max(0.0, wait + draw(st.floats(min_value=-40, max_value=40)))
            elif move == "flap":  # hover around a threshold
                wait = draw(st.sampled_from([175.0, 185.0, 235.0, 245.0, 295.0, 305.0, 605.0]))
            elif move == "flood":
                wait = draw(st.floats(min_value=300, max_value=900))
            elif move == "ebb":
                wait = draw(st.floats(min_value=0, max_value=150))
            elif move == "gap":
                skip = draw(st.integers(min_value=1, max_value=12))
            if skip:
                skip -= 1
                continue
            offered = draw(st.integers(min_value=0, max_value=60))
            abandoned = draw(st.integers(min_value=0, max_value=offered)) if offered else 0
            at = start + timedelta(seconds=i * step)
            rows.append(QueueStats(line=line, at=at, avg_wait=round(wait), longest_wait=wait,
                                   offered=offered, abandoned=abandoned))  # fmt: skip
    rows.sort(key=lambda r: (r.at, LINES.index(r.line)))
    for line in LINES:  # every line starts with the stream, as the daemon starts them all
        if not any(r.line == line and r.at == start for r in rows):
            rows.insert(0, QueueStats(line=line, at=start, avg_wait=60.0))
    rows.sort(key=lambda r: (r.at, LINES.index(r.line)))
    return Case(conf, rows)


def load(case: Case, folder: Path) -> Config:
    path = folder / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=folder / "state.sqlite", **case.settings))
    return load_config(path)


def record(events: Any, orders: Any) -> list[tuple[Any, ...]]:
    """Events and orders as comparable rows, in time order, line by line."""
    out = [(e.at, e.line, "event", _plain(encode(e))) for e in events]
    out += [(o.at, o.line, "order", _plain(encode(o))) for o in orders]
    out.sort(key=lambda r: (r[0], r[1], r[2]))
    return out


def _plain(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in data.items()))


def by_replay(config: Config, rows: list[QueueStats]) -> list[tuple[Any, ...]]:
    result = replay(config, rows, started=rows[0].at)  # the daemon starts at the first row
    return record(result.events, result.orders)


def by_columns(
    config: Config, rows: list[QueueStats], folder: Path, *, jobs: int = 1
) -> list[tuple[Any, ...]]:
    """Replay's fast path: the rows written to a CSV, read back as numpy columns."""
    path = folder / "stats.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("time,line,avg_wait,longest_wait,offered,abandoned\n")
        for r in rows:
            cells = (r.avg_wait, r.longest_wait, r.offered, r.abandoned)
            figures = ",".join("" if v is None else str(v) for v in cells)
            out.write(f"{r.at:%Y-%m-%dT%H:%M:%SZ},{r.line},{figures}\n")
    lines, count = read_line_rows(path)
    result = replay_lines(config, lines, count, jobs=jobs, started=rows[0].at)
    return record(result.events, result.orders)


def by_every_second(config: Config, rows: list[QueueStats]) -> list[tuple[Any, ...]]:
    """The reference: every line evaluated at every second with its latest row."""
    states = {lid: initial_state(lid, lc.framework) for lid, lc in config.lines.items()}
    demand = {lid: for_line(resolve(config.demand, rows[0].at), lid) for lid in config.lines}
    latest: dict[str, QueueStats] = {}
    events: list[Any] = []
    orders: list[Any] = []
    pending = iter(rows)
    upcoming = next(pending, None)
    now, end = rows[0].at, rows[-1].at
    while now <= end:
        while upcoming is not None and upcoming.at <= now:
            latest[upcoming.line] = upcoming
            upcoming = next(pending, None)
        for lid, lc in config.lines.items():
            if lid not in latest:
                continue
            decision = evaluate(
                lc.framework,
                states[lid],
                latest[lid],
                now,
                calendar=lc.calendar,
                demand=demand[lid],
            )
            states[lid], planned = plan(lc.framework, config.switches, states[lid], decision)
            events.extend(decision.events)
            orders.extend(planned)
        now += timedelta(seconds=1)
    return record(events, orders)


def by_daemon(config: Config, rows: list[QueueStats]) -> list[tuple[Any, ...]]:
    return asyncio.run(_daemon(config, rows))


async def _daemon(config: Config, rows: list[QueueStats]) -> list[tuple[Any, ...]]:
    clock = FakeClock(rows[0].at)
    rt = Runtime(config, clock=clock)
    await rt.start(serve_http=False, schedule=False)
    assert rt.store is not None and rt.poller is not None and rt.dispatcher is not None
    rt.dispatcher.set_responders({}, {}, config.directory)  # record, never send
    committed_events: list[Any] = []
    committed_orders: list[Any] = []
    real_commit = rt.store.commit

    def commit(states: Any, events: Any, orders: Any) -> None:
        real_commit(states, events, orders)  # the real durable write, then note what it held
        committed_events.extend(events)
        committed_orders.extend(orders)

    rt.store.commit = commit  # type: ignore[method-assign]
    source = rt.sources["feed"]
    assert isinstance(source, ScriptedSource)
    try:
        for now, arriving in _instants(rt, rows):
            clock.set(now)
            if arriving:
                for row in arriving:
                    source.push(row)
                await rt.poller.poll("feed")
            rt.run_due(now)
    finally:
        await rt.shutdown()
    return record(committed_events, committed_orders)


def _instants(rt: Runtime, rows: list[QueueStats]) -> Iterator[tuple[datetime, list[QueueStats]]]:
    """Each instant the daemon wakes: a row arrives or its next deadline falls."""
    end = rows[-1].at
    i = 0
    while True:
        wake = rt.next_wakeup()
        next_row = rows[i].at if i < len(rows) else None
        candidates = [t for t in (wake, next_row) if t is not None]
        if not candidates or min(candidates) > end:
            return
        now = min(candidates)
        arriving = []
        while i < len(rows) and rows[i].at == now:
            arriving.append(rows[i])
            i += 1
        yield now, arriving


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_daemon_replay_and_every_second_reference_tell_the_same_story(case: Case) -> None:
    """The same events, responses and undos at the same instants from all three drivers."""
    with tempfile.TemporaryDirectory() as folder:
        config = load(case, Path(folder))
        reference = by_every_second(config, case.rows)
        assert by_replay(config, case.rows) == reference
        assert by_columns(config, case.rows, Path(folder)) == reference
        assert by_daemon(config, case.rows) == reference


def test_a_flood_with_a_gap_tells_the_same_story_everywhere() -> None:
    """A fixed case that reaches rises, a stale alert, an escalation and falls, so the
    comparison above is known to compare something."""
    case = _fixed_case()
    with tempfile.TemporaryDirectory() as folder:
        config = load(case, Path(folder))
        reference = by_every_second(config, case.rows)
        kinds = {dict(r[3])["kind"] for r in reference if r[2] == "event"}
        assert {"'tier_changed'", "'stats_stale'", "'stats_fresh'", "'escalated'"} <= kinds
        assert by_replay(config, case.rows) == reference
        assert by_columns(config, case.rows, Path(folder), jobs=2) == reference
        assert by_daemon(config, case.rows) == reference


def _fixed_case() -> Case:
    """A flood with a long gap in the middle: rises, a stale alert, then a fall."""
    start = STARTS[0]
    rows = [
        QueueStats(line=line, at=start + timedelta(minutes=m), avg_wait=w, offered=30, abandoned=1)
        for line in LINES
        for m, w in [(i, 400.0 if 3 <= i < 20 else 60.0) for i in range(40)]
        if not 8 <= m < 16
    ]
    rows.sort(key=lambda r: (r.at, LINES.index(r.line)))
    conf = {"hours": "always", "stale_after": 90, "stale_alert_after": 240, "step_down": True,
            "for1": 60, "for2": 60, "for3": 30, "clear1": 60, "clear2": 60, "clear3": 60,
            "escalate": 120, "repeat": "", "demand": ""}  # fmt: skip
    return Case(conf, rows)


def test_a_demand_event_tells_the_same_story_everywhere() -> None:
    """A pre-arm, a lead-time response and a tightened ``for`` from the demand calendar come
    at the same instants from the daemon, replay and the reference."""
    case = _fixed_case()
    demand = DEMAND.format(lines="council_tax", start=1200, length=600, prearm=300, lead=600)
    case = Case({**case.settings, "demand": demand}, case.rows)
    with tempfile.TemporaryDirectory() as folder:
        config = load(case, Path(folder))
        reference = by_every_second(config, case.rows)
        kinds = {dict(r[3])["kind"] for r in reference if r[2] == "event"}
        assert {"'declared'", "'demand_event_due'"} <= kinds
        triggers = {dict(r[3])["trigger"] for r in reference if r[2] == "order"}
        assert "'demand_event_due'" in triggers
        assert by_replay(config, case.rows) == reference
        assert by_daemon(config, case.rows) == reference
