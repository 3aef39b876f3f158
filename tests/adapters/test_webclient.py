"""The shared platform HTTP client against a real server on loopback.

Covers the one behaviour every source shares: success, token fetch and expiry, 401
re-authentication, 429 with Retry-After, 5xx retried then given up, timeouts, network
errors, refusals, malformed JSON and missing fields.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.ports import SourceError
from risingtide.sources.webclient import (
    BasicAuth,
    OAuthClientCredentials,
    PlatformClient,
    RetryPolicy,
    field,
)
from tests.adapters.loopback import Loopback, free_port

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=0)


class Vendor:
    """A fake platform: counts calls, issues tokens, and misbehaves on request."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.token_number = 0
        self.valid_token = ""
        self.auth_seen: list[str] = []

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.calls["token"] += 1
            form = await request.form()
            expected = "Basic " + base64.b64encode(b"client:secret").decode()
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            self.token_number += 1
            self.valid_token = f"token-{self.token_number}"
            return JSONResponse(
                {"access_token": self.valid_token, "token_type": "bearer", "expires_in": "1799"}
            )

        async def queues(request: Request) -> Response:
            self.calls["queues"] += 1
            self.auth_seen.append(request.headers.get("authorization", ""))
            if request.headers.get("authorization") != f"Bearer {self.valid_token}":
                return JSONResponse({"message": "token expired"}, status_code=401)
            return JSONResponse({"queues": [{"id": "q1", "waiting": 4}]})

        async def flaky(request: Request) -> Response:
            self.calls["flaky"] += 1
            if self.calls["flaky"] <= 2:
                return PlainTextResponse("upstream down", status_code=503)
            return JSONResponse({"ok": True})

        async def broken(request: Request) -> Response:
            self.calls["broken"] += 1
            return PlainTextResponse("boom", status_code=500)

        async def limited(request: Request) -> Response:
            self.calls["limited"] += 1
            if self.calls["limited"] == 1:
                return JSONResponse({"message": "slow down"}, status_code=429,
                                    headers={"Retry-After": "1"})
            return JSONResponse({"ok": True})

        async def limited_long(request: Request) -> Response:
            self.calls["limited_long"] += 1
            return JSONResponse({"message": "slow down"}, status_code=429,
                                headers={"Retry-After": "120"})

        async def slow(request: Request) -> Response:
            self.calls["slow"] += 1
            await asyncio.sleep(3)
            return JSONResponse({"ok": True})

        async def forbidden(request: Request) -> Response:
            self.calls["forbidden"] += 1
            return JSONResponse({"message": "missing permission"}, status_code=403)

        async def garbage(request: Request) -> Response:
            return PlainTextResponse("<html>maintenance</html>")

        async def basic(request: Request) -> Response:
            expected = "Basic " + base64.b64encode(b"AC123:tok").decode()
            ok = request.headers.get("authorization") == expected
            return JSONResponse({"ok": ok}, status_code=200 if ok else 401)

        return Starlette(routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/queues", queues),
            Route("/flaky", flaky),
            Route("/broken", broken),
            Route("/limited", limited),
            Route("/limited-long", limited_long),
            Route("/slow", slow),
            Route("/forbidden", forbidden),
            Route("/garbage", garbage),
            Route("/basic", basic),
        ])  # fmt: skip


@pytest.fixture
async def vendor():
    v = Vendor()
    async with Loopback(v.app()) as url:
        yield v, url


def oauth(url: str, clock: FakeClock, secret: str = "secret") -> OAuthClientCredentials:
    return OAuthClientCredentials(f"{url}/oauth/token", "client", secret, clock=clock)


async def test_a_token_is_fetched_once_and_reused_until_it_is_due(vendor):
    """The bearer token is fetched with Basic client credentials, cached, renewed before expiry."""
    v, url = vendor
    clock = FakeClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    client = PlatformClient("genesys", base_url=url, auth=oauth(url, clock), policy=FAST)
    try:
        for _ in range(3):
            assert await client.json("GET", "/queues", budget=5) == {
                "queues": [{"id": "q1", "waiting": 4}]
            }
        assert v.calls["token"] == 1
        clock.advance(timedelta(seconds=1799 - 59))  # inside the 60 s margin
        await client.json("GET", "/queues", budget=5)
        assert v.calls["token"] == 2
        assert v.auth_seen[-1] == "Bearer token-2"
    finally:
        await client.aclose()


async def test_a_401_fetches_a_new_token_and_retries_once(vendor):
    """When the platform revokes the token, one 401 brings a new token and the call succeeds."""
    v, url = vendor
    clock = FakeClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    client = PlatformClient("genesys", base_url=url, auth=oauth(url, clock), policy=FAST)
    try:
        await client.json("GET", "/queues", budget=5)
        v.valid_token = "rotated-by-the-platform"
        await client.json("GET", "/queues", budget=5)  # 401, new token, success
        assert v.calls["token"] == 2
        assert v.calls["queues"] == 3
    finally:
        await client.aclose()


async def test_wrong_client_credentials_are_a_permanent_auth_error(vendor):
    """A refused client secret is reason "auth", not retryable, and not hammered."""
    v, url = vendor
    clock = FakeClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    client = PlatformClient("genesys", base_url=url, auth=oauth(url, clock, "wrong"), policy=FAST)
    try:
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/queues", budget=5)
        assert (caught.value.reason, caught.value.retryable) == ("auth", False)
        assert "invalid_client" in str(caught.value)
        assert v.calls["token"] == 1
    finally:
        await client.aclose()


async def test_basic_auth_is_sent_as_documented(vendor):
    """Basic credentials go in the Authorization header (RFC 7617)."""
    _, url = vendor
    client = PlatformClient("twilio", base_url=url, auth=BasicAuth("AC123", "tok"), policy=FAST)
    try:
        assert await client.json("GET", "/basic", budget=5) == {"ok": True}
    finally:
        await client.aclose()


async def test_5xx_is_retried_with_back_off_then_succeeds(vendor):
    """Two 503s then a 200: the caller sees the 200."""
    v, url = vendor
    client = PlatformClient("x", base_url=url, policy=FAST)
    try:
        assert await client.json("GET", "/flaky", budget=5) == {"ok": True}
        assert v.calls["flaky"] == 3
    finally:
        await client.aclose()


async def test_5xx_gives_up_after_its_attempts_as_retryable(vendor):
    """A platform that keeps failing is tried ``attempts`` times, then http_5xx, retryable."""
    v, url = vendor
    client = PlatformClient("x", base_url=url, policy=FAST)
    try:
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/broken", budget=5)
        assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
        assert "500" in str(caught.value)
        assert v.calls["broken"] == 3
    finally:
        await client.aclose()


async def test_429_waits_for_retry_after_within_the_budget(vendor):
    """Retry-After: 1 is honoured: the second call, a second later, succeeds."""
    v, url = vendor
    assert v.calls["limited"] == 0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = PlatformClient("x", base_url=url, policy=FAST, sleep=sleep)
    try:
        assert await client.json("GET", "/limited", budget=5) == {"ok": True}
        assert waits == [1.0]
    finally:
        await client.aclose()


async def test_429_beyond_the_budget_fails_at_once_as_retryable(vendor):
    """A Retry-After longer than the poll's budget is not waited for: http_429, retryable."""
    v, url = vendor
    client = PlatformClient("x", base_url=url, policy=FAST)
    try:
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/limited-long", budget=2)
        assert (caught.value.reason, caught.value.retryable) == ("http_429", True)
        assert v.calls["limited_long"] == 1
    finally:
        await client.aclose()


async def test_a_slow_platform_is_a_timeout_within_the_budget(vendor):
    """A platform slower than the budget gives reason "timeout" and never overruns it."""
    _, url = vendor
    client = PlatformClient("x", base_url=url, policy=FAST)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/slow", budget=0.5)
        assert caught.value.reason == "timeout"
        assert loop.time() - started < 2.5
    finally:
        await client.aclose()


async def test_connection_refused_is_a_retryable_network_error():
    """Nothing listening: reason "network", retryable."""
    client = PlatformClient("x", base_url=f"http://127.0.0.1:{free_port()}", policy=FAST)
    try:
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/queues", budget=2)
        assert (caught.value.reason, caught.value.retryable) == ("network", True)
    finally:
        await client.aclose()


async def test_a_403_is_refused_at_once(vendor):
    """A 4xx other than 401/429 is not retried and says what the platform said."""
    v, url = vendor
    client = PlatformClient("x", base_url=url, policy=FAST)
    try:
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/forbidden", budget=5)
        assert (caught.value.reason, caught.value.retryable) == ("http_4xx", False)
        assert "missing permission" in str(caught.value)
        assert v.calls["forbidden"] == 1
    finally:
        await client.aclose()


async def test_malformed_json_is_a_parse_error_showing_the_body(vendor):
    """A maintenance page instead of JSON is reason "parse" with the start of the body."""
    _, url = vendor
    client = PlatformClient("x", base_url=url, policy=FAST)
    try:
        with pytest.raises(SourceError) as caught:
            await client.json("GET", "/garbage", budget=5)
        assert caught.value.reason == "parse"
        assert "maintenance" in str(caught.value)
    finally:
        await client.aclose()


def test_field_names_the_missing_or_malformed_path():
    """``field`` reads nested values, accepts numeric strings, and names what is wrong."""
    payload = {"results": [{"data": [{"metric": "oWaiting", "stats": {"count": "4"}}]}]}
    assert field(payload, "results", 0, "data", 0, "stats", "count", kind=int) == 4
    assert field(payload, "results", 0, "group", default=None) is None
    with pytest.raises(SourceError, match=r"no results\[0\]\.group"):
        field(payload, "results", 0, "group", kind=dict)
    wrong_type = r"results\[0\]\.data\[0\]\.metric is 'oWaiting', not int"
    with pytest.raises(SourceError, match=wrong_type):
        field(payload, "results", 0, "data", 0, "metric", kind=int)
    with pytest.raises(SourceError) as caught:
        field([], 3)
    assert (caught.value.reason, caught.value.retryable) == ("parse", False)


async def test_a_big_body_is_decoded_off_the_event_loop(vendor, monkeypatch):
    """A body over the threshold is decoded in a worker thread, a small one on the loop,
    both to the same value."""
    import threading

    from risingtide.sources import webclient

    _, url = vendor
    threads: list[str] = []
    decode = webclient._decode

    def noting(response):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return decode(response)

    monkeypatch.setattr(webclient, "_decode", noting)
    client = PlatformClient("x", base_url=url, auth=BasicAuth("AC123", "tok"), policy=FAST)
    try:
        assert await client.json("GET", "/basic", budget=5) == {"ok": True}
        monkeypatch.setattr(webclient, "DECODE_IN_THREAD_FROM", 1)
        assert await client.json("GET", "/basic", budget=5) == {"ok": True}
    finally:
        await client.aclose()
    main = threading.main_thread().name
    assert threads[0] == main and threads[1] != main
