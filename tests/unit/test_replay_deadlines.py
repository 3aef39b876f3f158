"""Replay decides at the daemon's instants: rows, and the engine's own deadlines (issue #10).

Each test is one of the four disagreements found when replay was tried on real CSVs: a
line closing with no row at closing time (A), ``stale_after`` shorter than the row step (B),
a stale alert stamped at the end of a gap instead of when it fell due (C), and timers that
resolved only at row times (D).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.config import load_config
from risingtide.domain.model import (
    Cause,
    LineClosed,
    LineOpened,
    QueueStats,
    StatsStale,
    TierChanged,
)
from risingtide.replay import replay

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
server: {{ state_file: {state} }}
defaults: {{ target_wait: 180s, framework: standard, source: feed, hours: {hours} }}
calendars:
  office:
    timezone: Europe/London
    hours: {{ mon-fri: "08:00-18:00" }}
    bank_holidays: england-and-wales
sources:
  feed: {{ type: scripted }}
lines:
  council_tax: {{ name: Council Tax }}
frameworks:
  standard:
    stale_after: {stale_after}
    stale_alert_after: 5m
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
        for: {for_}
        clear: {{ avg_wait: {{ below: 0.8 * target }} }}
        clear_for: 2m
        responses: [notify_duty_manager, callback_on]
      - level: 2
        name: high
        when: {{ avg_wait: {{ above: 300s }} }}
        for: 1m
        clear: {{ avg_wait: {{ below: 240s }} }}
        clear_for: 2m
        responses: [ivr_deflection]
responses:
  notify_duty_manager: {{ type: log, message: a line has risen }}
  callback_on:
    type: http_action
    apply: {{ method: POST, url: "http://127.0.0.1:9/callback/on" }}
    undo: {{ method: POST, url: "http://127.0.0.1:9/callback/off" }}
  ivr_deflection:
    type: http_action
    apply: {{ method: POST, url: "http://127.0.0.1:9/ivr/on" }}
    undo: {{ method: POST, url: "http://127.0.0.1:9/ivr/off" }}
"""


def config(tmp_path: Path, *, hours: str = "always", stale_after: str = "2m", for_: str = "1m"):
    path = tmp_path / "rising-tide.yaml"
    path.write_text(
        CONFIG.format(
            state=tmp_path / "state.sqlite", hours=hours, stale_after=stale_after, for_=for_
        )
    )
    return load_config(path)


def minute_rows(start: datetime, waits: list[float], *, step: int = 60) -> list[QueueStats]:
    """One row every ``step`` seconds from ``start``, with the given average waits."""
    return [
        QueueStats(line="council_tax", at=start + timedelta(seconds=i * step), avg_wait=w)
        for i, w in enumerate(waits)
    ]


def changes(result) -> list[tuple[datetime, int, int]]:
    return [(e.at, e.from_tier, e.to_tier) for e in result.events if isinstance(e, TierChanged)]


def test_a_line_closes_at_closing_time_though_no_row_comes_then(tmp_path):
    """A: tier 2 raised at 17:41 drops to calm at 18:00:00 with its switches undone, and
    reopening at 08:00 the next morning raises no false stale alert."""
    cfg = config(tmp_path, hours="office")
    # Monday 2026-11-30 and Tuesday 2026-12-01, rows only while open (GMT: UTC = local).
    monday = datetime(2026, 11, 30, 17, 40, tzinfo=UTC)
    tuesday = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    rows = minute_rows(monday, [400.0] * 20) + minute_rows(tuesday, [60.0] * 10)
    result = replay(cfg, rows)
    closing = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    assert changes(result) == [
        (datetime(2026, 11, 30, 17, 41, tzinfo=UTC), 0, 2),  # a flood jumps straight up
        (closing, 2, 0),
    ]
    closed = next(e for e in result.events if isinstance(e, TierChanged) and e.to_tier == 0)
    assert closed.cause is Cause.CLOSED
    assert any(isinstance(e, LineClosed) and e.at == closing for e in result.events)
    undone = sorted(o.response for o in result.orders if o.action.value == "undo")
    assert undone == ["callback_on", "ivr_deflection"]
    assert {o.at for o in result.orders if o.action.value == "undo"} == {closing}
    assert any(isinstance(e, LineOpened) and e.at == tuesday for e in result.events)
    assert not [e for e in result.events if isinstance(e, StatsStale)]
    summary = result.summaries["council_tax"]
    assert summary.time_in_tier[2] == timedelta(minutes=19)  # 17:41 to 18:00, not 14 h


def test_b_rows_further_apart_than_stale_after_still_let_a_tier_fall(tmp_path):
    """B: with one-minute rows and ``stale_after: 30s`` a raised line falls once the wait
    does, instead of every row's stale spell resetting its clear timer."""
    cfg = config(tmp_path, stale_after="30s")
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    rows = minute_rows(t0, [400.0] * 5 + [100.0] * 10)
    assert changes(replay(cfg, rows)) == [
        (t0 + timedelta(minutes=1), 0, 2),
        (t0 + timedelta(minutes=7), 2, 1),  # clear from 09:05, held 2m at the 09:07 row
        (t0 + timedelta(minutes=9), 1, 0),
    ]


def test_b_the_shipped_example_falls_back_to_calm(tmp_path):
    """B, as a new user meets it: the shipped CSV example ends with Council Tax calm."""
    out = subprocess.run(
        [sys.executable, "-m", "risingtide", "replay", "-c", "config/examples/csv-replay.yaml",
         "config/examples/stats-sample.csv"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [x for x in out.stdout.splitlines() if "council_tax  " in x]
    assert "→ 3 flood" in "\n".join(lines)
    assert lines[-1].split("  ")[2].endswith("→ 0 calm")


def test_c_a_stale_alert_is_stamped_when_it_fell_due_not_at_the_end_of_the_gap(tmp_path):
    """C: rows stop at 00:10 and resume at 00:40; ``stale_after`` 2m + ``stale_alert_after``
    5m puts the alert at 00:17, whatever row comes next."""
    cfg = config(tmp_path)
    t0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    rows = minute_rows(t0, [60.0] * 11) + minute_rows(t0 + timedelta(minutes=40), [60.0] * 5)
    stale = [e for e in replay(cfg, rows).events if isinstance(e, StatsStale)]
    assert [(e.at, e.since) for e in stale] == [
        (t0 + timedelta(minutes=17), t0 + timedelta(minutes=12))
    ]


def test_d_a_for_shorter_than_the_row_step_enters_between_rows(tmp_path):
    """D: ``for: 30s`` on one-minute rows enters at 09:07:30, not at the 09:08 row."""
    cfg = config(tmp_path, for_="30s")
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    rows = minute_rows(t0, [60.0] * 7 + [200.0] * 5)
    assert changes(replay(cfg, rows))[0] == (t0 + timedelta(minutes=7, seconds=30), 0, 1)


def test_d_entering_across_a_short_gap_happens_when_the_for_elapses(tmp_path):
    """D: a missing row (a gap shorter than ``stale_after``) does not delay the entry."""
    cfg = config(tmp_path)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    rows = minute_rows(t0, [60.0] * 5 + [200.0] * 6)
    del rows[6]  # no row at 09:06, when tier 1's minute is up
    assert changes(replay(cfg, rows))[0] == (t0 + timedelta(minutes=6), 0, 1)
