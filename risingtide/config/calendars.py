"""Opening hours and closed days: the ``calendars:`` section's own little grammar.

Days are ``mon`` … ``sun``, ranges such as ``mon-fri``, or ``weekdays``, ``weekend`` and
``daily``. Hours are ``"08:30-17:00"``, several ranges separated by commas
(``"08:00-12:00, 13:00-17:00"``) or given as a list, or ``closed``; ``24:00`` may end a
range. UK bank holidays come from the ``holidays`` package (kept as dates in
``bank_holiday_table``) and are cached, because the daemon rebuilds calendars on every reload.

Every failure is a ``CalendarError`` (a ``ValueError``) whose message can be shown as is.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from datetime import date, time
from typing import Literal

from risingtide.config.bank_holiday_table import package_dates, table_dates
from risingtide.config.errors import show
from risingtide.domain.model import WEEKDAYS

BankHolidays = Literal["england-and-wales", "scotland", "northern-ireland", "none"]

#: The ``holidays`` package's subdivision of the United Kingdom for each region.
BANK_HOLIDAY_REGIONS: dict[str, str] = {
    "england-and-wales": "ENG",  # England and Wales share their bank holidays
    "scotland": "SCT",
    "northern-ireland": "NIR",
}

_GROUPS: dict[str, tuple[int, ...]] = {
    "weekdays": (0, 1, 2, 3, 4),
    "weekend": (5, 6),
    "daily": (0, 1, 2, 3, 4, 5, 6),
}
_RANGE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*[-–]\s*([0-9]{1,2}):([0-9]{2})")
_END_OF_DAY = time.max  # "24:00": ``Calendar.is_open`` tests ``start <= t < end``

Hours = tuple[tuple[time, time], ...]


class CalendarError(ValueError):
    """A day name or an opening-hours value that cannot be understood."""


def parse_days(key: str) -> tuple[int, ...]:
    """The weekdays (Monday is 0) that an ``hours:`` key names: ``mon``, ``mon-fri``, …"""
    text = key.strip().lower()
    if text in _GROUPS:
        return _GROUPS[text]
    first, dash, last = text.partition("-")
    if first in WEEKDAYS and not dash:
        return (WEEKDAYS.index(first),)
    if first in WEEKDAYS and last in WEEKDAYS:
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last)
        if start > end:
            raise CalendarError(
                f"{show(key)} runs backwards; write days from Monday towards Sunday, e.g. mon-fri"
            )
        return tuple(range(start, end + 1))
    raise CalendarError(
        f"{show(key)} is not a day (use mon, tue, wed, thu, fri, sat, sun, a range such as "
        "mon-fri, weekdays, weekend or daily)"
    )


def _time(hours: str, minutes: str, *, end: bool) -> time | None:
    h, m = int(hours), int(minutes)
    if end and (h, m) == (24, 0):
        return _END_OF_DAY
    if h > 23 or m > 59:
        return None
    return time(h, m)


def _ranges(text: str) -> list[tuple[time, time]]:
    if text.strip().lower() == "closed":
        return []
    out: list[tuple[time, time]] = []
    for part in text.split(","):
        match = _RANGE.fullmatch(part.strip())
        start = end = None
        if match:
            start = _time(match.group(1), match.group(2), end=False)
            end = _time(match.group(3), match.group(4), end=True)
        if start is None or end is None:
            raise CalendarError(
                f'{show(part.strip())} is not a time range (use e.g. "08:30-17:00", '
                'several separated by commas, or "closed")'
            )
        if start >= end:
            raise CalendarError(f"{show(part.strip())} must start before it ends")
        out.append((start, end))
    return out


def parse_day_hours(value: object) -> Hours:
    """Opening hours for one day: ``"08:30-17:00"``, comma-separated ranges, a list, ``closed``.

    Ranges are returned in order; overlapping ranges are an error.
    """
    items: list[object] = list(value) if isinstance(value, list) else [value]
    ranges: list[tuple[time, time]] = []
    for item in items:
        if not isinstance(item, str):
            raise CalendarError(
                f'{show(item)} is not opening hours (use e.g. "08:30-17:00", or "closed")'
            )
        ranges.extend(_ranges(item))
    ranges.sort()
    for (s1, e1), (s2, e2) in itertools.pairwise(ranges):
        if s2 < e1:
            raise CalendarError(f"{_fmt(s1, e1)} and {_fmt(s2, e2)} overlap")
    return tuple(ranges)


def _fmt(start: time, end: time) -> str:
    close = "24:00" if end == _END_OF_DAY else end.strftime("%H:%M")
    return f"{start.strftime('%H:%M')}-{close}"


@functools.cache
def bank_holidays(region: str, first_year: int, last_year: int) -> frozenset[date]:
    """The bank holidays of a region (``england-and-wales``…) from one year to another."""
    subdiv = BANK_HOLIDAY_REGIONS.get(region)
    if subdiv is None:
        return frozenset()
    # The kept table when it holds the years (the package's own answer, without loading
    # every country's calendar), else the package.
    known = table_dates(subdiv, first_year, last_year)
    return package_dates(subdiv, first_year, last_year) if known is None else known


def week(assignments: Iterable[tuple[tuple[int, ...], Hours]]) -> tuple[Hours, ...]:
    """Hours for each weekday from ``(days, hours)`` in order; later ones win, others close."""
    days: list[Hours] = [()] * 7
    for numbers, hours in assignments:
        for number in numbers:
            days[number] = hours
    return tuple(days)
