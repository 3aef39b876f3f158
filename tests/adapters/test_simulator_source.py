"""The ``simulator`` source and responder, driven through their plugins with a FakeClock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from risingtide.clock import FakeClock
from risingtide.config.durations import parse_duration
from risingtide.domain.model import MEASURES, Action, QueueStats, ResponseOrder
from risingtide.ports import (
    BuildContext,
    Responder,
    ResponseContext,
    ResponseError,
    SourceError,
    StatsSource,
)
from risingtide.responders import RESPONDER_TYPES
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.scripted import ScriptedLine, ScriptedSource
from risingtide.sources.simulator import (
    PLUGIN,
    SimulatorLine,
    SimulatorSettings,
    SimulatorSource,
    line_params,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday, 09:00 in London (GMT)


def _source(
    clock: FakeClock,
    settings: Mapping[str, Any] | None = None,
    lines: Mapping[str, Mapping[str, Any]] | None = None,
) -> SimulatorSource:
    """Build a simulator the way the runtime does: validate both blocks, then the plugin."""
    model = PLUGIN.settings_model.model_validate(settings or {})
    line_blocks = lines or {"revenues": {"agents": 12, "arrivals_per_hour": 140}}
    line_models = {k: PLUGIN.line_model.model_validate(v) for k, v in line_blocks.items()}
    source = PLUGIN.build("demo", model, line_models, BuildContext(clock=clock))
    assert isinstance(source, SimulatorSource)
    return source


async def _poll(source: StatsSource) -> dict[str, QueueStats]:
    out: dict[str, QueueStats] = {}
    for line, stats in (await source.poll()).items():
        assert not isinstance(stats, SourceError)
        out[line] = stats
    return out


# --------------------------------------------------------------------------- wiring


def test_plugin_is_wired_and_provides_every_measure():
    """``type: simulator`` is in both wiring tables, and the source provides all six measures."""
    assert SOURCE_TYPES["simulator"] is PLUGIN
    assert PLUGIN.provides == frozenset(MEASURES)
    assert RESPONDER_TYPES["simulator"].type == "simulator"


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2.5m", 150), ("1h", 3600), (90, 90),
     (1.5, 1.5), ("90", 90), (timedelta(minutes=2), 120)],
)
def test_durations_are_read_as_people_write_them(text: object, seconds: float):
    """``90s``, ``5m``, ``1h30m`` and plain numbers of seconds are all durations."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "m", "", "-5m", -1, True, "1m1h", None])
def test_bad_durations_are_rejected(bad: object):
    """Anything else is a ValueError that says how to write one."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_an_event_may_have_begun_before_the_daemon_started():
    """``at: -5m`` is an event already five minutes in; one older than the warm-up is cut."""
    line = SimulatorLine.model_validate(
        {"agents": 3, "arrivals_per_hour": 20,
         "events": [{"name": "reminders", "at": "-5m", "for": "10m", "multiply": 3},
                    {"name": "old", "at": "-40m", "for": "20m", "multiply": 2}]}
    )
    assert line.events[0].at == timedelta(minutes=-5)
    params = line_params(line, window=900, warmup=1800, start_of_day=9 * 3600)
    assert [(e.at, e.duration) for e in params.events] == [(1500.0, 600.0), (0.0, 600.0)]


def test_settings_have_the_documented_defaults():
    """An empty block is seed 2026, real speed, 30 minutes' warm-up, a 15-minute window."""
    s = SimulatorSettings()
    assert (s.seed, s.speed, s.warmup, s.window, s.start) == (
        2026, 1.0, timedelta(minutes=30), timedelta(minutes=15), None
    )
    line = SimulatorLine.model_validate({"agents": 3, "arrivals_per_hour": 20})
    assert line.handle_time == timedelta(minutes=5)
    assert line.patience == timedelta(minutes=4)
    assert (line.deflection_share, line.callback_share, line.ivr_abandon_share) == (
        0.25, 0.5, 0.15
    )
    assert (line.surge_agents, line.surge_delay, line.profile, line.events) == (
        0, timedelta(minutes=3), "flat", ()
    )


def test_line_settings_parse_durations_events_and_profiles():
    """A full line block validates: durations, ``patience: none``, events with ``for``, and
    profile hours as the YAML loader hands them over (text keys)."""
    line = SimulatorLine.model_validate({
        "agents": 12, "arrivals_per_hour": 140, "handle_time": "6m", "patience": "none",
        "surge_agents": 4, "surge_delay": "2m", "profile": {"8": 1.0, "18": 0.2},
        "events": [{"name": "Council Tax reminders", "at": "2m", "for": "10m",
                    "multiply": 3}],
    })
    assert line.patience is None
    assert line.handle_time == timedelta(minutes=6)
    assert line.events[0].for_ == timedelta(minutes=10)
    assert line.profile_multipliers()[12] == 1.0
    assert line.profile_multipliers()[20] == 0.2


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"agents": 0, "arrivals_per_hour": 10}, "greater than or equal to 1"),
        ({"agents": 2, "arrivals_per_hour": 0}, "greater than 0"),
        ({"agents": 2, "arrivals_per_hour": 10, "agnets": 3}, "Extra inputs"),
        ({"agents": 2, "arrivals_per_hour": 10, "callback_share": 1.5}, "less than or equal"),
        ({"agents": 2, "arrivals_per_hour": 10, "profile": "weekend"}, "flat"),
        ({"agents": 2, "arrivals_per_hour": 10, "profile": {25: 1.0}}, "between 0 and 23"),
        ({"agents": 2, "arrivals_per_hour": 10, "handle_time": "0s"}, "longer than 0s"),
        ({"agents": 2, "arrivals_per_hour": 10, "patience": "soon"}, "not a duration"),
        ({"agents": 2, "arrivals_per_hour": 10,
          "events": [{"name": "x", "at": "1m", "for": "1m", "multiply": -2}]},
         "greater than or equal to 0"),
    ],
)
def test_bad_line_settings_say_what_is_wrong(block: dict[str, Any], message: str):
    """Typos and out-of-range values fail validation with a message naming the problem."""
    with pytest.raises(ValidationError, match=message):
        SimulatorLine.model_validate(block)


def test_start_time_must_be_quoted_text():
    """``start: "09:30"`` is a time; PyYAML's unquoted ``10:30`` (the integer 630) is refused."""
    assert SimulatorSettings.model_validate({"start": "09:30"}).start == time(9, 30)
    with pytest.raises(ValidationError, match="in quotes"):
        SimulatorSettings.model_validate({"start": 630})
    with pytest.raises(ValidationError, match="Extra inputs"):
        SimulatorSettings.model_validate({"sped": 2})


# --------------------------------------------------------------------------- polling


async def test_first_poll_reports_a_warmed_up_line_in_seconds_and_counts():
    """Right after start the 15-minute window is already full from the warm-up."""
    clock = FakeClock(T0)
    source = _source(clock)
    assert source.sim_time() == 1800.0
    stats = (await _poll(source))["revenues"]
    assert stats.at == T0
    assert stats.window == 900.0
    assert stats.agents_staffed == 12
    assert stats.offered is not None
    assert stats.offered > 15
    assert stats.answered is not None
    assert stats.abandoned is not None
    assert stats.answered + stats.abandoned <= stats.offered
    assert isinstance(stats.calls_waiting, int)
    assert stats.longest_wait is not None
    assert stats.longest_wait >= 0
    assert stats.avg_handle_time is not None
    assert 60 < stats.avg_handle_time < 900


async def test_wall_time_maps_to_sim_time_with_speed():
    """At speed 60 one wall second is a simulated minute, on top of the warm-up."""
    clock = FakeClock(T0)
    source = _source(clock, {"speed": 60, "warmup": "10m"})
    clock.advance(30)
    await source.poll()
    assert source.sim_time() == pytest.approx(600 + 30 * 60)
    clock.advance(timedelta(seconds=1))
    assert source.sim_time() == pytest.approx(600 + 31 * 60)


class _SteppableClock:
    """A clock that, unlike FakeClock, can be set back (a misbehaving wall clock)."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def test_sim_time_never_goes_backwards():
    """A clock stepping back (it never should) does not rewind the simulation."""
    clock = _SteppableClock(T0)
    model = PLUGIN.settings_model.model_validate({})
    line = PLUGIN.line_model.model_validate({"agents": 2, "arrivals_per_hour": 10})
    source = PLUGIN.build("demo", model, {"x": line}, BuildContext(clock=clock))
    assert isinstance(source, SimulatorSource)
    clock.at = T0 + timedelta(seconds=100)
    assert source.sim_time() == 1900
    clock.at = T0
    assert source.sim_time() == 1900


async def test_start_time_picks_the_time_of_day_profile():
    """A council-weekday line pretending it is 03:00 is almost silent; at 10:00 it is busy."""
    line = {"agents": 20, "arrivals_per_hour": 200, "profile": "council_weekday"}
    night = _source(FakeClock(T0), {"start": "03:00"}, {"x": line})
    day = _source(FakeClock(T0), {"start": "10:00"}, {"x": line})
    quiet, busy = (await _poll(night))["x"], (await _poll(day))["x"]
    assert quiet.offered is not None
    assert busy.offered is not None
    assert quiet.offered < 10 < 30 < busy.offered


def test_default_start_is_the_local_time_in_london():
    """Without ``start`` the simulation starts at the clock's local Europe/London time."""
    summer = datetime(2026, 7, 6, 8, 15, tzinfo=UTC)  # 09:15 BST
    assert _source(FakeClock(summer)).start_time == time(9, 15)
    assert _source(FakeClock(T0)).start_time == time(9, 0)


async def test_same_seed_same_figures():
    """Two sources with one seed report the same figures at the same times."""
    a, b = _source(FakeClock(T0)), _source(FakeClock(T0))
    assert await _poll(a) == await _poll(b)
    c = _source(FakeClock(T0), {"seed": 7})
    assert await _poll(c) != await _poll(a)


async def test_demand_event_counts_from_the_daemon_start():
    """An event ``at: 2m`` starts two minutes after the start, not two minutes into warm-up."""
    clock = FakeClock(T0)
    source = _source(clock, {"speed": 1}, {"x": {
        "agents": 50, "arrivals_per_hour": 120, "events": [
            {"name": "flood", "at": "2m", "for": "10m", "multiply": 10},
        ],
    }})
    await source.poll()
    before = source.details("x").offered
    clock.advance(timedelta(minutes=12))
    after = source.details("x").offered
    assert before == pytest.approx(30, abs=18)  # 120/h over 15 minutes
    assert after > 150  # 1,200/h for the last 10 minutes


# --------------------------------------------------------------------------- controls


async def test_switches_are_idempotent_and_readable():
    """Setting a switch twice is one change; ``switches`` shows what is on."""
    source = _source(FakeClock(T0))
    assert source.switches("revenues") == {
        "ivr_deflection": False, "callback": False, "surge_staff": False
    }
    assert source.set_callback("revenues", True) is True
    assert source.set_callback("revenues", True) is False
    assert source.switches("revenues")["callback"] is True
    with pytest.raises(KeyError, match="no line 'waste'"):
        source.set_surge("waste", True)


# --------------------------------------------------------------------------- responder


def _order(line: str, action: Action) -> ResponseOrder:
    return ResponseOrder(key=f"k-{line}-{action.value}", line=line, response="r",
                         action=action, tier=2, episode=1, trigger="tier_changed", at=T0,
                         reason="test")


CONTEXT = ResponseContext(line_name="Revenues", tier_name="high", stats=None, target_wait=180)


def _responder(sources: Mapping[str, StatsSource], **settings: Any) -> Responder:
    plugin = RESPONDER_TYPES["simulator"]
    model: BaseModel = plugin.settings_model.model_validate({"source": "demo", **settings})
    assert plugin.undoable(model) is True
    return plugin.build("surge_on", model, BuildContext(clock=FakeClock(T0), sources=sources))


async def test_responder_applies_and_undoes_each_switch():
    """APPLY turns the line's switch on, UNDO turns it off, and repeating either is harmless."""
    clock = FakeClock(T0)
    source = _source(clock, lines={"revenues": {
        "agents": 12, "arrivals_per_hour": 140, "surge_agents": 4, "surge_delay": "3m"}})
    for action, switch in (("ivr_deflection", "ivr_deflection"), ("callback", "callback"),
                           ("surge_staff", "surge_staff")):
        responder = _responder({"demo": source}, action=action)
        assert responder.undoable is True
        assert await responder.run(_order("revenues", Action.APPLY), CONTEXT) == f"{action} on"
        assert source.switches("revenues")[switch] is True
        assert await responder.run(_order("revenues", Action.APPLY), CONTEXT) == (
            f"{action} already on"
        )
    clock.advance(timedelta(minutes=3, seconds=1))
    assert (await _poll(source))["revenues"].agents_staffed == 16
    undo = _responder({"demo": source}, action="callback")
    assert await undo.run(_order("revenues", Action.UNDO), CONTEXT) == "callback off"
    assert await undo.run(_order("revenues", Action.UNDO), CONTEXT) == "callback already off"
    assert source.switches("revenues")["callback"] is False


async def test_responder_finds_a_source_built_after_it():
    """The source is looked up at run time, so a rebuilt source is the one switched."""
    sources: dict[str, StatsSource] = {}
    responder = _responder(sources, action="ivr_deflection")
    source = _source(FakeClock(T0))
    sources["demo"] = source
    await responder.run(_order("revenues", Action.APPLY), CONTEXT)
    assert source.switches("revenues")["ivr_deflection"] is True


async def test_responder_refuses_a_wrong_source_or_line_without_retry():
    """A missing source, a non-simulator source or an unknown line is a permanent error."""
    clock = FakeClock(T0)
    scripted = ScriptedSource("demo", clock, {"revenues": ScriptedLine()})
    cases: list[tuple[Mapping[str, StatsSource], str, str]] = [
        ({}, "revenues", "no source 'demo'"),
        ({"demo": scripted}, "revenues", "not a simulator"),
        ({"demo": _source(clock)}, "waste", "no line 'waste'"),
    ]
    for sources, line, message in cases:
        responder = _responder(sources, action="callback")
        with pytest.raises(ResponseError, match=message) as caught:
            await responder.run(_order(line, Action.APPLY), CONTEXT)
        assert caught.value.retryable is False


def test_responder_settings_are_strict():
    """``action`` must be one of the three switches and unknown keys are refused."""
    plugin = RESPONDER_TYPES["simulator"]
    with pytest.raises(ValidationError, match="ivr_deflection"):
        plugin.settings_model.model_validate({"source": "demo", "action": "webchat"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        plugin.settings_model.model_validate(
            {"source": "demo", "action": "callback", "line": "x"}
        )
