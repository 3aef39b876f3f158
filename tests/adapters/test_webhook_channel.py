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
from risingtide.ports import BuildContext, Notice, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.webhook import HttpError, WebhookSettings, verify_signature
from tests.adapters import notices
from tests.adapters.loopback import Loopback, free_port
from tests.adapters.notices import ASHA, BATCH_KEY, HEADLINES, PEOPLE

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


# --------------------------------------------------------------------------- notices


async def test_a_digest_is_one_signed_event_listing_every_line() -> None:
    """Three lines: one POST of event "digest", each line's own event highest tier first,
    the people by id and name; signed, and keyed by the notice."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        responder = _responder(f"{base}/hook", secret=SECRET)
        assert await responder.notify(notices.digest("tell_intranet")) == "HTTP 200"
    assert len(receiver.seen) == 1
    headers, body, ok = receiver.seen[0]
    assert ok  # the receiver's own HMAC check accepts the digest's body
    assert headers["idempotency-key"] == BATCH_KEY
    event = json.loads(body)
    assert {k: event[k] for k in ("event", "version", "key", "count")} == {
        "event": "digest", "version": 1, "key": BATCH_KEY, "count": 3,
    }  # fmt: skip
    lines = event["lines"]
    assert [line["line"] for line in lines] == ["revenues", "council_tax", "waste"]
    assert [line["message"]["subject"] for line in lines] == list(HEADLINES)
    assert lines[0]["key"].startswith("revenues/3/tier_changed/3/")
    assert lines[0]["event"] == "tier_raised" and lines[0]["stats"]["avg_wait"] == 700.0
    assert all("people" not in line for line in lines)
    assert event["message"]["subject"].startswith("3 lines: Revenues & Benefits tier 3")
    assert event["people"] == [
        {"id": "asha", "name": "Asha Patel"},
        {"id": "ben", "name": "Ben Okafor"},
        {"id": "chloe", "name": "Chloe Jones"},
    ]


async def test_people_are_listed_without_their_addresses() -> None:
    """A single-line event lists the people too, never an email, number or user id."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        await _responder(f"{base}/hook").notify(Notice.of(_order(), CONTEXT, PEOPLE))
    body = receiver.seen[0][1].decode()
    event = json.loads(body)
    assert event["event"] == "tier_raised" and event["key"] == KEY
    assert [p["id"] for p in event["people"]] == ["asha", "ben", "chloe"]
    for person in PEOPLE:
        for address in (person.email, person.mobile, person.teams, person.slack):
            assert address is None or address not in body
    assert ASHA.email not in body


async def test_a_notice_mixing_apply_and_undo_is_the_event_of_the_apply_line() -> None:
    """One APPLY among UNDOs: the single-line event about it, keyed by the notice."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        await _responder(f"{base}/hook").notify(notices.mixed("tell_intranet"))
    headers, body, _ = receiver.seen[0]
    event = json.loads(body)
    assert (event["event"], event["line"], event["key"]) == (
        "tier_raised", "council_tax", BATCH_KEY,
    )  # fmt: skip
    assert headers["idempotency-key"] == BATCH_KEY
    assert len(event["people"]) == 3


async def test_a_notice_of_undos_only_posts_nothing() -> None:
    """UNDOs take nothing back: no request."""
    responder = _responder(f"http://127.0.0.1:{free_port()}/hook")
    assert await responder.notify(notices.undo_only("tell_intranet")) == (
        "nothing to undo: a notification is not taken back"
    )


async def test_digest_templates_write_the_digest_message_and_line_templates_each_line() -> None:
    """digest_(subject_)template write the digest's ``message``; each line's own event
    keeps the single-line templates."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        responder = _responder(
            f"{base}/hook", subject_template="{{ line_name }} T{{ tier }}",
            digest_subject_template="{{ count }} lines, key {{ key }}",
            digest_template="{{ lines | map(attribute='line') | join(',') }}",
        )  # fmt: skip
        await responder.notify(notices.digest("tell_intranet"))
    event = json.loads(receiver.seen[0][1])
    assert event["message"] == {
        "subject": f"3 lines, key {BATCH_KEY}", "text": "revenues,council_tax,waste",
    }  # fmt: skip
    assert event["lines"][1]["message"]["subject"] == "Council Tax T2"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "https://x.example/h", "digest_template": "{{ lines.0.nope }}"}, "nope"),
        ({"url": "https://x.example/h", "digest_subject_template": "{{ tier }}"}, "'tier'"),
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
