"""The demo's Council Tax surge with responses that really go out, end to end.

A whole ``Runtime`` on a ``FakeClock`` (as in ``test_demo_config``): the simulator floods
Council Tax, the engine raises tiers 1 and 2, and the dispatcher's real HTTP calls reach
three fakes on 127.0.0.1 served in the same event loop:

- GOV.UK Notify, which verifies the JWT as Notify does and records the text;
- a Teams Workflows webhook, which checks the Adaptive Card envelope and records the card;
- the contact-centre "platform", which keeps the IVR deflection flag (``json_flag``) and
  records every change of it.

Notify refuses a JWT whose ``iat`` is more than 30 s from its own clock. The runtime issues
JWTs from its clock, which here is the ``FakeClock``; so the fake Notify checks ``iat``
against that same clock (the test's "now"), not the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.messages import format_duration, sms_segments
from risingtide.runtime import Runtime
from tests.adapters.loopback import Loopback
from tests.adapters.test_teams_channel import adaptive_problems
from tests.e2e.demo_harness import MONDAY_10AM, start, step, with_state_file

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "surge_real_responses.yaml"
SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"rising_tide-live-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
HOOK_PATH = "/workflows/csc/triggers/manual/paths/invoke"
FLAGS_TOKEN = "flags-token-0123456789abcdef"
MINUTES = 20
RAISED = "Council Tax raised to tier 2 (high)"


@dataclass
class FakeNotify:
    """GOV.UK Notify's SMS endpoint: verify the JWT (against ``now``) and record the body."""

    now: Callable[[], datetime]
    texts: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        def error(status: int, name: str, message: str) -> JSONResponse:
            self.refused.append(message)
            body = {"status_code": status, "errors": [{"error": name, "message": message}]}
            return JSONResponse(body, status_code=status)

        async def send(request: Request) -> JSONResponse:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer "):
                return error(401, "AuthError", "authentication token must be provided")
            token = auth.removeprefix("Bearer ")
            if jwt.get_unverified_header(token) != {"typ": "JWT", "alg": "HS256"}:
                return error(403, "AuthError", "Invalid token: algorithm used is not HS256")
            try:
                claims = jwt.decode(
                    token, SECRET, algorithms=["HS256"], options={"verify_iat": False}
                )
            except jwt.InvalidTokenError:
                return error(403, "AuthError", "Invalid token: signature, API token not found")
            if claims.get("iss") != SERVICE_ID:
                return error(403, "AuthError", "Invalid token: API key not found")
            if abs(self.now().timestamp() - claims["iat"]) > 30:
                return error(403, "AuthError", "Your system clock must be accurate to within 30 s")
            body = json.loads(await request.body())
            if body.get("template_id") != TEMPLATE_ID or "phone_number" not in body:
                return error(400, "ValidationError", "phone_number is a required property")
            self.texts.append(body)
            n = len(self.texts)
            return JSONResponse(
                {"id": f"740e5834-3a29-46b4-9a6f-{n:012d}", "reference": body.get("reference"),
                 "content": {"body": body["personalisation"].get("message", ""),
                             "from_number": "COUNCIL"},
                 "template": {"id": TEMPLATE_ID, "version": 1}},
                status_code=201,
            )  # fmt: skip

        return Starlette(routes=[Route("/v2/notifications/sms", send, methods=["POST"])])


@dataclass
class FakeTeams:
    """A Teams Workflows webhook: check the Adaptive Card envelope, record the card."""

    cards: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            payload = json.loads(await request.body())
            problems = adaptive_problems(payload)
            if problems:
                return PlainTextResponse("; ".join(problems), status_code=400)
            self.cards.append(payload["attachments"][0]["content"])
            return PlainTextResponse("", status_code=202)

        return Starlette(routes=[Route(HOOK_PATH, hook, methods=["POST"])])


@dataclass
class FakePlatform:
    """The IVR platform's flag endpoint: keeps each line's deflection flag and its changes."""

    now: Callable[[], datetime]
    state: dict[str, bool] = field(default_factory=dict)
    writes: list[tuple[datetime, str, bool, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def flag(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {FLAGS_TOKEN}":
                return JSONResponse({"error": "unauthorised"}, status_code=401)
            body = json.loads(await request.body())
            if set(body) != {"deflect"} or not isinstance(body["deflect"], bool):
                return JSONResponse({"error": "expected {deflect: bool}"}, status_code=400)
            line = request.path_params["line"]
            key = request.headers.get("idempotency-key", "")
            self.writes.append((self.now(), line, body["deflect"], key))
            self.state[line] = body["deflect"]
            return JSONResponse({"line": line, "deflect": body["deflect"]})

        return Starlette(routes=[Route("/lines/{line}/ivr_deflection", flag, methods=["PUT"])])


Surge = tuple[Runtime, FakeClock, FakeNotify, FakeTeams, FakePlatform]


@pytest.fixture
async def surge(tmp_path: Path) -> AsyncIterator[Surge]:
    """The runtime, clock and the three fakes, served on loopback for the test."""
    clock = FakeClock(MONDAY_10AM)
    notify, teams, platform = FakeNotify(clock.now), FakeTeams(), FakePlatform(clock.now)
    async with (
        Loopback(notify.app()) as notify_url,
        Loopback(teams.app()) as teams_url,
        Loopback(platform.app()) as flags_url,
    ):
        env = {
            "NOTIFY_API_KEY": API_KEY,
            "NOTIFY_BASE_URL": notify_url,
            "TEAMS_WEBHOOK_URL": teams_url + HOOK_PATH,
            "FLAGS_URL": flags_url,
            "FLAGS_TOKEN": FLAGS_TOKEN,
        }
        config = with_state_file(load_config(FIXTURE, env=env), tmp_path / "state.sqlite")
        runtime = await start(config, clock)
        try:
            yield runtime, clock, notify, teams, platform
        finally:
            await runtime.shutdown()


async def test_the_surge_texts_posts_and_switches_the_platform_for_real(surge: Surge) -> None:
    """Tier 2 texts the duty manager and posts to Teams; IVR deflection goes on, then off."""
    runtime, clock, notify, teams, platform = surge
    tiers: list[tuple[datetime, int]] = []
    raised_on: QueueStats | None = None  # the figures the tier-2 tick evaluated
    for _ in range(MINUTES * 12):  # bounded: 20 fake minutes in 5 s steps
        await step(runtime, clock, 5)
        tier = runtime.states["council_tax"].tier
        if tier == 2 and raised_on is None:
            raised_on = runtime.latest["council_tax"]
        tiers.append((clock.now(), tier))
        if max(t for _, t in tiers) >= 2 and tiers[-1][1] == 0:
            break
    assert max(t for _, t in tiers) == 2, "the surge should reach tier 2 (high)"
    assert tiers[-1][1] == 0, "the line should be calm again"
    await runtime.dispatcher.run_due()  # type: ignore[union-attr]
    assert notify.refused == []

    # The duty manager's text on entering tier 2: line, tier and the wait against target.
    # (The simulated flood's abandonment takes the line from calm straight to tier 2.)
    subjects = [t["personalisation"]["subject"] for t in notify.texts]
    assert subjects[0] == RAISED, subjects
    assert all(s.startswith("Reminder: Council Tax still at tier 2") for s in subjects[1:])
    text = notify.texts[0]
    # Only the duty manager on duty by the rota (Asha, mornings) is texted, never Ben.
    assert {t["phone_number"] for t in notify.texts} == {"+447700900123"}
    assert (
        text["reference"].startswith("council_tax/")
        and "/text_duty_manager/apply" in text["reference"]
    )
    p = text["personalisation"]
    assert (p["line"], p["tier"], p["tier_name"]) == ("Council Tax", "2", "high")
    message = p["message"]
    assert message.startswith(RAISED + "\n")
    assert raised_on is not None and raised_on.avg_wait is not None
    expected_wait = f"Average wait {format_duration(raised_on.avg_wait)} (target 3m)"
    assert expected_wait in message.splitlines(), message
    assert sms_segments(message) <= 3

    # The Teams card for the same tier change.
    headlines = [str(c["body"][0]["text"]) for c in teams.cards]
    assert headlines == [RAISED], headlines
    card = teams.cards[0]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
             for f in b["facts"]}  # fmt: skip
    assert facts["Average wait"] == f"{format_duration(raised_on.avg_wait)} (target 3m)"
    # ...which @mentions the duty manager on duty, as Teams documents mentions.
    (mention,) = card["msteams"]["entities"]
    assert mention["type"] == "mention" and mention["text"] == "<at>Asha Patel</at>"
    assert mention["mentioned"] == {"id": "asha.patel@council.example", "name": "Asha Patel"}
    assert any("<at>Asha Patel</at>" in str(b.get("text", "")) for b in card["body"])

    # IVR deflection: on once when tier 2 was entered, off once when it was left.
    assert [(line, on) for _, line, on, _ in platform.writes] == [
        ("council_tax", True),
        ("council_tax", False),
    ]
    assert platform.state == {"council_tax": False}
    entered_2 = next(at for at, tier in tiers if tier == 2)
    left_2 = next(at for at, tier in tiers if at > entered_2 and tier < 2)
    on_at, off_at = platform.writes[0][0], platform.writes[1][0]
    assert entered_2 <= on_at < left_2 <= off_at
    assert platform.writes[0][3].endswith("/ivr_deflection/apply")
    assert platform.writes[1][3].endswith("/ivr_deflection/undo")

    # The history records every response as ok, and nothing is left in the outbox.
    assert runtime.store is not None
    runs = [
        e.data for e in runtime.store.history(line="council_tax", kinds=["response"], limit=1000)
    ]
    outcomes = {(r["response"], r["action"], r["outcome"]) for r in runs}
    assert ("text_duty_manager", "apply", "ok") in outcomes
    assert ("teams_csc", "apply", "ok") in outcomes
    assert ("ivr_deflection", "apply", "ok") in outcomes
    assert ("ivr_deflection", "undo", "ok") in outcomes
    assert {r["outcome"] for r in runs} == {"ok"}, runs
    sent = [r for r in runs if r["response"] == "text_duty_manager"]
    assert len(sent) == len(notify.texts)
    assert len([r for r in runs if r["response"] == "teams_csc"]) == len(teams.cards)
    assert runtime.store.pending_count() == 0
