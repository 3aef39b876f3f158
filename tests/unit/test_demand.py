"""The capacity model over time: smoothing, the handle-time fallback, the figures it adds,
and conditions on them (#11)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.anticipation import uses_capacity_measures
from risingtide.config import load_config
from risingtide.domain.capacity import agents_needed, predicted_wait
from risingtide.domain.demand import (
    PREDICTED_WAIT_CAP,
    CapacityEstimate,
    CapacityInputs,
    CapacityTracker,
    enrich,
    update,
)
from risingtide.domain.model import Compare, Op, QueueStats
from risingtide.replay import replay
from risingtide.sources.csv_file import read_rows

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INPUTS = CapacityInputs(target_wait=180.0)


def stats(minutes: float, offered: int, *, window: float = 300.0, **more: float) -> QueueStats:
    return QueueStats(
        line="highways", at=T0 + timedelta(minutes=minutes), offered=offered, window=window,
        **more,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_first_figures_are_taken_as_they_are() -> None:
    """With nothing before, the estimate is the window's own rate and handle time."""
    est = update(None, stats(0, 10, avg_handle_time=240.0))
    assert est.arrivals_per_hour == 120.0 and est.handle_time == 240.0


def test_a_new_observation_weighs_by_the_time_it_covers() -> None:
    """After τ the old estimate keeps e⁻¹ of its weight, and two half-steps equal one step,
    so irregular polls weigh by time, not by count."""
    first = update(None, stats(0, 5))  # 60 an hour
    one = update(first, stats(15, 10))  # 120 an hour, τ later
    assert one.arrivals_per_hour is not None
    assert math.isclose(one.arrivals_per_hour, 120 - 60 * math.exp(-1))
    halves = update(update(first, stats(7.5, 10)), stats(15, 10))
    assert halves.arrivals_per_hour is not None
    assert math.isclose(halves.arrivals_per_hour, one.arrivals_per_hour)


def test_the_same_instant_or_older_figures_change_nothing() -> None:
    """A repeated or older poll is no news: the estimate stays as it was."""
    est = update(update(None, stats(0, 5)), stats(5, 20))
    assert update(est, stats(5, 50)) == est
    assert update(est, stats(1, 50)) == est


def test_a_long_silence_lets_the_first_figures_replace_the_old_estimate() -> None:
    """After a night's closure the morning's first window is almost all of the estimate."""
    est = update(update(None, stats(0, 50)), stats(12 * 60, 5))
    assert est.arrivals_per_hour is not None and abs(est.arrivals_per_hour - 60) < 1e-6


def test_a_missing_handle_time_falls_back_to_the_line_config() -> None:
    """No platform handle time: agents needed uses the configured one; with the platform's,
    the platform's wins."""
    row = stats(0, 30, agents_staffed=5)
    est = update(None, row)
    assert est.handle_time is None
    assert enrich(est, row, INPUTS).agents_needed is None  # nothing to plan with
    fallback = enrich(est, row, CapacityInputs(180.0, handle_time=300.0))
    assert fallback.agents_needed == agents_needed(360, 300, 180)
    assert fallback.handle_time == 300.0
    given = stats(0, 30, agents_staffed=5, avg_handle_time=200.0)
    platform = enrich(update(None, given), given, CapacityInputs(180.0, handle_time=300.0))
    assert platform.agents_needed == agents_needed(360, 200, 180) and platform.handle_time == 200


def test_the_gap_its_ratio_and_the_predicted_wait() -> None:
    """Gap is needed − staffed, its ratio over needed, the wait Erlang C's for the staffed."""
    row = stats(0, 90, window=900, agents_staffed=20, avg_handle_time=300.0)
    out = enrich(update(None, row), row, INPUTS)
    needed = agents_needed(360, 300, 180)
    assert out.agents_needed == needed and out.capacity_gap == needed - 20
    assert out.capacity_gap_ratio == (needed - 20) / needed
    assert out.predicted_wait == min(predicted_wait(360, 300, 20), PREDICTED_WAIT_CAP)


def test_an_overloaded_line_has_its_predicted_wait_capped() -> None:
    """Fewer agents than the traffic: the queue grows without end; the wait shows the cap."""
    row = stats(0, 90, window=900, agents_staffed=10, avg_handle_time=300.0)  # 30 erlangs
    out = enrich(update(None, row), row, INPUTS)
    assert out.predicted_wait == PREDICTED_WAIT_CAP and out.capacity_gap is not None
    assert out.capacity_gap > 20


def test_a_line_with_no_calls_needs_no_agents_and_has_spare() -> None:
    """No calls offered: 0 needed, the staffed are spare, no ratio, no wait."""
    row = stats(0, 0, agents_staffed=4, avg_handle_time=300.0)
    out = enrich(update(None, row), row, INPUTS)
    assert (out.agents_needed, out.capacity_gap, out.capacity_gap_ratio) == (0, -4, None)
    assert out.predicted_wait == 0.0


def test_unknown_demand_adds_nothing() -> None:
    """No offered calls known: the figures stay unknown rather than guessed."""
    row = QueueStats(line="highways", at=T0, avg_wait=100.0, agents_staffed=3)
    assert enrich(update(None, row), row, CapacityInputs(180.0, 300.0)) == row
    assert CapacityEstimate() == update(None, row)


def test_smoothing_steadies_a_small_line() -> None:
    """On a small line (true 6 agents), the raw 5-minute figure swings far wider than the
    smoothed one over the same Poisson stream."""
    rng = random.Random(11)
    rate, handle = 48.0, 360.0  # calls an hour, seconds: Highways-sized
    tracker = CapacityTracker()
    raw: list[int] = []
    smooth: list[int] = []
    inputs = CapacityInputs(180.0, handle)
    for minute in range(60, 8 * 60):
        # the calls of the trailing 5 minutes, as a platform's window would count them
        offered = sum(1 for _ in range(400) if rng.random() < rate / 60 * 5 / 400)
        row = stats(minute, offered)
        out = tracker.observe(row, inputs)
        if offered:
            raw.append(agents_needed(offered * 12, handle, 180))
        if minute >= 120 and out.agents_needed is not None:
            smooth.append(out.agents_needed)
    truth = agents_needed(rate, handle, 180)
    assert max(raw) - min(raw) >= 2 * (max(smooth) - min(smooth))
    assert min(smooth) >= truth - 2 and max(smooth) <= truth + 2


def test_a_comparison_on_a_capacity_measure_reads_well() -> None:
    """``capacity_gap 4 > 3``; ``predicted_wait 400s > 180s``; unknown says so."""
    row = QueueStats(line="x", at=T0, capacity_gap=4, predicted_wait=400.0)
    gap = Compare("capacity_gap", Op.ABOVE, 3)
    assert gap.holds(row) and gap.explain(row) == "capacity_gap 4 > 3"
    wait = Compare("predicted_wait", Op.ABOVE, 180)
    assert wait.explain(row) == "predicted_wait 400s > 180s"
    ratio = Compare("capacity_gap_ratio", Op.AT_LEAST, 0.08)
    assert not ratio.holds(row)
    assert ratio.explain(row) == "capacity_gap_ratio unknown (needs ≥ 8.0%)"


CONFIG = """
sources:
  feed: {{ type: scripted }}
defaults: {{ target_wait: 3m, handle_time: 5m }}
lines:
  highways: {{ name: Highways, source: feed, framework: watch }}
  waste: {{ name: Waste, source: feed, framework: plain, handle_time: 4m }}
frameworks:
  watch:
    tiers:
      - level: 1
        name: short
        when: {{ capacity_gap: {{ above: 3 }} }}
      - level: 2
        name: late
        when: {{ predicted_wait: {{ above: target }} }}
  plain:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }} }}
"""


def test_config_conditions_on_capacity_measures_and_handle_time(tmp_path: Path) -> None:
    """``capacity_gap: {above: 3}`` and ``predicted_wait: {above: target}`` compile for the
    line; ``handle_time`` comes from the line or the defaults."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format())
    config = load_config(path)
    tiers = config.lines["highways"].framework.tiers
    assert tiers[0].when == Compare("capacity_gap", Op.ABOVE, 3.0)
    assert tiers[1].when == Compare("predicted_wait", Op.ABOVE, 180.0)
    assert config.lines["highways"].handle_time == 300.0
    assert config.lines["waste"].handle_time == 240.0
    assert uses_capacity_measures(config)
    config.lines.pop("highways")
    assert not uses_capacity_measures(config)


def test_replay_enriches_rows_raises_on_the_gap_and_reports_the_peak(tmp_path: Path) -> None:
    """Replay fills the capacity figures in, a tier on ``capacity_gap`` rises when the
    smoothed demand outgrows the staff, and the summary carries the peak gap."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format())
    config = load_config(path)
    rows = [
        stats(m, 6 if m < 30 else 30, agents_staffed=10, avg_wait=60.0) for m in range(0, 90)
    ]  # 72 an hour then 360 an hour at 5 min handle time (the defaults'), 10 agents
    result = replay(config, rows)
    raised = [e for e in result.events if getattr(e, "to_tier", 0) >= 1]
    # The window jumps at 09:30; the smoothed demand crosses a little later, not at once.
    assert raised and raised[0].at > T0 + timedelta(minutes=30)
    reasons = " ".join(e.reason for e in raised)  # type: ignore[attr-defined]
    assert "predicted_wait" in reasons  # the wait crosses before the gap passes 3
    peak = result.summaries["highways"].peak_capacity_gap
    assert peak is not None and peak > 3
    assert result.summaries["highways"].to_json()["peak_capacity_gap"] == peak


def test_the_replay_command_works_the_capacity_figures_out_when_a_condition_reads_one(
    tmp_path: Path,
) -> None:
    """``risingtide replay`` reads row by row (with the capacity figures) for a config whose
    conditions read one, and gives the library's timeline; the columnar fast path, which
    carries only the file's figures, is kept for configs that read none."""
    from risingtide.replay_output import _rows, render
    from risingtide.replay_rows import LineRows

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format())
    config = load_config(path)
    rows = [stats(m, 6 if m < 30 else 30, agents_staffed=10, avg_wait=60.0) for m in range(90)]
    csv = tmp_path / "stats.csv"
    with csv.open("w", encoding="utf-8") as out:
        out.write("time,line,avg_wait,agents_staffed,offered,window\n")
        for r in rows:
            out.write(f"{r.at:%Y-%m-%dT%H:%M:%SZ},{r.line},{r.avg_wait},{r.agents_staffed},"
                      f"{r.offered},{r.window}\n")  # fmt: skip
    by_line, _ = _rows(config, csv)
    assert not any(isinstance(r, LineRows) for r in by_line.values())
    expected = replay(config, read_rows(csv))
    assert [e.at for e in expected.events if getattr(e, "to_tier", 0) >= 1]
    shown = render(config, csv, "text")
    for event in expected.events:
        assert f"{event.at:%H:%M:%S}  {event.line}" in shown
    config.lines.pop("highways")
    by_line, _ = _rows(config, csv)
    assert all(isinstance(r, LineRows) for r in by_line.values())
