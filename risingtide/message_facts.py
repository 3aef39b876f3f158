"""The facts of one order for a message: what happened, to which line, with which figures.

``facts_from(order, context)`` gathers them into a frozen :class:`MessageFacts` and picks the
message *kind* from the order's trigger (the table is in ``risingtide.messages``). A
scheduled report (``risingtide.weekly``) is an order for the pseudo line ``*`` with the
trigger ``report``; its kind is ``report`` and its ``reason`` is the report's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from risingtide.domain.model import ResponseOrder
from risingtide.ports import ResponseContext

__all__ = [
    "EXTRA_KEYS",
    "KINDS",
    "REPORT_TRIGGER",
    "MessageFacts",
    "MessageKind",
    "facts_from",
]

#: The trigger of an order that carries a scheduled report rather than news of a line.
REPORT_TRIGGER: Final = "report"

MessageKind = Literal[
    "tier_raised", "reminder", "escalated", "tier_lowered", "back_to_calm", "stats_stale", "report"
]
KINDS: Final[tuple[MessageKind, ...]] = (
    "tier_raised",
    "reminder",
    "escalated",
    "tier_lowered",
    "back_to_calm",
    "stats_stale",
    "report",
)

#: The ``ResponseContext.extra`` keys ``facts_from`` reads.
EXTRA_KEYS: Final = (
    "entered_at",
    "live_switches",
    "ack_url",
    "tier_from",
    "framework_tiers",
    "board_url",
)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """Everything a message about one line may say, gathered from one order.

    Figures are as the source reported them (``None`` = unknown): waits in seconds,
    ``abandon_rate`` a ratio 0–1 over ``window`` seconds. ``tier_from`` is the tier before a
    tier change (``None`` when unknown or not a tier change).
    """

    kind: MessageKind
    line: str
    line_name: str
    tier: int
    tier_name: str
    at: datetime
    reason: str
    key: str
    response: str
    trigger: str
    episode: int
    target_wait: float
    tier_from: int | None = None
    tier_from_name: str | None = None
    tier_count: int | None = None
    stats_at: datetime | None = None
    avg_wait: float | None = None
    longest_wait: float | None = None
    calls_waiting: int | None = None
    agents_available: int | None = None
    abandon_rate: float | None = None
    window: float | None = None
    agents_needed: int | None = None
    capacity_gap: int | None = None
    capacity_gap_ratio: float | None = None
    predicted_wait: float | None = None
    forecast_wait: float | None = None
    entered_at: datetime | None = None
    live_switches: tuple[str, ...] = ()
    ack_url: str | None = None
    board_url: str | None = None

    @property
    def raised_for(self) -> timedelta | None:
        """How long the line has been at its tier when the order was planned, if known."""
        if self.entered_at is None or self.entered_at > self.at:
            return None
        return self.at - self.entered_at


_TIER_CHANGE = re.compile(r"/(\d+)-(\d+)@")


def facts_from(order: ResponseOrder, context: ResponseContext) -> MessageFacts:
    """The facts of ``order`` for a message, with the optional extras of ``context``."""
    extra = context.extra
    stats = context.stats
    names = _tier_names(extra.get("framework_tiers"))
    tier_from = _tier_from(order, extra.get("tier_from"))
    return MessageFacts(
        kind=_kind(order, tier_from),
        line=order.line,
        line_name=context.line_name or order.line,
        tier=order.tier,
        tier_name=context.tier_name,
        at=order.at,
        reason=order.reason,
        key=order.key,
        response=order.response,
        trigger=order.trigger,
        episode=order.episode,
        target_wait=context.target_wait,
        tier_from=tier_from,
        tier_from_name=None if tier_from is None else names.get(tier_from),
        tier_count=max(names) if names else None,
        stats_at=None if stats is None else stats.at,
        avg_wait=None if stats is None else stats.avg_wait,
        longest_wait=None if stats is None else stats.longest_wait,
        calls_waiting=None if stats is None else stats.calls_waiting,
        agents_available=None if stats is None else stats.agents_available,
        abandon_rate=None if stats is None else stats.abandon_rate,
        window=None if stats is None else stats.window,
        agents_needed=None if stats is None else stats.agents_needed,
        capacity_gap=None if stats is None else stats.capacity_gap,
        capacity_gap_ratio=None if stats is None else stats.capacity_gap_ratio,
        predicted_wait=None if stats is None else stats.predicted_wait,
        forecast_wait=None if stats is None else stats.forecast_wait,
        entered_at=_aware(extra.get("entered_at")),
        live_switches=_names(extra.get("live_switches")),
        ack_url=_url(extra.get("ack_url")),
        board_url=_url(extra.get("board_url")),
    )


def _kind(order: ResponseOrder, tier_from: int | None) -> MessageKind:
    trigger = order.trigger
    if trigger == REPORT_TRIGGER:
        return "report"
    if trigger == "reminder":
        return "reminder"
    if trigger == "escalated":
        return "escalated"
    if trigger == "stats_stale":
        return "stats_stale"
    if trigger == "demand_event_due":
        return "tier_raised"  # a calendar event's lead time: at the current tier, even calm
    if order.tier <= 0:
        return "back_to_calm"
    if trigger == "tier_changed" and tier_from is not None and tier_from > order.tier:
        return "tier_lowered"
    # A rise, or a catch-up at the current tier (silence ended, re-assert, declared).
    return "tier_raised"


def _tier_from(order: ResponseOrder, given: Any) -> int | None:
    if order.trigger != "tier_changed":
        return None
    if isinstance(given, int) and not isinstance(given, bool) and given >= 0:
        return given
    match = _TIER_CHANGE.search(order.key)
    if match is not None and int(match.group(2)) == order.tier:
        return int(match.group(1))
    return None


def _tier_names(value: Any) -> dict[int, str]:
    """Tier names by level from a list (levels 1..N) or a mapping; {} when malformed."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            try:
                out[int(k)] = str(v)
            except (TypeError, ValueError):
                continue
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {i: str(name) for i, name in enumerate(value, start=1)}
    return {}


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (Sequence, frozenset, set)):
        return ()
    return tuple(sorted(str(v) for v in value))


def _url(value: Any) -> str | None:
    # Only web links: a "javascript:" link must never become a button in an email or card.
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None
