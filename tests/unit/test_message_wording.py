"""The wording of the handover's "acknowledgement lapsed" message and of a scheduled report."""

from __future__ import annotations

from datetime import UTC, datetime

from risingtide.domain.model import Action, ResponseOrder
from risingtide.messages import REPORT_TRIGGER, facts_from, render, sms_segments
from risingtide.ports import ResponseContext

HANDOVER = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # 14:00 in London (BST)


def _order(trigger: str, reason: str, line: str = "council_tax", tier: int = 2) -> ResponseOrder:
    return ResponseOrder(
        key=f"{line}/3/{trigger}/{tier}/{HANDOVER.isoformat()}/text_duty_manager/apply",
        line=line, response="text_duty_manager", action=Action.APPLY, tier=tier, episode=3,
        trigger=trigger, at=HANDOVER, reason=reason,
    )  # fmt: skip


def _context(name: str = "Council Tax") -> ResponseContext:
    return ResponseContext(line_name=name, tier_name="high", stats=None, target_wait=180.0)


def test_a_lapsed_acknowledgement_names_who_what_and_the_handover() -> None:
    """The handover's message says whose acknowledgement of which tier lapsed, and when."""
    reason = "acknowledgement by Asha Patel lapsed at handover: tier 2 (high)"
    message = render(facts_from(_order("acknowledgement_expired", reason), _context()))
    expected = (
        "Asha Patel's acknowledgement of Council Tax at tier 2 lapsed at the 14:00 handover; "
        "please acknowledge"
    )
    assert message.subject == expected
    assert message.text.splitlines()[0] == expected
    assert message.sms.splitlines()[0] == expected
    assert "is at tier 2" not in message.text


def test_a_lapsed_acknowledgement_without_a_name_still_reads() -> None:
    """Without a name in the reason, the message says "The acknowledgement"."""
    message = render(facts_from(_order("acknowledgement_expired", "lapsed"), _context()))
    assert message.subject.startswith("The acknowledgement of Council Tax at tier 2 lapsed at")


def test_a_report_is_sent_as_written_with_its_first_line_the_subject() -> None:
    """A report order's text is the message; its first line is the subject; HTML escapes it."""
    text = "Weekly summary: 1 episode\n\nCouncil Tax <episode 4>: peak tier 2\nThanks"
    order = _order(REPORT_TRIGGER, text, line="*", tier=0)
    facts = facts_from(order, _context("*"))
    message = render(facts)
    assert facts.kind == "report"
    assert message.subject == "Weekly summary: 1 episode"
    assert message.text == text
    assert "Council Tax &lt;episode 4&gt;: peak tier 2" in message.html
    assert message.sms == "Weekly summary: 1 episode\nCouncil Tax <episode 4>: peak tier 2\nThanks"


def test_a_long_report_fits_three_text_messages_dropping_its_last_lines() -> None:
    """A report's SMS keeps its subject and first lines within three segments."""
    lines = [f"Line {i}: episode {i}, peak tier 2, 45 min" for i in range(40)]
    text = "Weekly summary: 40 episodes\n" + "\n".join(lines)
    message = render(facts_from(_order(REPORT_TRIGGER, text, line="*", tier=0), _context("*")))
    assert sms_segments(message.sms) <= 3
    assert message.sms.startswith("Weekly summary: 40 episodes\nLine 0: episode 0")
    assert "Line 39" not in message.sms
