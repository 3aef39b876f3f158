"""The duty manager's commands over HTTP, and the admin's reload.

===========================================  ============  ================================
route                                        role          does
===========================================  ============  ================================
``POST /api/v1/lines/{line}/ack``            duty_manager  acknowledge the line's tier
``POST /api/v1/lines/{line}/silence``        duty_manager  silence it for planned work
``DELETE /api/v1/lines/{line}/silence``      duty_manager  lift the silence early
``POST /api/v1/lines/{line}/override``       duty_manager  declare a tier
``DELETE /api/v1/lines/{line}/override``     duty_manager  end the declaration early
``POST /-/reload``                           admin         reload the config
===========================================  ============  ================================

Every refusal is ``{"error": reason}``, checked in this order: 401/403 (who; see
``access``), 404 (no such line), 413 (body over 64 KiB), 400 (not JSON, or not the right
fields), 422 (well-formed but impossible: ``until`` in the past, a tier the line does not
have), 409 (the engine's ``CommandRejected``: nothing to acknowledge, not silenced…).
The recorded ``by`` is always the authenticated user's name, never something sent.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.api import access, auth
from risingtide.api.access import Gate, error
from risingtide.api.daemon import DaemonControl
from risingtide.api.models import (
    AckBody,
    B,
    BodyError,
    OverrideBody,
    SemanticError,
    SilenceBody,
    parse_body,
)
from risingtide.domain.commands import CommandRejected
from risingtide.relay import NoLeader

log = structlog.get_logger(__name__)

#: No command needs more; anything bigger is refused before it is read into memory.
MAX_BODY = 64 * 1024


class _TooLarge(Exception):  # noqa: N818 - private signal, not an error type
    pass


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing (``_TooLarge``) more than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def body_of(request: Request, model: type[B]) -> B | Response:
    """The request's JSON body as ``model``, or the 4xx that says why it is not one."""
    try:
        raw = await read_body(request)
    except _TooLarge:
        return error(413, f"the body is too large (at most {MAX_BODY // 1024} KiB)")
    except ClientDisconnect:
        return error(400, "the request was cut short")
    try:
        return parse_body(model, raw)
    except BodyError as exc:
        return error(400, str(exc))


def command_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """The state-changing routes over ``daemon``."""

    def prepare(
        request: Request, role: str = access.CHANGE
    ) -> tuple[auth.Principal, str] | Response:
        """The caller and the line, or the refusal to send."""
        who = gate.check(request, role)
        if isinstance(who, Response):
            return who
        assert isinstance(who, auth.Principal)  # changes are never open
        line = request.path_params.get("line", "")
        if line and line not in daemon.config.lines:
            return error(404, f"no line {line!r} in the config")
        return who, line

    async def run(line: str, name: str, **args: Any) -> Response:
        try:
            reason = await daemon.command(line, name, **args)
        except KeyError:  # the line went away in a reload since prepare()
            return error(404, f"no line {line!r} in the config")
        except CommandRejected as exc:
            return error(409, exc.reason)
        except NoLeader as exc:
            return error(503, f"{exc}; nothing was changed, try again in a few seconds")
        view = daemon.view(line)
        assert view is not None
        return JSONResponse({"reason": reason, "line": view.to_json()})

    async def ack(request: Request) -> Response:
        ready = prepare(request)
        if isinstance(ready, Response):
            return ready
        who, line = ready
        body = await body_of(request, AckBody)
        if isinstance(body, Response):
            return body
        return await run(line, "acknowledge", by=who.user.name, note=body.note)

    async def silence(request: Request) -> Response:
        ready = prepare(request)
        if isinstance(ready, Response):
            return ready
        who, line = ready
        if request.method == "DELETE":
            return await run(line, "lift_silence", by=who.user.name)
        body = await body_of(request, SilenceBody)
        if isinstance(body, Response):
            return body
        try:
            until = body.end(daemon.clock.now())
        except SemanticError as exc:
            return error(422, str(exc))
        return await run(
            line, "silence", until=until, by=who.user.name, reason=body.reason, undo=body.undo
        )

    async def override(request: Request) -> Response:
        ready = prepare(request)
        if isinstance(ready, Response):
            return ready
        who, line = ready
        if request.method == "DELETE":
            return await run(line, "clear_declaration", by=who.user.name)
        body = await body_of(request, OverrideBody)
        if isinstance(body, Response):
            return body
        top = daemon.config.lines[line].framework.max_level
        if body.level > top:
            return error(422, f"{line} has no tier {body.level}; declare a tier from 1 to {top}")
        try:
            until = body.end(daemon.clock.now())
        except SemanticError as exc:
            return error(422, str(exc))
        return await run(
            line, "declare", level=body.level, until=until, by=who.user.name, reason=body.reason
        )

    async def reload(request: Request) -> Response:
        ready = prepare(request, access.ADMIN)
        if isinstance(ready, Response):
            return ready
        who, _ = ready
        errors = await daemon.reload(by=who.user.name)
        if errors:
            return JSONResponse(
                {
                    "error": f"the config has {len(errors)} error(s); the old config keeps running",
                    "errors": errors,
                },
                status_code=422,
            )
        return JSONResponse({"status": "reloaded"})

    return [
        Route("/api/v1/lines/{line}/ack", ack, methods=["POST"]),
        Route("/api/v1/lines/{line}/silence", silence, methods=["POST", "DELETE"]),
        Route("/api/v1/lines/{line}/override", override, methods=["POST", "DELETE"]),
        Route("/-/reload", reload, methods=["POST"]),
    ]
