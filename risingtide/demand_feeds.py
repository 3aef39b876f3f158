"""Reading ``demand_feeds:`` — iCalendar (.ics) files and URLs — into demand calendar events.

Each VEVENT becomes a copy of its feed's template (lines, demand, pre-arm, tighten,
responses) with the VEVENT's SUMMARY as its name and DTSTART/DTEND (or DURATION) as its
times. A VEVENT whose CATEGORIES name some of the feed's lines affects only those lines.
All-day events run from midnight to midnight in the feed's timezone; times without a zone
are in the feed's timezone too. A recurring VEVENT (RRULE) counts once, at its DTSTART:
export the occurrences (most calendar tools do for a date range) to have each one.

Files are read and URLs fetched when the daemon starts and on every reload (and by
replay). ``icalendar`` is imported only here, when a feed is read, so ``risingtide
check`` on a config without feeds stays quick.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from risingtide.config.model import DemandFeed
from risingtide.domain.demand_calendar import ALL_LINES, DemandEvent

__all__ = ["FeedError", "events_from_ics", "read_feed", "read_feeds"]

#: How long a URL may take to answer.
FETCH_TIMEOUT = 10.0
#: A feed larger than this is refused (a council's calendar is kilobytes).
MAX_BYTES = 5_000_000


class FeedError(ValueError):
    """A feed that cannot be read or parsed; the message names the feed."""


def events_from_ics(data: bytes | str, feed: DemandFeed) -> tuple[DemandEvent, ...]:
    """The demand events in one iCalendar document, mapped through ``feed``."""
    import icalendar  # lazily: only configs with feeds pay for it

    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise FeedError(f"{feed.where}: not an iCalendar file ({exc})") from None
    out: list[DemandEvent] = []
    for component in calendar.walk("VEVENT"):
        event = _event(component, feed)
        if event is not None:
            out.append(event)
    return tuple(sorted(out, key=lambda e: e.start))


def _event(component: Any, feed: DemandFeed) -> DemandEvent | None:
    start_prop = component.get("DTSTART")
    if start_prop is None:
        return None
    start = _instant(start_prop.dt, feed)
    end_prop = component.get("DTEND")
    if end_prop is not None:
        end = _instant(end_prop.dt, feed)
    elif component.get("DURATION") is not None:
        end = start + component.get("DURATION").dt
    elif isinstance(start_prop.dt, datetime):
        return None  # an instant, not a span: nothing runs
    else:
        end = start + timedelta(days=1)
    if end <= start:
        return None
    name = str(component.get("SUMMARY") or "calendar event")
    lines = _lines(component, feed.template.lines)
    return replace(feed.template, name=name, start=start, end=end, lines=lines)


def _instant(value: date | datetime, feed: DemandFeed) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=feed.timezone)
    return value.astimezone(UTC)


def _lines(component: Any, lines: tuple[str, ...]) -> tuple[str, ...]:
    """The feed's lines, narrowed to those the VEVENT's CATEGORIES name (if any)."""
    raw = component.get("CATEGORIES")
    named: set[str] = set()
    for prop in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        named.update(str(c).strip() for c in prop.cats)
    if not named:
        return lines
    if ALL_LINES in lines:
        return tuple(sorted(named))
    chosen = tuple(lid for lid in lines if lid in named)
    return chosen or lines


def read_feed(feed: DemandFeed) -> tuple[DemandEvent, ...]:
    """Read one feed (a file, or a URL fetched now) into events; FeedError when it fails."""
    if feed.is_url:
        import httpx  # here, not at the top: a daemon without URL feeds never loads it

        try:
            response = httpx.get(feed.where, timeout=FETCH_TIMEOUT, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise FeedError(f"{feed.where}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise FeedError(f"{feed.where}: HTTP {response.status_code}")
        data = response.content
    else:
        try:
            data = Path(feed.where).read_bytes()
        except OSError as exc:
            raise FeedError(f"{feed.where}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise FeedError(f"{feed.where}: larger than {MAX_BYTES} bytes")
    return events_from_ics(data, feed)


def read_feeds(feeds: Iterable[DemandFeed]) -> tuple[tuple[DemandEvent, ...], list[str]]:
    """Every feed's events, and a message for each feed that failed (the rest still count)."""
    events: list[DemandEvent] = []
    problems: list[str] = []
    for feed in feeds:
        try:
            events.extend(read_feed(feed))
        except FeedError as exc:
            problems.append(str(exc))
    return tuple(events), problems
