"""``reports:``: a weekly summary's schedule and responses load; mistakes are placed."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from config_fakes import load, write

from risingtide.config.reports import parse_every

CONFIG = """\
sources:
  demo: { type: scripted }
lines:
  revenues: { name: Revenues, source: demo, framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } },
          responses: [notify_duty_manager] }
responses:
  notify_duty_manager: { type: log }
  email_managers: { type: text, to: ["+447700900123"] }
reports:
  weekly:
    every: mon 08:00
    responses: [email_managers]
  friday:
    every: "Friday 16:30"
    timezone: Europe/Dublin
    responses: [email_managers, notify_duty_manager]
"""


def test_reports_load_with_their_day_time_zone_and_responses(tmp_path: Path) -> None:
    """Each report has its weekday, time, zone (London by default) and responses."""
    config = load(write(tmp_path, CONFIG))
    weekly, friday = config.reports["weekly"], config.reports["friday"]
    assert (weekly.weekday, weekly.at, weekly.timezone) == (0, time(8), ZoneInfo("Europe/London"))
    assert weekly.responses == ("email_managers",)
    assert (friday.weekday, friday.at, friday.timezone.key) == (4, time(16, 30), "Europe/Dublin")
    assert config.warnings == ()  # a response only a report uses is not "never used"


def test_a_config_without_reports_has_none(tmp_path: Path) -> None:
    """No ``reports:`` section: nothing is scheduled."""
    text = CONFIG.split("reports:")[0].replace("  email_managers: { type: text, to: [", "#")
    assert load(write(tmp_path, text)).reports == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon 08:00", (0, time(8))),
        ("SUNDAY 7:05", (6, time(7, 5))),
        (" wed  23:59 ", (2, time(23, 59))),
    ],
)
def test_every_reads_a_day_and_a_time(text: str, expected: tuple[int, time]) -> None:
    """Short or full day names in any case, and H:MM or HH:MM."""
    assert parse_every(text) == expected


@pytest.mark.parametrize("text", ["mon", "08:00 mon", "mon 24:00", "mo 08:00", 8, "mon 08:60"])
def test_every_refuses_what_is_not_a_day_and_a_time(text: object) -> None:
    """Anything else is a ValueError that shows how to write it."""
    with pytest.raises(ValueError, match=r'e\.g\. "mon 08:00"'):
        parse_every(text)
