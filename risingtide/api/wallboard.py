"""The duty board's answers (``GET /api/v1/board``) and the contact centre's wallboard.

``GET /api/v1/board`` (a read: a viewer's, or open without users)
    Every line as ``GET /api/v1/lines`` gives it, plus a ``briefing`` (``risingtide.briefing``:
    why it rose, since when, the next reminder or escalation and whom it reaches, who has
    been told this episode, agents needed against staffed, what is switched on by title),
    raised lines first, highest tier first, longest raised first; then calm lines.

``GET /wallboard``
    A read-only page for the screen on the contact-centre floor: every line's tier in words
    and colour, its wait against target, and the agents it needs, in type large enough to
    read across a room at 1920 × 1080. It has no buttons and no forms. Without users it is
    open; with them it needs a viewer's session or ``?token=`` with a viewer's API token
    (checked as the API checks ``Authorization: Bearer``). The token must not leak: the page
    is sent with ``Referrer-Policy: no-referrer``, its script takes the token out of the
    address bar at once (``history.replaceState``) and keeps it only in memory to poll
    ``/api/v1/lines`` every 10 seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from risingtide.api import access, auth
from risingtide.api.access import Gate
from risingtide.api.daemon import DaemonControl
from risingtide.api.models import LineOut
from risingtide.api.pages import TEMPLATES, message
from risingtide.briefing import briefing, clock_text, duration_text, ordered
from risingtide.view import LineView

__all__ = ["BoardOut", "board_json", "wallboard_routes", "wallboard_rows"]

#: The history records read per raised line for "who has been told".
_RECORDS = 200

_WALLBOARD_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
}


# ---------------------------------------------------------------------- the JSON's shape


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SwitchOut(_Strict):
    """A switch that is on, by its config id and its title."""

    id: str
    title: str = Field(description="The response's title: in the config, or its id in words.")


class NextOut(_Strict):
    """The next reminder or escalation step of a raised, unacknowledged tier."""

    what: str = Field(description='e.g. "reminder 2", "reminder 1 and escalation step 1".')
    at: datetime
    at_text: str = Field(description="The time on the UK clock (with the day if not today).")
    overdue: bool = Field(description="Due already: it goes out at the next evaluation.")
    to: list[str] = Field(description="Names of the people it reaches by the rota, and the "
                          "titles of responses that page nobody.")  # fmt: skip


class NotifiedOut(_Strict):
    """One notification of the current episode."""

    response: str
    title: str
    at: datetime
    at_text: str
    outcome: str | None = Field(description="ok (sent), retry or dead (given up).")
    to: list[str] = Field(description="Who its page: reached by the rota at that time.")


class BriefingOut(_Strict):
    """The board's answers for one line; the raised-line keys are absent when calm."""

    switched_on: list[SwitchOut]
    agents_needed: int | None
    agents_staffed: int | None
    agents_gap: int | None = Field(description="Needed less staffed; positive means short.")
    agents_gap_percent: str | None = Field(
        None, description='The gap as a share of agents needed, e.g. "8%".'
    )
    predicted_wait: float | None = Field(
        None, description="Erlang C's mean wait with the agents staffed, seconds (capped)."
    )
    predicted_wait_text: str | None = Field(None, description='e.g. "6m 40s", "over 1h".')
    capacity_text: str | None = Field(
        None, description='e.g. "Needs 4 more agents to get back under 3m (…)".'
    )
    cause: str | None = Field(None, description="Why the line is at its tier, in words.")
    since: datetime | None = None
    since_text: str | None = None
    ack_expires_text: str | None = Field(
        None, description="When the acknowledgement lapses (ack_expires: at_handover), or empty."
    )
    next: NextOut | None = None
    notified: list[NotifiedOut] | None = None


class BoardLineOut(LineOut):
    """A line as ``GET /api/v1/lines`` gives it, with its briefing."""

    briefing: BriefingOut


class BoardOut(BaseModel):
    """Every line, raised first, with the board's answers."""

    at: datetime = Field(description="The daemon's now.")
    lines: list[BoardLineOut]


# ---------------------------------------------------------------------- building it


def board_json(daemon: DaemonControl) -> dict[str, Any]:
    """``GET /api/v1/board``: the lines in board order, each with its ``briefing``."""
    config = daemon.config
    out = []
    for view in ordered(daemon.views()):
        records: list[Any] = []
        if view.state.tier > 0 and daemon.store is not None:
            records = list(daemon.store.history(line=view.id, kinds={"response"}, limit=_RECORDS))
        out.append({**view.to_json(), "briefing": briefing(config, view, records)})
    return {"at": daemon.clock.now().isoformat(), "lines": out}


def wallboard_rows(views: list[LineView]) -> list[dict[str, Any]]:
    """What the wallboard shows of each line, in board order (its script words it alike)."""
    rows = []
    for v in ordered(views):
        stats = v.stats
        wait = stats.avg_wait if stats is not None else None
        needed = v.agents_needed
        staffed = stats.agents_staffed if stats is not None else None
        rows.append(
            {
                "line": v.id,
                "name": v.name,
                "tier": min(v.state.tier, 4),
                "tier_text": f"Tier {v.state.tier} · {v.tier_name.capitalize()}",
                "wait": "not known" if wait is None else duration_text(wait),
                "over": wait is not None and wait > v.target_wait,
                "target": duration_text(v.target_wait),
                "needed": "not known" if needed is None else str(needed),
                "staffed": "" if staffed is None else str(staffed),
                "stale": v.state.stale,
            }
        )
    return rows


def wallboard_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """``GET /api/v1/board`` and ``GET /wallboard``."""

    async def board_data(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        return JSONResponse(board_json(daemon))

    def allowed(request: Request) -> bool:
        if not gate.users_configured:
            return True
        token = request.query_params.get("token")
        if token:
            user = auth.user_for_token(daemon.config.users, token)
            return user is not None and user.may("viewer")
        return isinstance(gate.identify(request), auth.Principal)

    async def wallboard(request: Request) -> Response:
        if not allowed(request):
            if request.query_params.get("token"):
                # message() pages carry no-referrer too: the bad token goes nowhere.
                return message(
                    401, "This wallboard link is not valid",
                    "Its token is not one of Rising Tide's API tokens. Ask an administrator "
                    "for a viewer's token, or sign in.",
                )  # fmt: skip
            return RedirectResponse("/login?next=/wallboard", 303, headers=_WALLBOARD_HEADERS)
        now = daemon.clock.now()
        html = TEMPLATES.get_template("wallboard.html").render(
            rows=wallboard_rows(daemon.views()), updated=clock_text(now, now)
        )
        return HTMLResponse(html, headers=_WALLBOARD_HEADERS)

    return [
        Route("/api/v1/board", board_data, methods=["GET"]),
        Route("/wallboard", wallboard, methods=["GET"]),
    ]
