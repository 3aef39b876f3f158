"""The forecast tier's model and condition: ``forecast_wait: {above: target, within: 15m}``
(#11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.config import ConfigErrors, load_config
from risingtide.domain.capacity import predicted_wait
from risingtide.domain.demand import PREDICTED_WAIT_CAP, CapacityInputs, CapacityTracker
from risingtide.domain.forecast import FAST, forecast_wait, trend
from risingtide.domain.model import Compare, Op, QueueStats
from risingtide.replay import replay

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SLOW = timedelta(minutes=15)


def test_a_steady_line_forecasts_erlang_cs_wait() -> None:
    """No trend, nobody queued beyond the expected: the forecast is Erlang C's own wait."""
    got = forecast_wait(70, 0.0, 360, 10, 0, 900, PREDICTED_WAIT_CAP)
    assert got == pytest.approx(predicted_wait(70, 360, 10))


def test_rising_arrivals_raise_the_forecast_before_they_arrive() -> None:
    """The same line with arrivals rising 40 an hour every 15 minutes forecasts a wait
    above 3 minutes within the quarter, though Erlang C says 27 s now."""
    slope = 40 / 900  # calls an hour, per second
    assert predicted_wait(70, 360, 10) < 30
    assert forecast_wait(70, slope, 360, 10, 0, 900, PREDICTED_WAIT_CAP) > 180
    assert forecast_wait(70, slope, 360, 10, 0, 60, PREDICTED_WAIT_CAP) < 60  # not yet


def test_calls_already_waiting_are_a_backlog_to_clear_first() -> None:
    """Twelve calls queued on a line that expects under one: they lengthen the wait ahead."""
    calm = forecast_wait(70, 0.0, 360, 10, 0, 900, PREDICTED_WAIT_CAP)
    queued = forecast_wait(70, 0.0, 360, 10, 12, 900, PREDICTED_WAIT_CAP)
    assert queued > calm + 11 * 360 / 10 * 0.5


def test_overload_builds_minute_by_minute_up_to_the_cap() -> None:
    """Arrivals beyond what the agents answer: a longer horizon sees a longer wait, capped."""
    near = forecast_wait(120, 0.0, 360, 10, 0, 120, PREDICTED_WAIT_CAP)
    far = forecast_wait(120, 0.0, 360, 10, 0, 1800, PREDICTED_WAIT_CAP)
    assert near < far <= PREDICTED_WAIT_CAP
    assert forecast_wait(50, 0.0, 360, 0, 0, 900, PREDICTED_WAIT_CAP) == PREDICTED_WAIT_CAP


def test_the_trend_ignores_what_poisson_noise_explains() -> None:
    """Two means a little apart on a small line: no trend; far apart: a slope, signed."""
    assert trend(70, 75, SLOW) == (70, 0.0)
    rate, slope = trend(70, 120, SLOW)
    assert slope > 0 and rate > 70
    assert trend(120, 70, SLOW)[1] < 0
    assert FAST < SLOW


def test_the_tracker_fills_forecast_wait_only_for_a_line_with_a_horizon() -> None:
    """``forecast_wait`` is worked out when the line's conditions read it (a horizon)."""
    row = QueueStats(line="l", at=T0, offered=6, window=300, agents_staffed=10,
                     calls_waiting=0, avg_handle_time=360.0)  # fmt: skip
    plain = CapacityTracker().observe(row, CapacityInputs(180.0))
    assert plain.forecast_wait is None and plain.predicted_wait is not None
    ahead = CapacityTracker().observe(row, CapacityInputs(180.0, forecast_within=900.0))
    assert ahead.forecast_wait == pytest.approx(predicted_wait(72, 360, 10))


CONFIG = """
sources:
  feed: {{ type: scripted }}
lines:
  council_tax: {{ name: Council Tax, source: feed, framework: f, handle_time: 6m }}
frameworks:
  f:
    tiers:
      - level: 1
        name: watch
        when: {{ forecast_wait: {{ above: target, within: 15m }} }}
        clear: {{ forecast_wait: {{ below: 0.5 * target, within: {clear_within} }} }}
      - level: 2
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
"""


def test_the_condition_loads_with_its_horizon(tmp_path: Path) -> None:
    """``within`` sets the line's horizon; the threshold resolves like any time measure."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(clear_within="15m"))
    line = load_config(path).lines["council_tax"]
    assert line.forecast_within == 900.0
    assert line.framework.tiers[0].when == Compare("forecast_wait", Op.ABOVE, 180.0)


def test_two_horizons_in_one_framework_are_an_error_at_the_second(tmp_path: Path) -> None:
    """A second, different ``within`` is reported where it is written."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(clear_within="10m"))
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    (error,) = caught.value.errors
    assert str(error).startswith(f"{path}:12:64: frameworks.f.tiers[0].clear.forecast_wait.within")
    assert "this says 10m, an earlier one 15m" in str(error)


def test_a_missing_within_is_an_error(tmp_path: Path) -> None:
    """``forecast_wait`` without ``within`` says what is missing, with its position."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(clear_within="15m").replace(", within: 15m", "", 1))
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert str(caught.value) == (
        f'{path}:11:17: frameworks.f.tiers[0].when.forecast_wait: missing required key "within"'
    )


def test_replay_raises_the_watch_tier_before_the_wait_breaches(tmp_path: Path) -> None:
    """Arrivals climbing on a line still answering within a minute: the watch tier (the
    forecast) rises while the reported wait is still under target."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(clear_within="15m"))
    rows = []
    for i in range(240):  # an hour of 15 s polls
        minute = i / 4
        per_hour = 70 if minute < 20 else 70 + (minute - 20) * 3  # +3 calls/h each minute
        rows.append(QueueStats(line="council_tax", at=T0 + timedelta(seconds=15 * i),
                               avg_wait=40.0, offered=round(per_hour / 12), window=300,
                               agents_staffed=10, calls_waiting=0))  # fmt: skip
    result = replay(load_config(path), rows)
    watch = [e for e in result.events if getattr(e, "to_tier", None) == 1]
    assert watch, "the forecast never rose"
    assert watch[0].at > T0 + timedelta(minutes=20)
    assert "forecast_wait" in watch[0].reason  # type: ignore[attr-defined]


def test_a_message_tells_the_forecast_only_when_it_passes_the_target() -> None:
    """The default text says "Forecast to pass 3m: up to 8m 40s" over target, nothing under."""
    from dataclasses import replace

    from risingtide.messages import _samples, variables

    base = _samples()[0]
    over = variables(replace(base, forecast_wait=520.0))
    assert "Forecast to pass 3m: up to 8m 40s" in over["body"]
    assert over["forecast_wait_text"] == "8m 40s"
    under = variables(replace(base, forecast_wait=120.0))
    assert "Forecast to pass" not in under["body"]
