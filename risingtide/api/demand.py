"""What is coming up: ``GET /api/v1/demand`` and the duty board's "Coming up" panel.

``GET /api/v1/demand[?days=7][&line=ID]`` (a read: open without users, a viewer's with them)
answers, per line, the demand calendar's events that are under way or begin (their pre-arm
or lead-time responses included) within the next ``days`` days (1 to 366, default 7): when
each starts and ends, the demand it is expected to bring, the tier it pre-arms and from
when, the ``for:`` it tightens, and the responses it sends and when. Lines with nothing
coming up are left out. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.api import access
from risingtide.api.access import Gate, error
from risingtide.api.daemon import DaemonControl
from risingtide.config.model import Config
from risingtide.domain.demand_calendar import DemandEvent, upcoming

__all__ = ["DemandOut", "DemandRow", "demand_json", "demand_routes", "demand_rows"]

#: The most days ahead one may ask about.
MOST_DAYS = 366
_LONDON = ZoneInfo("Europe/London")


class TightenOut(BaseModel):
    """A tier whose ``for:`` is shortened while the event runs."""

    level: int
    for_seconds: float = Field(description="The tier's for: while the event runs, in seconds.")


class EventOut(BaseModel):
    """One event on the demand calendar, as it affects a line."""

    name: str
    start: datetime
    end: datetime
    running: bool = Field(description="True when the event is under way now.")
    multiply: float | None = Field(description="Expected calls as a multiple of usual.")
    calls_per_hour: float | None = Field(description="Expected calls per hour.")
    prearm_level: int | None = Field(description="The tier declared ahead of it, if any.")
    prearm_from: datetime | None = Field(description="When that tier is declared (start − lead).")
    tighten: list[TightenOut]
    responses: list[str] = Field(description="The event's own responses.")
    responses_at: datetime | None = Field(description="When they are sent (start − lead).")


class LineDemandOut(BaseModel):
    """A line and what is coming up on it."""

    line: str
    name: str
    events: list[EventOut]


class DemandOut(BaseModel):
    """The demand calendar's next days, per line."""

    at: datetime = Field(description="The daemon's now.")
    days: int
    lines: list[LineDemandOut]


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def event_json(event: DemandEvent, now: datetime) -> dict[str, Any]:
    """One event as the API returns it (see ``EventOut``)."""
    return {
        "name": event.name,
        "start": _when(event.start),
        "end": _when(event.end),
        "running": event.start <= now < event.end,
        "multiply": event.multiply,
        "calls_per_hour": event.calls_per_hour,
        "prearm_level": event.prearm.level if event.prearm else None,
        "prearm_from": _when(event.prearm_from),
        "tighten": [
            {"level": t.level, "for_seconds": t.for_.total_seconds()} for t in event.tighten
        ],
        "responses": list(event.responses),
        "responses_at": _when(event.responses_at),
    }


def demand_json(
    config: Config, events: Iterable[DemandEvent], now: datetime, days: int, line: str | None
) -> dict[str, Any]:
    """``GET /api/v1/demand`` (see ``DemandOut``)."""
    every = tuple(events)
    horizon = timedelta(days=days)
    out = []
    for lid, lc in config.lines.items():
        if line is not None and lid != line:
            continue
        coming = upcoming(every, lid, now, horizon)
        if coming:
            out.append(
                {"line": lid, "name": lc.name, "events": [event_json(e, now) for e in coming]}
            )
    return {"at": now.astimezone(UTC).isoformat(), "days": days, "lines": out}


@dataclass(frozen=True, slots=True)
class DemandRow:
    """One line of the board's "Coming up" panel."""

    name: str
    lines: str
    when: str
    does: str


def _local(when: datetime, now: datetime) -> str:
    local, today = when.astimezone(_LONDON), now.astimezone(_LONDON)
    return f"{local:%H:%M}" if local.date() == today.date() else f"{local:%a %d %b %H:%M}"


def demand_rows(
    config: Config, events: Iterable[DemandEvent], now: datetime, days: int = 7
) -> list[DemandRow]:
    """The board's panel: each event coming up within ``days``, once, with its lines."""
    every = tuple(events)
    seen: dict[tuple[str, datetime], list[str]] = {}
    found: dict[tuple[str, datetime], DemandEvent] = {}
    for lid, lc in config.lines.items():
        for e in upcoming(every, lid, now, timedelta(days=days)):
            seen.setdefault((e.name, e.start), []).append(lc.name)
            found[(e.name, e.start)] = e
    rows = []
    for key, e in sorted(found.items(), key=lambda kv: kv[1].start):
        running = e.start <= now
        when = (
            f"under way until {_local(e.end, now)}"
            if running
            else f"{_local(e.start, now)} to {_local(e.end, now)}"
        )
        rows.append(DemandRow(e.name, ", ".join(seen[key]), when, _does(e, now)))
    return rows


def _does(event: DemandEvent, now: datetime) -> str:
    parts = []
    if event.multiply is not None:
        parts.append(f"{event.multiply:g}× the usual calls")
    elif event.calls_per_hour is not None:
        parts.append(f"{event.calls_per_hour:g} calls an hour expected")
    if event.prearm is not None and event.prearm_from is not None:
        parts.append(f"tier {event.prearm.level} pre-armed from {_local(event.prearm_from, now)}")
    if event.responses and event.responses_at is not None:
        parts.append(f"{', '.join(event.responses)} at {_local(event.responses_at, now)}")
    return "; ".join(parts)


def demand_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """``GET /api/v1/demand``."""

    async def demand(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        text = request.query_params.get("days", "7")
        if not text.isdigit() or not 1 <= int(text) <= MOST_DAYS:
            return error(400, f"days must be a whole number from 1 to {MOST_DAYS}")
        line = request.query_params.get("line") or None
        if line is not None and line not in daemon.config.lines:
            return error(404, f"no line {line!r} in the config")
        body = demand_json(daemon.config, daemon.demand_events, daemon.clock.now(), int(text), line)
        return JSONResponse(body)

    return [Route("/api/v1/demand", demand)]
