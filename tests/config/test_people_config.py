"""``people:`` and ``groups:`` load into a directory that pages whoever is on duty."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from config_fakes import load, write

from risingtide.config import load_config

LONDON = ZoneInfo("Europe/London")
DEMO = Path(__file__).parents[2] / "config" / "rising-tide.yaml"

BASE = """\
sources: { demo: { type: scripted } }
lines: { revenues: { name: Revenues, source: demo, framework: f } }
frameworks:
  f:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } }, responses: [text] }
"""


def test_the_demo_pages_its_duty_manager_by_the_rota() -> None:
    """The demo's duty managers: Asha weekday mornings, Ben afternoons, Chloe nights and
    weekends; its notifications page them, grouped over 5 seconds."""
    config = load_config(DEMO)
    directory = config.directory

    def on_duty(day: int, hour: int) -> list[str]:
        at = datetime(2026, 1, 5 + day, hour, 30, tzinfo=LONDON)  # day 0: a Monday
        return [p.name for p in directory.resolve(["duty_managers"], at)]

    assert on_duty(0, 9) == ["Asha Patel"]
    assert on_duty(2, 15) == ["Ben Okafor"]
    assert on_duty(3, 23) == ["Chloe Evans"]
    assert on_duty(4, 3) == ["Chloe Evans"]  # Thursday night's shift
    assert on_duty(5, 12) == ["Chloe Evans"]
    notify = config.responses["notify_duty_manager"]
    assert notify.page == ("duty_managers",) and notify.group_wait == timedelta(seconds=5)
    assert config.responses["ivr_deflection"].group_wait == timedelta(0)
    assert not config.warnings  # the rota covers the whole week


def test_addresses_are_kept_in_the_form_they_are_sent(tmp_path: Path) -> None:
    """A mobile written the local way is sent in international form."""
    config = load(
        write(
            tmp_path,
            BASE
            + """\
people:
  asha: { name: Asha Patel, mobile: "07700 900-123", slack: U024BE7LH }
responses:
  text: { type: text, page: [asha], group_wait: 0s, rate_limit: 10/min }
""",
        )
    )
    asha = config.directory.people["asha"]
    assert (asha.mobile, asha.slack, asha.email) == ("+447700900123", "U024BE7LH", None)
    text = config.responses["text"]
    assert text.group_wait == timedelta(0)
    assert text.rate_limit == (10, timedelta(minutes=1))


def test_members_default_to_the_rota_and_otherwise(tmp_path: Path) -> None:
    """Without ``members`` a group is everyone its rota and ``otherwise`` name."""
    config = load(
        write(
            tmp_path,
            BASE
            + """\
people:
  asha: { name: Asha, mobile: "07700 900123" }
  ben: { name: Ben, mobile: "07700 900456" }
  chloe: { name: Chloe, mobile: "07700 900789" }
groups:
  surge:
    name: Revenues surge staff
    rota:
      - { days: mon-fri, hours: "09:00-17:00", on_duty: [asha, ben] }
    otherwise: [chloe]
    timezone: Europe/London
responses:
  text: { type: text, page: [surge] }
""",
        )
    )
    group = config.directory.groups["surge"]
    assert group.members == ("asha", "ben", "chloe") and group.name == "Revenues surge staff"
    sunday = datetime(2026, 1, 11, 12, tzinfo=LONDON)
    assert group.on_duty(sunday) == ("chloe",)
    (warning,) = config.warnings
    assert "no shift covers Mon 00:00 to Mon 09:00" in warning and "otherwise: is paged" in warning


def test_the_notifications_example_loads_with_its_secrets_set() -> None:
    """config/examples/notifications.yaml: Notify, SMTP and Teams from the environment."""
    env = {
        "NOTIFY_API_KEY": "rt-26785a09-ab16-4eb0-8407-a37497a57506-"
        "3d844edf-8d35-48ac-975b-e847b4f122b0",
        "NOTIFY_SMS_TEMPLATE": "f33517ff-2a88-4f6e-b855-c550268ce08a",
        "SMTP_HOST": "smtp.council.example",
        "SMTP_USER": "rising-tide",
        "SMTP_PASSWORD": "not-a-real-password",
        "TEAMS_WEBHOOK_URL": "https://prod-00.uksouth.logic.azure.com/workflows/x/triggers/manual/paths/invoke",
    }
    config = load_config(DEMO.parent / "examples" / "notifications.yaml", env=env)
    text = config.responses["text_duty_manager"]
    assert (text.type, text.page, text.fallback) == (
        "govuk_notify",
        ("duty_managers",),
        "email_duty_managers",
    )
    assert config.responses["teams_csc"].rate_limit == (4, timedelta(seconds=1))
    handover = datetime(2026, 1, 6, 13, 50, tzinfo=LONDON)  # a Tuesday
    assert [p.id for p in config.directory.resolve(["duty_managers"], handover)] == ["asha", "ben"]
    assert not config.warnings


def test_channels_bring_their_documented_pace(tmp_path: Path) -> None:
    """Teams and Slack come with the rate their vendors document; a response may set its own."""
    env = {"HOOK": "https://hooks.slack.com/services/T000/B000/XXXX"}
    text = """\
sources: { demo: { type: scripted } }
lines: { revenues: { name: Revenues, source: demo, framework: f } }
frameworks:
  f:
    tiers:
      - level: 1
        name: rising
        when: { avg_wait: { above: target } }
        responses: [teams, slack, slow_slack]
responses:
  teams: { type: teams, url: "${HOOK}" }
  slack: { type: slack, url: "${HOOK}" }
  slow_slack: { type: slack, url: "${HOOK}", rate_limit: 10/min }
"""
    config = load_config(write(tmp_path, text), env=env)
    limits = {rid: rc.rate_limit for rid, rc in config.responses.items()}
    assert limits == {
        "teams": (4, timedelta(seconds=1)),
        "slack": (1, timedelta(seconds=1)),
        "slow_slack": (10, timedelta(minutes=1)),
    }
