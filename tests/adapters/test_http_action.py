"""The generic ``http_action`` responder against a real platform on loopback.

The fake platform keeps flags by name, checks the auth it is told to expect (Basic, bearer,
OAuth client credentials with its own token endpoint), records every request, and answers
with scripted statuses when a test asks it to misbehave. The last tests run switch orders
through the real dispatcher and store.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.dispatch import Dispatcher, RetryPolicy
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import BuildContext, Responder, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.http_action import PLUGIN, HttpActionSettings
from risingtide.store import Store
from tests.adapters.loopback import Loopback, free_port

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONTEXT = ResponseContext(line_name="Council Tax", tier_name="high", stats=None, target_wait=180)


# --------------------------------------------------------------------------- the fake platform


@dataclass
class Call:
    """One request the platform received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Platform:
    """A flag store over HTTP that checks auth and misbehaves on request."""

    auth: str = "none"  # none | basic | bearer | oauth
    flags: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    #: Statuses to answer with, one per flag request, before behaving (200 means behave).
    script: deque[int] = field(default_factory=deque)
    retry_after: str | None = None
    token_fetches: int = 0
    tokens_issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.token_fetches += 1
            form = await request.form()
            basic = "Basic " + base64.b64encode(b"rt-client:rt-secret").decode()
            if request.headers.get("authorization") != basic:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            issued = f"tok-{self.token_fetches}"
            self.tokens_issued.append(issued)
            return JSONResponse({"access_token": issued, "token_type": "bearer",
                                 "expires_in": 86399})  # fmt: skip

        async def flag(request: Request) -> Response:
            call = Call(request.method, request.url.path, dict(request.headers),
                        await request.body())  # fmt: skip
            self.calls.append(call)
            refused = self._refuse(request)
            if refused is not None:
                return refused
            status = self.script.popleft() if self.script else 200
            if status != 200:
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return JSONResponse({"message": f"scripted {status}"}, status_code=status,
                                    headers=headers)  # fmt: skip
            name = request.path_params["name"]
            if request.method == "DELETE":
                self.flags.pop(name, None)
            else:
                self.flags[name] = _decode(call)
            return JSONResponse({"name": name, "value": self.flags.get(name)})

        async def slow(request: Request) -> Response:
            # Held until the test releases it, so the server can shut down at once.
            await asyncio.wait_for(self.release.wait(), 5)
            return JSONResponse({"ok": True})

        async def moved(request: Request) -> Response:
            return Response(status_code=301, headers={"Location": "https://elsewhere.example/x"})

        return Starlette(routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/flags/{name}", flag, methods=["PUT", "POST", "PATCH", "DELETE"]),
            Route("/slow", slow, methods=["PUT"]),
            Route("/moved", moved, methods=["PUT"]),
        ])  # fmt: skip

    def _refuse(self, request: Request) -> Response | None:
        given = request.headers.get("authorization", "")
        if self.auth == "basic":
            ok = given == "Basic " + base64.b64encode(b"council:hunter2").decode()
        elif self.auth == "bearer":
            ok = given == "Bearer static-token"
        elif self.auth == "oauth":
            token = given.removeprefix("Bearer ")
            ok = token in self.tokens_issued and token not in self.revoked
        else:
            ok = True
        return None if ok else JSONResponse({"message": "unauthorised"}, status_code=401)


def _decode(call: Call) -> Any:
    kind = call.headers.get("content-type", "")
    if kind.startswith("application/json"):
        return call.json()
    return call.body.decode()


@pytest.fixture
async def platform():
    p = Platform()
    async with Loopback(p.app()) as url:
        p.url = url  # type: ignore[attr-defined]
        yield p
        p.release.set()


def responder(settings: dict[str, Any]) -> Responder:
    """Build an ``http_action`` responder from settings as YAML would give them."""
    model = HttpActionSettings.model_validate(settings)
    return PLUGIN.build("ivr", model, BuildContext(clock=FakeClock(T0)))


def order(action: Action = Action.APPLY, line: str = "council_tax", n: int = 1) -> ResponseOrder:
    """A switch order for ``line`` with a key like the planner's."""
    return ResponseOrder(
        key=f"{line}/1/tier_changed/2/{n}/ivr/{action.value}",
        line=line,
        response="ivr",
        action=action,
        tier=2,
        episode=1,
        trigger="tier_changed",
        at=T0,
        reason="entering tier 2 high",
    )


def switch(url: str, **more: Any) -> dict[str, Any]:
    """Settings for a flag switch at ``{url}/flags/{{ queue }}``."""
    return {
        "apply": {"method": "PUT", "url": url + "/flags/{{ queue }}",
                  "body": {"deflect": True, "line": "{{ line }}", "tier": "{{ tier }}"}},
        "undo": {"method": "PUT", "url": url + "/flags/{{ queue }}", "body": {"deflect": False}},
        **more,
    }  # fmt: skip


# --------------------------------------------------------------------------- requests


async def test_apply_then_undo_send_templated_requests_per_line(platform: Platform) -> None:
    """APPLY and UNDO each send their own request, with URL and body templated per line."""
    r = responder(switch(platform.url, lines={"council_tax": {"queue": "CouncilTax"},
                                              "waste": {"queue": "Waste"}}))  # fmt: skip
    assert await r.run(order(line="council_tax"), CONTEXT) == (
        f"apply: PUT {platform.url}/flags/CouncilTax → 200"
    )
    await r.run(order(line="waste"), CONTEXT)
    assert platform.flags == {
        "CouncilTax": {"deflect": True, "line": "council_tax", "tier": "2"},
        "Waste": {"deflect": True, "line": "waste", "tier": "2"},
    }
    await r.run(order(Action.UNDO, line="council_tax"), CONTEXT)
    assert platform.flags["CouncilTax"] == {"deflect": False}
    assert platform.flags["Waste"]["deflect"] is True
    assert [(c.method, c.path) for c in platform.calls] == [
        ("PUT", "/flags/CouncilTax"), ("PUT", "/flags/Waste"), ("PUT", "/flags/CouncilTax"),
    ]  # fmt: skip


async def test_every_request_carries_the_orders_idempotency_key(platform: Platform) -> None:
    """``Idempotency-Key`` is the order's key, on APPLY and UNDO alike."""
    r = responder(switch(platform.url))
    await r.run(order(Action.APPLY), CONTEXT)
    await r.run(order(Action.UNDO), CONTEXT)
    assert [c.headers["idempotency-key"] for c in platform.calls] == [
        "council_tax/1/tier_changed/2/1/ivr/apply",
        "council_tax/1/tier_changed/2/1/ivr/undo",
    ]
    assert platform.calls[0].headers["user-agent"].startswith("risingtide/")


async def test_running_the_same_apply_twice_leaves_the_same_state(platform: Platform) -> None:
    """An APPLY sets a value, so a repeat (at-least-once delivery) changes nothing."""
    r = responder(switch(platform.url))
    await r.run(order(), CONTEXT)
    once = dict(platform.flags)
    await r.run(order(), CONTEXT)
    assert (
        platform.flags
        == once
        == {"council_tax": {"deflect": True, "line": "council_tax", "tier": "2"}}
    )
    assert len(platform.calls) == 2
    assert {c.headers["idempotency-key"] for c in platform.calls} == {order().key}


async def test_queue_defaults_to_the_line_id_without_lines(platform: Platform) -> None:
    """With no ``lines`` mapping, ``queue`` is the line id."""
    await responder(switch(platform.url)).run(order(line="waste"), CONTEXT)
    assert platform.calls[0].path == "/flags/waste"


async def test_a_line_missing_from_lines_is_refused_without_a_request(platform: Platform) -> None:
    """When ``lines`` is given, an unlisted line fails for good and nothing is sent."""
    r = responder(switch(platform.url, lines={"council_tax": {"queue": "CouncilTax"}}))
    with pytest.raises(ResponseError) as caught:
        await r.run(order(line="highways"), CONTEXT)
    assert caught.value.reason == "no_line" and not caught.value.retryable
    assert "'highways'" in str(caught.value)
    assert platform.calls == []


async def test_string_body_and_form_body(platform: Platform) -> None:
    """A string body goes as it is (with its Content-Type); a form is URL-encoded."""
    r = responder({
        "apply": {"method": "POST", "url": platform.url + "/flags/text",
                  "headers": {"Content-Type": "application/json"},
                  "body": '{"on": true, "why": "{{ tier_name }} on {{ line_name }}"}'},
        "undo": {"method": "POST", "url": platform.url + "/flags/form",
                 "form": {"Data": '{"on": false}', "Line": "{{ line }}"}},
    })  # fmt: skip
    await r.run(order(), CONTEXT)
    await r.run(order(Action.UNDO), CONTEXT)
    assert platform.flags["text"] == {"on": True, "why": "high on Council Tax"}
    form = platform.calls[1]
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form.body == b"Data=%7B%22on%22%3A+false%7D&Line=council_tax"


async def test_a_one_off_call_has_nothing_to_undo(platform: Platform) -> None:
    """Without ``undo`` the response is a one-off: not undoable, and an UNDO sends nothing."""
    settings = HttpActionSettings.model_validate(
        {"apply": {"method": "POST", "url": platform.url + "/flags/ping"}}
    )
    assert PLUGIN.undoable(settings) is False
    assert PLUGIN.undoable(HttpActionSettings.model_validate(switch(platform.url))) is True
    r = PLUGIN.build("ping", settings, BuildContext(clock=FakeClock(T0)))
    assert r.undoable is False
    assert await r.run(order(Action.UNDO), CONTEXT) == "nothing to undo: a one-off call"
    assert platform.calls == []


# --------------------------------------------------------------------------- auth


async def test_basic_auth(platform: Platform) -> None:
    """``auth.basic`` sends HTTP Basic; a wrong password is refused for good."""
    platform.auth = "basic"
    good = {"basic": {"username": "council", "password": "hunter2"}}
    await responder(switch(platform.url, auth=good)).run(order(), CONTEXT)
    assert platform.flags["council_tax"]["deflect"] is True
    bad = {"basic": {"username": "council", "password": "wrong"}}
    with pytest.raises(ResponseError) as caught:
        await responder(switch(platform.url, auth=bad)).run(order(), CONTEXT)
    assert caught.value.reason == "http_401" and not caught.value.retryable
    assert "credentials refused" in str(caught.value)


async def test_bearer_auth(platform: Platform) -> None:
    """``auth.bearer`` sends a static bearer token."""
    platform.auth = "bearer"
    await responder(switch(platform.url, auth={"bearer": "static-token"})).run(order(), CONTEXT)
    assert platform.calls[0].headers["authorization"] == "Bearer static-token"


def oauth(url: str) -> dict[str, Any]:
    return {
        "oauth_client_credentials": {
            "token_url": url + "/oauth/token",
            "client_id": "rt-client",
            "client_secret": "rt-secret",
        }
    }


async def test_oauth_token_is_fetched_once_and_reused(platform: Platform) -> None:
    """OAuth client credentials: one token serves APPLY and UNDO."""
    platform.auth = "oauth"
    r = responder(switch(platform.url, auth=oauth(platform.url)))
    await r.run(order(), CONTEXT)
    await r.run(order(Action.UNDO), CONTEXT)
    assert platform.token_fetches == 1
    assert [c.headers["authorization"] for c in platform.calls] == ["Bearer tok-1"] * 2


async def test_oauth_401_fetches_a_new_token_and_retries_in_the_same_run(
    platform: Platform,
) -> None:
    """A revoked token gets one fresh token and one more try, within the same run."""
    platform.auth = "oauth"
    r = responder(switch(platform.url, auth=oauth(platform.url)))
    await r.run(order(), CONTEXT)
    platform.revoked.add("tok-1")
    detail = await r.run(order(Action.UNDO), CONTEXT)
    assert detail.endswith("→ 200")
    assert platform.token_fetches == 2
    assert [c.headers["authorization"] for c in platform.calls] == [
        "Bearer tok-1", "Bearer tok-1", "Bearer tok-2",
    ]  # fmt: skip
    assert platform.flags["council_tax"] == {"deflect": False}


async def test_oauth_401_with_a_fresh_token_is_not_retryable(platform: Platform) -> None:
    """If even a fresh token is refused, retrying cannot help."""
    platform.auth = "oauth"
    platform.revoked.update({"tok-1", "tok-2", "tok-3"})
    with pytest.raises(ResponseError) as caught:
        await responder(switch(platform.url, auth=oauth(platform.url))).run(order(), CONTEXT)
    assert caught.value.reason == "http_401" and not caught.value.retryable
    assert "even with a fresh token" in str(caught.value)
    assert platform.token_fetches == 2


async def test_oauth_refused_client_is_not_retryable(platform: Platform) -> None:
    """A token endpoint that refuses the client id/secret is a config mistake."""
    auth = oauth(platform.url)
    auth["oauth_client_credentials"]["client_secret"] = "wrong"
    with pytest.raises(ResponseError) as caught:
        await responder(switch(platform.url, auth=auth)).run(order(), CONTEXT)
    assert caught.value.reason == "auth" and not caught.value.retryable
    assert platform.calls == []


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_and_408_are_retryable(platform: Platform, status: int) -> None:
    """5xx and 408 are passing trouble: retryable, labelled with the status's class (as at
    every adapter), the status itself in the message."""
    platform.script.append(status)
    with pytest.raises(ResponseError) as caught:
        await responder(switch(platform.url)).run(order(), CONTEXT)
    assert caught.value.retryable and caught.value.reason == f"http_{status // 100}xx"
    assert f"answered {status}" in str(caught.value)


async def test_429_is_retryable_and_quotes_retry_after(platform: Platform) -> None:
    """Rate limited: retryable, and the message carries the platform's Retry-After."""
    platform.script.append(429)
    platform.retry_after = "30"
    with pytest.raises(ResponseError) as caught:
        await responder(switch(platform.url)).run(order(), CONTEXT)
    assert caught.value.retryable and caught.value.reason == "http_429"
    assert "Retry-After: 30" in str(caught.value)


async def test_400_is_not_retryable_and_shows_the_body(platform: Platform) -> None:
    """A refused request will be refused again: not retryable, with the start of the body."""
    platform.script.append(400)
    with pytest.raises(ResponseError) as caught:
        await responder(switch(platform.url)).run(order(), CONTEXT)
    assert not caught.value.retryable and caught.value.reason == "http_4xx"
    assert "scripted 400" in str(caught.value)


async def test_connection_refused_is_retryable() -> None:
    """Nothing listening: a retryable network error."""
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ResponseError) as caught:
        await responder(switch(url)).run(order(), CONTEXT)
    assert caught.value.retryable and caught.value.reason == "network"


async def test_a_slow_platform_times_out_as_retryable(platform: Platform) -> None:
    """No answer within ``timeout``: a retryable timeout, well before the dispatcher's own."""
    settings = {
        "apply": {"method": "PUT", "url": platform.url + "/slow"},
        "undo": {"method": "PUT", "url": platform.url + "/slow"},
        "timeout": "300ms",
    }
    started = asyncio.get_running_loop().time()
    with pytest.raises(ResponseError) as caught:
        await responder(settings).run(order(), CONTEXT)
    assert caught.value.retryable and caught.value.reason == "timeout"
    assert "0.3s" in str(caught.value)
    assert asyncio.get_running_loop().time() - started < 2


async def test_expect_narrows_success(platform: Platform) -> None:
    """With ``expect``, only the listed statuses are success."""
    r = responder(switch(platform.url, expect=[204]))
    with pytest.raises(ResponseError) as caught:
        await r.run(order(), CONTEXT)
    assert not caught.value.retryable and "expected 204" in str(caught.value)


async def test_redirects_are_not_followed(platform: Platform) -> None:
    """A redirect is reported, not followed: a switch must hit the URL it was given."""
    settings = {"apply": {"method": "PUT", "url": platform.url + "/moved"}}
    with pytest.raises(ResponseError) as caught:
        await responder(settings).run(order(), CONTEXT)
    assert not caught.value.retryable and caught.value.reason == "http_3xx"
    assert "https://elsewhere.example/x" in str(caught.value)


async def test_a_query_string_never_reaches_messages(platform: Platform) -> None:
    """Messages show the URL without its query, which may hold a key."""
    platform.script.append(500)
    url = platform.url + "/flags/x?api_key=s3cret"
    r = responder({"apply": {"method": "PUT", "url": url}, "undo": {"method": "PUT", "url": url}})
    with pytest.raises(ResponseError) as caught:
        await r.run(order(), CONTEXT)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in await r.run(order(), CONTEXT)


async def test_a_template_failing_at_run_time_is_not_retryable(platform: Platform) -> None:
    """A sandbox refusal while rendering fails for good, and nothing is sent."""
    r = responder({"apply": {"method": "PUT", "url": platform.url + "/flags/{{ line.__class__ }}"}})
    with pytest.raises(ResponseError) as caught:
        await r.run(order(), CONTEXT)
    assert caught.value.reason == "template" and not caught.value.retryable
    assert platform.calls == []


# --------------------------------------------------------------------------- validation


def invalid(settings: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        HttpActionSettings.model_validate(settings)
    return "\n".join(str(e["msg"]) for e in caught.value.errors())


URL = "https://flags.example.gov.uk"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"apply": {"method": "PUT", "url": URL + "/{{ queue"}},
            "template error ('https://flags.example.gov.uk/{{ queue'): unexpected end of template",
        ),
        (
            {"apply": {"method": "PUT", "url": URL, "body": {"a": ["{% if %}"]}}},
            "template error in body.a[0]",
        ),
        (
            {"apply": {"method": "PUT", "url": URL + "/{{ qeue }}"}},
            'uses the unknown template variable "qeue" (did you mean "queue"?)',
        ),
        (
            {"apply": {"method": "PUT", "url": URL + "/{line}"}},
            "write {{ line }} (a template), not {line}",
        ),
        (
            {
                "apply": {"method": "PUT", "url": URL + "/{{ row }}"},
                "lines": {"a": {"row": "A"}, "b": {"queue": "B"}},
            },
            'has no "row", which apply.url uses',
        ),
        (
            {"apply": {"method": "PUT", "url": URL}, "lines": {"a": {"tier": "3"}}},
            "'tier' comes from the order; choose another name",
        ),
        (
            {"apply": {"method": "PUT", "url": URL, "headers": {"Idempotency-Key": "x"}}},
            "Idempotency-Key is always sent",
        ),
        (
            {
                "apply": {"method": "PUT", "url": URL, "headers": {"Authorization": "x"}},
                "auth": {"bearer": "t"},
            },
            "sets Authorization and auth is set too",
        ),
        (
            {"apply": {"method": "PUT", "url": URL}, "auth": {}},
            "auth takes exactly one of basic, bearer or oauth_client_credentials",
        ),
        ({"apply": {"method": "PUT", "url": "ftp://x"}}, "is not an http:// or https:// URL"),
        (
            {"apply": {"method": "PUT", "url": URL, "body": {}, "form": {}}},
            "give body or form, not both",
        ),
        ({"apply": {"method": "PUT", "url": URL}, "timeout": "1m"}, "must be at most 25s"),
        ({"apply": {"method": "PUT", "url": URL}, "lines": {}}, "at least 1 item"),
    ],
)
def test_mistakes_are_validation_errors_with_clear_messages(
    settings: dict[str, Any], message: str
) -> None:
    """Template and settings mistakes fail when the config is checked, saying what is wrong."""
    assert message in invalid(settings)


def test_unknown_keys_are_refused() -> None:
    """A typo in a key is an error, never silently ignored."""
    assert "Extra inputs are not permitted" in invalid(
        {"apply": {"method": "PUT", "url": URL, "bdy": {}}}
    )


def test_plugins_are_wired() -> None:
    """The generic responder and its presets are in the wiring table."""
    for kind in ("http_action", "genesys_datatable", "twilio_sync", "json_flag"):
        assert RESPONDER_TYPES[kind].type == kind


# --------------------------------------------------------------------------- with the dispatcher


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock):
    with Store(tmp_path / "state.sqlite", clock) as s:
        yield s


def dispatcher(store: Store, r: Responder, clock: FakeClock) -> Dispatcher:
    policy = RetryPolicy(max_attempts=5, base_delay=timedelta(seconds=2),
                         max_delay=timedelta(seconds=30), jitter=0)  # fmt: skip
    return Dispatcher(store, {"ivr": r}, lambda _o: CONTEXT, clock, policy)


def live_by_history(store: Store) -> bool:
    """Whether the switch is on by the history: its latest successful run was an APPLY."""
    for entry in store.history(kinds=["response"]):
        if entry.data["outcome"] == "ok":
            return bool(entry.data["action"] == "apply")
    return False


def outcomes(store: Store) -> list[tuple[str, str]]:
    entries = reversed(store.history(kinds=["response"]))
    return [(e.data["action"], e.data["outcome"]) for e in entries]


async def test_a_failed_undo_is_retried_until_the_platform_is_off(
    platform: Platform, store: Store, clock: FakeClock
) -> None:
    """With the real dispatcher and store: APPLY, then an UNDO that fails twice (503) is
    retried and succeeds; the switch stays live until then and the platform ends off."""
    apply, undo = order(Action.APPLY), order(Action.UNDO)
    store.commit([], [], [apply, undo])
    platform.script.extend([200, 503, 503])
    d = dispatcher(store, responder(switch(platform.url)), clock)

    assert await d.run_due() == 2
    assert store.outbox_entry(apply.key).status == "done"  # type: ignore[union-attr]
    entry = store.outbox_entry(undo.key)
    assert entry is not None and entry.status == "pending" and entry.attempts == 1
    assert platform.flags["council_tax"]["deflect"] is True
    assert live_by_history(store)

    clock.advance(timedelta(seconds=2))
    assert await d.run_due() == 1
    entry = store.outbox_entry(undo.key)
    assert entry is not None and entry.status == "pending" and entry.attempts == 2
    assert "answered 503" in (entry.last_error or "")
    assert platform.flags["council_tax"]["deflect"] is True and live_by_history(store)

    clock.advance(timedelta(seconds=4))
    assert await d.run_due() == 1
    entry = store.outbox_entry(undo.key)
    assert entry is not None and entry.status == "done" and entry.attempts == 3
    assert platform.flags["council_tax"] == {"deflect": False}
    assert not live_by_history(store)
    assert outcomes(store) == [("apply", "ok"), ("undo", "retry"), ("undo", "retry"),
                               ("undo", "ok")]  # fmt: skip
    assert [c.headers["idempotency-key"] for c in platform.calls] == [apply.key] + [undo.key] * 3
    assert await d.run_due() == 0 and len(platform.calls) == 4


async def test_an_undo_never_overtakes_its_apply(
    platform: Platform, store: Store, clock: FakeClock
) -> None:
    """While the APPLY retries, its UNDO waits; both then run in order and the switch ends off."""
    apply, undo = order(Action.APPLY), order(Action.UNDO)
    store.commit([], [], [apply, undo])
    platform.script.append(503)
    d = dispatcher(store, responder(switch(platform.url)), clock)

    await d.run_due()
    assert len(platform.calls) == 1  # the UNDO was not sent
    assert store.outbox_entry(undo.key).status == "pending"  # type: ignore[union-attr]

    clock.advance(timedelta(seconds=2))
    assert await d.run_due() == 2
    assert [c.json()["deflect"] for c in platform.calls] == [True, True, False]
    assert platform.flags["council_tax"] == {"deflect": False}
    assert store.pending_count() == 0
