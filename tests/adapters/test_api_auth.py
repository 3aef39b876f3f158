"""Who may do what over real HTTP: tokens, roles, sign-in cookies with CSRF, lockout, logout.

Every state-changing route is checked with no credentials (401), a wrong token (401), a
viewer (403) and the role it needs (allowed). The daemon runs on loopback on a FakeClock.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from risingtide.api.auth import SESSION_COOKIE
from tests.adapters.desk import PASSWORDS, SECRET, TOKENS, Desk, bearer, running_desk

#: (method, path, body, role it needs) for every route that changes state.
CHANGES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/api/v1/lines/revenues/ack", {"note": "on it"}, "priya"),
    ("POST", "/api/v1/lines/revenues/silence", {"for": "1h", "reason": "upgrade"}, "priya"),
    ("DELETE", "/api/v1/lines/revenues/silence", None, "priya"),
    ("POST", "/api/v1/lines/revenues/override", {"level": 1, "for": "1h", "reason": "x"}, "priya"),
    ("DELETE", "/api/v1/lines/revenues/override", None, "priya"),
    ("POST", "/-/reload", None, "ada"),
]
IDS = [f"{m} {p}" for m, p, _, _ in CHANGES]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def send(
    http: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str] | None
) -> httpx.Response:
    return await http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "role"), CHANGES, ids=IDS)
async def test_every_change_needs_credentials_and_the_right_role(
    desk: Desk, method: str, path: str, body: Any, role: str
) -> None:
    """No credentials or a wrong token: 401; a viewer: 403; the needed role: let through."""
    await desk.raise_line()
    nobody = await send(desk.http, method, path, body, None)
    assert nobody.status_code == 401
    assert nobody.headers["www-authenticate"].startswith("Bearer")
    assert "sign in" in nobody.json()["error"]

    wrong = await send(desk.http, method, path, body, {"Authorization": "Bearer rt_nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "the API token is not valid")
    basic = await send(desk.http, method, path, body, {"Authorization": "Basic cHJpeWE6eA=="})
    assert basic.status_code == 401

    viewer = await send(desk.http, method, path, body, bearer("vera"))
    assert viewer.status_code == 403
    assert "Vera Viewer is a viewer" in viewer.json()["error"]

    allowed = await send(desk.http, method, path, body, bearer(role))
    # 409 is the engine saying "nothing to do" (e.g. no silence to lift): past the gate
    assert allowed.status_code in (200, 409), allowed.text
    assert allowed.json()


async def test_reload_needs_an_admin_not_a_duty_manager(desk: Desk) -> None:
    """A duty manager may acknowledge but not reload; an admin may reload."""
    refused = await desk.http.post("/-/reload", headers=bearer("priya"))
    assert refused.status_code == 403
    assert "needs an admin" in refused.json()["error"]
    done = await desk.http.post("/-/reload", headers=bearer("ada"))
    assert (done.status_code, done.json()) == (200, {"status": "reloaded"})


async def test_reads_need_a_viewer_when_users_are_configured(desk: Desk) -> None:
    """With users, the JSON reads answer 401 to strangers and serve any signed-in role."""
    for path in ("/api/v1/lines", "/api/v1/lines/revenues", "/api/v1/events", "/api/v1/session"):
        assert (await desk.http.get(path)).status_code == 401, path
        assert (await desk.http.get(path, headers=bearer("vera"))).status_code == 200, path
    for path in ("/healthz", "/metrics", "/openapi.json"):
        assert (await desk.http.get(path)).status_code == 200, path
    board = await desk.http.get("/")
    assert (board.status_code, board.headers["location"]) == (303, "/login?next=/")


async def test_without_users_reads_are_open_and_changes_explain_how_to_add_one(
    tmp_path: Path,
) -> None:
    """No users: GETs are open (loopback by default); every change is 403 with the fix."""
    async with running_desk(tmp_path, users=False) as desk:
        assert (await desk.http.get("/api/v1/lines")).status_code == 200
        assert (await desk.http.get("/")).status_code == 200
        me = await desk.http.get("/api/v1/session")
        assert me.json() == {"users_configured": False, "authenticated": False}
        for method, path, body, _ in CHANGES:
            resp = await send(desk.http, method, path, body, bearer("priya"))
            assert resp.status_code == 403, path
            assert "no users are configured" in resp.json()["error"]
            assert "users:" in resp.json()["error"]
        assert (await desk.http.get("/login")).status_code == 404


async def test_a_signed_in_cookie_changes_state_only_with_the_csrf_header(desk: Desk) -> None:
    """Sign in sets a strict HttpOnly cookie; a change with it needs X-CSRF-Token."""
    await desk.raise_line()
    signed_in = await desk.sign_in("priya")
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # public_url is http here

    me = (await desk.http.get("/api/v1/session")).json()
    assert (me["user"], me["name"], me["role"], me["via"]) == (
        "priya", "Priya Shah", "duty_manager", "session",
    )  # fmt: skip
    no_header = await desk.http.post("/api/v1/lines/revenues/ack", json={})
    assert no_header.status_code == 403
    assert "X-CSRF-Token" in no_header.json()["error"]
    forged = await desk.http.post(
        "/api/v1/lines/revenues/ack", json={}, headers={"X-CSRF-Token": "forged"}
    )
    assert forged.status_code == 403
    done = await desk.http.post(
        "/api/v1/lines/revenues/ack", json={"note": "on it"},
        headers={"X-CSRF-Token": me["csrf_token"]},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["line"]["acknowledgement"]["by"] == "Priya Shah"


async def test_a_bearer_token_needs_no_csrf_and_its_user_is_recorded(desk: Desk) -> None:
    """Scripts send only the token; the history says which user acted."""
    await desk.raise_line()
    resp = await desk.http.post("/api/v1/lines/revenues/ack", headers=bearer("ada"))
    assert resp.status_code == 200
    assert resp.json()["reason"] == "tier 2 high acknowledged by Ada Admin"


async def test_the_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    """Behind https, the session cookie is marked Secure."""
    extra = "  public_url: https://risingtide.council.example"
    async with running_desk(tmp_path, server_extra=extra) as desk:
        form = await desk.http.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        # The client speaks plain http, so it keeps Secure cookies to itself: send by hand.
        nonce = form.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        desk.http.cookies.clear()
        resp = await desk.http.post(
            "/login",
            data={"username": "priya", "password": PASSWORDS["priya"],
                  "csrf_token": csrf.group(1)},
            headers={"Cookie": f"rt_login={nonce}"},
        )  # fmt: skip
        assert resp.status_code == 303
        assert "Secure" in resp.headers["set-cookie"]


async def test_five_wrong_passwords_lock_the_username_for_15_minutes(desk: Desk) -> None:
    """Four wrong: 401 each; the fifth locks (429), even the right one; 15 min later it works."""
    for _ in range(4):
        assert (await desk.sign_in("priya", "wrong")).status_code == 401
    locked = await desk.sign_in("priya", "wrong")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) == 15 * 60
    assert "too many wrong passwords" in locked.text
    assert (await desk.sign_in("priya")).status_code == 429
    assert (await desk.sign_in("ada")).status_code == 303  # other usernames are unaffected

    desk.clock.advance(timedelta(minutes=14, seconds=59))
    assert (await desk.sign_in("priya")).status_code == 429
    desk.clock.advance(1)
    assert (await desk.sign_in("priya")).status_code == 303


async def test_wrong_passwords_spread_over_more_than_15_minutes_never_lock(desk: Desk) -> None:
    """Only failures within 15 minutes of each other count towards a lockout."""
    for _ in range(8):
        assert (await desk.sign_in("priya", "wrong")).status_code == 401
        desk.clock.advance(timedelta(minutes=4))
    assert (await desk.sign_in("priya")).status_code == 303


async def test_the_session_expires_after_12_hours(desk: Desk) -> None:
    """A sign-in lasts 12 hours on the daemon's clock."""
    await desk.sign_in("vera")
    desk.clock.advance(timedelta(hours=11, minutes=59))
    assert (await desk.http.get("/api/v1/lines")).status_code == 200
    desk.clock.advance(timedelta(minutes=1))
    expired = await desk.http.get("/api/v1/lines")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]


async def test_logout_clears_the_cookie_and_the_old_cookie_stops_working(desk: Desk) -> None:
    """After sign-out even a saved copy of the cookie is refused."""
    await desk.sign_in("priya")
    saved = desk.http.cookies[SESSION_COOKIE]
    me = (await desk.http.get("/api/v1/session")).json()
    refused = await desk.http.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    out = await desk.http.post("/logout", data={"csrf_token": me["csrf_token"]})
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert (await desk.http.get("/api/v1/lines")).status_code == 401
    desk.http.cookies.clear()
    replay = await desk.http.get("/api/v1/lines", headers={"Cookie": f"{SESSION_COOKIE}={saved}"})
    assert replay.status_code == 401


async def test_a_tampered_cookie_or_one_for_another_user_is_refused(desk: Desk) -> None:
    """Changing the user or expiry in the cookie breaks its signature."""
    await desk.sign_in("vera")
    value = desk.http.cookies[SESSION_COOKIE]
    desk.http.cookies.clear()
    user, expires, nonce, sig = value.split(".")
    for forged in (f"ada.{expires}.{nonce}.{sig}", f"{user}.{int(expires) + 999}.{nonce}.{sig}"):
        cookie = {"Cookie": f"{SESSION_COOKIE}={forged}"}
        resp = await desk.http.get("/api/v1/lines", headers=cookie)
        assert resp.status_code == 401


async def test_the_sign_in_form_needs_its_csrf_value(desk: Desk) -> None:
    """A sign-in posted from elsewhere (no form nonce) is refused and nobody is signed in."""
    resp = await desk.http.post(
        "/login", data={"username": "priya", "password": PASSWORDS["priya"], "csrf_token": "x"}
    )
    assert resp.status_code == 400
    assert "expired or did not come from Rising Tide" in resp.text
    assert SESSION_COOKIE not in desk.http.cookies


async def test_sign_in_redirects_only_to_a_path_on_this_site(desk: Desk) -> None:
    """``next`` may send the browser to a local path, never to another site."""
    form = await desk.http.get("/login?next=//evil.example/")
    assert 'name="next" value="/"' in form.text
    form = await desk.http.get("/login?next=/api/v1/lines")
    assert 'name="next" value="/api/v1/lines"' in form.text


async def test_the_sign_in_page_is_plain_accessible_en_gb(desk: Desk) -> None:
    """Labels for each field, en-GB, and errors named in words in a summary and by the field."""
    page = await desk.http.get("/login")
    html = page.text
    assert '<html lang="en-GB">' in html
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert 'autocomplete="current-password"' in html
    assert page.headers["x-frame-options"] == "DENY"
    empty = await desk.sign_in("priya", "")
    assert empty.status_code == 400
    assert "<title>Error: Sign in – Rising Tide</title>" in empty.text
    assert "There is a problem" in empty.text
    assert '<a href="#password">Enter your password</a>' in empty.text
    assert "<span>Error:</span> Enter your password" in empty.text
    assert 'aria-invalid="true"' in empty.text


async def test_no_secret_reaches_the_log(desk: Desk) -> None:
    """Passwords, tokens, cookies and the secret key never appear in any log event."""
    await desk.raise_line()
    with capture_logs() as logs:
        await desk.sign_in("priya", "not the password at all")
        await desk.sign_in("priya")
        await desk.http.post("/api/v1/lines/revenues/ack", headers=bearer("ada"))
        await desk.http.post("/-/reload", headers=bearer("ada"))
        await desk.http.get("/api/v1/lines", headers={"Authorization": "Bearer rt_guess"})
    text = repr(logs)
    assert logs, "expected some log events"
    secrets = [SECRET, "not the password at all", desk.http.cookies[SESSION_COOKIE],
               "rt_guess", *PASSWORDS.values(), *TOKENS.values()]  # fmt: skip
    for secret in secrets:
        assert secret not in text
    assert repr(desk.rt.config).count(SECRET) == 0
