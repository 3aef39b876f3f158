"""The ``govuk_notify`` responder against a fake GOV.UK Notify on loopback.

The fake checks every request as Notify documents it: a JWT in ``Authorization: Bearer``
with header ``{typ: JWT, alg: HS256}``, signed with the key's secret, ``iss`` = the service
id and ``iat`` within 30 seconds of now; then the body. It answers 201 with the documented
body, or the documented errors on demand. The rate limiter runs on an injected clock.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from risingtide.clock import SystemClock
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.messages import sms_segments
from risingtide.ports import BuildContext, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.govuk_notify import (
    GovukNotifyResponder,
    GovukNotifySettings,
    RateLimitedError,
    RollingLimiter,
    limiter_for,
    normalise_uk_mobile,
    parse_api_key,
)
from tests.adapters import notices
from tests.adapters.loopback import Loopback, free_port
from tests.adapters.notices import ASHA, BATCH_KEY, BEN, BOARD, CHLOE

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"rising_tide-live-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
KEY = "council_tax/3/escalated/2/2026-01-05T09:00:00+00:00#1/text_duty_manager/apply"

Fault = tuple[int, str, str]  # status, error, message
CLOCK_MESSAGE = "Error: Your system clock must be accurate to within 30 seconds"
AUTH_CLOCK: Fault = (403, "AuthError", CLOCK_MESSAGE)
TEAM_ONLY = "Can't send to this recipient using a team-only API key"
RATE_MESSAGE = "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"
FAULTS: dict[str, Fault] = {
    "validation": (400, "ValidationError", "phone_number Not a UK mobile number"),
    "bad_request": (400, "BadRequestError", TEAM_ONLY),
    "auth": (403, "AuthError", "Invalid token: API key not found"),
    "rate": (429, "RateLimitError", RATE_MESSAGE),
    "daily": (429, "TooManyRequestsError", "Exceeded send limits (250000) for today"),
    "exception": (500, "Exception", "Internal server error"),
}


def _order(action: Action = Action.APPLY) -> ResponseOrder:
    return ResponseOrder(
        key=KEY, line="council_tax", response="text_duty_manager", action=action, tier=2,
        episode=3, trigger="escalated", at=T0,
        reason="escalation step 1: tier 2 high unacknowledged",
    )  # fmt: skip


CONTEXT = ResponseContext(
    line_name="Council Tax",
    tier_name="high",
    stats=QueueStats(line="council_tax", at=T0, calls_waiting=14, avg_wait=400.0,
                     longest_wait=725.0, offered=40, abandoned=5, window=900.0),
    target_wait=180.0,
    extra={"ack_url": "https://rt.example/ack/council_tax",
           "entered_at": T0 - timedelta(minutes=25), "live_switches": ["callback_on"]},
)  # fmt: skip


@dataclass
class FakeNotify:
    """GOV.UK Notify's send endpoints: verify the JWT and body, answer 201 or a fault."""

    faults: dict[str, Fault] = field(default_factory=dict)  # recipient -> fault
    requests: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)

    def _error(self, fault: Fault) -> JSONResponse:
        status, error, message = fault
        body = {"status_code": status, "errors": [{"error": error, "message": message}]}
        return JSONResponse(body, status_code=status)

    def _check_token(self, request: Request) -> Fault | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return (401, "AuthError", "Unauthorized: authentication token must be provided")
        token = auth.removeprefix("Bearer ")
        if jwt.get_unverified_header(token) != {"typ": "JWT", "alg": "HS256"}:
            return (403, "AuthError", "Invalid token: algorithm used is not HS256")
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})
        except jwt.InvalidTokenError:
            return (403, "AuthError", "Invalid token: signature, API token not found")
        if claims.get("iss") != SERVICE_ID:
            return (403, "AuthError", "Invalid token: API key not found")
        if abs(time.time() - claims["iat"]) > 30:
            return AUTH_CLOCK
        self.tokens.append(claims)
        return None

    def app(self) -> Starlette:
        async def send(request: Request) -> JSONResponse:
            kind = request.path_params["kind"]
            bad = self._check_token(request)
            if bad is not None:
                return self._error(bad)
            body = json.loads(await request.body())
            self.requests.append({"kind": kind, **body})
            field_name = "phone_number" if kind == "sms" else "email_address"
            if body.get("template_id") != TEMPLATE_ID or field_name not in body:
                return self._error((400, "ValidationError", f"{field_name} is a required property"))
            if not all(isinstance(v, str) for v in body.get("personalisation", {}).values()):
                return self._error((400, "ValidationError", "personalisation values must be text"))
            recipient = body[field_name]
            if recipient in self.faults:
                return self._error(self.faults[recipient])
            n = len(self.requests)
            notification_id = f"740e5834-3a29-46b4-9a6f-{n:012d}"
            return JSONResponse(
                {
                    "id": notification_id,
                    "reference": body.get("reference"),
                    "content": {"body": body["personalisation"].get("message", ""),
                                "from_number": "COUNCIL"},
                    "uri": f"https://api.notifications.service.gov.uk/v2/notifications/{notification_id}",
                    "template": {"id": TEMPLATE_ID, "version": 1,
                                 "uri": f"https://api.notifications.service.gov.uk/v2/template/{TEMPLATE_ID}"},
                },
                status_code=201,
            )  # fmt: skip

        return Starlette(routes=[Route("/v2/notifications/{kind}", send, methods=["POST"])])


class OffsetClock:
    """The real time plus an offset the test moves (for iat checks against a real server)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _settings(base: str, **settings: Any) -> GovukNotifySettings:
    """Settings for a fake Notify at ``base``; ``to=None`` leaves ``to`` out."""
    data = {
        "api_key": API_KEY, "kind": "sms", "template_id": TEMPLATE_ID,
        "to": ["07700 900123", "+44 7700 900456"], "base_url": base, **settings,
    }  # fmt: skip
    return GovukNotifySettings.model_validate({k: v for k, v in data.items() if v is not None})


def _responder(base: str, clock: Any = None, limiter: Any = None, **settings: Any) -> Any:
    return GovukNotifyResponder(
        "text_duty_manager",
        _settings(base, **settings),
        clock or SystemClock(),
        limiter=limiter or RollingLimiter(),
    )


# --------------------------------------------------------------------------- sending


async def test_texts_every_recipient_with_a_verified_jwt_and_the_documented_body() -> None:
    """One POST per number; the fake verifies the JWT; reference is the order key."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        plugin = RESPONDER_TYPES["govuk_notify"]
        settings = _settings(base)
        responder = plugin.build("text_duty_manager", settings, BuildContext(SystemClock()))
        outcome = await responder.run(_order(), CONTEXT)
    assert outcome == "sent 2 texts (ids 740e5834, 740e5834)"
    assert [r["phone_number"] for r in notify.requests] == ["+447700900123", "+447700900456"]
    assert [t["iss"] for t in notify.tokens] == [SERVICE_ID, SERVICE_ID]
    first = notify.requests[0]
    assert (first["kind"], first["template_id"], first["reference"]) == ("sms", TEMPLATE_ID, KEY)
    personalisation = first["personalisation"]
    assert personalisation["line"] == "Council Tax"
    assert (personalisation["tier"], personalisation["tier_name"]) == ("2", "high")
    assert personalisation["subject"] == "Escalated: Council Tax at tier 2 (high), not acknowledged"
    assert personalisation["ack_url"] == "https://rt.example/ack/council_tax"
    message = personalisation["message"]
    assert message.startswith("Escalated: Council Tax at tier 2 (high), not acknowledged\n")
    assert "Average wait 6m 40s (target 3m)" in message and sms_segments(message) <= 3


async def test_emails_through_notify_with_the_plain_body_and_a_reply_to() -> None:
    """kind: email posts email_address; the message is the plain-text body."""
    notify = FakeNotify()
    reply_to = "8e222534-7f05-4972-86e3-17c5d9f894e2"
    async with Loopback(notify.app()) as base:
        responder = _responder(
            base, kind="email", to=["csc.duty@council.example"], email_reply_to_id=reply_to
        )
        assert await responder.run(_order(), CONTEXT) == "sent 1 email (ids 740e5834)"
    request = notify.requests[0]
    assert (request["kind"], request["email_address"]) == ("email", "csc.duty@council.example")
    assert request["email_reply_to_id"] == reply_to
    assert "Why: escalation step 1" in request["personalisation"]["message"]


async def test_personalisation_values_are_templates_over_the_message_facts() -> None:
    """Configured placeholders are rendered; template replaces the default message."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        responder = _responder(
            base, to=["07700900123"], template="{{ line_name }} T{{ tier }}",
            personalisation={"wait": "{{ avg_wait_text }} vs {{ target_wait_text }}",
                             "tier": "{{ tier_label }}"},
        )  # fmt: skip
        await responder.run(_order(), CONTEXT)
    personalisation = notify.requests[0]["personalisation"]
    assert personalisation["wait"] == "6m 40s vs 3m"
    assert personalisation["tier"] == "tier 2 (high)"
    assert personalisation["message"] == "Council Tax T2"


async def test_each_request_carries_a_fresh_token_from_the_clock() -> None:
    """iat is the clock's now at each request, so a retry minutes later is still accepted."""
    notify = FakeNotify()
    clock = OffsetClock()
    async with Loopback(notify.app()) as base:
        responder = _responder(base, clock=clock, to=["07700900123"])
        await responder.run(_order(), CONTEXT)
        clock.offset = timedelta(seconds=10)
        await responder.run(replace_key(_order(), "again"), CONTEXT)
    first, second = (t["iat"] for t in notify.tokens)
    assert second - first in (9, 10, 11)


def replace_key(order: ResponseOrder, suffix: str) -> ResponseOrder:
    """The same order with another idempotency key."""
    from dataclasses import replace

    return replace(order, key=order.key + suffix)


async def test_a_clock_off_by_more_than_30_seconds_is_refused_and_not_retried() -> None:
    """Notify's 403 AuthError for a stale iat is reason "auth", not retryable."""
    notify = FakeNotify()
    clock = OffsetClock()
    clock.offset = timedelta(minutes=-2)
    async with Loopback(notify.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(base, clock=clock).run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("auth", False)
    assert f"AuthError: {CLOCK_MESSAGE}" in str(caught.value)
    assert "1 not tried" in str(caught.value)  # a 403 stops the run: the key is the problem


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fault", "reason", "retryable"),
    [
        ("validation", "http_4xx", False),
        ("bad_request", "http_4xx", False),
        ("auth", "auth", False),
        ("rate", "http_429", True),
        ("daily", "http_429", True),
        ("exception", "http_5xx", True),
    ],
)
async def test_documented_errors_are_parsed_and_classified(
    fault: str, reason: str, retryable: bool
) -> None:
    """400 ValidationError/BadRequestError and 403 are final; 429s and 500 are retried."""
    notify = FakeNotify(faults={"+447700900123": FAULTS[fault]})
    async with Loopback(notify.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(base, to=["07700900123"]).run(_order(), CONTEXT)
    status, error, message = FAULTS[fault]
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert f"HTTP {status} {error}: {message}" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_a_refused_number_does_not_stop_the_others() -> None:
    """A 400 for one recipient: the others are sent; the error names the refused one."""
    notify = FakeNotify(faults={"+447700900456": FAULTS["validation"]})
    async with Loopback(notify.app()) as base:
        responder = _responder(base, to=["07700900123", "07700900456", "07700900789"])
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
    assert [r["phone_number"][-3:] for r in notify.requests] == ["123", "456", "789"]
    assert (caught.value.reason, caught.value.retryable) == ("http_4xx", False)
    assert "+447700…456: GOV.UK Notify answered HTTP 400 ValidationError" in str(caught.value)
    assert "sent to 2" in str(caught.value)


async def test_a_retry_after_a_500_sends_only_to_those_not_yet_sent() -> None:
    """Notify does not de-duplicate: the responder remembers who already has the text."""
    notify = FakeNotify(faults={"+447700900456": FAULTS["exception"]})
    async with Loopback(notify.app()) as base:
        responder = _responder(base, to=["07700900123", "07700900456", "07700900789"])
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
        assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
        assert "1 not tried" in str(caught.value)
        notify.faults.clear()
        outcome = await responder.run(_order(), CONTEXT)
        assert await responder.run(_order(), CONTEXT) == "already sent to all 3 recipients"
    assert outcome.startswith("sent 2 texts") and outcome.endswith("(1 sent before)")
    sent = [r["phone_number"][-3:] for r in notify.requests]
    assert sent == ["123", "456", "456", "789"]


async def test_connection_refused_is_a_retryable_network_error() -> None:
    """Nothing listening: reason "network", retryable."""
    with pytest.raises(ResponseError) as caught:
        await _responder(f"http://127.0.0.1:{free_port()}").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("network", True)


async def test_an_undo_sends_nothing() -> None:
    """Notifications are not undone."""
    responder = _responder(f"http://127.0.0.1:{free_port()}")
    assert "nothing to undo" in await responder.run(_order(Action.UNDO), CONTEXT)


# --------------------------------------------------------------------------- notices


async def test_a_digest_is_one_text_per_recipient_to_to_and_the_people_paged() -> None:
    """Three lines: one text each to ``to``, Asha and Chloe (Ben has no mobile: skipped),
    referenced by the notice key; the text names all three lines and ends with the board."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        responder = _responder(base, to=["07700 900123"])
        outcome = await responder.notify(notices.digest("text_duty_manager"))
    assert outcome.startswith("sent 3 texts")
    numbers = [r["phone_number"] for r in notify.requests]
    assert numbers == ["+447700900123", ASHA.mobile, CHLOE.mobile]
    assert {r["reference"] for r in notify.requests} == {BATCH_KEY}
    assert len({json.dumps(r["personalisation"]) for r in notify.requests}) == 1
    personalisation = notify.requests[0]["personalisation"]
    message = personalisation["message"]
    assert message.splitlines()[:4] == [
        "3 lines need attention",
        "Revenues & Benefits: tier 3 (flood), avg 11m 40s, 31 waiting",
        "Council Tax: tier 2 (high), avg 6m 40s, 14 waiting",
        "Waste & Recycling: tier 1 (rising), avg 3m 20s, 6 waiting",
    ]
    assert message.endswith(f"Board: {BOARD}") and sms_segments(message) <= 3
    assert personalisation["line"] == "Revenues & Benefits, Council Tax, Waste & Recycling"
    assert (personalisation["tier"], personalisation["tier_name"]) == ("3", "flood")
    assert personalisation["ack_url"] == BOARD
    assert personalisation["subject"].startswith("3 lines: Revenues & Benefits tier 3")


async def test_a_digest_by_email_goes_to_the_peoples_addresses() -> None:
    """kind: email: the people's email addresses (Chloe has none), no ``to`` needed."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        responder = _responder(base, kind="email", to=None)
        await responder.notify(notices.digest("email_duty"))
    assert [r["email_address"] for r in notify.requests] == [ASHA.email, BEN.email]
    message = notify.requests[0]["personalisation"]["message"]
    assert "Revenues & Benefits raised to tier 3 (flood)" in message
    assert "Waste & Recycling raised to tier 1 (rising)" in message


async def test_a_retry_of_a_digest_sends_only_to_those_not_yet_sent() -> None:
    """The sent-memory is keyed by the notice key."""
    notify = FakeNotify(faults={CHLOE.mobile or "": FAULTS["exception"]})
    async with Loopback(notify.app()) as base:
        responder = _responder(base, to=["07700 900123"])
        with pytest.raises(ResponseError):
            await responder.notify(notices.digest("text_duty_manager"))
        notify.faults.clear()
        outcome = await responder.notify(notices.digest("text_duty_manager"))
    assert outcome.endswith("(2 sent before)")
    assert [r["phone_number"] for r in notify.requests][-1] == CHLOE.mobile


async def test_custom_placeholders_of_a_digest_are_the_highest_lines() -> None:
    """A personalisation template sees one line's variables: a digest gives the worst one,
    so a Notify template using ((wait)) always has it."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        responder = _responder(
            base, to=["07700900123"], personalisation={"wait": "{{ avg_wait_text }}"}
        )
        await responder.notify(notices.digest("text_duty_manager", people=()))
    assert notify.requests[0]["personalisation"]["wait"] == "11m 40s"


async def test_a_digest_template_replaces_the_digest_message() -> None:
    """digest_template writes ``message`` for a digest; the single-line template does not."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        responder = _responder(
            base, to=["07700900123"], template="{{ line_name }}",
            digest_template="{{ count }} lines: {% for l in lines %}{{ l.line }} {% endfor %}",
            digest_subject_template="{{ summary }}",
        )  # fmt: skip
        await responder.notify(notices.digest("text_duty_manager", people=()))
    personalisation = notify.requests[0]["personalisation"]
    assert personalisation["message"] == "3 lines: revenues council_tax waste"
    assert personalisation["subject"] == "3 lines need attention"


async def test_a_notice_of_undos_only_sends_nothing() -> None:
    """UNDOs take nothing back: Notify is not called."""
    responder = _responder(f"http://127.0.0.1:{free_port()}")
    assert "nothing to undo" in await responder.notify(notices.undo_only("text_duty_manager"))


async def test_a_notice_mixing_apply_and_undo_talks_about_the_apply_line_only() -> None:
    """One APPLY among UNDOs: the single-line text about it, referenced by the notice key."""
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        await _responder(base, to=["07700900123"]).notify(notices.mixed("text_duty_manager"))
    first = notify.requests[0]
    assert first["reference"] == BATCH_KEY
    message = first["personalisation"]["message"]
    assert message.startswith("Council Tax raised to tier 2 (high)")
    assert "Waste" not in message and "Revenues" not in message
    assert first["personalisation"]["ack_url"] == "https://rt.example/ack/council_tax"


async def test_nobody_to_send_to_is_a_final_failure() -> None:
    """No ``to`` and nobody paged with a mobile: reason "no_recipients", not retried."""
    responder = _responder(f"http://127.0.0.1:{free_port()}", to=None)
    with pytest.raises(ResponseError) as caught:
        await responder.notify(notices.digest("t", people=(BEN,)))
    assert (caught.value.reason, caught.value.retryable) == ("no_recipients", False)


def test_the_plugin_texts_a_persons_mobile_or_emails_their_address() -> None:
    """``address`` follows the kind: the loader checks paged people have it."""
    plugin = RESPONDER_TYPES["govuk_notify"]
    base = {"api_key": API_KEY, "template_id": TEMPLATE_ID}
    sms = plugin.settings_model.model_validate({**base, "kind": "sms"})
    mail = plugin.settings_model.model_validate({**base, "kind": "email"})
    assert (plugin.address(sms), plugin.address(mail)) == ("mobile", "email")


# --------------------------------------------------------------------------- rate limit


class FakeTime:
    """A monotonic clock and a sleep that moves it (nothing really waits)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


async def test_the_3001st_message_in_a_minute_fails_retryable_unless_a_slot_is_near() -> None:
    """3,000 go at once; the 3,001st 10 s later fails (50 s to wait); at 59.5 s it waits 0.5 s."""
    t = FakeTime()
    limiter = RollingLimiter(clock=t, sleep=t.sleep)
    for _ in range(3000):
        await limiter.acquire()
    t.t += 10
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire()
    assert (caught.value.reason, caught.value.retryable) == ("rate_limited", True)
    assert caught.value.retry_after == pytest.approx(50.0)
    assert limiter.in_window() == 3000  # the refused attempt took no slot
    t.t += 49.5
    await limiter.acquire()
    assert t.slept == [pytest.approx(0.5)]
    assert limiter.in_window() == 1  # the first 3,000 have left the window


async def test_the_limiter_stops_a_run_before_calling_notify_and_the_retry_finishes_it() -> None:
    """With the window full, the next text is not sent (no 429 earned); later it goes."""
    t = FakeTime()
    limiter = RollingLimiter(limit=2, window=60, clock=t, sleep=t.sleep)
    notify = FakeNotify()
    async with Loopback(notify.app()) as base:
        responder = _responder(
            base, limiter=limiter, to=["07700900123", "07700900456", "07700900789"]
        )
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
        assert (caught.value.reason, caught.value.retryable) == ("rate_limited", True)
        assert "+447700…789: held back: GOV.UK Notify allows 2 messages per 60s" in str(
            caught.value
        )
        assert "sent to 2" in str(caught.value)
        assert len(notify.requests) == 2
        t.t += 60
        assert (await responder.run(_order(), CONTEXT)).endswith("(2 sent before)")
    assert len(notify.requests) == 3


def test_responses_sharing_an_api_key_share_one_limiter() -> None:
    """The limit is Notify's per API key: one limiter per key, across responses."""
    key = parse_api_key(API_KEY)
    other = parse_api_key(f"other-{SERVICE_ID}-11111111-2222-4333-8444-555555555555")
    assert limiter_for(key) is limiter_for(parse_api_key(API_KEY))
    assert limiter_for(key) is not limiter_for(other)
    assert (limiter_for(key).limit, limiter_for(key).window) == (3000, 60.0)


# --------------------------------------------------------------------------- settings


def test_the_api_key_is_split_into_service_id_and_secret() -> None:
    """The two trailing UUIDs are the service id and the secret; the name may have dashes."""
    key = parse_api_key(API_KEY)
    assert (key.name, key.service_id, key.secret) == ("rising_tide-live", SERVICE_ID, SECRET)
    assert SECRET not in repr(key)


@pytest.mark.parametrize(
    "api_key",
    [SECRET, f"{SERVICE_ID}-{SECRET}", f"name-{SERVICE_ID}-not-a-uuid", "${NOTIFY_API_KEY}"],
)
def test_a_malformed_api_key_is_refused_without_quoting_it(api_key: str) -> None:
    """The error explains the format and never echoes the key."""
    with pytest.raises(ValidationError, match=r"is not a GOV\.UK Notify API key") as caught:
        _settings("https://x.example", api_key=api_key)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("number", "normalised"),
    [
        ("07700 900123", "+447700900123"),
        ("07700-900-123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("447700900123", "+447700900123"),
    ],
)
def test_uk_mobile_numbers_in_their_usual_forms(number: str, normalised: str) -> None:
    """Spaces, dashes, brackets and the +44/0044/0 prefixes are all accepted."""
    assert normalise_uk_mobile(number) == normalised


@pytest.mark.parametrize(
    "number", ["020 7946 0000", "07700 90012", "07700 9001234", "+33 6 12 34 56 78", "seven"]
)
def test_other_numbers_are_refused_at_config_time(number: str) -> None:
    """Landlines, wrong lengths, foreign and non-numbers are config errors."""
    with pytest.raises(ValidationError, match="is not a UK mobile number"):
        _settings("https://x.example", to=[number])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "email", "to": ["07700900123"]}, "is not an email address"),
        ({"to": ["07700900123", "+447700900123"]}, "is listed twice"),
        ({"to": []}, "must not be empty"),
        ({"template_id": "welcome"}, "is not a UUID"),
        ({"kind": "email", "to": ["a@b.x"], "sms_sender_id": TEMPLATE_ID}, "is for kind: sms"),
        ({"kind": "letter"}, "Input should be 'sms' or 'email'"),
        ({"personalisation": {"x": "{{ nope }}"}}, "'nope' is undefined"),
        ({"digest_template": "{{ avg_wait_text }}"}, "'avg_wait_text' is undefined"),
        ({"digest_subject_template": "{{ ''.__class__ }}"}, "not allowed in a template"),
        ({"base_url": "api.notifications.service.gov.uk"}, "http:// or https://"),
    ],
)
def test_settings_are_checked_when_the_config_is_loaded(
    settings: dict[str, Any], message: str
) -> None:
    """Recipients match the kind; ids are UUIDs; templates compile; base_url is a URL."""
    with pytest.raises(ValidationError, match=message):
        _settings("https://x.example", **settings)


def test_the_default_base_url_is_notifys() -> None:
    """Without base_url the responder talks to api.notifications.service.gov.uk."""
    settings = GovukNotifySettings.model_validate(
        {"api_key": API_KEY, "kind": "sms", "template_id": TEMPLATE_ID, "to": ["07700900123"]}
    )
    assert settings.base_url == "https://api.notifications.service.gov.uk"
