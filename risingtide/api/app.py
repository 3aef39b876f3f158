"""The daemon's one HTTP port: the JSON API, the duty board, sign-in, links, health, metrics.

Routes (DESIGN.md's public contract, described in full at ``GET /openapi.json``):

* reads — ``GET /api/v1/lines?limit=&tier_at_least=&after=`` (pages, ``risingtide.api.listing``),
  ``GET /api/v1/lines/{line}``,
  ``GET /api/v1/events?line=&since=&until=&kind=&limit=&before=``, ``GET /api/v1/session``,
  ``GET /api/v1/groups?at=`` (who is on duty, ``risingtide.api.duty``);
* changes — ack, silence, override and ``POST /-/reload`` (``risingtide.api.control``);
* the outbox — ``GET /api/v1/outbox``, retry and dismiss a dead letter
  (``risingtide.api.outbox``);
* pages — the board at ``GET /``, sign-in and sign-out, acknowledgement links
  (``risingtide.api.pages``);
* open to all — ``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``GET /openapi.json``.

Who may do what is ``risingtide.api.access``. Every refusal from the API is a 4xx with
``{"error": reason}``; an unexpected failure is logged and answered with a JSON 500 rather
than taking anything down.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from risingtide import __version__
from risingtide.api import access, auth
from risingtide.api.access import Gate, error
from risingtide.api.control import command_routes
from risingtide.api.daemon import DaemonControl, DaemonView
from risingtide.api.demand import demand_routes, demand_rows
from risingtide.api.duty import duty_routes, render_board
from risingtide.api.episodes import episode_routes
from risingtide.api.headers import SECURITY_HEADERS, SecurityHeaders
from risingtide.api.history import entry_json, history_query, history_routes
from risingtide.api.listing import lines_query, next_path, select
from risingtide.api.openapi import openapi_document
from risingtide.api.outbox import outbox_routes
from risingtide.api.pages import message, page_routes
from risingtide.api.replicas import replicas_routes
from risingtide.api.wallboard import wallboard_routes

__all__ = ["MAX_EVENTS", "DaemonControl", "DaemonView", "create_app"]

log = structlog.get_logger(__name__)

_STATIC = Path(__file__).parent / "static"  # the board's CSS and JS, at /static/
MAX_EVENTS = 1000


def create_app(daemon: DaemonControl) -> Starlette:
    """Build the ASGI app over a running daemon."""
    gate = Gate(daemon)
    spec = openapi_document()

    async def lines(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        query = lines_query(request)
        if isinstance(query, Response):
            return query
        page = select(list(daemon.config.lines), daemon.states, query)
        if isinstance(page, str):
            return error(400, page)
        return JSONResponse(
            {
                "lines": [v.to_json() for v in daemon.views_of(page.lines)],
                "next": next_path(query, page.after),
                "total": page.total,
            }
        )

    async def line(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        view = daemon.view(request.path_params["line"])
        if view is None:
            return error(404, f"no line {request.path_params['line']!r} in the config")
        return JSONResponse(view.to_json())

    async def events(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        query = history_query(request, default=100, most=MAX_EVENTS)
        if isinstance(query, Response):
            return query
        if daemon.store is None:
            return error(503, "the store is not open yet")
        entries = daemon.store.history(**query)
        next_before = entries[-1].id if len(entries) == query["limit"] else None
        return JSONResponse(
            {"events": [entry_json(e) for e in entries], "next_before": next_before}
        )

    async def healthz(_: Request) -> JSONResponse:
        if not daemon.healthy:
            return JSONResponse({"status": "evaluation loop stalled"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(_: Request) -> JSONResponse:
        if not daemon.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(_: Request) -> Response:
        # The store is read on the loop; building thousands of line views and rendering
        # them runs in a thread, so polls and evaluations carry on during a scrape.
        build = daemon.views_later()
        body = await asyncio.to_thread(lambda: daemon.metrics.render(build()))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def board(request: Request) -> Response:
        if gate.users_configured and isinstance(gate.identify(request), auth.Refusal):
            return RedirectResponse("/login?next=/", status_code=303)
        now = daemon.clock.now()
        coming = demand_rows(daemon.config, daemon.demand_events, now)
        return HTMLResponse(render_board(daemon.config, now, demand=coming))

    async def session(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        if isinstance(who, access.Open):
            return JSONResponse({"users_configured": False, "authenticated": False})
        secret = gate.secret
        csrf = (
            auth.session_csrf(secret, who.session)
            if who.session is not None and secret is not None
            else None
        )
        return JSONResponse(
            {
                "users_configured": True,
                "authenticated": True,
                "user": who.user.id,
                "name": who.user.name,
                "role": who.user.role,
                "via": who.via,
                "csrf_token": csrf,
                "expires_at": who.session.expires_at.isoformat() if who.session else None,
            }
        )

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(spec)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reasons = {404: "no such page or API route", 405: "that method is not allowed here"}
        reason = reasons.get(exc.status_code, str(exc.detail))
        if not request.url.path.startswith(("/api/", "/-/")):  # people's pages answer in HTML
            page = message(exc.status_code, reason[:1].upper() + reason[1:])
            page.headers.update(exc.headers or {})
            return page
        return JSONResponse({"error": reason}, status_code=exc.status_code, headers=exc.headers)

    async def crashed(request: Request, exc: Exception) -> Response:
        # Last resort: the request is answered and logged; the daemon carries on.
        log.exception("HTTP request failed", method=request.method, path=request.url.path)
        return JSONResponse(
            {"error": "the daemon could not handle this request; its log says why"},
            status_code=500,
            headers=SECURITY_HEADERS,  # answered outside the middleware that adds them
        )

    handlers: dict[Any, Any] = {HTTPException: http_error, Exception: crashed}
    app = Starlette(
        routes=[
            Route("/", board),
            Route("/api/v1/lines", lines),
            Route("/api/v1/lines/{line}", line),
            Route("/api/v1/events", events),
            Route("/api/v1/session", session),
            *history_routes(daemon, gate),
            *duty_routes(daemon, gate),
            *demand_routes(daemon, gate),
            *replicas_routes(daemon, gate),
            *episode_routes(daemon, gate),
            *command_routes(daemon, gate),
            *outbox_routes(daemon, gate),
            *page_routes(daemon, gate),
            *wallboard_routes(daemon, gate),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            Mount("/static", StaticFiles(directory=_STATIC), name="static"),
        ],
        exception_handlers=handlers,
        middleware=[
            Middleware(
                SecurityHeaders,  # every answer's headers; cookie changes from this origin only
                public_url=lambda: daemon.public_url,
                cookies=frozenset({auth.SESSION_COOKIE, auth.LOGIN_COOKIE}),
                refuse_page=_refusal_page,
            )
        ],
    )
    # "/api/v1/lines/" is not a route: say so rather than redirect (307) to a guess.
    app.router.redirect_slashes = False
    return app


def _refusal_page(_path: str, reason: str) -> tuple[bytes, str]:
    page = message(403, "Not done", reason[:1].upper() + reason[1:] + ".")
    return bytes(page.body), "text/html; charset=utf-8"
