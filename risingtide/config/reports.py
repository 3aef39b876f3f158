"""``reports:``: summaries sent on a schedule through notification responses.

.. code-block:: yaml

    reports:
      weekly:
        every: "mon 08:00"          # a day of the week and a time of day
        timezone: Europe/London     # the zone of that time (the default)
        responses: [email_managers] # notifications (never switches) to send it through

Each report covers the week (seven days) before the time it falls due. ``risingtide.weekly``
sends it. Errors name the file, line and column like every other config error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field

from risingtide.config.errors import show
from risingtide.config.model import ReportConfig, ResponseConfig
from risingtide.config.report import Report
from risingtide.config.schema import Block, Ids, TimeZone, parsed_by

__all__ = ["WEEKDAYS", "ReportBlock", "compile_reports", "parse_every", "responses_named"]

#: Days as ``every:`` names them, Monday first (``datetime.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAYS = {name: i for i, full in enumerate(_FULL) for name in (full, full[:3])}
_EVERY = re.compile(r"(?P<day>[a-z]+)\s+(?P<h>\d{1,2}):(?P<m>\d{2})")


def parse_every(value: Any) -> tuple[int, time]:
    """``"mon 08:00"`` as (weekday 0-6, time of day); ValueError says how to write it."""
    hint = 'write a day and a time, e.g. "mon 08:00"'
    match = _EVERY.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{show(value)} is not a day and a time ({hint})")
    day = _DAYS.get(match.group("day"))
    if day is None:
        raise ValueError(f"{show(value)}: the day must be one of {', '.join(WEEKDAYS)} ({hint})")
    hour, minute = int(match.group("h")), int(match.group("m"))
    if hour > 23 or minute > 59:
        raise ValueError(f"{show(value)}: {hour}:{minute:02d} is not a time of day ({hint})")
    return day, time(hour, minute)


class ReportBlock(Block):
    """One report under ``reports:``."""

    every: Annotated[tuple[int, time], parsed_by(parse_every)]
    timezone: TimeZone = ZoneInfo("Europe/London")
    responses: Annotated[Ids, Field(min_length=1)]


def compile_reports(
    report: Report, section: Mapping[str, Any], responses: Mapping[str, ResponseConfig | None]
) -> dict[str, ReportConfig]:
    """The valid reports of ``section``; every mistake reported at its place.

    A report may name only notification responses (a report never switches a platform);
    a response whose own block is broken (``None`` in ``responses``) was reported already.
    """
    out: dict[str, ReportConfig] = {}
    for rid, raw in section.items():
        path = ("reports", rid)
        block = report.validate(ReportBlock, raw, path)
        if block is None:
            continue
        ok = True
        for i, name in enumerate(block.responses):
            where = (*path, "responses", i)
            if name not in responses:
                known = ", ".join(sorted(responses)) or "none"
                report.error(where, f'unknown response "{name}" (known: {known})')
                ok = False
            elif (rc := responses[name]) is not None and rc.undoable:
                report.error(where, f'"{name}" is a switch; a report goes out through '
                                    "notifications only")  # fmt: skip
                ok = False
        if ok:
            weekday, at = block.every
            out[rid] = ReportConfig(
                id=rid, weekday=weekday, at=at, timezone=block.timezone,
                responses=tuple(block.responses),
            )  # fmt: skip
    return out


def responses_named(section: Mapping[str, Any]) -> set[str]:
    """Every response id the reports name, valid or not: a response a report uses is not
    "never used", even while that report has a mistake of its own."""
    named: set[str] = set()
    for raw in section.values():
        listed = raw.get("responses") if isinstance(raw, Mapping) else None
        if isinstance(listed, list):
            named.update(r for r in listed if isinstance(r, str))
    return named
