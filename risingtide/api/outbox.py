"""The outbox over HTTP: see the dead letters, retry one after fixing its cause, or dismiss it.

======================================  ============  ======================================
route                                   role          does
======================================  ============  ======================================
``GET /api/v1/outbox?status=&limit=``   viewer        dead letters (newest first; the
                                                      default) or pending entries
``POST /api/v1/outbox/{key}/retry``     duty_manager  run a dead letter again, now
``POST /api/v1/outbox/{key}/dismiss``   duty_manager  give it up for good
======================================  ============  ======================================

``key`` is the entry's idempotency key, which contains ``/``, ``:`` and ``@``: send it
URL-encoded (``quote(key, safe="")``); the route also takes it with its slashes as they are.
Both commands take an optional body ``{"note": "…"}``, kept in the history with the user's
name as ``by``. Refusals are ``{"error": reason}``, checked in this order: 401/403 (who; see
``access``), 503 (still starting), 404 (no such key), 413/400 (the body), 409 (not a dead
letter, or running it again would do harm: a switch the line has moved on from).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.api import access, auth
from risingtide.api.access import Gate, error
from risingtide.api.control import body_of
from risingtide.api.daemon import DaemonControl
from risingtide.api.models import OutboxNoteBody
from risingtide.domain.commands import CommandRejected
from risingtide.store import NotDeadError, OutboxEntry, UnknownEntryError

__all__ = ["MAX_LIST", "entry_json", "outbox_routes"]

#: The most entries one GET returns (``limit``); 100 unless asked.
MAX_LIST = 1000
_DEFAULT_LIST = 100
_STATUSES = ("dead", "pending")


def entry_json(e: OutboxEntry) -> dict[str, Any]:
    """One outbox entry as the API returns it (``models.OutboxEntryOut``)."""
    o = e.order
    return {
        "key": o.key,
        "status": e.status,
        "line": o.line,
        "tier": o.tier,
        "response": o.response,
        "action": o.action.value,
        "trigger": o.trigger,
        "reason": o.reason,
        "at": o.at.isoformat(),
        "attempts": e.attempts,
        "last_error": e.last_error,
        "created_at": e.created_at.isoformat(),
        "next_attempt_at": e.next_attempt_at.isoformat(),
        "finished_at": None if e.finished_at is None else e.finished_at.isoformat(),
        "batch": e.batch,
    }


def outbox_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """``GET /api/v1/outbox`` and the retry and dismiss commands over ``daemon``."""

    async def listing(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        q = request.query_params
        status = q.get("status", "dead")
        if status not in _STATUSES:
            return error(400, f"status must be one of {', '.join(_STATUSES)}, not {status!r}")
        try:
            limit = int(q.get("limit", str(_DEFAULT_LIST)))
        except ValueError:
            return error(400, "limit must be a whole number")
        if not 1 <= limit <= MAX_LIST:
            return error(400, f"limit must be between 1 and {MAX_LIST}")
        store = daemon.store
        if store is None:
            return error(503, "the store is not open yet")
        if status == "dead":
            entries, total = store.dead(limit), store.dead_count()
        else:
            pending = store.pending()
            entries, total = pending[:limit], len(pending)
        return JSONResponse(
            {"status": status, "total": total, "entries": [entry_json(e) for e in entries]}
        )

    async def command(
        request: Request, act: Callable[[str, str, str], OutboxEntry], done: str
    ) -> Response:
        who = gate.check(request, access.CHANGE)
        if isinstance(who, Response):
            return who
        assert isinstance(who, auth.Principal)  # changes are never open
        key = request.path_params["key"]
        if daemon.store is None:
            return error(503, "the store is not open yet")
        if daemon.store.outbox_entry(key) is None:
            return error(404, f"no outbox entry has the key {key!r}")
        body = await body_of(request, OutboxNoteBody)
        if isinstance(body, Response):
            return body
        by = who.user.name
        try:
            entry = act(key, by, body.note)
        except UnknownEntryError as exc:  # gone since the look above (not today: never deleted)
            return error(404, str(exc))
        except NotDeadError as exc:
            return error(409, str(exc))
        except CommandRejected as exc:
            return error(409, exc.reason)
        o = entry.order
        reason = f"{o.response} ({o.action.value}) for {o.line}, tier {o.tier}, {done} by {by}"
        return JSONResponse({"reason": reason, "entry": entry_json(entry)})

    async def retry(request: Request) -> Response:
        return await command(
            request,
            lambda key, by, note: daemon.requeue(key, by=by, note=note),
            "requeued to run now",
        )

    async def dismiss(request: Request) -> Response:
        return await command(
            request,
            lambda key, by, note: daemon.dismiss(key, by=by, note=note),
            "dismissed",
        )

    return [
        Route("/api/v1/outbox", listing),
        Route("/api/v1/outbox/{key:path}/retry", retry, methods=["POST"]),
        Route("/api/v1/outbox/{key:path}/dismiss", dismiss, methods=["POST"]),
    ]
