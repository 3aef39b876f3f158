"""A platform source's request budget is kept inside its poll timeout."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from risingtide.config import check_config

CONFIG = """\
sources:
  twilio:
    type: twilio_taskrouter
    interval: 5s
    account_sid: AC00000000000000000000000000000000
    auth_token: secret
    workspace_sid: WS00000000000000000000000000000000
{budget}lines:
  revenues:
    name: Revenues
    source: {{ use: twilio, task_queue_sid: WQ00000000000000000000000000000000 }}
frameworks:
  f:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }} }}
defaults: {{ framework: f }}
"""


def test_a_default_budget_is_shortened_to_fit_the_timeout(tmp_path: Path):
    """With a 5 s timeout, the default 8 s budget becomes 4 s (80 % of the timeout)."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(budget=""))
    config, errors, _ = check_config(path)
    assert errors == []
    assert config is not None
    settings = config.sources["twilio"].settings
    assert settings.request_budget == timedelta(seconds=4)  # type: ignore[attr-defined]


def test_a_written_budget_at_or_over_the_timeout_is_an_error(tmp_path: Path):
    """``request_budget: 8s`` with a 5 s timeout names the line and column and says why."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(budget="    request_budget: 8s\n"))
    config, errors, _ = check_config(path)
    assert config is None
    assert [str(e) for e in errors] == [
        f"{path}:8:21: sources.twilio.request_budget: 8s must be shorter than the poll "
        "timeout (5s), so a slow platform is given up on, and said so, before the poll is "
        "cut off"
    ]
