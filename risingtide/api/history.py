"""The history: a page to read it, and a CSV export for the monthly performance pack.

``GET /history?line=&kind=&since=&until=`` lists events newest first, with filters and a
link to the same selection as CSV; ``GET /api/v1/events.csv`` (same filters, ``limit`` up to
100,000) is the export. Both are reads: open without users, a viewer's with them. The JSON
``GET /api/v1/events`` shares the query rules (``history_query``).
"""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from risingtide.api import access, auth
from risingtide.api.access import Gate, error
from risingtide.api.daemon import DaemonControl
from risingtide.episodes import LESSONS_KIND
from risingtide.store import HistoryEntry
from risingtide.store.codec import EVENT_TYPES

#: Event ids are SQLite integers; a larger ``before`` would overflow the query.
MAX_EVENT_ID = 2**63 - 1
MAX_CSV_ROWS = 100_000
PAGE_ROWS = 200

CSV_COLUMNS = ("id", "at", "line", "kind", "tier", "by", "reason", "data")
#: History records that are not domain events: a response's outcome, an operator's requeue
#: or dismissal of a dead letter, a removed line, a config reload, lessons learned.
RECORD_KINDS = ("response", "response_requeued", "response_dismissed", "line_removed",
                "config_reloaded", LESSONS_KIND)  # fmt: skip
#: Every kind the history can hold, as the page's "What happened" filter offers them: the
#: domain's events (from the store's codec, so a new event is offered without a change
#: here), then the store's own records.
HISTORY_KINDS: tuple[str, ...] = (*EVENT_TYPES, *RECORD_KINDS)
#: A cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def history_query(request: Request, *, default: int, most: int) -> dict[str, Any] | JSONResponse:
    """The store's ``history`` arguments from the query string, or a 400 saying what is wrong."""
    q = request.query_params
    try:
        limit = int(q.get("limit", str(default)))
        before = int(q["before"]) if "before" in q else None
        since = parse_time(q["since"]) if q.get("since") else None
        until = parse_time(q["until"]) if q.get("until") else None
    except (ValueError, OverflowError) as exc:
        return error(400, f"bad query parameter: {exc}")
    if not 1 <= limit <= most:
        return error(400, f"limit must be between 1 and {most}")
    if before is not None and not 1 <= before <= MAX_EVENT_ID:
        return error(400, "before must be an event id (a positive whole number)")
    return {
        "line": q.get("line") or None,
        "kinds": [k for k in q.getlist("kind") if k] or None,
        "since": since,
        "until": until,
        "limit": limit,
        "before_id": before,
    }


def parse_time(text: str) -> datetime:
    """An ISO-8601 time with an offset (``Z`` allowed), in UTC; ValueError otherwise."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"{text!r} needs a timezone (e.g. 2026-11-23T09:00:00Z)")
    # In UTC here, not later in the store: year 1 with a positive offset has no UTC time.
    return t.astimezone(UTC)


def entry_json(e: HistoryEntry) -> dict[str, Any]:
    """One history entry as the JSON API returns it."""
    return {"id": e.id, "at": e.at.isoformat(), "line": e.line, "kind": e.kind,
            "tier": e.tier, "data": e.data}  # fmt: skip


def history_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """``/history`` and ``/api/v1/events.csv``."""

    async def events_csv(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        query = history_query(request, default=10_000, most=MAX_CSV_ROWS)
        if isinstance(query, Response):
            return query
        if daemon.store is None:
            return error(503, "the store is not open yet")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for e in daemon.store.history(**query):
            writer.writerow(_csv_row(e))
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="rising-tide-history.csv"'},
        )

    async def page(request: Request) -> Response:
        if gate.users_configured and isinstance(gate.identify(request), auth.Refusal):
            return RedirectResponse("/login?next=/history", status_code=303)
        query = history_query(request, default=PAGE_ROWS, most=PAGE_ROWS)
        if isinstance(query, JSONResponse):
            return HTMLResponse(_page(daemon, [], request, problem=_reason(query)), 400)
        if daemon.store is None:
            return HTMLResponse(_page(daemon, [], request, problem="Still starting."), 503)
        return HTMLResponse(_page(daemon, daemon.store.history(**query), request))

    return [
        Route("/api/v1/events.csv", events_csv),
        Route("/history", page),
    ]


def csv_cell(value: Any) -> Any:
    """``value`` safe to open in a spreadsheet: text that a spreadsheet would run as a
    formula gets a leading ``'`` (OWASP's rule), so a name typed on an acknowledgement
    page such as ``=HYPERLINK(…)`` is shown as text, never evaluated."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_row(e: HistoryEntry) -> list[Any]:
    data = e.data
    row = [
        e.id,
        e.at.isoformat(),
        e.line,
        e.kind,
        "" if e.tier is None else e.tier,
        data.get("by", ""),
        data.get("reason", "") or data.get("note", "") or data.get("text", ""),
        json.dumps(data, sort_keys=True, ensure_ascii=False),
    ]
    return [csv_cell(cell) for cell in row]


def _reason(response: JSONResponse) -> str:
    body = json.loads(bytes(response.body))
    return str(body.get("error", "bad request"))


def _describe(e: HistoryEntry) -> str:
    d = e.data
    if e.kind == "tier_changed":
        return f"Tier {d.get('from_tier')} → {d.get('to_tier')}: {d.get('reason', '')}"
    if e.kind == "acknowledged":
        note = f" — {d['note']}" if d.get("note") else ""
        return f"Acknowledged tier {d.get('tier')} by {d.get('by', '')}{note}"
    if e.kind == "response":
        detail = f" ({d['detail']})" if d.get("detail") else ""
        return f"{d.get('response')} {d.get('action')}: {d.get('outcome')}{detail}"
    if e.kind in ("response_requeued", "response_dismissed"):
        verb = "requeued" if e.kind == "response_requeued" else "dismissed"
        note = f" — {d['note']}" if d.get("note") else ""
        what = f"{d.get('response')} {d.get('action')}"
        return f"Dead letter {what} {verb} by {d.get('by', '')}{note}"
    if e.kind == "lessons_learned":
        who = d.get("by", "")
        return f"Lessons learned on episode {d.get('episode')} by {who}: {d.get('text', '')}"
    if e.kind in ("silenced", "declared"):
        return f"{e.kind.capitalize()} by {d.get('by', '')} until {d.get('until', '')}: " + str(
            d.get("reason", "")
        )
    return e.kind.replace("_", " ").capitalize()


def _uk(t: datetime) -> str:
    """``2026-01-05 09:14:02 GMT``: the history page reads UK time, like the board."""
    return f"{t.astimezone(_UK):%Y-%m-%d %H:%M:%S %Z}"


_UK = ZoneInfo("Europe/London")


def _page(
    daemon: DaemonControl, entries: list[HistoryEntry], request: Request, problem: str = ""
) -> str:
    q = request.query_params
    lines = [v.id for v in daemon.views()]
    kinds = HISTORY_KINDS
    chosen_line, chosen_kind = q.get("line", ""), q.get("kind", "")
    esc = html.escape

    def options(values: tuple[str, ...] | list[str], chosen: str, everything: str) -> str:
        first = f'<option value="">{esc(everything)}</option>'
        return first + "".join(
            f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(v)}</option>'
            for v in values
        )

    filters = {k: v for k, v in (("line", chosen_line), ("kind", chosen_kind),
                                 ("since", q.get("since", "")), ("until", q.get("until", "")))
               if v}  # fmt: skip
    csv_link = "/api/v1/events.csv" + (f"?{urlencode(filters)}" if filters else "")
    rows = "".join(
        f"<tr><td>{esc(_uk(e.at))}</td><td>{esc(e.line)}</td>"
        f"<td>{esc(e.kind.replace('_', ' '))}</td><td>{esc(_describe(e))}</td></tr>"
        for e in entries
    )
    body = (
        f"<table><caption>{len(entries)} most recent events matching the filters</caption>"
        '<thead><tr><th scope="col">When</th><th scope="col">Line</th>'
        '<th scope="col">What</th><th scope="col">Details</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if entries
        else "<p>No events match these filters.</p>"
    )
    alert = f'<div role="alert" class="error"><p>{esc(problem)}</p></div>' if problem else ""
    return f"""<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>History – Rising Tide</title>
<style>
body {{ font-family: system-ui, Arial, sans-serif; margin: 1rem; color: #0b0c0c; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #b1b4b6;
         vertical-align: top; overflow-wrap: anywhere; }}
th {{ background: #f3f2f1; }}
label {{ display: block; font-weight: 700; margin-top: .5rem; }}
form {{ margin-bottom: 1rem; }}
.error {{ border: 4px solid #d4351c; padding: .5rem 1rem; }}
a:focus, button:focus, select:focus, input:focus {{ outline: 3px solid #fd0; }}
</style></head><body>
<a href="#history">Skip to the events</a>
<header><p><a href="/">Duty board</a></p></header>
<main>
<h1>History</h1>
{alert}
<form method="get" action="/history">
<label for="line">Line</label><select id="line" name="line">{options(lines, chosen_line, "All lines")}</select>
<label for="kind">What happened</label><select id="kind" name="kind">{options(kinds, chosen_kind, "Everything")}</select>
<label for="since">From (e.g. 2026-11-01T00:00:00Z)</label><input id="since" name="since" value="{esc(q.get("since", ""))}">
<label for="until">Until</label><input id="until" name="until" value="{esc(q.get("until", ""))}">
<p><button type="submit">Show events</button></p>
</form>
<p><a href="{esc(csv_link)}">Download these events as CSV</a> (up to 10,000 rows; for the monthly performance pack)</p>
<section id="history" aria-label="Events">{body}</section>
</main></body></html>
"""  # noqa: E501 - the form's markup reads best one control to a line
