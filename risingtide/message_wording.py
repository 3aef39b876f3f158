"""How messages say things: durations, percentages, clock times, tiers, and each kind's
headline in words (``headline``), including the handover's "acknowledgement lapsed"
(trigger ``acknowledgement_expired``) and a scheduled report's subject.

Times are shown in UK time (``DISPLAY_TZ``), as the centre's staff read them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from risingtide.message_facts import MessageFacts

__all__ = [
    "DISPLAY_TZ",
    "ack_expired",
    "clock",
    "format_duration",
    "format_percent",
    "headline",
    "report_lines",
    "report_subject",
    "tier_label",
]

#: Messages are read in the UK: clock times are shown in UK local time.
DISPLAY_TZ: Final = ZoneInfo("Europe/London")


def format_duration(seconds: float | timedelta) -> str:
    """A duration as people say it: ``45s``, ``6m 40s``, ``3m``, ``1h 5m``."""
    total = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
    s = max(0, round(total))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        m, sec = divmod(s, 60)
        return f"{m}m {sec}s" if sec else f"{m}m"
    h, rest = divmod(s, 3600)
    m = rest // 60
    return f"{h}h {m}m" if m else f"{h}h"


def format_percent(ratio: float) -> str:
    """A ratio 0–1 as a percentage: ``12.5%``, ``10%``."""
    text = f"{ratio * 100:.1f}"
    return (text.removesuffix(".0")) + "%"


def clock(when: datetime | None) -> str:
    """``14:00``: a time of day in UK time (empty for None)."""
    return "" if when is None else when.astimezone(DISPLAY_TZ).strftime("%H:%M")


def tier_label(tier: int, name: str | None) -> str:
    """``tier 2 (high)``, or ``tier 2`` without a name."""
    return f"tier {tier} ({name})" if name else f"tier {tier}"


def headline(f: MessageFacts) -> str:
    """The default one-line headline for ``f`` (a digest's heading for that line)."""
    if f.kind == "report":
        return report_subject(f.reason)
    if f.trigger == "acknowledgement_expired":
        return ack_expired(f)
    label = tier_label(f.tier, f.tier_name)
    came_from = ""
    if f.tier_from is not None and f.tier_from > 0:
        came_from = f" from {tier_label(f.tier_from, f.tier_from_name)}"
    if f.trigger == "demand_event_due":
        return f"{f.line_name}: {f.reason}"  # the planner words it: "X starts at 08:00: …"
    if f.kind == "tier_raised" and f.trigger != "tier_changed":
        # A catch-up (a silence ended): nothing rose just now, the line is still there.
        return f"{f.line_name} is at {label}"
    if f.kind == "tier_raised":
        return f"{f.line_name} raised to {label}{came_from}"
    if f.kind == "tier_lowered":
        return f"{f.line_name} down to {label}{came_from}"
    if f.kind == "back_to_calm":
        return f"{f.line_name} back to {f.tier_name or 'calm'}"
    if f.kind == "reminder":
        return f"Reminder: {f.line_name} still at {label}, not acknowledged"
    if f.kind == "escalated":
        return f"Escalated: {f.line_name} at {label}, not acknowledged"
    return f"{f.line_name}: no fresh figures, holding {label}"


#: The planner's reason for asking again (``risingtide.domain.responses``) names who had
#: acknowledged: "acknowledgement by Asha lapsed at handover: tier 2 (high)".
_LAPSED_BY: Final = re.compile(r"acknowledgement by (?P<by>.+?) lapsed at handover")


def ack_expired(f: MessageFacts) -> str:
    """``Asha's acknowledgement of Council Tax at tier 2 lapsed at the 14:00 handover;
    please acknowledge`` (who, from the order's reason; "The acknowledgement" if unknown)."""
    match = _LAPSED_BY.search(f.reason)
    who = f"{match.group('by')}'s acknowledgement" if match else "The acknowledgement"
    return (
        f"{who} of {f.line_name} at tier {f.tier} lapsed at the {clock(f.at)} handover; "
        "please acknowledge"
    )


def report_subject(text: str) -> str:
    """A report's subject: the first line of its text ("Rising Tide report" if empty)."""
    first = text.strip().split("\n", 1)[0].strip()
    return first or "Rising Tide report"


def report_lines(text: str) -> list[str]:
    """A report's text after its subject line, one entry a line, blank lines dropped."""
    rest = text.strip().split("\n")[1:]
    return [line for line in (r.strip() for r in rest) if line]
