"""Switches on a contact-centre platform, thrown over HTTP: ``http_action`` and its presets.

A *switch* response (IVR deflection message on, call-back offer on) is APPLIED when its tier
is entered and UNDONE once when the tier is left (see ``risingtide.domain.responses``). On
a real platform a switch is usually a flag that the IVR flow reads: a data-table row in
Genesys Cloud, a Sync Document in Twilio, a JSON endpoint of the council's own. This
module sends the request that sets the flag::

    http_action          the generic responder: an ``apply`` request, an optional ``undo``
                         request, auth, a timeout and which statuses mean success
    genesys_datatable    PUT one Architect data-table row with the flag column on / off
    twilio_sync          POST a Sync Document's ``Data`` with ``data_on`` / ``data_off``
    json_flag            PUT ``{field: true}`` / ``{field: false}`` to a URL of your own

Each preset is a ``ResponderPlugin`` of its own whose friendlier settings build the same
``HttpActionResponder`` as ``http_action``.

Templating. URLs, header values and the strings of a body or form may use Jinja2 (in a
``SandboxedEnvironment`` with ``StrictUndefined``) over the order's facts: ``line``,
``tier``, ``episode``, ``key``, ``action`` (``apply``/``undo``), ``response``, ``queue``,
``line_name``, ``tier_name``, and the per-line values under ``lines:``. Templates are
compiled, and every variable they use checked, when the config is loaded, so a typo is a
config error with its line, never a failed switch in the middle of a flood.

Idempotency. Every request carries ``Idempotency-Key: <order.key>``. A switch *sets* a
value (PUT-like); it never toggles, so sending the same APPLY twice (an at-least-once
retry, or the re-assert after a restart) leaves the platform as one send would.

Failures leave as ``ResponseError`` so the dispatcher alone decides back-off::

    ResponseError
    ├── reason "timeout"      no answer within ``timeout``                    retryable
    ├── reason "network"      connection refused or reset, DNS               retryable
    ├── reason "http_429" (Retry-After quoted), "http_5xx", "http_4xx" for 408  retryable
    ├── reason "http_401"     refused even with a fresh OAuth token          not retryable
    ├── reason "auth"         the token endpoint refused the client          not retryable
    ├── reason "http_4xx", "http_3xx" (redirects are not followed)           not retryable

Reasons are ``risingtide.ports.http_reason``'s classes, as at every other adapter.
    ├── reason "template"     a template failed while rendering             not retryable
    ├── reason "bad_url"      the rendered URL is malformed or not http(s)   not retryable
    └── reason "no_line"      the order's line has no entry under ``lines``  not retryable

A 401 with OAuth client credentials fetches a new token and tries once more within the
same run. Auth reuses ``risingtide.sources.webclient``'s ``BasicAuth`` and
``OAuthClientCredentials`` (its ``SourceError`` is translated here).

Doc pages followed:

- Genesys Cloud: MyPureCloud/platform-client-sdk-python ``docs/ArchitectApi.md``,
  ``put_flows_datatable_row`` — ``PUT /api/v2/flows/datatables/{datatableId}/rows/{rowId}``,
  ``rowId`` is "the value of the key field", the body a flat "key -> value" object, which
  replaces the row; permission ``architect:datatable:edit`` or ``architect:datatableRow:edit``.
  Token: client-credentials grant (RFC 6749 §4.4) at ``https://login.{environment}/oauth/token``
  (as ``risingtide.sources.genesys_cloud`` uses it).
- Twilio Sync: twilio/twilio-oai ``spec/json/twilio_sync_v1.json``, operation
  ``UpdateDocument`` — ``POST https://sync.twilio.com/v1/Services/{ServiceSid}/Documents/{Sid}``
  (``Sid`` may be the document's ``unique_name``), form field ``Data`` ("a JSON string …
  up to 16 KiB"), optional ``If-Match`` header, HTTP Basic ``AccountSid:AuthToken``
  (security scheme ``accountSid_authToken``).

Users' documentation: ``docs/switches.md``.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
import jinja2
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)

from risingtide import __version__
from risingtide.config.schema import PositiveDuration, config_error
from risingtide.domain.model import Action, ResponseOrder
from risingtide.httpauth import AuthSettings, build_auth
from risingtide.ports import (
    AdapterError,
    BuildContext,
    Responder,
    ResponderPlugin,
    ResponseContext,
    ResponseError,
    http_reason,
    settings_as,
)
from risingtide.sources.webclient import Auth, BasicAuth, OAuthClientCredentials, body_snippet
from risingtide.tlscontext import shared_tls_context

__all__ = [
    "GENESYS_DATATABLE",
    "JSON_FLAG",
    "PLUGIN",
    "TEMPLATE_VARIABLES",
    "TWILIO_SYNC",
    "AuthSettings",
    "GenesysDatatableSettings",
    "HttpActionResponder",
    "HttpActionSettings",
    "JsonFlagSettings",
    "RequestPlan",
    "TwilioSyncSettings",
]

#: The facts of an order every template may use (per-line values under ``lines:`` add more).
TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {"line", "tier", "episode", "key", "action", "response", "queue", "line_name", "tier_name"}
)
#: Per-line values may set ``queue`` (it defaults to the line id); the rest come from the order.
_RESERVED = TEMPLATE_VARIABLES - {"queue"}

DEFAULT_TIMEOUT = timedelta(seconds=10)
#: The dispatcher gives a responder 30 s; a run must finish (token, request, one retry) in it.
MAX_TIMEOUT = timedelta(seconds=25)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_AGENT = f"risingtide/{__version__}"

# One environment for every template: sandboxed (a template may not reach Python
# internals), strict (an unknown name fails instead of rendering as ""), no HTML escaping.
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)

#: A per-line template value or a data-table cell: text, a boolean or a number.
Scalar = str | bool | int | float
Facts = Mapping[str, Any]


# =========================================================================== templates


def _compile(text: str, where: str = "") -> jinja2.Template:
    """Compile ``text``; a syntax error becomes a config error that says where."""
    try:
        return _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        at = f" line {exc.lineno}" if "\n" in text else ""
        inside = f" in {where}" if where else ""
        raise config_error(f"template error{inside} ({text!r}{at}): {exc.message}") from None


def _variables(text: str) -> frozenset[str]:
    """The names a (syntactically valid) template reads."""
    return frozenset(meta.find_undeclared_variables(_ENV.parse(text)))


# A ``{line}`` in a URL is almost certainly meant as ``{{ line }}``: say so instead of
# sending the braces to the platform.
_SINGLE_BRACE = re.compile(r"(?<!\{)\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")


def _check_url_template(value: str) -> str:
    text = value.strip()
    if not text.lower().startswith(("http://", "https://")):
        raise config_error(f"{value!r} is not an http:// or https:// URL")
    for match in _SINGLE_BRACE.finditer(text):
        if match.group(1) in TEMPLATE_VARIABLES:
            name = match.group(1)
            raise config_error(f"{value!r}: write {{{{ {name} }}}} (a template), not {{{name}}}")
    _compile(text)
    return text


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (keys too), as ``(where, text)``."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{where} key {k!r}", str(k)
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _render_text(template: jinja2.Template) -> Callable[[Facts], str]:
    return lambda facts: template.render(facts)


def _render_json(value: Any) -> Callable[[Facts], Any]:
    """A function that renders every string of a JSON value as a template."""
    if isinstance(value, str):
        return _render_text(_compile(value))
    if isinstance(value, dict):
        parts = [(_render_text(_compile(str(k))), _render_json(v)) for k, v in value.items()]
        return lambda facts: {k(facts): v(facts) for k, v in parts}
    if isinstance(value, list):
        items = [_render_json(v) for v in value]
        return lambda facts: [item(facts) for item in items]
    return lambda _facts: value


def _render_mapping(values: Mapping[str, str]) -> Callable[[Facts], dict[str, str]]:
    parts = [(k, _render_text(_compile(v))) for k, v in values.items()]
    return lambda facts: {k: v(facts) for k, v in parts}


def _constant(value: Any) -> Callable[[Facts], Any]:
    return lambda _facts: value


def _no_headers(_facts: Facts) -> dict[str, str]:
    return {}


# =========================================================================== settings


def _secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise config_error("must not be empty")
    return value


def _http_url(value: str) -> str:
    text = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(?:/[^\s?#]*)?", text):
        raise config_error(f"{value!r} is not an http:// or https:// URL")
    return text


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if name.lower() == "idempotency-key":
            raise config_error("Idempotency-Key is always sent (the order's key); leave it out")
        _compile(text, f"headers.{name}")
    return value


class _Model(BaseModel):
    """Plugin settings forbid unknown keys, so a typo is an error with its line."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _check_timeout(value: timedelta) -> timedelta:
    if value > MAX_TIMEOUT:
        raise config_error(
            f"must be at most {MAX_TIMEOUT.total_seconds():g}s: the dispatcher allows each "
            "run 30s, and a run may fetch a token and retry once"
        )
    return value


Method = Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], BeforeValidator(_upper)]
#: The field types every request block and preset shares, each checked the same way.
Timeout = Annotated[PositiveDuration, AfterValidator(_check_timeout)]
UrlTemplate = Annotated[str, AfterValidator(_check_url_template)]
Headers = Annotated[dict[str, str], AfterValidator(_check_headers)]
Statuses = Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)]


class RequestBlock(_Model):
    """One request: ``method``, ``url``, optional ``headers`` and ``body`` (or ``form``).

    ``body`` is a JSON value (sent as ``application/json``) or a string (sent as it is,
    ``text/plain`` unless a ``Content-Type`` header says otherwise); ``form`` is a mapping
    sent as ``application/x-www-form-urlencoded``. Every string may be a template.
    """

    method: Method
    url: UrlTemplate
    headers: Headers = {}
    body: JsonValue | None = None
    form: dict[str, str] | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, value: JsonValue | None) -> JsonValue | None:
        for where, text in _strings(value, "body"):
            _compile(text, where)
        return value

    @field_validator("form")
    @classmethod
    def _form(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            _compile(text, f"form.{name}")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> RequestBlock:
        if self.body is not None and self.form is not None:
            raise config_error("give body or form, not both")
        return self

    def templates(self, where: str) -> Iterator[tuple[str, str]]:
        """Every template text of the request, as ``(where, text)``."""
        yield f"{where}.url", self.url
        for name, text in self.headers.items():
            yield f"{where}.headers.{name}", text
        yield from _strings(self.body, f"{where}.body")
        for name, text in (self.form or {}).items():
            yield f"{where}.form.{name}", text

    def plan(self) -> RequestPlan:
        """The request as a ``RequestPlan`` (templates compiled)."""
        headers = _render_mapping(self.headers) if self.headers else _no_headers
        if self.form is not None:
            return RequestPlan(
                self.method, _render_text(_compile(self.url)), headers,
                form=_render_mapping(self.form),
            )  # fmt: skip
        if isinstance(self.body, str):
            return RequestPlan(
                self.method, _render_text(_compile(self.url)), headers,
                text=_render_text(_compile(self.body)),
            )  # fmt: skip
        return RequestPlan(
            self.method, _render_text(_compile(self.url)), headers,
            json=None if self.body is None else _render_json(self.body),
        )  # fmt: skip


LineValues = dict[str, Scalar]
#: ``lines:`` maps line ids to per-line values; an empty mapping would refuse every line.
PerLine = Annotated[dict[str, LineValues], Field(min_length=1)]


def _check_line_values(lines: Mapping[str, Mapping[str, Any]] | None) -> None:
    for line, values in (lines or {}).items():
        for name in values:
            if not _IDENTIFIER.fullmatch(name):
                raise config_error(
                    f"{name!r} cannot be a template variable (use letters, digits and _)",
                    at=("lines", line),
                )
            if name in _RESERVED:
                raise config_error(
                    f"{name!r} comes from the order; choose another name", at=("lines", line)
                )


_WHERE_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _where(where: str) -> tuple[tuple[str | int, ...], str]:
    """A template's ``where`` (``apply.body.items[0]``, ``apply.body key 'x'``) as the path
    its error is placed at, and the words for a key's own template (else ``""``)."""
    base, is_key, key = where.partition(" key ")
    path = tuple(int(index) if index else name for name, index in _WHERE_PART.findall(base))
    return path, f"the key {key} " if is_key else ""


def _check_variables(
    templates: Iterator[tuple[str, str]], lines: Mapping[str, Mapping[str, Any]] | None
) -> None:
    """Every variable a template reads exists, and every line gives the per-line ones.

    Each error is placed at the template (or the line's values) at fault, not at the
    response as a whole.
    """
    per_line = set().union(*(v.keys() for v in lines.values())) if lines else set()
    known = TEMPLATE_VARIABLES | per_line
    for where, text in templates:
        used = _variables(text)
        for name in sorted(used - known):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            at, subject = _where(where)
            raise config_error(
                f'{subject}uses the unknown template variable "{name}"{hint}; known: '
                f"{', '.join(sorted(known))}",
                at=at,
            )
        for name in sorted(used & per_line):
            for line, values in (lines or {}).items():
                if name not in values:
                    raise config_error(f'has no "{name}", which {where} uses', at=("lines", line))


class HttpActionSettings(_Model):
    """The ``http_action`` response: ``apply`` and optional ``undo`` requests.

    With ``undo`` the response is a switch (undone when its tier is left); without, it is a
    one-off call. ``auth``: none, ``basic``, ``bearer`` or ``oauth_client_credentials``.
    ``timeout`` bounds one run (token fetch included). ``expect`` lists the statuses that
    mean success (default: any 2xx). ``lines`` gives per-line template values, e.g.
    ``{council_tax: {queue: CouncilTax}}``; when it is given, every line the response runs
    for must be listed.
    """

    apply: RequestBlock
    undo: RequestBlock | None = None
    auth: AuthSettings | None = None
    timeout: Timeout = DEFAULT_TIMEOUT
    expect: Statuses | None = None
    lines: PerLine | None = None

    @model_validator(mode="after")
    def _cross(self) -> HttpActionSettings:
        _check_line_values(self.lines)
        _check_variables(self.templates(), self.lines)
        if self.auth is not None:
            for where, block in (("apply", self.apply), ("undo", self.undo)):
                if block is not None and any(h.lower() == "authorization" for h in block.headers):
                    raise config_error(
                        "sets Authorization and auth is set too; keep one", at=(where, "headers")
                    )
        return self

    def templates(self) -> Iterator[tuple[str, str]]:
        """Every template text of the settings, as ``(where, text)``."""
        yield from self.apply.templates("apply")
        if self.undo is not None:
            yield from self.undo.templates("undo")


# =========================================================================== the responder


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """How to build one request from an order's facts.

    Exactly one of ``json``, ``text`` and ``form`` gives the body (or none: no body).
    ``summary`` says in a few words what the request does, for the outcome detail.
    """

    method: str
    url: Callable[[Facts], str]
    headers: Callable[[Facts], dict[str, str]] = _no_headers
    json: Callable[[Facts], Any] | None = None
    text: Callable[[Facts], str] | None = None
    form: Callable[[Facts], dict[str, str]] | None = None
    summary: Callable[[Facts], str] | None = None


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: str
    shown: str  # the URL without query or credentials, safe for logs and history
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


#: ``params_for(line)``: the per-line template values, or None when the line is not served.
ParamsFor = Callable[[str], Mapping[str, Any] | None]


class HttpActionResponder:
    """Sends an order's request (``apply`` or ``undo``) and classifies the answer.

    Every preset builds one of these. A run opens its own short-lived connection: switches
    are thrown a few times a day, and responders are rebuilt on every reload without being
    closed, so a pooled client would only leak.
    """

    def __init__(
        self,
        name: str,
        *,
        apply: RequestPlan,
        undo: RequestPlan | None,
        auth: Auth | None = None,
        timeout: timedelta = DEFAULT_TIMEOUT,
        expect: frozenset[int] | None = None,
        params_for: ParamsFor | None = None,
        hints: Mapping[int, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``hints`` adds a sentence to the error for a status (e.g. a missing permission)."""
        self.name = name
        self.undoable = undo is not None
        self._apply = apply
        self._undo = undo
        self._auth = auth
        self._timeout = timeout.total_seconds()
        self._expect = expect
        self._params_for: ParamsFor = params_for or (lambda _line: {})
        self._hints = dict(hints or {})
        self._transport = transport

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Send the APPLY or UNDO request for ``order``; return what the platform said.

        Safe to call twice with the same key: the request sets a value, and it carries
        ``Idempotency-Key: order.key``.
        """
        plan = self._apply if order.action is Action.APPLY else self._undo
        if plan is None:
            # The planner never undoes a one-off; an UNDO here has nothing to take back.
            return "nothing to undo: a one-off call"
        request = self._prepare(plan, order, context)
        deadline = time.monotonic() + self._timeout
        async with httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, verify=shared_tls_context()
        ) as client:
            refreshed = False
            while True:
                response = await self._send(client, request, order.key, deadline)
                status = response.status_code
                if self._succeeded(status):
                    return f"{order.action.value}: {request.summary} → {status}"
                if (
                    status == 401
                    and isinstance(self._auth, OAuthClientCredentials)
                    and not refreshed
                ):
                    # The token may have been revoked or expired early: one fresh token.
                    self._auth.invalidate()
                    refreshed = True
                    continue
                raise self._failure(request, response, refreshed=refreshed)

    # ------------------------------------------------------------------ steps

    def _facts(self, order: ResponseOrder, context: ResponseContext) -> dict[str, Any]:
        params = self._params_for(order.line)
        if params is None:
            raise ResponseError(
                f"response {self.name!r} has no settings for line {order.line!r} "
                "(add it under lines)",
                reason="no_line",
                retryable=False,
            )
        return {
            "queue": order.line,
            **params,
            "line": order.line,
            "tier": order.tier,
            "episode": order.episode,
            "key": order.key,
            "action": order.action.value,
            "response": order.response,
            "line_name": context.line_name,
            "tier_name": context.tier_name,
        }

    def _prepare(
        self, plan: RequestPlan, order: ResponseOrder, context: ResponseContext
    ) -> _Request:
        facts = self._facts(order, context)
        try:
            url = plan.url(facts).strip()
            headers = plan.headers(facts)
            body: dict[str, Any] = {}
            if plan.json is not None:
                body["json"] = plan.json(facts)
            elif plan.text is not None:
                body["content"] = plan.text(facts).encode()
                if not any(h.lower() == "content-type" for h in headers):
                    headers = {**headers, "Content-Type": "text/plain; charset=utf-8"}
            elif plan.form is not None:
                body["data"] = plan.form(facts)
            shown = _shown(url)
            summary = plan.summary(facts) if plan.summary else f"{plan.method} {shown}"
        except (jinja2.TemplateError, httpx.InvalidURL, TypeError, ValueError) as exc:
            # Config-time checks catch names and syntax; what is left (a filter given the
            # wrong type, a sandbox refusal, a URL that renders malformed) will fail again.
            raise ResponseError(
                f"response {self.name!r}: a template failed for line {order.line!r}: {exc}",
                reason="template",
                retryable=False,
            ) from exc
        return _Request(plan.method, url, shown, headers, body, summary)

    async def _send(
        self, client: httpx.AsyncClient, request: _Request, key: str, deadline: float
    ) -> httpx.Response:
        headers = {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            **request.headers,
            "Idempotency-Key": key,
        }
        if self._auth is not None:
            try:
                headers.update(await self._auth.headers(client, deadline))
            except AdapterError as exc:  # the token endpoint's SourceError, translated
                raise ResponseError(
                    f"response {self.name!r}: {exc}", reason=exc.reason, retryable=exc.retryable
                ) from exc
        remaining = deadline - time.monotonic()
        where = f"{request.method} {request.shown}"
        if remaining <= 0:
            raise ResponseError(
                f"{where}: no time left of the {self._timeout:g}s timeout", reason="timeout"
            )
        try:
            return await client.request(
                request.method, request.url, headers=headers, timeout=remaining, **request.body
            )
        except httpx.TimeoutException as exc:
            raise ResponseError(
                f"{where} got no answer within the {self._timeout:g}s timeout", reason="timeout"
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ResponseError(f"{where}: {exc}", reason="bad_url", retryable=False) from exc
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise ResponseError(f"{where} failed: {detail}", reason="network") from exc

    def _succeeded(self, status: int) -> bool:
        if self._expect is not None:
            return status in self._expect
        return 200 <= status < 300

    def _failure(
        self, request: _Request, response: httpx.Response, *, refreshed: bool
    ) -> ResponseError:
        status = response.status_code
        text = f"{request.method} {request.shown} answered {status}"
        hint = self._hints.get(status)
        retry_after = response.headers.get("Retry-After")
        waited = f"; the platform asks to wait (Retry-After: {retry_after})" if retry_after else ""
        reason = http_reason(status)
        if status == 429:
            return ResponseError(
                f"{text} (rate limited{waited}): {body_snippet(response)}", reason=reason
            )
        if status == 408 or status >= 500:
            return ResponseError(f"{text}{waited}: {body_snippet(response)}", reason=reason)
        if status == 401:
            again = " even with a fresh token" if refreshed else ""
            text = f"{text} (credentials refused{again})"
        elif 300 <= status < 400:
            location = response.headers.get("Location", "?")
            text = f"{text} (a redirect to {_shown(location)}; give the final URL)"
        elif self._expect is not None and 200 <= status < 300:
            text = f"{text}, expected {', '.join(map(str, sorted(self._expect)))}"
        if hint:
            text = f"{text}; {hint}"
        return ResponseError(f"{text}: {body_snippet(response)}", reason=reason, retryable=False)


def _shown(url: str) -> str:
    """The URL without query string or credentials, for messages (a query may hold a key)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return url.split("?", 1)[0]
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))


# --------------------------------------------------------------------------- http_action


def _build_http_action(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(HttpActionSettings, settings, f"response {name!r}")
    lines = settings.lines

    def params_for(line: str) -> Mapping[str, Any] | None:
        return {} if lines is None else lines.get(line)

    return HttpActionResponder(
        name,
        apply=settings.apply.plan(),
        undo=settings.undo.plan() if settings.undo is not None else None,
        auth=build_auth(settings.auth, ctx.clock),
        timeout=settings.timeout,
        expect=frozenset(settings.expect) if settings.expect else None,
        params_for=params_for,
    )


def _http_action_undoable(settings: BaseModel) -> bool:
    return isinstance(settings, HttpActionSettings) and settings.undo is not None


PLUGIN = ResponderPlugin(
    type="http_action",
    settings_model=HttpActionSettings,
    build=_build_http_action,
    undoable=_http_action_undoable,
    description="Call an HTTP endpoint on apply (and, for a switch, another on undo).",
)


# =========================================================================== presets


def _lines_lookup(
    defaults: Mapping[str, Any], lines: Mapping[str, Mapping[str, Any]] | None, *, need: str
) -> ParamsFor:
    """Per-line values over the defaults; None for a line that ends up without ``need``."""

    def params_for(line: str) -> Mapping[str, Any] | None:
        values = {**defaults, **((lines or {}).get(line) or {})}
        return values if values.get(need) is not None else None

    return params_for


# --------------------------------------------------------------------------- genesys_datatable


class GenesysRow(_Model):
    """One line's row: its ``row_key`` and the row's other columns (``extra``)."""

    row_key: Annotated[str, Field(min_length=1)] | None = None
    extra: dict[str, Scalar] = {}


class GenesysDatatableSettings(_Model):
    """The ``genesys_datatable`` switch: one column of an Architect data-table row.

    ``environment`` is the region's domain (``euw2.pure.cloud`` for London); ``api_url``
    and ``login_url`` override ``https://api.{environment}`` and ``https://login.{environment}``.
    The row is ``row_key`` or, per line, ``lines: {line: {row_key: …}}``. APPLY PUTs
    ``{"key": row_key, field: on_value, **extra}``; UNDO the same with ``off_value``. PUT
    replaces the whole row, so ``extra`` must carry the row's other columns.
    """

    environment: str | None = None
    api_url: str | None = None
    login_url: str | None = None
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: SecretStr
    datatable_id: Annotated[str, Field(min_length=1)]
    row_key: Annotated[str, Field(min_length=1)] | None = None
    lines: Annotated[dict[str, GenesysRow], Field(min_length=1)] | None = None
    field: Annotated[str, Field(min_length=1)]
    on_value: Scalar = True
    off_value: Scalar = False
    extra: dict[str, Scalar] = {}
    timeout: Timeout = DEFAULT_TIMEOUT

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", value.strip()):
            raise config_error(
                f"{value!r} is not a Genesys Cloud environment (write the domain only, "
                "e.g. euw2.pure.cloud or mypurecloud.ie)"
            )
        return None if value is None else value.strip()

    @field_validator("api_url", "login_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("client_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        return _secret(value)

    @model_validator(mode="after")
    def _cross(self) -> GenesysDatatableSettings:
        if self.environment is None and (self.api_url is None or self.login_url is None):
            raise config_error(
                "set environment (e.g. euw2.pure.cloud), or both api_url and login_url"
            )
        if self.row_key is None and not self.lines:
            raise config_error("set row_key, or a row_key per line under lines")
        for line, row in (self.lines or {}).items():
            if row.row_key is None and self.row_key is None:
                raise config_error(f"lines.{line} has no row_key (and there is no row_key for all)")
        if self.on_value == self.off_value and type(self.on_value) is type(self.off_value):
            raise config_error("on_value and off_value are the same: the switch would do nothing")
        for where, extra in [("extra", self.extra)] + [
            (f"lines.{line}.extra", row.extra) for line, row in (self.lines or {}).items()
        ]:
            for column in ("key", self.field):
                if column in extra:
                    raise config_error(f"{where} must not set {column!r}: the switch sets it")
        return self

    @property
    def token_url(self) -> str:
        """Where client-credentials tokens come from."""
        return (self.login_url or f"https://login.{self.environment}") + "/oauth/token"

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self.api_url or f"https://api.{self.environment}"


_GENESYS_HINTS = {
    400: "Genesys refused the row: PUT replaces the whole row, so every required column "
    "must be sent (list the others under extra) with the table's types",
    403: "the OAuth client's role needs the permission architect:datatableRow:edit",
    404: "no such data table or row: check datatable_id and the row key (the switch "
    "updates a row, it never creates one)",
}


def _build_genesys(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    s = settings_as(GenesysDatatableSettings, settings, f"response {name!r}")
    rows = (
        None
        if s.lines is None
        else {
            line: {
                "row_key": row.row_key or s.row_key,
                "extra": {**s.extra, **row.extra},
            }
            for line, row in s.lines.items()
        }
    )
    params_for = _lines_lookup({"row_key": s.row_key, "extra": s.extra}, rows, need="row_key")
    table = f"{s.base_url}/api/v2/flows/datatables/{quote(s.datatable_id, safe='')}/rows/"

    def plan(value: Any) -> RequestPlan:
        return RequestPlan(
            "PUT",
            url=lambda f: table + quote(str(f["row_key"]), safe=""),
            json=lambda f: {**f["extra"], "key": f["row_key"], s.field: value},
            summary=lambda f: f"row {f['row_key']!r}: {s.field}={json.dumps(value)}",
        )

    return HttpActionResponder(
        name,
        apply=plan(s.on_value),
        undo=plan(s.off_value),
        auth=OAuthClientCredentials(
            s.token_url, s.client_id, s.client_secret.get_secret_value(), clock=ctx.clock
        ),
        timeout=s.timeout,
        params_for=params_for,
        hints=_GENESYS_HINTS,
    )


GENESYS_DATATABLE = ResponderPlugin(
    type="genesys_datatable",
    settings_model=GenesysDatatableSettings,
    build=_build_genesys,
    undoable=lambda _settings: True,
    description="Set a column of a Genesys Cloud Architect data-table row on, then off.",
)


# --------------------------------------------------------------------------- twilio_sync

#: Twilio caps a Sync Document's data at 16 KiB.
SYNC_DATA_LIMIT = 16 * 1024


class TwilioSyncLine(_Model):
    """One line's Sync Document (``sid`` or unique name)."""

    document: Annotated[str, Field(min_length=1)]


class TwilioSyncSettings(_Model):
    """The ``twilio_sync`` switch: a Sync Document that the Studio flow reads.

    APPLY POSTs ``Data=<data_on as JSON>`` to
    ``{base_url}/v1/Services/{service_sid}/Documents/{document}``; UNDO posts ``data_off``.
    The document's data is replaced, not merged. ``document`` may be set per line under
    ``lines: {line: {document: …}}``.
    """

    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: SecretStr
    service_sid: Annotated[str, Field(pattern=r"^IS[0-9a-fA-F]{32}$")]
    document: Annotated[str, Field(min_length=1)] | None = None
    lines: Annotated[dict[str, TwilioSyncLine], Field(min_length=1)] | None = None
    data_on: dict[str, JsonValue] = {"deflect": True}
    data_off: dict[str, JsonValue] = {"deflect": False}
    base_url: str = "https://sync.twilio.com"
    timeout: Timeout = DEFAULT_TIMEOUT

    @field_validator("auth_token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        return _secret(value)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("data_on", "data_off")
    @classmethod
    def _size(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        size = len(_sync_data(value).encode())
        if size > SYNC_DATA_LIMIT:
            raise config_error(f"is {size} bytes as JSON; Twilio keeps at most 16 KiB")
        return value

    @model_validator(mode="after")
    def _cross(self) -> TwilioSyncSettings:
        if self.document is None and not self.lines:
            raise config_error("set document, or a document per line under lines")
        if self.data_on == self.data_off:
            raise config_error("data_on and data_off are the same: the switch would do nothing")
        return self


def _sync_data(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_TWILIO_HINTS = {
    401: "check account_sid and auth_token",
    404: "no such Sync Service or Document: create the document once (see docs/switches.md)",
}


def _build_twilio(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    s = settings_as(TwilioSyncSettings, settings, f"response {name!r}")
    docs = None if s.lines is None else {k: {"document": v.document} for k, v in s.lines.items()}
    params_for = _lines_lookup({"document": s.document}, docs, need="document")
    base = f"{s.base_url}/v1/Services/{s.service_sid}/Documents/"

    def plan(data: Mapping[str, Any]) -> RequestPlan:
        text = _sync_data(data)
        return RequestPlan(
            "POST",
            url=lambda f: base + quote(str(f["document"]), safe=""),
            form=_constant({"Data": text}),
            summary=lambda f: f"document {f['document']!r}: {text}",
        )

    return HttpActionResponder(
        name,
        apply=plan(s.data_on),
        undo=plan(s.data_off),
        auth=BasicAuth(s.account_sid, s.auth_token.get_secret_value()),
        timeout=s.timeout,
        params_for=params_for,
        hints=_TWILIO_HINTS,
    )


TWILIO_SYNC = ResponderPlugin(
    type="twilio_sync",
    settings_model=TwilioSyncSettings,
    build=_build_twilio,
    undoable=lambda _settings: True,
    description="Write a Twilio Sync Document's data on, then off.",
)


# --------------------------------------------------------------------------- json_flag


class JsonFlagSettings(_Model):
    """The ``json_flag`` switch: ``{field: true}`` on APPLY, ``{field: false}`` on UNDO.

    ``url`` is a template (``https://flags.example.gov.uk/lines/{{ queue }}/deflect``);
    ``lines`` gives per-line values such as ``queue``. ``method`` defaults to PUT.
    """

    url: UrlTemplate
    method: Annotated[Literal["PUT", "POST", "PATCH"], BeforeValidator(_upper)] = "PUT"
    field: Annotated[str, Field(min_length=1)] = "enabled"
    auth: AuthSettings | None = None
    headers: Headers = {}
    timeout: Timeout = DEFAULT_TIMEOUT
    expect: Statuses | None = None
    lines: PerLine | None = None

    @model_validator(mode="after")
    def _cross(self) -> JsonFlagSettings:
        _check_line_values(self.lines)
        texts = [("url", self.url)] + [(f"headers.{k}", v) for k, v in self.headers.items()]
        _check_variables(iter(texts), self.lines)
        if self.auth is not None and any(h.lower() == "authorization" for h in self.headers):
            raise config_error("sets Authorization and auth is set too; keep one", at=("headers",))
        return self


def _build_json_flag(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    s = settings_as(JsonFlagSettings, settings, f"response {name!r}")
    url = _render_text(_compile(s.url))
    headers = _render_mapping(s.headers) if s.headers else _no_headers
    lines = s.lines

    def plan(value: bool) -> RequestPlan:
        return RequestPlan(
            s.method, url, headers, json=_constant({s.field: value}),
            summary=lambda f: f"{s.method} {_shown(url(f))} {s.field}={json.dumps(value)}",
        )  # fmt: skip

    return HttpActionResponder(
        name,
        apply=plan(True),
        undo=plan(False),
        auth=build_auth(s.auth, ctx.clock),
        timeout=s.timeout,
        expect=frozenset(s.expect) if s.expect else None,
        params_for=lambda line: {} if lines is None else lines.get(line),
    )


JSON_FLAG = ResponderPlugin(
    type="json_flag",
    settings_model=JsonFlagSettings,
    build=_build_json_flag,
    undoable=lambda _settings: True,
    description="Set a JSON flag endpoint's field true on apply, false on undo.",
)
