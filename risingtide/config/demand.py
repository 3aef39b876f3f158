"""``demand:`` and ``demand_feeds:`` — the demand calendar in the YAML, checked and compiled.

``demand:`` is a list of events; ``demand_feeds:`` a list of iCalendar files or URLs whose
events all take the feed's lines, demand and actions. Every mistake is reported with its
place (``FILE:LINE:COL``): an unknown line or response, a pre-armed or tightened tier the
line's framework does not have, a start after the end, ``end`` and ``for`` both given.

Times are ISO datetimes (``2026-03-02T08:00``) in the event's ``timezone`` (default: the
first named line's calendar, Europe/London for ``lines: all``), or — for demos and drills —
relative to the daemon's start: ``start: +2m`` (``-4m`` for an event already under way).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, model_validator

from risingtide.config.durations import parse_duration
from risingtide.config.errors import show
from risingtide.config.model import DemandFeed, LineConfig
from risingtide.config.report import Report
from risingtide.config.schema import (
    Block,
    Duration,
    PositiveDuration,
    TimeZone,
    config_error,
    parsed_by,
)
from risingtide.domain.demand_calendar import (
    ALL_LINES,
    DemandEvent,
    Prearm,
    Tighten,
    after_start,
)

__all__ = ["DemandBlock", "DemandFeedBlock", "Known", "compile_demand", "compile_feeds"]

Path = tuple[str | int, ...]
_LONDON = ZoneInfo("Europe/London")
_RELATIVE = re.compile(r"[+-]")


def _when(value: Any) -> datetime | timedelta:
    """An ISO datetime (naive or with offset), or ``+2m``/``-4m`` from the daemon's start."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RELATIVE.match(value.strip()):
        text = value.strip()
        span = parse_duration(text[1:])
        return -span if text[0] == "-" else span
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        f"{show(value)} is not a time (use an ISO datetime such as 2026-03-02T08:00, or +2m "
        "from the daemon's start for demos)"
    )


When = Annotated[datetime | timedelta, parsed_by(_when)]


def _listed(value: Any) -> Any:
    """One mapping, or a list of them (``tighten: {level: 1, for: 1m}``)."""
    return [value] if isinstance(value, dict) else value


class PrearmBlock(Block):
    """``prearm: {level: 2, lead: 30m}``."""

    level: Annotated[int, Field(ge=1)]
    lead: Duration = timedelta(0)


class TightenBlock(Block):
    """``tighten: {level: 1, for: 1m}``."""

    level: Annotated[int, Field(ge=1)]
    for_: Duration = Field(alias="for")


class _Actions(Block):
    """What an event (or every event of a feed) expects and does."""

    lines: list[str] | str
    multiply: Annotated[float, Field(gt=0)] | None = None
    calls_per_hour: Annotated[float, Field(ge=0)] | None = None
    prearm: PrearmBlock | None = None
    tighten: Annotated[list[TightenBlock], BeforeValidator(_listed)] = Field(default_factory=list)
    responses: list[str] = Field(default_factory=list)
    lead: Duration = timedelta(0)
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _one_demand(self) -> _Actions:
        if self.multiply is not None and self.calls_per_hour is not None:
            raise config_error("give multiply or calls_per_hour, not both", ("calls_per_hour",))
        return self


class DemandBlock(_Actions):
    """One event under ``demand:``."""

    name: Annotated[str, Field(min_length=1)]
    start: When
    end: When | None = None
    for_: PositiveDuration | None = Field(default=None, alias="for")


class DemandFeedBlock(_Actions):
    """One iCalendar feed under ``demand_feeds:``: a ``path`` or a ``url``."""

    path: str | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None

    @model_validator(mode="after")
    def _one_place(self) -> DemandFeedBlock:
        if (self.path is None) == (self.url is None):
            raise config_error("give path or url (where the .ics is), exactly one")
        return self


def _as_list(raw: Any, report: Report, name: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        report.error((name,), f"expected a list of events (- name: …), got {show(raw)}")
        return []
    return raw


def _line_ids(block: _Actions) -> tuple[str, ...]:
    return (block.lines,) if isinstance(block.lines, str) else tuple(block.lines)


@dataclass(frozen=True, slots=True)
class Known:
    """What events may name: the line and response ids written in the file (a broken block
    is still known, its own error reported once), and the lines that compiled."""

    line_ids: Collection[str]
    response_ids: Collection[str]
    lines: Mapping[str, LineConfig]


def _check_refs(report: Report, block: _Actions, path: Path, known: Known) -> bool:
    """Lines, responses and tier levels the event names exist; False after reporting."""
    lines = known.lines
    ok = True
    ids = _line_ids(block)
    if isinstance(block.lines, str) and block.lines != ALL_LINES:
        ids = ()
        report.error((*path, "lines"), f'{show(block.lines)}: give a list of line ids, or "all"')
        ok = False
    named = [lid for lid in ids if lid != ALL_LINES]
    for i, lid in enumerate(ids):
        if lid != ALL_LINES and lid not in known.line_ids:
            where = (*path, "lines", i) if isinstance(block.lines, list) else (*path, "lines")
            names = ", ".join(sorted(known.line_ids)) or "none"
            report.error(where, f'unknown line "{lid}" (known: {names})')
            ok = False
        elif lid != ALL_LINES and lid not in lines:
            ok = False  # the line's own block is broken: reported there
    for i, rid in enumerate(block.responses):
        if rid not in known.response_ids:
            names = ", ".join(sorted(known.response_ids)) or "none"
            report.error((*path, "responses", i), f'unknown response "{rid}" (known: {names})')
            ok = False
    affected = [lines[lid] for lid in named if lid in lines] or (
        list(lines.values()) if ALL_LINES in ids else []
    )
    for key, level in _levels(block):
        for lc in affected:
            if level > lc.framework.max_level:
                report.error(
                    (*path, *key),
                    f"line {lc.id}'s framework has no tier {level} "
                    f"(it goes up to {lc.framework.max_level})",
                )
                ok = False
                break
    return ok


def _levels(block: _Actions) -> list[tuple[Path, int]]:
    out: list[tuple[Path, int]] = []
    if block.prearm is not None:
        out.append((("prearm", "level"), block.prearm.level))
    out.extend((("tighten", i, "level"), t.level) for i, t in enumerate(block.tighten))
    return out


def _zone(block: _Actions, lines: Mapping[str, LineConfig]) -> ZoneInfo:
    if block.timezone is not None:
        return block.timezone
    for lid in _line_ids(block):
        if lid in lines:
            return lines[lid].calendar.tz
    return _LONDON


def _template(block: _Actions, name: str) -> DemandEvent:
    """An event with the block's lines, demand and actions (times filled in later)."""
    return DemandEvent(
        name=name,
        lines=_line_ids(block),
        start=datetime.min.replace(tzinfo=UTC),
        end=datetime.min.replace(tzinfo=UTC),
        multiply=block.multiply,
        calls_per_hour=block.calls_per_hour,
        prearm=Prearm(block.prearm.level, block.prearm.lead) if block.prearm else None,
        tighten=tuple(Tighten(t.level, t.for_) for t in block.tighten),
        responses=tuple(block.responses),
        lead=block.lead,
    )


def _placed(value: datetime | timedelta, zone: ZoneInfo) -> datetime:
    if isinstance(value, timedelta):
        return after_start(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def compile_demand(report: Report, raw: Any, known: Known) -> tuple[DemandEvent, ...]:
    """The ``demand:`` section's events (every mistake reported, bad events left out)."""
    events: list[DemandEvent] = []
    for i, item in enumerate(_as_list(raw, report, "demand")):
        path: Path = ("demand", i)
        block = report.validate(DemandBlock, item, path)
        if block is None:
            continue
        refs_ok = _check_refs(report, block, path, known)
        if (block.end is None) == (block.for_ is None):
            report.error(path, "give end or for (how long the event runs), exactly one")
            continue
        if not refs_ok:
            continue
        zone = _zone(block, known.lines)
        start = _placed(block.start, zone)
        if block.end is not None:
            if isinstance(block.start, timedelta) != isinstance(block.end, timedelta):
                report.error((*path, "end"), "give start and end both relative (+2m) or both dates")
                continue
            end = _placed(block.end, zone)
        else:
            assert block.for_ is not None
            end = start + block.for_
        if end <= start:
            report.error((*path, "end"), "the event must end after it starts")
            continue
        events.append(
            _with_times(
                _template(block, block.name), start, end, isinstance(block.start, timedelta)
            )
        )
    return tuple(events)


def _with_times(template: DemandEvent, start: datetime, end: datetime, rel: bool) -> DemandEvent:
    return replace(template, start=start, end=end, relative=rel)


def compile_feeds(
    report: Report, raw: Any, known: Known, base: pathlib.Path
) -> tuple[DemandFeed, ...]:
    """The ``demand_feeds:`` section: where each .ics is and what its events mean."""
    feeds: list[DemandFeed] = []
    for i, item in enumerate(_as_list(raw, report, "demand_feeds")):
        path: Path = ("demand_feeds", i)
        block = report.validate(DemandFeedBlock, item, path)
        if block is None or not _check_refs(report, block, path, known):
            continue
        where = block.url or str(base / (block.path or ""))
        if block.path is not None and not (base / block.path).is_file():
            report.error((*path, "path"), f"{show(block.path)}: no such file ({where})")
            continue
        feeds.append(
            DemandFeed(
                where=where,
                is_url=block.url is not None,
                template=_template(block, ""),
                timezone=_zone(block, known.lines),
            )
        )
    return tuple(feeds)
