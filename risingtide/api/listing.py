"""``GET /api/v1/lines``: the lines in config order, a page at a time, optionally filtered.

``?limit=`` lines a page (default ``DEFAULT_LIMIT``, at most ``MOST``); ``?tier_at_least=``
keeps lines at that tier or above; ``?after=<line id>`` starts after that line. The
answer's ``next`` is the path of the following page (``null`` on the last), and ``total``
counts every line the filter keeps. A cursor (a line id) rather than an offset: a page is
not shifted when a line's tier changes between two requests of a filtered walk. Only the
lines of the page are turned into JSON, so a page of 500 costs the same at 50,000 lines as
at 500 (the filter reads each line's tier and nothing else).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from risingtide.api.access import error
from risingtide.domain.model import LineState

DEFAULT_LIMIT = 500
MOST = 5000


@dataclass(frozen=True, slots=True)
class LinesQuery:
    """What one request for the list asks for."""

    limit: int = DEFAULT_LIMIT
    tier_at_least: int = 0
    after: str | None = None


def lines_query(request: Request) -> LinesQuery | JSONResponse:
    """The query from the request's parameters, or a 400 saying which one is wrong."""
    q = request.query_params
    limit = _whole(q.get("limit"), DEFAULT_LIMIT)
    if limit is None or not 1 <= limit <= MOST:
        return error(400, f"limit must be a whole number from 1 to {MOST}")
    tier = _whole(q.get("tier_at_least"), 0)
    if tier is None or tier < 0:
        return error(400, "tier_at_least must be a whole number, 0 or more")
    after = q.get("after")
    return LinesQuery(limit=limit, tier_at_least=tier, after=after or None)


def _whole(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    text = text.strip()
    # isdigit alone accepts "²" and other digits int() refuses; keep to ASCII, and short.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


@dataclass(frozen=True, slots=True)
class Page:
    """The ids on one page, the cursor for the next (None on the last), and the total."""

    lines: list[str]
    after: str | None
    total: int


def select(order: Sequence[str], states: Mapping[str, LineState], query: LinesQuery) -> Page | str:
    """The page ``query`` asks for among ``order`` (config order); a reason if it cannot be."""
    start = 0
    if query.after is not None:
        try:
            start = order.index(query.after) + 1
        except ValueError:
            return f"no line {query.after!r} in the config (start again without after)"
    least = query.tier_at_least

    def kept(lid: str) -> bool:
        st = states.get(lid)
        return st is not None and st.tier >= least

    total = (
        sum(1 for lid in order if kept(lid)) if least else sum(1 for lid in order if lid in states)
    )
    page: list[str] = []
    more = False
    for lid in order[start:]:
        if not kept(lid):
            continue
        if len(page) == query.limit:
            more = True
            break
        page.append(lid)
    return Page(lines=page, after=page[-1] if more and page else None, total=total)


def next_path(query: LinesQuery, after: str | None) -> str | None:
    """The path of the page after ``after`` with the same filter, or None."""
    if after is None:
        return None
    params: dict[str, str | int] = {"after": after, "limit": query.limit}
    if query.tier_at_least:
        params["tier_at_least"] = query.tier_at_least
    return "/api/v1/lines?" + urlencode(params)
