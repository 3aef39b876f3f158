"""The switch presets — ``genesys_datatable``, ``twilio_sync``, ``json_flag`` — against
loopback fakes that check what each vendor documents: the Genesys client-credentials token
and the data-table row PUT (``key`` plus the flag column), the Twilio Sync Document update
(Basic ``AccountSid:AuthToken`` and the ``Data`` form field as JSON), and a plain JSON flag.

Also checks that every YAML example in ``docs/switches.md`` is a valid response block.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import BuildContext, Responder, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.http_action import (
    GENESYS_DATATABLE,
    JSON_FLAG,
    TWILIO_SYNC,
    GenesysDatatableSettings,
    JsonFlagSettings,
    TwilioSyncSettings,
)
from tests.adapters.loopback import Loopback

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONTEXT = ResponseContext(line_name="Council Tax", tier_name="high", stats=None, target_wait=180)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "switches.md"


def order(response: str, action: Action, line: str = "council_tax") -> ResponseOrder:
    """A switch order like the planner's."""
    return ResponseOrder(
        key=f"{line}/1/tier_changed/2/0-2@{T0.isoformat()}/{response}/{action.value}",
        line=line, response=response, action=action, tier=2, episode=1,
        trigger="tier_changed", at=T0, reason="entering tier 2 high",
    )  # fmt: skip


def build(plugin: Any, settings: dict[str, Any], name: str = "ivr") -> Responder:
    model = plugin.settings_model.model_validate(settings)
    assert plugin.undoable(model) is True
    return plugin.build(name, model, BuildContext(clock=FakeClock(T0)))  # type: ignore[no-any-return]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --------------------------------------------------------------------------- Genesys Cloud

TABLE = "5c1e8a3e-7d51-4a8b-9f0e-2d1c7a9b4e60"


class Genesys:
    """Genesys Cloud's token endpoint and Architect data-table rows."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {
            "CouncilTax": {"key": "CouncilTax", "deflect": False, "prompt": "ct_default"},
            "Waste": {"key": "Waste", "deflect": False, "prompt": "waste_default"},
        }
        self.token = ""
        self.token_requests = 0
        self.puts: list[tuple[str, dict[str, Any], str]] = []
        self.forbid = False
        self.raw_paths: list[bytes] = []

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.token_requests += 1
            form = await request.form()
            if request.headers.get("authorization") != basic("gen-client", "gen-secret"):
                return JSONResponse({"error": "invalid_client"}, status_code=400)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            self.token = f"genesys-token-{self.token_requests}"
            return JSONResponse({"access_token": self.token, "token_type": "bearer",
                                 "expires_in": 86399})  # fmt: skip

        async def row(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"message": "Invalid login credentials."}, status_code=401)
            if self.forbid:
                return JSONResponse({"message": "You are not authorized", "code": "not.authorized",
                                     "status": 403}, status_code=403)  # fmt: skip
            self.raw_paths.append(request.scope["raw_path"])
            table, key = request.path_params["table"], request.path_params["row"]
            body = await request.json()
            self.puts.append((key, body, request.headers.get("idempotency-key", "")))
            if table != TABLE or key not in self.rows:
                return JSONResponse({"message": "not found", "status": 404}, status_code=404)
            if body.get("key") != key:  # the row id is the value of the key field
                return JSONResponse({"message": "key mismatch", "status": 400}, status_code=400)
            self.rows[key] = body
            return JSONResponse(body)

        return Starlette(routes=[
            Route("/oauth/token", token, methods=["POST"]),
            # ``path``: a row key may hold an escaped slash, which the server decodes.
            Route("/api/v2/flows/datatables/{table}/rows/{row:path}", row, methods=["PUT"]),
        ])  # fmt: skip


@pytest.fixture
async def genesys():
    g = Genesys()
    async with Loopback(g.app()) as url:
        g.url = url  # type: ignore[attr-defined]
        yield g


def genesys_settings(url: str, **more: Any) -> dict[str, Any]:
    return {
        "api_url": url, "login_url": url, "client_id": "gen-client",
        "client_secret": "gen-secret", "datatable_id": TABLE, "field": "deflect", **more,
    }  # fmt: skip


async def test_genesys_apply_and_undo_put_the_row_with_key_and_field(genesys: Genesys) -> None:
    """APPLY PUTs the whole row with the flag on, UNDO with it off; one token serves both."""
    r = build(GENESYS_DATATABLE, genesys_settings(
        genesys.url, row_key="CouncilTax", extra={"prompt": "ct_busy"}))  # fmt: skip
    detail = await r.run(order("ivr", Action.APPLY), CONTEXT)
    assert detail == "apply: row 'CouncilTax': deflect=true → 200"
    assert genesys.rows["CouncilTax"] == {"key": "CouncilTax", "deflect": True, "prompt": "ct_busy"}
    await r.run(order("ivr", Action.UNDO), CONTEXT)
    assert genesys.rows["CouncilTax"] == {
        "key": "CouncilTax",
        "deflect": False,
        "prompt": "ct_busy",
    }
    assert genesys.token_requests == 1
    assert [key for _row, _body, key in genesys.puts] == [
        order("ivr", Action.APPLY).key, order("ivr", Action.UNDO).key,
    ]  # fmt: skip


async def test_genesys_rows_per_line_with_their_own_columns(genesys: Genesys) -> None:
    """Each line switches its own row, sending that row's other columns."""
    r = build(GENESYS_DATATABLE, genesys_settings(genesys.url, on_value="yes", off_value="no",
        lines={"council_tax": {"row_key": "CouncilTax", "extra": {"prompt": "ct_busy"}},
               "waste": {"row_key": "Waste", "extra": {"prompt": "waste_busy"}}}))  # fmt: skip
    await r.run(order("ivr", Action.APPLY, line="waste"), CONTEXT)
    assert genesys.rows["Waste"] == {"key": "Waste", "deflect": "yes", "prompt": "waste_busy"}
    assert genesys.rows["CouncilTax"]["deflect"] is False
    with pytest.raises(ResponseError) as caught:
        await r.run(order("ivr", Action.APPLY, line="highways"), CONTEXT)
    assert caught.value.reason == "no_line" and not caught.value.retryable


async def test_genesys_row_keys_are_escaped_in_the_path(genesys: Genesys) -> None:
    """A row key with a space or slash stays one path segment."""
    genesys.rows["Adult Care/Out"] = {"key": "Adult Care/Out", "deflect": False}
    r = build(GENESYS_DATATABLE, genesys_settings(genesys.url, row_key="Adult Care/Out"))
    await r.run(order("ivr", Action.APPLY), CONTEXT)
    assert genesys.rows["Adult Care/Out"] == {"key": "Adult Care/Out", "deflect": True}
    assert genesys.raw_paths[0].endswith(b"/rows/Adult%20Care%2FOut")


async def test_genesys_missing_permission_is_explained(genesys: Genesys) -> None:
    """A 403 names the permission the OAuth client needs, and is not retried."""
    genesys.forbid = True
    r = build(GENESYS_DATATABLE, genesys_settings(genesys.url, row_key="CouncilTax"))
    with pytest.raises(ResponseError) as caught:
        await r.run(order("ivr", Action.APPLY), CONTEXT)
    assert not caught.value.retryable and caught.value.reason == "http_4xx"
    assert "architect:datatableRow:edit" in str(caught.value)


async def test_genesys_unknown_row_is_not_created(genesys: Genesys) -> None:
    """A missing row is a config mistake: not retryable, and the message says what to check."""
    r = build(GENESYS_DATATABLE, genesys_settings(genesys.url, row_key="Nope"))
    with pytest.raises(ResponseError) as caught:
        await r.run(order("ivr", Action.APPLY), CONTEXT)
    assert not caught.value.retryable and "check datatable_id and the row key" in str(caught.value)


async def test_genesys_refused_client_is_not_retryable(genesys: Genesys) -> None:
    """Wrong client credentials fail at the token endpoint, for good."""
    r = build(GENESYS_DATATABLE, genesys_settings(genesys.url, row_key="CouncilTax",
                                                  client_secret="wrong"))  # fmt: skip
    with pytest.raises(ResponseError) as caught:
        await r.run(order("ivr", Action.APPLY), CONTEXT)
    assert caught.value.reason == "auth" and not caught.value.retryable


def test_genesys_environment_gives_the_documented_urls() -> None:
    """``environment`` expands to ``https://api.{env}`` and ``https://login.{env}/oauth/token``."""
    s = GenesysDatatableSettings.model_validate({
        "environment": "euw2.pure.cloud", "client_id": "c", "client_secret": "s",
        "datatable_id": TABLE, "row_key": "CouncilTax", "field": "deflect"})  # fmt: skip
    assert s.base_url == "https://api.euw2.pure.cloud"
    assert s.token_url == "https://login.euw2.pure.cloud/oauth/token"


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"environment": "https://euw2.pure.cloud"}, "write the domain only"),
        ({"environment": None, "api_url": "https://api.x"}, "set environment"),
        ({"row_key": None}, "set row_key, or a row_key per line under lines"),
        ({"row_key": None, "lines": {"waste": {"extra": {"a": 1}}}}, "lines.waste has no row_key"),
        ({"extra": {"deflect": True}}, "extra must not set 'deflect'"),
        (
            {"lines": {"waste": {"row_key": "W", "extra": {"key": "X"}}}},
            "lines.waste.extra must not set 'key'",
        ),
        ({"on_value": 1, "off_value": 1}, "on_value and off_value are the same"),
        ({"client_secret": " "}, "must not be empty"),
    ],
)
def test_genesys_settings_mistakes(more: dict[str, Any], message: str) -> None:
    """Genesys settings mistakes fail at config time with a clear message."""
    settings = {
        "environment": "euw2.pure.cloud",
        "client_id": "c",
        "client_secret": "s",
        "datatable_id": TABLE,
        "row_key": "CouncilTax",
        "field": "deflect",
        **more,
    }
    with pytest.raises(ValidationError) as caught:
        GenesysDatatableSettings.model_validate(settings)
    assert message in str(caught.value)


# --------------------------------------------------------------------------- Twilio Sync

ACCOUNT = "AC" + "0123456789abcdef" * 2
SERVICE = "IS" + "fedcba9876543210" * 2


class Twilio:
    """Twilio Sync's Document update, as twilio_sync_v1.json documents it."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {"ivr-council-tax": {"deflect": False},
                                          "ivr-waste": {"deflect": False}}  # fmt: skip
        self.revision = 0
        self.posts: list[tuple[str, dict[str, str]]] = []

    def app(self) -> Starlette:
        async def document(request: Request) -> Response:
            if request.headers.get("authorization") != basic(ACCOUNT, "sync-token"):
                return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401},
                                    status_code=401)  # fmt: skip
            service, name = request.path_params["service"], request.path_params["sid"]
            form = dict(await request.form())
            self.posts.append((name, {k: str(v) for k, v in form.items()}))
            if service != SERVICE or name not in self.documents:
                return JSONResponse({"code": 20404, "message": "The requested resource was not "
                                     "found", "status": 404}, status_code=404)  # fmt: skip
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            self.documents[name] = json.loads(str(form["Data"]))
            self.revision += 1
            return JSONResponse({
                "sid": "ET" + "0" * 32, "unique_name": name, "account_sid": ACCOUNT,
                "service_sid": SERVICE, "revision": str(self.revision),
                "data": self.documents[name],
            })  # fmt: skip

        return Starlette(routes=[
            Route("/v1/Services/{service}/Documents/{sid}", document, methods=["POST"]),
        ])  # fmt: skip


@pytest.fixture
async def twilio():
    t = Twilio()
    async with Loopback(t.app()) as url:
        t.url = url  # type: ignore[attr-defined]
        yield t


def twilio_settings(url: str, **more: Any) -> dict[str, Any]:
    return {"account_sid": ACCOUNT, "auth_token": "sync-token", "service_sid": SERVICE,
            "base_url": url, **more}  # fmt: skip


async def test_twilio_apply_and_undo_post_the_data_form_field(twilio: Twilio) -> None:
    """APPLY posts ``Data`` = data_on as JSON, UNDO data_off, with Basic AccountSid:AuthToken."""
    r = build(TWILIO_SYNC, twilio_settings(twilio.url, document="ivr-council-tax"))
    detail = await r.run(order("ivr", Action.APPLY), CONTEXT)
    assert detail == "apply: document 'ivr-council-tax': {\"deflect\":true} → 200"
    assert twilio.documents["ivr-council-tax"] == {"deflect": True}
    await r.run(order("ivr", Action.UNDO), CONTEXT)
    assert twilio.documents["ivr-council-tax"] == {"deflect": False}
    assert twilio.posts == [("ivr-council-tax", {"Data": '{"deflect":true}'}),
                            ("ivr-council-tax", {"Data": '{"deflect":false}'})]  # fmt: skip


async def test_twilio_documents_per_line_and_custom_data(twilio: Twilio) -> None:
    """Each line writes its own document; ``data_on``/``data_off`` may be any JSON object."""
    r = build(TWILIO_SYNC, twilio_settings(twilio.url,
        lines={"council_tax": {"document": "ivr-council-tax"}, "waste": {"document": "ivr-waste"}},
        data_on={"deflect": True, "message": "ct-busy"}, data_off={"deflect": False}))  # fmt: skip
    await r.run(order("ivr", Action.APPLY, line="waste"), CONTEXT)
    assert twilio.documents == {"ivr-council-tax": {"deflect": False},
                                "ivr-waste": {"deflect": True, "message": "ct-busy"}}  # fmt: skip


async def test_twilio_wrong_token_and_missing_document_are_not_retryable(twilio: Twilio) -> None:
    """A refused token and an unknown document are config mistakes, each explained."""
    bad = build(TWILIO_SYNC, twilio_settings(twilio.url, document="ivr-council-tax",
                                             auth_token="wrong"))  # fmt: skip
    with pytest.raises(ResponseError) as caught:
        await bad.run(order("ivr", Action.APPLY), CONTEXT)
    assert not caught.value.retryable and "check account_sid and auth_token" in str(caught.value)
    missing = build(TWILIO_SYNC, twilio_settings(twilio.url, document="nope"))
    with pytest.raises(ResponseError) as caught:
        await missing.run(order("ivr", Action.APPLY), CONTEXT)
    assert not caught.value.retryable and "create the document once" in str(caught.value)


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"account_sid": "AC123"}, "String should match pattern"),
        ({"document": None}, "set document, or a document per line under lines"),
        ({"data_on": {"deflect": False}}, "data_on and data_off are the same"),
        ({"data_on": {"x": "y" * 17000}}, "Twilio keeps at most 16 KiB"),
    ],
)
def test_twilio_settings_mistakes(more: dict[str, Any], message: str) -> None:
    """Twilio settings mistakes fail at config time."""
    settings = {"account_sid": ACCOUNT, "auth_token": "t", "service_sid": SERVICE,
                "document": "ivr-flags", **more}  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        TwilioSyncSettings.model_validate(settings)
    assert message in str(caught.value)


# --------------------------------------------------------------------------- json_flag


class Flags:
    """A council's own flag endpoint, behind a bearer token."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.seen: list[tuple[str, str, Any]] = []

    def app(self) -> Starlette:
        async def flag(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer flag-token":
                return JSONResponse({"error": "unauthorised"}, status_code=401)
            body = await request.json()
            self.seen.append((request.method, request.url.path, body))
            self.state[request.path_params["queue"]] = body
            return Response(status_code=204)

        return Starlette(routes=[Route("/lines/{queue}/callback", flag, methods=["PUT", "PATCH"])])


async def test_json_flag_sets_the_field_true_then_false() -> None:
    """APPLY sends ``{field: true}`` and UNDO ``{field: false}`` to the line's templated URL."""
    flags = Flags()
    async with Loopback(flags.app()) as url:
        r = build(JSON_FLAG, {"url": url + "/lines/{{ queue }}/callback", "method": "patch",
                              "field": "offer_callback", "auth": {"bearer": "flag-token"},
                              "lines": {"council_tax": {"queue": "CouncilTax"}}})  # fmt: skip
        await r.run(order("callback", Action.APPLY), CONTEXT)
        assert flags.state == {"CouncilTax": {"offer_callback": True}}
        detail = await r.run(order("callback", Action.UNDO), CONTEXT)
    assert flags.state == {"CouncilTax": {"offer_callback": False}}
    assert [m for m, _p, _b in flags.seen] == ["PATCH", "PATCH"]
    assert detail == f"undo: PATCH {url}/lines/CouncilTax/callback offer_callback=false → 204"


def test_json_flag_settings_mistakes() -> None:
    """``{line}`` instead of ``{{ line }}`` and unknown variables fail at config time."""
    with pytest.raises(ValidationError) as caught:
        JsonFlagSettings.model_validate({"url": "https://flags.example/{line}"})
    assert "write {{ line }} (a template), not {line}" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        JsonFlagSettings.model_validate({"url": "https://flags.example/{{ row }}"})
    assert 'uses the unknown template variable "row"' in str(caught.value)


# --------------------------------------------------------------------------- the docs


def _doc_responses() -> list[tuple[str, dict[str, Any]]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    found: list[tuple[str, dict[str, Any]]] = []
    for block in blocks:
        # ${VAR} is resolved by the config loader; any non-empty value will do here.
        doc = yaml.safe_load(re.sub(r"\$\{[A-Z_]+\}", "from-env", block))
        for rid, raw in (doc or {}).get("responses", {}).items():
            found.append((rid, raw))
    return found


def test_every_yaml_example_in_the_docs_is_valid() -> None:
    """Each response in docs/switches.md validates with its plugin's settings model."""
    examples = _doc_responses()
    kinds = {raw["type"] for _rid, raw in examples}
    assert {"http_action", "genesys_datatable", "twilio_sync", "json_flag"} <= kinds
    for rid, raw in examples:
        settings = {k: v for k, v in raw.items() if k != "type"}
        try:
            RESPONDER_TYPES[raw["type"]].settings_model.model_validate(settings)
        except ValidationError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"docs example {rid!r} is invalid: {exc}")
