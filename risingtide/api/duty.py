"""Who is on duty: ``GET /api/v1/groups`` and the duty board's "On duty" panel.

``GET /api/v1/groups[?at=ISO-8601]`` (a read: open without users, a viewer's with them)
answers, for every group under ``groups:``, who its rota puts on duty at the daemon's now
(or at ``at``), whether that is by a shift (``by_rota``) or because no shift covers the
moment (``otherwise``, or every member), when that next changes, and which responses page
the group. People appear by id and name only: the board is for viewers, and addresses
(email, mobile, Teams, Slack) are personal data that only the channels need.

The board (``GET /``) is rendered here with the panel filled in for the daemon's now; the
page's script then refreshes it from the API. The panel lists only groups that some
response pages, and is hidden when there are none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.api import access
from risingtide.api.access import Gate, error
from risingtide.api.daemon import DaemonControl
from risingtide.api.history import parse_time
from risingtide.api.pages import TEMPLATES
from risingtide.config.model import Config
from risingtide.domain.people import Group

__all__ = ["GroupOut", "GroupsOut", "PanelRow", "duty_routes", "groups_json", "panel_rows"]

#: ``at`` is refused outside these years: a week's rota past year 9999 has no dates.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------- the JSON's shape


class PersonOut(BaseModel):
    """Someone on duty: no addresses (and the document says no other field may appear)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The person's id under people: in the config.")
    name: str


class GroupOut(BaseModel):
    """One group under ``groups:`` at the moment asked about."""

    group: str = Field(description="The group's id in the config, as a response's page: names it.")
    name: str
    timezone: str = Field(description="The zone the group's rota is written in.")
    on_duty: list[PersonOut] = Field(description="Who a page to this group reaches now.")
    by_rota: bool = Field(
        description="True when a shift covers the moment; false when no shift does (the "
        "group's otherwise:, or every member, is paged) or the group has no rota."
    )
    next_change: datetime | None = Field(
        description="When who is on duty next changes, within 7 days (in the group's "
        "timezone); null when nothing changes in that time or there is no rota."
    )
    paged_by: list[str] = Field(description="The responses whose page: names this group.")


class GroupsOut(BaseModel):
    """Every group and who is on duty."""

    at: datetime = Field(description="The moment asked about: the daemon's now, or ?at=.")
    groups: list[GroupOut]


# ---------------------------------------------------------------------- building it


def paged_by(config: Config, group: str) -> list[str]:
    """The ids of the responses that page ``group``, in config order."""
    return [rid for rid, response in config.responses.items() if group in response.page]


def _people(config: Config, ids: tuple[str, ...]) -> list[dict[str, str]]:
    people = config.directory.people
    return [{"id": pid, "name": people[pid].name if pid in people else pid} for pid in ids]


def group_json(config: Config, group: Group, at: datetime) -> dict[str, Any]:
    """One group as the API returns it (see ``GroupOut``)."""
    change = group.next_change(at)
    return {
        "group": group.id,
        "name": group.name,
        "timezone": group.tz.key,
        "on_duty": _people(config, group.on_duty(at)),
        "by_rota": group.by_rota(at),
        "next_change": None if change is None else change.astimezone(group.tz).isoformat(),
        "paged_by": paged_by(config, group.id),
    }


def groups_json(config: Config, at: datetime) -> dict[str, Any]:
    """``GET /api/v1/groups`` at ``at`` (see ``GroupsOut``)."""
    return {
        "at": at.astimezone(UTC).isoformat(),
        "groups": [group_json(config, g, at) for g in config.directory.groups.values()],
    }


@dataclass(frozen=True, slots=True)
class PanelRow:
    """One line of the board's "On duty" panel."""

    group: str
    title: str
    names: str
    note: str


def title(name: str) -> str:
    """A group's name as a heading: ``duty managers`` as ``Duty managers``."""
    return name[:1].upper() + name[1:]


def until_note(at: datetime, change: datetime | None, by_rota: bool, group: Group) -> str:
    """``(until 22:00)``, ``(until Mon 07:00)`` or ``(gap in the rota until 22:00)``.

    Times are read in the group's timezone; the weekday is given when the change is not
    on the same day. The board's script words it the same way.
    """
    if change is None:
        return ""
    local, now = change.astimezone(group.tz), at.astimezone(group.tz)
    when = f"{local:%H:%M}" if local.date() == now.date() else f"{local:%a %H:%M}"
    return f"(until {when})" if by_rota else f"(gap in the rota until {when})"


def panel_rows(config: Config, at: datetime) -> list[PanelRow]:
    """The panel at ``at``: each group some response pages, and who is on duty (names)."""
    rows: list[PanelRow] = []
    for group in config.directory.groups.values():
        if not paged_by(config, group.id):
            continue
        people = _people(config, group.on_duty(at))
        rows.append(
            PanelRow(
                group=group.id,
                title=title(group.name),
                names=", ".join(p["name"] for p in people),
                note=until_note(at, group.next_change(at), group.by_rota(at), group),
            )
        )
    return rows


def render_board(config: Config, at: datetime, *, demand: Sequence[object] = ()) -> str:
    """The duty board's HTML, its "On duty" panel filled in for ``at`` (and its "Coming
    up" panel with ``demand``, rows from ``risingtide.api.demand.demand_rows``)."""
    return TEMPLATES.get_template("board.html").render(duty=panel_rows(config, at), demand=demand)


# ---------------------------------------------------------------------- the route


def _moment(request: Request, now: datetime) -> datetime | JSONResponse:
    """``?at=`` (an ISO 8601 time with an offset) or ``now``; a 400 saying what is wrong."""
    text = request.query_params.get("at")
    if not text:
        return now
    try:
        at = parse_time(text)
    except (ValueError, OverflowError) as exc:
        return error(400, f"bad query parameter at: {exc}")
    if not EARLIEST <= at < LATEST:
        return error(400, "at must be a time between the years 1900 and 8999")
    return at


def duty_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """``GET /api/v1/groups``."""

    async def groups(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        at = _moment(request, daemon.clock.now())
        if isinstance(at, Response):
            return at
        return JSONResponse(groups_json(daemon.config, at))

    return [Route("/api/v1/groups", groups)]
