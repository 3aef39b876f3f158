"""Every answer carries the frame ban and friends; cookie changes must come from this site.

Over real HTTP on loopback: the board, history, API, health and metrics answers all send a
CSP with ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``, ``nosniff``, a referrer
policy and ``Cache-Control: no-store``; a cross-origin POST carrying a valid sign-in cookie
(and even its CSRF value) is refused 403 with a reason, while bearer-token calls are not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.adapters.desk import Desk, bearer, running_desk

PATHS = (
    "/", "/history", "/login", "/api/v1/lines", "/api/v1/lines/revenues", "/api/v1/events",
    "/api/v1/events.csv", "/api/v1/session", "/api/v1/groups", "/api/v1/outbox",
    "/healthz", "/readyz", "/metrics", "/openapi.json", "/no-such-page", "/api/v1/nope",
)  # fmt: skip


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


def assert_hardened(resp: httpx.Response, *, cached: bool = False) -> None:
    """The headers every answer must carry (``cached`` for static files)."""
    where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
    assert "frame-ancestors 'none'" in resp.headers.get("content-security-policy", ""), where
    assert resp.headers.get("x-frame-options") == "DENY", where
    assert resp.headers.get("x-content-type-options") == "nosniff", where
    assert resp.headers.get("referrer-policy") in ("no-referrer", "same-origin"), where
    if not cached:
        assert resp.headers.get("cache-control") == "no-store", where


async def test_every_page_and_api_answer_carries_the_security_headers(desk: Desk) -> None:
    """Signed in or not, pages, API, errors, health and metrics all send the headers."""
    for path in PATHS:
        assert_hardened(await desk.http.get(path))
    await desk.sign_in("priya")
    for path in PATHS:
        assert_hardened(await desk.http.get(path))
    for path in PATHS:
        assert_hardened(await desk.http.get(path, headers=bearer("vera")))
    assert_hardened(await desk.http.post("/api/v1/lines/revenues/ack", json={}))
    assert_hardened(await desk.http.get("/static/board.css"), cached=True)


async def test_the_board_keeps_its_own_scripts_and_styles(desk: Desk) -> None:
    """The board's CSP lets its own /static/ script and stylesheet load, nothing foreign."""
    await desk.sign_in("priya")
    csp = (await desk.http.get("/")).headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "*" not in csp and "http" not in csp


async def csrf(desk: Desk) -> str:
    await desk.sign_in("priya")
    me = (await desk.http.get("/api/v1/session")).json()
    return str(me["csrf_token"])


async def test_a_cross_origin_post_with_a_valid_cookie_is_refused(desk: Desk) -> None:
    """Another port of the same host cannot act with the duty manager's cookie and CSRF value."""
    await desk.raise_line()
    token = await csrf(desk)
    evil = desk.url.rsplit(":", 1)[0] + ":1"
    for headers in (
        {"Origin": evil},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": desk.url},
    ):
        refused = await desk.http.post(
            "/api/v1/lines/revenues/ack", json={}, headers={"X-CSRF-Token": token, **headers}
        )
        assert refused.status_code == 403, headers
        assert "another site" in refused.json()["error"], refused.text
        assert_hardened(refused)
    assert not desk.rt.states["revenues"].acknowledged
    page = await desk.http.post("/logout", data={"csrf_token": token}, headers={"Origin": evil})
    assert page.status_code == 403 and "another site" in page.text
    # Chromium sends "Origin: null" from a no-referrer page (the sign-in form) and says
    # same-origin in Sec-Fetch-Site, which decides.
    done = await desk.http.post(
        "/api/v1/lines/revenues/ack", json={},
        headers={"X-CSRF-Token": token, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )  # fmt: skip
    assert done.status_code == 200, done.text


async def test_token_calls_and_cookie_reads_are_not_affected_by_origin(desk: Desk) -> None:
    """A bearer-token change from anywhere, and a cross-origin GET, still work."""
    await desk.raise_line()
    done = await desk.http.post(
        "/api/v1/lines/revenues/ack", json={},
        headers={**bearer("priya"), "Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "cross-site"},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    await desk.sign_in("priya")
    read = await desk.http.get("/api/v1/lines", headers={"Origin": "http://127.0.0.1:1"})
    assert read.status_code == 200
