"""The daemon's one HTTP port: JSON API (read side), a first duty board, health and metrics.

Routes (DESIGN.md's public contract): ``GET /api/v1/lines``, ``GET /api/v1/lines/{line}``,
``GET /api/v1/events?line=&since=&limit=&before=&kind=``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` and the board at ``GET /``. Routes that change state (ack, silence,
declare, reload) arrive with authentication in their own issue; until then the daemon
changes state only through its config, SIGHUP and the engine itself.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from risingtide import __version__
from risingtide.store import Store
from risingtide.view import LineView

_BOARD = (Path(__file__).parent / "templates" / "board.html").read_text(encoding="utf-8")
MAX_EVENTS = 1000


class DaemonView(Protocol):
    """What the HTTP side reads from the runtime."""

    registry: CollectorRegistry
    store: Store | None
    ready: bool

    @property
    def healthy(self) -> bool:
        """False when the evaluation loop has stopped."""
        ...

    def views(self) -> list[LineView]:
        """Every line now."""
        ...

    def view(self, line: str) -> LineView | None:
        """One line now."""
        ...


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def create_app(daemon: DaemonView) -> Starlette:
    """Build the ASGI app over a running daemon."""

    async def lines(_: Request) -> JSONResponse:
        return JSONResponse({"lines": [v.to_json() for v in daemon.views()]})

    async def line(request: Request) -> JSONResponse:
        view = daemon.view(request.path_params["line"])
        if view is None:
            return _error(404, f"no line {request.path_params['line']!r} in the config")
        return JSONResponse(view.to_json())

    async def events(request: Request) -> JSONResponse:
        q = request.query_params
        try:
            limit = int(q.get("limit", "100"))
            before = int(q["before"]) if "before" in q else None
            since = _parse_time(q["since"]) if "since" in q else None
            until = _parse_time(q["until"]) if "until" in q else None
        except ValueError as exc:
            return _error(400, f"bad query parameter: {exc}")
        if not 1 <= limit <= MAX_EVENTS:
            return _error(400, f"limit must be between 1 and {MAX_EVENTS}")
        if daemon.store is None:
            return _error(503, "the store is not open yet")
        kinds = q.getlist("kind") or None
        entries = daemon.store.history(
            line=q.get("line") or None,
            kinds=kinds,
            since=since,
            until=until,
            limit=limit,
            before_id=before,
        )
        body = [
            {"id": e.id, "at": e.at.isoformat(), "line": e.line, "kind": e.kind,
             "tier": e.tier, "data": e.data}
            for e in entries
        ]  # fmt: skip
        next_before = entries[-1].id if len(entries) == limit else None
        return JSONResponse({"events": body, "next_before": next_before})

    async def healthz(_: Request) -> JSONResponse:
        if not daemon.healthy:
            return JSONResponse({"status": "evaluation loop stalled"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(_: Request) -> JSONResponse:
        if not daemon.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(daemon.registry), media_type=CONTENT_TYPE_LATEST)

    async def board(_: Request) -> HTMLResponse:
        return HTMLResponse(_BOARD)

    return Starlette(
        routes=[
            Route("/", board),
            Route("/api/v1/lines", lines),
            Route("/api/v1/lines/{line}", line),
            Route("/api/v1/events", events),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )


def _parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"{text!r} needs a timezone (e.g. 2026-11-23T09:00:00Z)")
    return t
