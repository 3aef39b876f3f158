"""The documents say what the code does: when the stale alert fires, and how long an UNDO is
retried before it is given up on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from risingtide.config.loader import check_config
from risingtide.dispatch import DEFAULT_POLICY

DOCS = Path(__file__).parents[2] / "docs"
FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"


def flat(text: str) -> str:
    """Markdown with its line breaks and quote marks folded, for phrase searches."""
    return " ".join(text.replace("\n>", "\n").split())


def test_switches_md_gives_the_undo_the_days_retrying_the_code_does() -> None:
    """switches.md says an UNDO keeps retrying for the policy's 24 hours, not "about a minute"."""
    assert DEFAULT_POLICY.undo_max_age == timedelta(hours=24)
    text = flat((DOCS / "switches.md").read_text())
    assert "about a minute" not in text
    assert "keeps retrying, at most 5 minutes apart, for **24 hours**" in text
    assert DEFAULT_POLICY.max_delay == timedelta(minutes=5)


def test_the_stale_alert_check_says_it_fires_at_stale_after_plus_stale_alert_after() -> None:
    """The check's message, and the configuration reference, give the alert's real timing
    (the engine raises it ``stale_alert_after`` after the line went stale, itself
    ``stale_after`` after its last figures: see test_tiers' stale spell test)."""
    _, errors, _ = check_config(FIXTURES / "stale_alert_before_stale.yaml", {})
    (message,) = [str(e) for e in errors if "stale_alert_after" in str(e)]
    assert "the stale alert cannot come before the line is stale" not in message
    assert "stale_after + stale_alert_after after the last fresh figures" in message
    reference = flat((DOCS / "configuration.md").read_text())
    assert "`stale_after + stale_alert_after` after the last fresh figures" in reference
