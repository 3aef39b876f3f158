"""The ``webhook`` responder against a receiver on loopback that verifies what it is sent.

The receiver checks the HMAC signature exactly as the docs tell a receiver to (its own code,
not the responder's), reads the Idempotency-Key, and answers as each test asks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock, SystemClock
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.ports import BuildContext, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.webhook import HttpError, WebhookSettings, verify_signature
from tests.adapters.loopback import Loopback, free_port

SECRET = "a-webhook-secret-of-32-characters!"
T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
KEY = "council_tax/3/tier_changed/2/1-2@2026-01-05T09:25:00+00:00/tell_intranet/apply"


def _order(action: Action = Action.APPLY) -> ResponseOrder:
    return ResponseOrder(
        key=KEY, line="council_tax", response="tell_intranet", action=action, tier=2,
        episode=3, trigger="tier_changed", at=T0, reason="avg_wait 400s > 300s for 5m",
    )  # fmt: skip


CONTEXT = ResponseContext(
    line_name="Council Tax",
    tier_name="high",
    stats=QueueStats(line="council_tax", at=T0, calls_waiting=14, avg_wait=400.0,
                     longest_wait=725.0, offered=40, abandoned=5, window=900.0),
    target_wait=180.0,
    extra={"ack_url": "https://rt.example/ack/council_tax", "live_switches": ["callback_on"]},
)  # fmt: skip


def receiver_accepts(secret: bytes, headers: dict[str, str], body: bytes, now: float) -> bool:
    """A receiver's check, written from docs/channels.md alone."""
    timestamp = headers.get("x-rising-tide-timestamp", "")
    signature = headers.get("x-rising-tide-signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > 300:
        return False
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={mac}", signature)


@dataclass
class Receiver:
    """A webhook receiver: records requests, answers ``status`` after ``delay`` seconds."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    seen: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            ok = receiver_accepts(SECRET.encode(), headers, body, time.time())
            self.seen.append((headers, body, ok))
            if self.delay:
                await asyncio.sleep(self.delay)
            if "x-rising-tide-signature" in headers and not ok:
                return PlainTextResponse("bad signature", status_code=401)
            return PlainTextResponse("thanks", status_code=self.status, headers=self.headers)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def _responder(url: str, clock: Any = None, **settings: Any) -> Any:
    plugin = RESPONDER_TYPES["webhook"]
    validated = plugin.settings_model.model_validate({"url": url, **settings})
    return plugin.build("tell_intranet", validated, BuildContext(clock=clock or SystemClock()))


async def test_posts_a_signed_event_the_receiver_verifies() -> None:
    """The body is the documented event; the receiver's own HMAC check accepts it."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        responder = _responder(f"{base}/hook", secret=SECRET, headers={"X-Team": "csc"})
        assert await responder.run(_order(), CONTEXT) == "HTTP 200"
    headers, body, ok = receiver.seen[0]
    assert ok
    assert headers["idempotency-key"] == KEY
    assert headers["content-type"] == "application/json"
    assert headers["x-team"] == "csc"
    event = json.loads(body)
    assert {k: event[k] for k in ("event", "line", "tier", "tier_name", "key", "at")} == {
        "event": "tier_raised", "line": "council_tax", "tier": 2, "tier_name": "high",
        "key": KEY, "at": "2026-01-05T09:25:00+00:00",
    }  # fmt: skip
    assert event["tier_from"] == 1 and event["reason"] == "avg_wait 400s > 300s for 5m"
    assert event["stats"]["avg_wait"] == 400.0 and event["stats"]["target_wait"] == 180.0
    assert event["stats"]["abandon_rate"] == pytest.approx(0.125)
    assert event["ack_url"] == "https://rt.example/ack/council_tax"
    assert event["message"]["subject"] == "Council Tax raised to tier 2 (high) from tier 1"


async def test_a_tampered_body_or_an_old_timestamp_is_rejected_by_the_receiver() -> None:
    """Changing one byte of the body, or replaying it ten minutes later, fails the check."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        await _responder(f"{base}/hook", secret=SECRET).run(_order(), CONTEXT)
    headers, body, _ = receiver.seen[0]
    now = time.time()
    tampered = body.replace(b'"tier":2', b'"tier":0')
    assert tampered != body
    assert not receiver_accepts(SECRET.encode(), headers, tampered, now)
    assert not receiver_accepts(SECRET.encode(), headers, body, now + 600)
    assert not receiver_accepts(b"another secret entirely", headers, body, now)
    # The shipped helper agrees with the receiver written from the docs.
    ts, sig = headers["x-rising-tide-timestamp"], headers["x-rising-tide-signature"]
    assert verify_signature(SECRET.encode(), timestamp=ts, body=body, signature=sig, now=now)
    assert not verify_signature(
        SECRET.encode(), timestamp=ts, body=tampered, signature=sig, now=now
    )


async def test_the_signature_timestamp_comes_from_the_injected_clock() -> None:
    """The timestamp is the clock's time; a receiver with a far-off clock refuses it (401)."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        responder = _responder(f"{base}/hook", clock=FakeClock(T0), secret=SECRET)
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
    assert receiver.seen[0][0]["x-rising-tide-timestamp"] == str(int(T0.timestamp()))
    assert (caught.value.reason, caught.value.retryable) == ("http_4xx", False)


async def test_a_retry_carries_the_same_idempotency_key() -> None:
    """Two runs of one order send the same Idempotency-Key, so the receiver can drop one."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        responder = _responder(f"{base}/hook")
        await responder.run(_order(), CONTEXT)
        await responder.run(_order(), CONTEXT)
    assert [h["idempotency-key"] for h, _, _ in receiver.seen] == [KEY, KEY]
    assert "x-rising-tide-signature" not in receiver.seen[0][0]  # no secret, no signature


@pytest.mark.parametrize(
    ("status", "headers", "reason", "retryable"),
    [
        (429, {"Retry-After": "30"}, "http_429", True),
        (500, {}, "http_5xx", True),
        (503, {}, "http_5xx", True),
        (400, {}, "http_4xx", False),
        (404, {}, "http_4xx", False),
        (302, {"Location": "https://elsewhere.example/"}, "http_3xx", False),
    ],
)
async def test_failures_are_classified_for_the_dispatcher(
    status: int, headers: dict[str, str], reason: str, retryable: bool
) -> None:
    """429 and 5xx are retryable; other 4xx and redirects are not."""
    receiver = Receiver(status=status, headers=headers)
    async with Loopback(receiver.app()) as base:
        with pytest.raises(HttpError) as caught:
            await _responder(f"{base}/hook").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable, caught.value.status) == (
        reason, retryable, status,
    )  # fmt: skip
    if status == 429:
        assert caught.value.retry_after == 30.0
        assert "asks to wait 30s" in str(caught.value)


async def test_a_slow_receiver_is_a_retryable_timeout() -> None:
    """No answer within the timeout is reason "timeout", retryable."""
    receiver = Receiver(delay=0.5)
    async with Loopback(receiver.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(f"{base}/hook", timeout="100ms").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("timeout", True)
    assert "no answer within 0.1s" in str(caught.value)


async def test_connection_refused_is_a_retryable_network_error() -> None:
    """Nothing listening is reason "network", retryable."""
    responder = _responder(f"http://127.0.0.1:{free_port()}/hook")
    with pytest.raises(ResponseError) as caught:
        await responder.run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("network", True)


async def test_an_undo_sends_nothing() -> None:
    """Notifications are never undone: an UNDO order is answered without a request."""
    responder = _responder(f"http://127.0.0.1:{free_port()}/hook")
    assert await responder.run(_order(Action.UNDO), CONTEXT) == (
        "nothing to undo: a notification is not taken back"
    )
    assert RESPONDER_TYPES["webhook"].undoable(responder._settings) is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "ftp://x.example/h"}, "must be an http:// or https:// URL"),
        ({"url": "https://x.example/h", "secret": "short"}, "too short to sign with"),
        ({"url": "https://x.example/h", "headers": {"Idempotency-Key": "x"}}, "set by Rising"),
        ({"url": "https://x.example/h", "headers": {"Bad Name": "x"}}, "not a valid HTTP header"),
        ({"url": "https://x.example/h", "methd": "PUT"}, "Extra inputs are not permitted"),
    ],
)
def test_settings_are_checked_when_the_config_is_loaded(
    settings: dict[str, Any], message: str
) -> None:
    """Bad URLs, weak secrets, reserved or malformed headers and unknown keys are refused."""
    with pytest.raises(ValidationError, match=message):
        WebhookSettings.model_validate(settings)
