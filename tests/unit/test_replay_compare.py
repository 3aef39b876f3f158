"""Replay scores, and two configs compared on the same rows.

The history is one hour of one-minute rows for ``revenues`` from Monday 5 January 2026,
11:30 UTC (GMT, so UK time is UTC), built from the segments in ``HISTORY`` and read back
through the real CSV reader. ``today.yaml``: target 180 s; tier 1 when avg_wait > 180 s for
2m, clears below 150 s for 3m (notify the duty manager, switch call-back on); tier 2 when
> 300 s for 1m, clears below 240 s for 2m (notify); step down; duty manager Asha before
12:00, Ben after. ``proposed.yaml`` is the same with tier 1's ``for: 4m`` and a second line.

What today's framework must make of it, minute by minute (m = minutes after 11:30):

- m5–14 at 200 s: over target from m5, tier 1 after 2m at **m7** (notify Asha, call-back on);
  m15–19 at 320 s: tier 2 after 1m at **m16** (notify Asha); m20 on at 100 s clears tier 2
  (below 240 s) for 2m: 2 → 1 at **m22**, where tier 1's clear (below 150 s) already holds,
  so after its 3m: 1 → 0 at **m25**. 18 minutes long; the shortest an episode reaching
  tier 2 can be is clear_for(2) + clear_for(1) = 5m, and 18 > 5 + 2: not short.
- m40–42 at 200 s: tier 1 at **m42** (12:12: notify Ben, call-back on); m43 on at 100 s:
  1 → 0 at **m46**. 4 minutes long, within 3m + 3m: a short episode.
- Over target before the first notification: m5 → m7 and m40 → m42, 2 + 2 = 4 minutes.
- In tiers (first row m0 to last row m59): tier 1 m7–16, m22–25, m42–46 = 9 + 3 + 4 = 16;
  tier 2 m16–22 = 6; calm the other 59 − 22 = 37.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.config import load_config
from risingtide.replay_compare import compare, comparison_json, run, score
from risingtide.replay_html import downsample
from risingtide.replay_series import LineSeries
from risingtide.replay_tables import comparison_text
from risingtide.sources.csv_file import read_rows

DATA = Path(__file__).resolve().parents[1] / "data" / "replay_compare"
T0 = datetime(2026, 1, 5, 11, 30, tzinfo=UTC)
#: (first minute, last minute, avg_wait in seconds) for the revenues line.
HISTORY = [(0, 4, 100), (5, 14, 200), (15, 19, 320), (20, 39, 100), (40, 42, 200), (43, 59, 100)]


def write_history(path: Path) -> Path:
    """The hour of rows as a CSV file, one row a minute."""
    lines = ["time,line,avg_wait,offered,abandoned"]
    for first, last, wait in HISTORY:
        for m in range(first, last + 1):
            at = (T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")
            lines.append(f"{at},revenues,{wait},50,1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def stats(tmp_path: Path) -> Path:
    return write_history(tmp_path / "stats.csv")


def test_scores_of_the_hand_built_hour(stats: Path):
    """Every figure of today's score is the one reasoned out in the module docstring."""
    config = load_config(DATA / "today.yaml")
    s = score(run(config, read_rows(stats)))["revenues"]
    assert s.episodes == 2
    assert s.peak_tier == 2
    assert s.minutes_in_tier == {0: 37.0, 1: 16.0, 2: 6.0}
    assert s.minutes_above_target_unnotified == pytest.approx(4.0)
    assert s.notifications == 3
    assert s.notifications_by_person == {"Asha Patel": 2, "Ben Okafor": 1}
    assert s.switches_applied == 2
    assert s.short_episodes == 1


def test_a_longer_for_is_compared_line_by_line_with_the_difference(stats: Path):
    """With tier 1's for at 4m the blip at m40–42 (3 minutes over) never rises, and the
    first episode starts at m9: one episode, 4 minutes unnotified (m5 → m9), two
    notifications to Asha, one switch; calm 9 + 34 = 43 minutes, tier 1 m9–16 and m22–25."""
    today = run(load_config(DATA / "today.yaml"), read_rows(stats))
    proposed = run(load_config(DATA / "proposed.yaml"), read_rows(stats))
    c = compare(today, proposed)
    revenues = c.lines[0]
    assert revenues.line == "revenues" and revenues.only_in is None
    assert revenues.change() == {
        "episodes": -1,
        "peak_tier": 0,
        "minutes_in_tier.0": 6.0,
        "minutes_in_tier.1": -6.0,
        "minutes_in_tier.2": 0.0,
        "minutes_above_target_unnotified": 0.0,
        "notifications": -1,
        "notifications_to.Asha Patel": 0,
        "notifications_to.Ben Okafor": -1,
        "switches_applied": -1,
        "short_episodes": -1,
    }
    assert proposed_minutes(c) == {0: 43.0, 1: 10.0, 2: 6.0}
    assert [(lc.line, lc.only_in) for lc in c.lines] == [
        ("revenues", None),
        ("waste", "proposed"),
    ]
    assert c.lines[1].today is None and c.lines[1].change() is None


def proposed_minutes(c):
    """The proposed run's minutes in each tier for revenues."""
    assert c.lines[0].proposed is not None
    return c.lines[0].proposed.minutes_in_tier


def test_comparison_text_and_json_show_both_sides_and_mark_one_sided_lines(stats: Path):
    """The text aligns today, proposed and change; a line in one config says so; JSON agrees."""
    today = run(load_config(DATA / "today.yaml"), read_rows(stats))
    proposed = run(load_config(DATA / "proposed.yaml"), read_rows(stats))
    c = compare(today, proposed)
    text = comparison_text(c)
    assert "Waste & Recycling (waste) — only in proposed" in text
    revenues = text.split("\n\n")[1].splitlines()
    assert revenues[0].split()[-3:] == ["today", "proposed", "change"]

    def cells(label: str) -> list[str]:
        return next(r for r in revenues if r.strip().startswith(label)).split()[-3:]

    assert cells("episodes") == ["2", "1", "-1"]
    assert cells("minutes in tier 0 calm") == ["37.0", "43.0", "+6.0"]
    assert cells("minutes above target") == ["4.0", "4.0", "0"]
    assert cells("to Ben Okafor") == ["1", "0", "-1"]
    assert cells("short episodes (likely false alarms)") == ["1", "0", "-1"]
    assert len({len(r) for r in revenues}) == 1  # aligned: every row as wide as the heading
    data = json.loads(json.dumps(comparison_json(c)))
    waste = data["lines"][1]
    assert (waste["only_in"], waste["today"], waste["change"]) == ("proposed", None, None)
    assert data["total"]["change"]["episodes"] == -1
    assert data["lines"][0]["today"]["minutes_above_target_before_first_notification"] == 4.0


def test_a_hole_longer_than_stale_alert_after_ends_the_spell_above_target(tmp_path: Path):
    """Over target at m5 and m6, no rows m7–16, over target again from m17. Tier 1's 2m
    elapse at m7 on the m6 figures when replay walks the engine's deadlines (2 minutes over
    target before the notification, m5 → m7); a replay that decides only at rows rises at
    m17, and the 11-minute hole (more than stale_alert_after, 5m) ends the spell, so 0."""
    rows = ["time,line,avg_wait"]
    minutes = [
        *((m, 100) for m in range(5)),
        (5, 200),
        (6, 200),
        *((m, 200) for m in range(17, 25)),
    ]
    for m, wait in minutes:
        at = (T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")
        rows.append(f"{at},revenues,{wait}")
    path = tmp_path / "gap.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = run(load_config(DATA / "today.yaml"), read_rows(path))
    rise = next(e.at - T0 for e in r.result.events if e.kind == "tier_changed")
    s = score(r)["revenues"]
    assert s.episodes == 1
    expected = {timedelta(minutes=7): 2.0, timedelta(minutes=17): 0.0}
    assert rise in expected
    assert s.minutes_above_target_unnotified == pytest.approx(expected[rise])


def test_downsampling_keeps_each_buckets_peak_and_breaks_at_gaps():
    """10,000 rows become at most 2,000 buckets plus one break, and the single peak survives."""
    series = LineSeries()
    start = T0.timestamp()
    for i in range(10_000):
        at = start + i * 60 + (3600 if i >= 5000 else 0)  # an hour's hole half-way
        series.times.append(at)
        series.avg_wait.append(7200.0 if i == 4321 else 60.0)
        series.abandon_rate.append(0.05)
    t, wait, abandon = downsample(series, gap=300)
    assert len(t) <= 2001
    assert max(w for w in wait if w is not None) == 120.0  # 7,200 s in minutes
    assert wait.count(None) == 1 and abandon.count(None) == 1
    assert t == sorted(t)


def test_an_episode_cut_short_by_closing_time_is_not_a_false_alarm(tmp_path: Path):
    """On office hours to 17:00, a rise at 16:57 (over target from 16:55, for 2m) is ended
    at 17:00 by closing: 3 minutes, within 3m + 3m, but closing is not the figures clearing,
    so it is no short episode."""
    text = (DATA / "today.yaml").read_text(encoding="utf-8")
    text = text.replace("  hours: always", "  hours: office") + (
        "\ncalendars:\n  office:\n    timezone: Europe/London\n"
        '    hours: { mon-fri: "08:30-17:00" }\n'
    )
    config_path = tmp_path / "office.yaml"
    config_path.write_text(text, encoding="utf-8")
    start = datetime(2026, 1, 5, 16, 50, tzinfo=UTC)  # a Monday, GMT
    rows = ["time,line,avg_wait"]
    for m in range(21):
        at = (start + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")
        rows.append(f"{at},revenues,{100 if m < 5 else 200}")
    stats = tmp_path / "evening.csv"
    stats.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = run(load_config(config_path), read_rows(stats))
    changes = [(e.at - start, e.to_tier) for e in r.result.events if e.kind == "tier_changed"]
    assert changes == [(timedelta(minutes=7), 1), (timedelta(minutes=10), 0)]
    s = score(r)["revenues"]
    assert (s.episodes, s.short_episodes) == (1, 0)


def test_a_config_compared_with_itself_changes_nothing(stats: Path):
    """Today against today: every line in both, and every difference zero."""
    config = load_config(DATA / "today.yaml")
    c = compare(run(config, read_rows(stats)), run(config, read_rows(stats)))
    assert [lc.only_in for lc in c.lines] == [None]
    change = c.lines[0].change()
    assert change is not None and set(change.values()) == {0}
    assert c.total_today.figures() == c.total_proposed.figures()
