"""Episodes over HTTP: the API, the pages, lessons learned, and the board's trend.

==========================================  ============  ====================================
route                                       role          does
==========================================  ============  ====================================
``GET /api/v1/episodes?line=&since=&until=  viewer        episodes that began in the range,
&limit=``                                                 newest first (headline figures)
``GET /api/v1/episodes/{id}``               viewer        one episode's whole story
``POST /api/v1/episodes/{id}/lessons``      duty_manager  add lessons learned (JSON ``{"text"}``
                                                          or the page's form)
``GET /api/v1/lines/{line}/trend``          viewer        the line's last hour, one sample a
                                                          minute (the board's sparkline)
``GET /episodes``, ``GET /episodes/{id}``   viewer        the pages
==========================================  ============  ====================================

Reads are open without users (as every read is, see ``access``). Lessons learned are a
history record (``lessons_learned``) with the signed-in user's name as ``by``; the page's
form carries the session's CSRF value, as the other forms do. Refusals are 4xx with
``{"error": reason}`` (or a page that says it, for the pages).
"""

from __future__ import annotations

import json
import re
from typing import Any

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from risingtide import episode_report as report
from risingtide.api import access, auth
from risingtide.api.access import Gate, error
from risingtide.api.daemon import DaemonControl
from risingtide.api.history import parse_time
from risingtide.api.pages import TEMPLATES
from risingtide.episodes import (
    LESSONS_KIND,
    Episode,
    EpisodeRef,
    build_episode,
    find_episode,
    find_episodes,
    lessons_record,
    parse_episode_id,
)
from risingtide.samples import SampleRecorder

__all__ = ["MAX_LESSONS", "episode_routes"]

log = structlog.get_logger(__name__)

#: The longest lessons-learned text accepted.
MAX_LESSONS = 4000
MAX_LIST = 500
MAX_BODY = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and newlines are kept

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The chart's library and script come from this daemon; nothing from anywhere else.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def _query(request: Request) -> dict[str, Any] | str:
    """``find_episodes`` arguments from the query string, or what is wrong with it."""
    q = request.query_params
    try:
        limit = int(q.get("limit", "100"))
        since = parse_time(q["since"]) if q.get("since") else None
        until = parse_time(q["until"]) if q.get("until") else None
    except (ValueError, OverflowError) as exc:
        return f"bad query parameter: {exc}"
    if not 1 <= limit <= MAX_LIST:
        return f"limit must be between 1 and {MAX_LIST}"
    return {"line": q.get("line") or None, "since": since, "until": until, "limit": limit}


async def _small_body(request: Request) -> bytes | None:
    """The body, or None when it is over ``MAX_BODY`` (refused before it is all read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


def _clean(text: str) -> str:
    return _CONTROL.sub("", text).replace("\r\n", "\n").strip()


def _lessons_problem(text: str) -> str | None:
    if not text:
        return "Enter the lessons learned"
    if len(text) > MAX_LESSONS:
        return f"The lessons learned must be {MAX_LESSONS} characters or fewer"
    return None


def episode_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """The episode API and pages, and the lines' trend, over ``daemon``."""

    def lookup(text: str) -> tuple[EpisodeRef | None, str]:
        """The episode named by an id, or why not (404's reason)."""
        parsed = parse_episode_id(text)
        if parsed is None:
            return None, f"{text!r} is not an episode id (they look like council_tax-3)"
        if daemon.store is None:
            return None, "the store is not open yet"
        ref = find_episode(daemon.store, *parsed)
        return ref, "" if ref is not None else f"no episode {text!r} in the history"

    def build(ref: EpisodeRef) -> Episode:
        assert daemon.store is not None
        return build_episode(daemon.store, ref, daemon.clock.now(), daemon.config)

    async def list_json(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        query = _query(request)
        if isinstance(query, str):
            return error(400, query)
        if daemon.store is None:
            return error(503, "the store is not open yet")
        refs = find_episodes(daemon.store, **query)
        return JSONResponse({"episodes": [report.summary_json(build(r)) for r in refs]})

    async def one_json(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        ref, why = lookup(request.path_params["id"])
        if ref is None:
            return error(503 if daemon.store is None else 404, why)
        return JSONResponse(report.episode_json(build(ref)))

    async def trend(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        line = request.path_params["line"]
        if line not in daemon.config.lines:
            return error(404, f"no line {line!r} in the config")
        now = daemon.clock.now()
        samples = getattr(daemon, "samples", None)
        recent = samples.recent(line, now) if isinstance(samples, SampleRecorder) else []
        return JSONResponse(
            {"line": line, "now": now.isoformat(), "samples": [s.to_json() for s in recent]}
        )

    async def add_lessons(request: Request) -> Response:
        form = "application/x-www-form-urlencoded" in request.headers.get("content-type", "")
        if form:
            return await lessons_form(request)
        who = gate.check(request, access.CHANGE)
        if isinstance(who, Response):
            return who
        assert isinstance(who, auth.Principal)
        raw = await _small_body(request)
        if raw is None:
            return error(413, f"the body is over {MAX_BODY // 1024} KiB")
        try:
            body = json.loads(raw)
        except ValueError:
            return error(400, 'the body must be JSON: {"text": "…"}')
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return error(400, 'the body must be JSON with a "text" string')
        problem = _lessons_problem(_clean(text))
        if problem is not None:
            return error(400, problem)
        ref, why = lookup(request.path_params["id"])
        if ref is None:
            return error(404, why)
        record = save(ref, who, _clean(text))
        return JSONResponse(record, status_code=201)

    def save(ref: EpisodeRef, who: auth.Principal, text: str) -> dict[str, Any]:
        assert daemon.store is not None
        now = daemon.clock.now()
        data = lessons_record(ref, who.user.name, text)
        daemon.store.append_history([(ref.line, LESSONS_KIND, now, None, data)])
        log.info("lessons learned added", line=ref.line, tier=None, episode=ref.number,
                 by=who.user.id)  # fmt: skip
        return {"at": now.isoformat(), **data}

    async def lessons_form(request: Request) -> Response:
        who = gate.identify(request)
        if not isinstance(who, auth.Principal) or not who.user.may(access.CHANGE):
            return message(403, "Not saved", "Only a duty manager or an admin, signed in, can "
                           "add lessons learned.")  # fmt: skip
        try:
            form = await request.form(max_files=0, max_fields=5, max_part_size=64 * 1024)
        except Exception:  # a malformed or cut-off form is the sender's
            return message(400, "Not saved", "The form could not be read. Try again.")
        csrf, text = form.get("csrf_token"), form.get("text")
        if not gate.csrf_ok(request, who, csrf if isinstance(csrf, str) else ""):
            return message(403, "Not saved", "This form did not come from this site's "
                           "episode page. Open the episode again and use its form.")  # fmt: skip
        ref, why = lookup(request.path_params["id"])
        if ref is None:
            return message(404, "No such episode", why[:1].upper() + why[1:] + ".")
        cleaned = _clean(text if isinstance(text, str) else "")
        problem = _lessons_problem(cleaned)
        if problem is not None:
            return detail_page(request, ref, status=400, errors=[("text", problem)],
                               text=cleaned[: MAX_LESSONS * 2])  # fmt: skip
        save(ref, who, cleaned)
        return RedirectResponse(f"/episodes/{ref.id}?saved=1#add-lessons", 303, _HEADERS)

    def signed_out(request: Request) -> Response | None:
        if gate.users_configured and isinstance(gate.identify(request), auth.Refusal):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return None

    async def list_page(request: Request) -> Response:
        if (away := signed_out(request)) is not None:
            return away
        query = _query(request)
        problem = query if isinstance(query, str) else ""
        refs: list[EpisodeRef] = []
        if isinstance(query, dict) and daemon.store is not None:
            refs = find_episodes(daemon.store, **query)
        names = {lid: lc.name for lid, lc in daemon.config.lines.items()}
        q = request.query_params
        return render(
            "episodes.html", 400 if problem else 200, title="Episodes", problem=problem,
            rows=[_row(r, names, daemon) for r in refs], lines=sorted(names.items()),
            chosen=q.get("line", ""), since=q.get("since", ""), until=q.get("until", ""),
        )  # fmt: skip

    def detail_page(
        request: Request, ref: EpisodeRef, *, status: int = 200,
        errors: list[tuple[str, str]] | None = None, text: str = "",
    ) -> Response:  # fmt: skip
        ep = build(ref)
        who = gate.identify(request)
        can_add = (
            isinstance(who, auth.Principal)
            and who.session is not None
            and who.user.may(access.CHANGE)
            and gate.secret is not None
        )
        csrf = ""
        if can_add and isinstance(who, auth.Principal) and who.session and gate.secret:
            csrf = auth.session_csrf(gate.secret, who.session)
        cannot = (
            "Sign in as a duty manager to add lessons learned."
            if gate.users_configured
            else "Adding lessons learned needs users: an administrator adds a duty manager "
            "under users: in the config (see docs/configuration.md)."
        )
        return render(
            "episode.html", status, title=f"{ep.name}: episode {ep.ref.number}",
            s=report.story(ep), can_add=can_add, csrf_token=csrf, cannot_add=cannot,
            max_text=MAX_LESSONS, text=text, errors=errors or [],
            saved=request.query_params.get("saved") == "1",
        )  # fmt: skip

    async def one_page(request: Request) -> Response:
        if (away := signed_out(request)) is not None:
            return away
        ref, why = lookup(request.path_params["id"])
        if ref is None:
            return message(404, "No such episode", why[:1].upper() + why[1:] + ".")
        return detail_page(request, ref)

    return [
        Route("/api/v1/episodes", list_json, methods=["GET"]),
        Route("/api/v1/episodes/{id}", one_json, methods=["GET"]),
        Route("/api/v1/episodes/{id}/lessons", add_lessons, methods=["POST"]),
        Route("/api/v1/lines/{line}/trend", trend, methods=["GET"]),
        Route("/episodes", list_page, methods=["GET"]),
        Route("/episodes/{id}", one_page, methods=["GET"]),
    ]


def _row(ref: EpisodeRef, names: dict[str, str], daemon: DaemonControl) -> dict[str, Any]:
    now = daemon.clock.now()
    lc = daemon.config.lines.get(ref.line)
    peak = f"Tier {ref.peak_tier}"
    if lc is not None:
        peak += f" ({lc.framework.tier_name(ref.peak_tier)})"
    return {
        "id": ref.id, "number": ref.number, "name": names.get(ref.line, ref.line),
        "started": report.uk_time(ref.started_at), "ended": report.uk_time(ref.ended_at),
        "peak": peak,
        "length": report.duration(((ref.ended_at or now) - ref.started_at).total_seconds()),
    }  # fmt: skip


def render(template: str, status: int, **context: Any) -> HTMLResponse:
    """An episode page with its headers (scripts from this daemon only)."""
    context.setdefault("errors", [])
    errors = context["errors"]
    html = TEMPLATES.get_template(template).render(
        field_errors={f: m for f, m in errors if f}, **context
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def message(status: int, title: str, text: str) -> HTMLResponse:
    """A page that just says something, in the episodes' layout."""
    return render("episode_message.html", status, title=title, text=text)
