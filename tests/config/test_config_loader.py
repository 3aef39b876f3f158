"""Loading valid configs: defaults, per-line thresholds, calendars, env, plugins, API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from config_fakes import ENV, FIXTURES, TODAY, PartialLine, check, load, write

from risingtide.config import ConfigError, ConfigErrors, check_config, load_config
from risingtide.domain.model import (
    ALWAYS_OPEN,
    AllOf,
    AnyOf,
    Compare,
    EscalationStep,
    Not,
    Op,
    QueueStats,
)
from risingtide.responders.log import LogSettings
from risingtide.sources.scripted import ScriptedLine

MINIMAL = """
sources:
  demo: { type: scripted }
lines:
  revenues: { name: Revenues, source: demo, framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
"""


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --------------------------------------------------------------------------- the API


def test_minimal_fixture_loads_with_every_default() -> None:
    """valid_minimal.yaml loads: 180 s target, always open, default server and source timing."""
    config = load(FIXTURES / "valid_minimal.yaml")
    line = config.lines["revenues"]
    assert line.target_wait == 180.0
    assert line.calendar is ALWAYS_OPEN
    assert line.source == "demo"
    assert isinstance(line.source_params, ScriptedLine)
    assert line.framework.tiers[0].when == Compare("avg_wait", Op.ABOVE, 180.0)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 9470
    assert config.server.evaluate_every == timedelta(seconds=5)
    source = config.sources["demo"]
    assert (source.interval, source.timeout, source.jitter) == (
        timedelta(seconds=15),
        timedelta(seconds=10),
        timedelta(0),
    )
    assert config.warnings == ()
    assert config.path == FIXTURES / "valid_minimal.yaml"


def test_load_config_raises_every_error_sorted(tmp_path: Path) -> None:
    """load_config raises ConfigErrors holding every error, in file order, as its message."""
    path = write(tmp_path, MINIMAL.replace("180", "").replace("above: target", "above: soon"))
    path.write_text(path.read_text() + "responses:\n  x: { type: nope }\n")
    with pytest.raises(ConfigErrors) as caught:
        load(path)
    errors = caught.value.errors
    assert [e.line for e in errors] == sorted(e.line for e in errors)
    assert len(errors) == 2
    assert str(caught.value) == "\n".join(str(e) for e in errors)
    assert "unknown response type" in errors[1].message


def test_check_config_uses_the_real_plugin_tables_by_default(tmp_path: Path) -> None:
    """Without injected tables, the package's SOURCE_TYPES and RESPONDER_TYPES are used."""
    config, errors, warnings = check_config(write(tmp_path, MINIMAL), env={}, today=TODAY)
    assert errors == []
    assert warnings == []
    assert config is not None
    assert config.sources["demo"].type == "scripted"


def test_load_config_reads_os_environ_when_no_env_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With env=None, ${VAR} comes from the process environment."""
    monkeypatch.setenv("RT_TEST_LINE_NAME", "From the environment")
    path = write(tmp_path, MINIMAL.replace("name: Revenues", "name: '${RT_TEST_LINE_NAME}'"))
    config = load_config(path, today=TODAY)
    assert config.lines["revenues"].name == "From the environment"


def test_missing_file_is_one_error_at_line_one(tmp_path: Path) -> None:
    """A file that does not exist gives FILE:1:1: file not found."""
    missing = tmp_path / "nope.yaml"
    config, errors, warnings = check(missing)
    assert config is None
    assert [str(e) for e in errors] == [f"{missing}:1:1: file not found"]
    assert warnings == []


def test_directory_and_non_utf8_files_are_errors(tmp_path: Path) -> None:
    """A directory, and a file that is not UTF-8, are each reported plainly with a position."""
    _, errors, _ = check(tmp_path)
    assert errors[0].message == "this is a directory, not a config file"
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"lines:\n  x: { name: Caf\xe9 }\n")
    _, errors, _ = check(path)
    assert [(e.line, e.column, e.message) for e in errors] == [
        (2, 17, "not UTF-8 text (byte 0xe9)")
    ]


def test_config_error_prints_file_line_column_message() -> None:
    """ConfigError prints as FILE:LINE:COL: message, and warnings say so."""
    assert str(ConfigError("a.yaml", 3, 7, "lines.x: oops")) == "a.yaml:3:7: lines.x: oops"
    warning = ConfigError("a.yaml", 3, 7, "careful", warning=True)
    assert str(warning) == "a.yaml:3:7: warning: careful"


def test_config_errors_sorts_and_deduplicates() -> None:
    """ConfigErrors keeps each error once, ordered by file, line and column."""
    a = ConfigError("a.yaml", 9, 1, "late")
    b = ConfigError("a.yaml", 2, 5, "early")
    c = ConfigError("a.yaml", 2, 1, "earliest")
    assert ConfigErrors([a, b, c, a]).errors == [c, b, a]


# --------------------------------------------------------------------------- the full example


def test_thresholds_are_resolved_per_line() -> None:
    """One framework gives each line thresholds resolved against that line's own target."""
    config = load(FIXTURES / "valid_full.yaml")
    revenues = config.lines["revenues"].framework.tiers
    council_tax = config.lines["council_tax"].framework.tiers
    assert config.lines["council_tax"].target_wait == 120.0
    assert council_tax[0].when == Compare("avg_wait", Op.ABOVE, 120.0)
    assert council_tax[0].clear == Compare("avg_wait", Op.BELOW, 96.0)  # 0.8 * target
    assert revenues[0].clear == Compare("avg_wait", Op.BELOW, 144.0)
    # target + 420s, with another measure in the same mapping: both must hold.
    assert council_tax[2].when == AllOf(
        (Compare("avg_wait", Op.ABOVE, 540.0), Compare("calls_waiting", Op.AT_LEAST, 20.0))
    )
    assert revenues[2].when == AllOf(
        (Compare("avg_wait", Op.ABOVE, 600.0), Compare("calls_waiting", Op.AT_LEAST, 20.0))
    )


def test_tier_defaults_and_timings_are_compiled() -> None:
    """clear defaults to Not(when), clear_for to for; repeat, escalation and on_exit are kept."""
    framework = load(FIXTURES / "valid_full.yaml").lines["revenues"].framework
    rising, high, _flood = framework.tiers
    assert (rising.for_, rising.clear_for) == (timedelta(minutes=5), timedelta(minutes=10))
    assert rising.responses == ("notify_duty_manager", "callback_on")
    assert rising.repeat_every == timedelta(minutes=15)
    assert rising.repeat_responses == ("notify_duty_manager",)
    assert rising.escalation == (
        EscalationStep(timedelta(minutes=10), ("notify_head_of_service",)),
        EscalationStep(timedelta(minutes=30), ("notify_head_of_service",)),
    )
    assert high.when == AnyOf(
        (Compare("avg_wait", Op.ABOVE, 300.0), Compare("abandon_rate", Op.ABOVE, 0.1))
    )
    assert high.clear == Not(high.when)
    assert high.clear_for == high.for_ == timedelta(minutes=2)
    assert high.on_exit == ("notify_duty_manager",)
    assert framework.calm_name == "normal"
    assert framework.stale_after == timedelta(minutes=3)
    assert framework.stale_alert_after == timedelta(minutes=15)
    assert framework.stale_responses == ("notify_duty_manager",)
    assert framework.step_down is True


def test_defaults_apply_to_lines_that_do_not_say_otherwise() -> None:
    """A line without target, hours, framework or source takes them from defaults:."""
    config = load(FIXTURES / "valid_full.yaml")
    council_tax = config.lines["council_tax"]
    assert council_tax.calendar.name == "office"
    assert council_tax.framework.name == "standard"
    assert council_tax.source == "demo"
    social_care = config.lines["social_care"]
    assert social_care.target_wait == 180.0
    assert social_care.calendar.name == "helpline"
    assert social_care.framework.name == "simple"
    assert social_care.framework.step_down is False
    assert social_care.source == "slow"


def test_lines_with_the_same_target_share_one_compiled_framework(tmp_path: Path) -> None:
    """Compiling is cached: two lines with one framework and one target share the object."""
    config = load(FIXTURES / "valid_full.yaml")
    assert config.lines["revenues"].framework is not config.lines["council_tax"].framework
    text = (FIXTURES / "valid_full.yaml").read_text()
    again = load(write(tmp_path, text.replace("target_wait: 120s", "target_wait: 180s")))
    assert again.lines["revenues"].framework is again.lines["council_tax"].framework


def test_server_sources_and_responses_are_compiled() -> None:
    """server:, sources: and responses: come out as typed values, plugin settings included."""
    config = load(FIXTURES / "valid_full.yaml")
    assert (config.server.host, config.server.port) == ("::1", 9471)
    assert config.server.state_file == Path("/var/lib/rising-tide/rising-tide.sqlite")
    assert (config.server.log_format, config.server.log_level) == ("json", "debug")
    assert config.server.evaluate_every == timedelta(seconds=2)
    demo = config.sources["demo"]
    assert (demo.interval, demo.timeout, demo.jitter) == (
        timedelta(seconds=10),
        timedelta(seconds=10),
        timedelta(seconds=1),
    )
    assert config.sources["slow"].timeout == timedelta(seconds=10)  # min(10s, 2m)
    head = config.responses["notify_head_of_service"]
    assert isinstance(head.settings, LogSettings)
    assert head.settings.level == "error"
    assert head.undoable is False
    assert config.lines_of("slow").keys() == {"social_care"}


def test_env_substitution_with_default_and_escape() -> None:
    """${VAR} is substituted, ${VAR:-default} falls back, and $$ is a literal dollar."""
    config = load(FIXTURES / "valid_full.yaml", env={"SOCIAL_CARE_NAME": "Adult Social Care"})
    assert config.lines["social_care"].name == "Adult Social Care"
    assert config.server.state_file == Path("state/rising-tide.sqlite")  # the default
    message = config.responses["notify_duty_manager"].settings
    assert isinstance(message, LogSettings)
    assert message.message == "Duty manager, please look at this line (costs $0)"


def test_source_shorthand_and_per_line_parameters() -> None:
    """`source: demo` is short for {use: demo}; other keys go to the plugin's line model."""
    config = load(FIXTURES / "valid_full.yaml")
    revenues = config.lines["revenues"].source_params
    assert isinstance(revenues, ScriptedLine)
    assert revenues.avg_wait == 100.0
    council_tax = config.lines["council_tax"].source_params
    assert isinstance(council_tax, ScriptedLine)
    assert council_tax.avg_wait is None


def test_line_source_keys_refine_the_default_source(tmp_path: Path) -> None:
    """A line's source keys merge over defaults.source's keys when both name the same source."""
    text = """
defaults:
  source: { use: pbx, skill: general }
  framework: standard
sources:
  pbx: { type: partial }
lines:
  revenues: { name: Revenues, source: { queue_id: q-rev } }
  waste: { name: Waste, source: { use: pbx, queue_id: q-waste, skill: bins } }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
"""
    config = load(write(tmp_path, text))
    assert config.lines["revenues"].source_params == PartialLine(queue_id="q-rev", skill="general")
    assert config.lines["waste"].source_params == PartialLine(queue_id="q-waste", skill="bins")


def test_an_error_in_an_inherited_source_key_points_at_defaults(tmp_path: Path) -> None:
    """A bad key merged in from defaults.source is reported where it was written."""
    text = """
defaults:
  source: { use: pbx, skil: general }
sources:
  pbx: { type: partial }
lines:
  revenues: { name: Revenues, source: { queue_id: q-rev }, framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
"""
    _, errors, _ = check(write(tmp_path, text))
    assert [(e.line, e.message) for e in errors] == [
        (3, 'defaults.source: unknown key "skil" (did you mean "skill"?)')
    ]


def test_undoable_comes_from_the_responder_plugin(tmp_path: Path) -> None:
    """ResponseConfig.undoable is the plugin's verdict on the response's own settings."""
    text = MINIMAL.replace(
        "above: target } } }", "above: target } }, responses: [ivr_on, page] }"
    ) + ("responses:\n  ivr_on: { type: switch }\n  page: { type: switch, undo: false }\n")
    config = load(write(tmp_path, text))
    assert config.responses["ivr_on"].undoable is True
    assert config.responses["page"].undoable is False
    assert config.switches == frozenset({"ivr_on"})


def test_warnings_are_returned_and_kept_on_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Warnings do not stop loading and appear in Config.warnings as FILE:LINE:COL: warning: …"""
    monkeypatch.chdir(FIXTURES)
    config, errors, warnings = check("warnings_only.yaml")
    assert errors == []
    assert config is not None
    assert config.warnings == tuple(str(w) for w in warnings)
    assert config.warnings[1] == (
        'warnings_only.yaml:21:3: warning: responses.spare: response "spare" is defined but '
        "never used by any framework"
    )


def test_merge_keys_share_tier_settings(tmp_path: Path) -> None:
    """YAML anchors and `<<:` merges work, and explicit keys override merged ones."""
    text = (FIXTURES / "merge_key_override.yaml").read_text().replace("5 mins", "2m")
    framework = load(write(tmp_path, text)).lines["revenues"].framework
    rising, high = framework.tiers
    assert high.for_ == timedelta(minutes=2)
    assert rising.for_ == timedelta(minutes=5)
    assert high.when == Compare("avg_wait", Op.ABOVE, 360.0)


def test_keys_are_text_even_when_yaml_would_make_them_booleans(tmp_path: Path) -> None:
    """A key like `no` or `on` stays the text "no" (YAML 1.1 would make it False)."""
    text = MINIMAL.replace("revenues:", "no:")
    config = load(write(tmp_path, text))
    assert list(config.lines) == ["no"]


def test_many_lines_load_quickly(tmp_path: Path) -> None:
    """A config with 300 lines loads well inside a second (the daemon reloads on SIGHUP)."""
    import time as _time

    lines = "".join(
        f"  line{i}: {{ name: Line {i}, target_wait: {60 + i}s }}\n" for i in range(300)
    )
    text = (
        "defaults: { framework: standard, source: demo, hours: office }\n"
        "calendars:\n  office: { hours: { weekdays: '08:00-18:00' }, "
        "bank_holidays: england-and-wales }\n"
        "sources:\n  demo: { type: scripted }\n"
        f"lines:\n{lines}"
        "frameworks:\n  standard:\n    tiers:\n"
        "      - { level: 1, name: a, when: { avg_wait: { above: target } },"
        " clear: { avg_wait: { below: 0.8 * target } } }\n"
        "      - { level: 2, name: b, when: { any: [{ avg_wait: { above: 2 * target } },"
        " { abandon_rate: { above: 10% } }] } }\n"
    )
    path = write(tmp_path, text)
    load(path)  # warm the bank-holiday cache, as the daemon's first load does
    started = _time.perf_counter()
    config = load(path)
    assert _time.perf_counter() - started < 1.0
    assert len(config.lines) == 300


# --------------------------------------------------------------------------- calendars


def test_calendar_hours_per_weekday_with_overrides() -> None:
    """mon-fri sets five days, a later `wed` key overrides Wednesday, unlisted days close."""
    calendar = load(FIXTURES / "valid_full.yaml").lines["revenues"].calendar
    office = (time(8, 30), time(17, 0))
    assert calendar.hours[0] == (office,)
    assert calendar.hours[2] == ((time(8, 30), time(12, 0)), (time(13, 0), time(17, 0)))
    assert calendar.hours[5] == ()
    assert calendar.hours[6] == ()
    assert str(calendar.tz) == "Europe/London"


def test_bank_holidays_and_closed_dates_close_the_line() -> None:
    """England and Wales bank holidays and the listed closed dates are closed days."""
    calendar = load(FIXTURES / "valid_full.yaml").lines["revenues"].calendar
    assert date(2026, 12, 25) in calendar.closed  # Christmas Day
    assert date(2026, 8, 31) in calendar.closed  # Summer bank holiday (not Scotland's)
    assert date(2026, 12, 24) in calendar.closed  # closed_dates, YAML date
    assert date(2026, 12, 31) in calendar.closed  # closed_dates, quoted text
    assert date(2031, 12, 25) in calendar.closed  # five years ahead of "today"
    assert not calendar.is_open(_utc(2026, 12, 25, 10, 0))
    assert not calendar.is_open(_utc(2026, 8, 31, 10, 0))
    assert calendar.is_open(_utc(2026, 9, 1, 10, 0))


def test_scottish_calendar_uses_scottish_bank_holidays(tmp_path: Path) -> None:
    """bank_holidays: scotland closes 2 January and the first Monday of August instead."""
    text = MINIMAL.replace(
        "sources:",
        "calendars:\n  office: { hours: { weekdays: '09:00-17:00' }, bank_holidays: scotland }\n"
        "sources:",
    ).replace("framework: standard }", "framework: standard, hours: office }")
    closed = load(write(tmp_path, text)).lines["revenues"].calendar.closed
    assert date(2026, 1, 2) in closed
    assert date(2026, 8, 3) in closed
    assert date(2026, 8, 31) not in closed


def test_opening_instants_follow_british_summer_time() -> None:
    """08:30 local opens at 08:30 UTC in winter (GMT) and 07:30 UTC in summer (BST)."""
    calendar = load(FIXTURES / "valid_full.yaml").lines["revenues"].calendar
    # Monday 12 January 2026 (GMT)
    assert not calendar.is_open(_utc(2026, 1, 12, 8, 29))
    assert calendar.is_open(_utc(2026, 1, 12, 8, 30))
    assert calendar.is_open(_utc(2026, 1, 12, 16, 59))
    assert not calendar.is_open(_utc(2026, 1, 12, 17, 0))
    # Monday 15 June 2026 (BST, UTC+1)
    assert not calendar.is_open(_utc(2026, 6, 15, 7, 29))
    assert calendar.is_open(_utc(2026, 6, 15, 7, 30))
    assert calendar.is_open(_utc(2026, 6, 15, 15, 59))
    assert not calendar.is_open(_utc(2026, 6, 15, 16, 0))
    # Saturday 13 June 2026 is not listed, so closed all day
    assert not calendar.is_open(_utc(2026, 6, 13, 11, 0))
    # Wednesday's lunch break
    assert not calendar.is_open(_utc(2026, 6, 17, 11, 30))
    assert calendar.is_open(_utc(2026, 6, 17, 12, 30))


def test_a_calendar_open_until_midnight_covers_the_whole_day() -> None:
    """ "00:00-24:00" keeps a line open up to the last instant of the day."""
    calendar = load(FIXTURES / "valid_full.yaml").lines["social_care"].calendar
    assert calendar.is_open(_utc(2026, 6, 13, 22, 59, 59))  # 23:59:59 BST
    assert calendar.is_open(_utc(2026, 6, 13, 23, 0))  # 00:00 BST Sunday


def test_framework_conditions_run_against_stats() -> None:
    """The compiled conditions behave: 0.8 * target clears at 95 s for a 120 s line."""
    tier = load(FIXTURES / "valid_full.yaml").lines["council_tax"].framework.tiers[0]
    at = _utc(2026, 1, 12, 10, 0)
    assert tier.when.holds(QueueStats(line="council_tax", at=at, avg_wait=121))
    assert not tier.clear.holds(QueueStats(line="council_tax", at=at, avg_wait=96))
    assert tier.clear.holds(QueueStats(line="council_tax", at=at, avg_wait=95))


def test_env_is_not_read_from_os_environ_when_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit env mapping is the only source of variables."""
    monkeypatch.setenv("SOCIAL_CARE_NAME", "from os.environ")
    _, errors, _ = check(FIXTURES / "valid_full.yaml", env={})
    assert [e.message for e in errors] == [
        "lines.social_care.name: environment variable SOCIAL_CARE_NAME is not set"
    ]
    assert ENV["SOCIAL_CARE_NAME"] == "Adult Social Care"
