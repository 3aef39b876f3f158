"""The ``webhook`` responder: POST a signed JSON event to any HTTP(S) endpoint of your own.

::

    responses:
      tell_intranet:
        type: webhook
        url: https://intranet.example.gov.uk/hooks/rising-tide
        secret: "${RISING_TIDE_WEBHOOK_SECRET}"
        headers: { X-Team: csc }

Body (JSON, UTF-8)::

    {"event": "tier_raised", "version": 1, "key": "<order key>", "line": "council_tax",
     "line_name": "Council Tax", "tier": 2, "tier_name": "high", "tier_from": 1,
     "trigger": "tier_changed", "episode": 3, "response": "tell_intranet",
     "at": "2026-01-05T09:25:00+00:00", "reason": "…",
     "stats": {"at": …, "avg_wait": 400.0, "longest_wait": 725.0, "target_wait": 180.0,
               "calls_waiting": 14, "agents_available": 2, "abandon_rate": 0.125,
               "window": 900.0},
     "entered_at": …, "live_switches": ["callback_on"], "ack_url": …,
     "message": {"subject": "…", "text": "…"},
     "people": [{"id": "asha", "name": "Asha Patel"}]}

``event`` is the message kind (``tier_raised``, ``reminder``, ``escalated``,
``tier_lowered``, ``back_to_calm``, ``stats_stale``; see ``risingtide.messages``). ``key`` is
the notice's idempotency key (the order's own key for a notice about one order).

A notice about several lines is one digest::

    {"event": "digest", "version": 1, "key": "<notice key>", "count": 3,
     "lines": [<the event above for each line, without "people", highest tier first;
                each with its own order key>],
     "message": {"subject": "3 lines: …", "text": "…"},
     "people": [{"id": "asha", "name": "Asha Patel"}]}

``people`` are those the response pages who are on duty, by id and name only: the receiver
is the council's own system, but no addresses or phone numbers leave Rising Tide this way
(it has no use for them, and a log of webhook bodies should not become a staff directory).

Headers: ``Content-Type: application/json``, ``Idempotency-Key: <notice key>`` (the same on
every retry of a notice: the receiver drops repeats by it), ``User-Agent``, the configured
``headers``, and with a ``secret``:

- ``X-Rising-Tide-Timestamp: <unix seconds when sent>``
- ``X-Rising-Tide-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``

A receiver recomputes the MAC over the timestamp header, a dot and the raw body bytes (as
received, before any JSON parsing), compares it in constant time, and rejects a timestamp
more than 5 minutes from its own clock, so a captured request cannot be replayed later
(``verify_signature`` does exactly this). This is the scheme Stripe and Slack use for their
own webhooks.

Outcome: any 2xx is success. Failures, as ``HttpError`` (a ``ResponseError`` that also
carries the status and any ``Retry-After`` in seconds)::

    reason "timeout"    no answer within ``timeout`` (or HTTP 408)     retryable
    reason "network"    connection refused or reset, DNS, TLS          retryable
    reason "http_429"   rate limited (Retry-After quoted)              retryable
    reason "http_5xx"   the receiver failed                            retryable
    reason "http_3xx"   a redirect (not followed: give the final URL)  not retryable
    reason "http_4xx"   any other 4xx: the request was refused         not retryable
    reason "template"   a message template failed                      not retryable

The HTTP helpers here (``post``, ``check_status``, ``HttpError``) are shared by the
``slack`` and ``teams`` responders, and the notice helpers (``render_notice``,
``nothing_to_send``, ``DigestTemplate``) by every notification channel. Every run uses its
own short-lived ``httpx.AsyncClient`` (notifications are rare, and a client per run cannot
leak across config reloads).

Doc pages followed: RFC 9110 §10.2.3 (``Retry-After``: delay-seconds or an HTTP date) and
§15.6 (5xx: the server failed); RFC 2104 (HMAC); the IETF draft "The Idempotency-Key HTTP
Header Field" (draft-ietf-httpapi-idempotency-key-header) for ``Idempotency-Key``; the
timestamped-signature scheme follows Slack's "Verifying requests from Slack"
(``v0:{timestamp}:{body}``, five-minute window) and Stripe's webhook signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, field_validator

from risingtide import __version__
from risingtide.clock import Clock
from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.domain.people import Person
from risingtide.messages import (
    MessageFacts,
    MessageTemplates,
    Rendered,
    TemplateError,
    check_digest_template,
    check_template,
    digest_order,
    facts_from,
    render,
    render_digest,
)
from risingtide.ports import (
    BuildContext,
    Notice,
    Responder,
    ResponderPlugin,
    ResponseContext,
    ResponseError,
    settings_as,
)
from risingtide.sources.webclient import retry_after_seconds
from risingtide.tlscontext import shared_tls_context

__all__ = [
    "IDEMPOTENCY_HEADER",
    "NOT_UNDONE",
    "PLUGIN",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DigestTemplate",
    "HttpError",
    "HttpUrl",
    "MessageTemplate",
    "SecretHttpUrl",
    "WebhookResponder",
    "WebhookSettings",
    "check_http_url",
    "check_status",
    "digest_payload",
    "event_payload",
    "nothing_to_send",
    "people_payload",
    "post",
    "render_notice",
    "sign",
    "template_failure",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Rising-Tide-Signature"
TIMESTAMP_HEADER: Final = "X-Rising-Tide-Timestamp"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
USER_AGENT: Final = f"risingtide/{__version__}"
DEFAULT_TIMEOUT: Final = timedelta(seconds=10)
#: How far a receiver should let a signature's timestamp stray from its clock.
SIGNATURE_TOLERANCE: Final = 300.0

# --------------------------------------------------------------------------- settings types


def check_http_url(value: str) -> str:
    """``value`` when it is an ``http(s)://`` URL with a host; else ``ValueError``."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        raise ValueError("is not a URL (write e.g. https://example.gov.uk/hook)") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _secret_http_url(value: SecretStr) -> SecretStr:
    check_http_url(value.get_secret_value())
    return value


#: An ``http(s)://`` URL, checked when the config is loaded.
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
#: The same, held as a secret (Slack and Teams webhook URLs are their own credential).
SecretHttpUrl = Annotated[SecretStr, AfterValidator(_secret_http_url)]
#: A text message template (Jinja2, sandboxed), checked when the config is loaded.
MessageTemplate = Annotated[str, AfterValidator(check_template)]
#: The same for a message about several lines: it sees the digest's variables.
DigestTemplate = Annotated[str, AfterValidator(check_digest_template)]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS: Final = frozenset(
    h.lower()
    for h in (
        "Content-Type",
        "Content-Length",
        "Host",
        IDEMPOTENCY_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
    )
)


class WebhookSettings(BaseModel):
    """``url`` to POST to; optional ``secret`` (signs each request), extra ``headers``,
    ``template``/``subject_template`` (the ``message`` text),
    ``digest_template``/``digest_subject_template`` (a digest's), ``timeout`` (default 10s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: HttpUrl
    secret: SecretStr | None = None
    headers: dict[str, str] = {}
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
    digest_template: DigestTemplate | None = None
    digest_subject_template: DigestTemplate | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("is too short to sign with: use at least 16 characters")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f'"{name}" is not a valid HTTP header name')
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f'"{name}" is set by Rising Tide and cannot be configured')
            if "\r" in text or "\n" in text:
                raise ValueError(f'header "{name}" must be one line')
        return value


# --------------------------------------------------------------------------- shared HTTP


class HttpError(ResponseError):
    """A classified HTTP failure, with the status and the ``Retry-After`` (s) when known."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """See ``ResponseError``; ``retry_after`` is how long the server asked us to wait."""
        super().__init__(message, reason=reason, retryable=retryable)
        self.status = status
        self.retry_after = retry_after


async def post(
    url: str, *, content: bytes, headers: Mapping[str, str], time_limit: float, what: str
) -> httpx.Response:
    """POST ``content`` once, in a client of its own; network trouble is a retryable error.

    ``time_limit`` (seconds) bounds connecting, sending and each read. ``what`` names the
    request in messages ("Slack webhook"); the URL is never quoted, because for Slack and
    Teams the URL is itself the credential.
    """
    try:
        async with httpx.AsyncClient(
            timeout=time_limit, follow_redirects=False, verify=shared_tls_context()
        ) as client:
            return await client.post(url, content=content, headers=headers)
    except httpx.TimeoutException:
        raise HttpError(
            f"{what}: no answer within {time_limit:g}s", reason="timeout", retryable=True
        ) from None
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise HttpError(f"{what}: {detail}", reason="network", retryable=True) from None


def check_status(response: httpx.Response, what: str, now: datetime | None = None) -> None:
    """Raise ``HttpError`` for a non-2xx answer, classified for the dispatcher."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = snippet(response.text)
    shown = f"{what} answered HTTP {status}"
    if status == 429:
        after = retry_after_seconds(response.headers.get("Retry-After"), now)
        asks = f", asks to wait {after:g}s" if after is not None else ""
        raise HttpError(
            f"{shown} (rate limited{asks}): {body}",
            reason="http_429", retryable=True, status=status, retry_after=after,
        )  # fmt: skip
    if status >= 500:
        after = retry_after_seconds(response.headers.get("Retry-After"), now)
        raise HttpError(
            f"{shown}: {body}", reason="http_5xx", retryable=True, status=status, retry_after=after
        )
    if status == 408:
        raise HttpError(f"{shown}: {body}", reason="timeout", retryable=True, status=status)
    if 300 <= status < 400:
        raise HttpError(
            f"{shown} (a redirect, not followed: configure the final URL)",
            reason="http_3xx", retryable=False, status=status,
        )  # fmt: skip
    raise HttpError(f"{shown}: {body}", reason="http_4xx", retryable=False, status=status)


def snippet(text: str, limit: int = 200) -> str:
    """The start of a response body on one line, for error messages."""
    flat = " ".join(text.split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --------------------------------------------------------------------------- notices

#: The outcome of a notice with nothing to say: only UNDOs, and a notification is not
#: taken back.
NOT_UNDONE: Final = "nothing to undo: a notification is not taken back"


def nothing_to_send(notice: Notice) -> str | None:
    """The outcome for a notice of UNDOs only (nothing is sent), or None to send."""
    return None if notice.applies else NOT_UNDONE


def template_failure(name: str, exc: TemplateError, what: str = "") -> ResponseError:
    """A template that failed while sending: not retryable (it would fail again)."""
    where = f"{what}: " if what else ""
    return ResponseError(f"response {name!r}: {where}{exc}", reason="template", retryable=False)


def render_notice(
    name: str,
    notice: Notice,
    templates: MessageTemplates,
    digest_templates: MessageTemplates,
) -> tuple[list[MessageFacts], Rendered]:
    """The facts of the notice's APPLY lines and its one message.

    One line is rendered with the response's ``templates``; several are one digest
    (``messages.render_digest``, with ``digest_templates``), and the facts come back in the
    digest's order, highest tier first. A failing template is a non-retryable
    ``ResponseError`` (reason ``template``). Call ``nothing_to_send`` first: a notice of
    UNDOs only has nothing to render (``ValueError``).
    """
    facts = [facts_from(order, context) for order, context in notice.applies]
    if not facts:
        raise ValueError("the notice has no APPLY orders: nothing to render")
    try:
        if len(facts) == 1:
            return facts, render(facts[0], templates)
        ordered = digest_order(facts)
        return ordered, render_digest(ordered, digest_templates, key=notice.key)
    except TemplateError as exc:
        raise template_failure(name, exc) from None


# --------------------------------------------------------------------------- signature


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance: float = SIGNATURE_TOLERANCE,
) -> bool:
    """What a receiver does: True when ``signature`` is ours for ``body`` and is fresh.

    ``timestamp`` and ``signature`` are the header values as received; ``now`` is the
    receiver's clock (unix seconds).
    """
    if not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


# --------------------------------------------------------------------------- responder


def people_payload(people: Sequence[Person]) -> list[dict[str, str]]:
    """The people a notice pages, by id and name only (no addresses: see the docstring)."""
    return [{"id": p.id, "name": p.name} for p in people]


def event_payload(facts: MessageFacts, message: Rendered, key: str | None = None) -> dict[str, Any]:
    """The JSON event about one line (see the module docstring); ``key`` defaults to the
    order's own key."""
    return {
        "event": facts.kind,
        "version": 1,
        "key": facts.key if key is None else key,
        "line": facts.line,
        "line_name": facts.line_name,
        "tier": facts.tier,
        "tier_name": facts.tier_name,
        "tier_from": facts.tier_from,
        "trigger": facts.trigger,
        "episode": facts.episode,
        "response": facts.response,
        "at": facts.at.isoformat(),
        "reason": facts.reason,
        "stats": {
            "at": None if facts.stats_at is None else facts.stats_at.isoformat(),
            "avg_wait": facts.avg_wait,
            "longest_wait": facts.longest_wait,
            "target_wait": facts.target_wait,
            "calls_waiting": facts.calls_waiting,
            "agents_available": facts.agents_available,
            "abandon_rate": facts.abandon_rate,
            "window": facts.window,
        },
        "entered_at": None if facts.entered_at is None else facts.entered_at.isoformat(),
        "live_switches": list(facts.live_switches),
        "ack_url": facts.ack_url,
        "message": {"subject": message.subject, "text": message.text},
    }


def digest_payload(
    key: str, lines: Sequence[tuple[MessageFacts, Rendered]], message: Rendered
) -> dict[str, Any]:
    """The JSON body of a digest: each line's own event, in the order given, and the one
    message about them all (``people`` is added by the caller)."""
    return {
        "event": "digest",
        "version": 1,
        "key": key,
        "count": len(lines),
        "lines": [event_payload(facts, rendered) for facts, rendered in lines],
        "message": {"subject": message.subject, "text": message.text},
    }


class WebhookResponder:
    """POSTs each notice as a signed JSON event (one line) or digest (several)."""

    undoable = False

    def __init__(self, name: str, settings: WebhookSettings, clock: Clock) -> None:
        """Post to ``settings.url``; ``clock`` stamps the signature."""
        self.name = name
        self._settings = settings
        self._clock = clock
        self._templates = MessageTemplates(
            subject=settings.subject_template, text=settings.template
        )
        self._digest_templates = MessageTemplates(
            subject=settings.digest_subject_template, text=settings.digest_template
        )

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """POST the event for ``order`` alone; return ``HTTP <status>``."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """POST the event (one line) or digest (several) for ``notice``; return
        ``HTTP <status>``."""
        skipped = nothing_to_send(notice)
        if skipped is not None:
            return skipped
        facts, message = render_notice(self.name, notice, self._templates, self._digest_templates)
        if len(facts) == 1:
            payload = event_payload(facts[0], message, key=notice.key)
        else:
            # Each line also carries its own single-line message, as its own event would.
            try:
                lines = [(f, render(f, self._templates)) for f in facts]
            except TemplateError as exc:
                raise template_failure(self.name, exc) from None
            payload = digest_payload(notice.key, lines, message)
        payload["people"] = people_payload(notice.people)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {
            **self._settings.headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            IDEMPOTENCY_HEADER: notice.key,
        }
        now = self._clock.now()
        if self._settings.secret is not None:
            timestamp = int(now.timestamp())
            secret = self._settings.secret.get_secret_value().encode("utf-8")
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        what = f"response {self.name!r}: webhook"
        response = await post(
            self._settings.url,
            content=body,
            headers=headers,
            time_limit=self._settings.timeout.total_seconds(),
            what=what,
        )
        check_status(response, what, now)
        return f"HTTP {response.status_code}"


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(WebhookSettings, settings, f"response {name!r}")
    return WebhookResponder(name, settings, ctx.clock)


PLUGIN = ResponderPlugin(
    type="webhook",
    settings_model=WebhookSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="POST a signed JSON event to a URL of your own.",
    # A machine reads it: one event per line at once, unless the response sets group_wait.
    default_group_wait=timedelta(0),
)
