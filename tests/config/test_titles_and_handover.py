"""A response's ``title:`` and a framework's ``ack_expires: at_handover`` load and take effect."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from config_fakes import load, write

from risingtide.config import load_config
from risingtide.config.errors import ConfigErrors
from risingtide.config.model import humanise
from risingtide.handover import ack_expiry, duty_groups

LONDON = ZoneInfo("Europe/London")
DEMO = Path(__file__).parents[2] / "config" / "rising-tide.yaml"

BASE = """\
sources: { demo: { type: scripted } }
lines: { revenues: { name: Revenues, source: demo, framework: f } }
people:
  asha: { name: Asha Patel, email: asha@example.gov.uk }
  ben: { name: Ben Okafor, email: ben@example.gov.uk }
groups:
  duty_managers:
    name: duty managers
    members: [asha, ben]
    rota:
      - { days: daily, hours: "08:00-14:00", on_duty: [asha] }
      - { days: daily, hours: "14:00-08:00", on_duty: [ben] }
responses:
  tell: { type: log, message: risen, page: [duty_managers], title: Duty manager told }
  callback_on: { type: log, message: "switched on" }
frameworks:
  f:
    ACK
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } },
          responses: [tell, callback_on] }
"""


def test_a_response_title_is_kept_and_defaults_to_the_id_in_words(tmp_path: Path) -> None:
    """``title:`` is what the board shows; without one the id reads as words."""
    config = load(write(tmp_path, BASE.replace("ACK", "step_down: true")))
    assert config.responses["tell"].label == "Duty manager told"
    assert config.responses["callback_on"].title == ""
    assert config.responses["callback_on"].label == "Callback on"
    assert humanise("page_surge_staff") == "Page surge staff"


def test_an_acknowledgement_lapses_at_the_rota_handover(tmp_path: Path) -> None:
    """Under ``ack_expires: at_handover`` an acknowledgement at 09:30 lapses at 14:00 London
    time, when the tier's duty group changes hands."""
    config = load(write(tmp_path, BASE.replace("ACK", "ack_expires: at_handover")))
    line = config.lines["revenues"]
    assert line.framework.ack_expires_at_handover
    assert duty_groups(config, line, 1) == ("duty_managers",)
    now = datetime(2026, 6, 1, 9, 30, tzinfo=LONDON)
    assert ack_expiry(config, line, 1, now) == datetime(2026, 6, 1, 14, 0, tzinfo=LONDON)


def test_without_at_handover_an_acknowledgement_does_not_lapse(tmp_path: Path) -> None:
    """The default (``never``) gives no expiry, rota or not."""
    config = load(write(tmp_path, BASE.replace("ACK", "ack_expires: never")))
    line = config.lines["revenues"]
    assert not line.framework.ack_expires_at_handover
    assert ack_expiry(config, line, 1, datetime(2026, 6, 1, 9, 30, tzinfo=LONDON)) is None


def test_a_wrong_ack_expires_value_is_refused_with_its_place(tmp_path: Path) -> None:
    """A typo in ``ack_expires`` fails the load and names the key."""
    path = write(tmp_path, BASE.replace("ACK", "ack_expires: at_handoff"))
    with pytest.raises(ConfigErrors, match=r"ack_expires.*at_handover"):
        load_config(path)


def test_the_demo_acknowledgements_lapse_at_handover() -> None:
    """The demo's frameworks hand acknowledgements over with the duty managers' rota."""
    config = load_config(DEMO)
    assert any(lc.framework.ack_expires_at_handover for lc in config.lines.values())
