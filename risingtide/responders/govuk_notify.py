"""The ``govuk_notify`` responder: texts and emails through GOV.UK Notify.

::

    responses:
      text_duty_manager:
        type: govuk_notify
        api_key: "${NOTIFY_API_KEY}"
        kind: sms
        template_id: 4f5c2a9e-7b1d-4c3a-9e8f-0a1b2c3d4e5f
        to: ["07700 900123", "+44 7700 900456"]

Recipients: the numbers (or addresses) in ``to`` (optional) and the ``mobile`` (for
``kind: sms``) or ``email`` (for ``kind: email``) of each person the response pages who is
on duty (``Notice.people``), each once, in that order; people without one are skipped.

One ``POST /v2/notifications/sms`` (or ``/email``) per recipient with ``{phone_number |
email_address, template_id, personalisation, reference}``; ``201`` is success and its
``id`` is reported. A notice about several lines is one message per recipient, a digest:
``message`` is the digest's SMS (as many lines as fit in 3 segments, "+N more", the board
link) or plain text, ``subject`` its headline. The Notify template shows the message
through its placeholders; the defaults sent in ``personalisation`` are

- ``message``: the whole message (for ``sms``: the SMS text, at most 3 segments of GSM-7;
  for ``email``: the plain-text body) — a template of ``((message))`` is enough;
- ``subject``: the one-line headline (for an email template's subject line);
- ``line``, ``tier``, ``tier_name``, ``ack_url`` (empty when there is none).

``personalisation:`` in the config adds placeholders or replaces these; each value is a
Jinja2 template over the message variables (``risingtide.messages``), e.g.
``{wait: "{{ avg_wait_text }}"}``. ``template`` and ``subject_template`` replace
``message`` and ``subject`` (``digest_template`` and ``digest_subject_template`` for a
digest). Notify ignores placeholders its template does not use, but refuses a message that
lacks one it uses, so a digest fills every placeholder too: ``line`` lists the line names,
``tier`` and ``tier_name`` are the highest tier's, ``ack_url`` is the duty board (else the
highest line's acknowledge link), and each ``personalisation:`` template is rendered for
the line at the highest tier.

Authentication: the API key ``{key_name}-{service_id}-{secret}`` ends in two UUIDs, the
service id (the JWT's ``iss``) and the signing secret; it is parsed and checked when the
config is loaded, and never shown in messages. Every request carries a fresh JWT (HS256,
header ``{"typ": "JWT", "alg": "HS256"}``, claims ``iss`` and ``iat`` = now in epoch
seconds) in ``Authorization: Bearer``, because Notify refuses a token whose ``iat`` is more
than 30 seconds from its own clock.

Idempotency: ``reference`` is the notice key (for a single order, its own key), so every
notification can be traced to its order or batch in Notify. Notify does not de-duplicate by
reference, so the responder remembers, for the last 1,000 keys, which recipients Notify
accepted: a retry (say after a 500 for the second of three numbers) sends only to those not
yet sent. Across a daemon restart the dispatcher's at-least-once delivery may repeat a
text. A notice with no recipient at all (no ``to``, and nobody paged on duty) fails, not
retryable (reason ``no_recipients``), so that its fallback runs.

Rate limit: Notify allows 3,000 messages per rolling 60 seconds per API key (type). A
client-side limiter shared by every response using the same API key keeps under it: when
the window is full, a send waits for a free slot if one frees within 5 seconds, and
otherwise fails **retryable** (reason ``rate_limited``) without calling Notify — the
dispatcher's back-off tries again later, so a surge never blocks the dispatcher for a
minute and never earns a 429.

Errors: Notify answers ``{"status_code": 400, "errors": [{"error": "ValidationError",
"message": "phone_number Not a UK mobile number"}]}``; the errors are quoted in the
``ResponseError``::

    reason "http_429"      RateLimitError / TooManyRequestsError            retryable
    reason "http_5xx"      500 Exception, 502, 503                          retryable
    reason "timeout"       no answer within ``timeout``                     retryable
    reason "network"       connection refused or reset                      retryable
    reason "rate_limited"  the client-side limiter is full                  retryable
    reason "auth"          403 AuthError (bad key, clock off by > 30 s)     not retryable
    reason "http_4xx"      400 BadRequestError / ValidationError, other 4xx not retryable
    reason "template"      a template failed                               not retryable
    reason "no_recipients" nobody to send to                               not retryable

A 400 for one recipient does not stop the others; a 403, 429, 5xx or network failure stops
the run (the rest would fail the same way). The error is retryable when any failure was.

Phone numbers (``kind: sms``) must be UK mobile numbers (``07…``, ``+447…``, ``00447…``,
spaces, dashes and brackets allowed), checked when the config is loaded and sent as
``+447…`` (a person's ``mobile`` is already in that form); an email address is sent bare,
without any ``Name <…>``; international numbers need a Notify service setting and are not
accepted here.

Doc pages followed: alphagov/notifications-tech-docs ``source/documentation/_api_docs.md``
(base URL, the JWT header and claims, the API key format, ``POST /v2/notifications/sms``
and ``/email``, the 201 body, the error tables), ``_limits.md`` (3,000 messages per minute,
rolling, per API key type) and ``error_tables/_generic_errors.md``; alphagov
notifications-python-client ``notifications_python_client/authentication.py``
(``create_jwt_token``: claims ``iss`` and ``iat``, headers ``typ``/``alg``, HS256 keyed by
the secret string) and ``base.py`` (service id = ``api_key[-73:-37]``, secret =
``api_key[-36:]``).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import httpx
import jwt
from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from risingtide.addresses import check_email_address, normalise_uk_mobile
from risingtide.clock import Clock
from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.domain.people import Person
from risingtide.messages import (
    MessageFacts,
    MessageTemplates,
    Rendered,
    TemplateError,
    render_string,
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
from risingtide.responders.webhook import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    DigestTemplate,
    HttpUrl,
    MessageTemplate,
    nothing_to_send,
    render_notice,
    snippet,
    template_failure,
)
from risingtide.tlscontext import shared_tls_context

__all__ = [
    "DEFAULT_BASE_URL",
    "PLUGIN",
    "RATE_LIMIT",
    "RATE_WINDOW",
    "GovukNotifyResponder",
    "GovukNotifySettings",
    "NotifyKey",
    "RateLimitedError",
    "RollingLimiter",
    "create_jwt",
    "limiter_for",
    "normalise_uk_mobile",
    "parse_api_key",
    "recipients",
]

DEFAULT_BASE_URL: Final = "https://api.notifications.service.gov.uk"
#: Notify's documented rate limit: messages per rolling window, per API key (type).
RATE_LIMIT: Final = 3000
RATE_WINDOW: Final = 60.0
#: Longest a send waits for the limiter before failing retryable.
RATE_MAX_WAIT: Final = 5.0
_REMEMBER: Final = 1000

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_API_KEY = re.compile(rf"(?P<name>.+)-(?P<service>{_UUID})-(?P<secret>{_UUID})", re.IGNORECASE)
_UUID_ONLY = re.compile(_UUID, re.IGNORECASE)

# --------------------------------------------------------------------------- API key


@dataclass(frozen=True, slots=True)
class NotifyKey:
    """A parsed API key: its name, the service id (``iss``) and the signing secret."""

    name: str
    service_id: str
    secret: str

    def __repr__(self) -> str:
        """Never show the secret."""
        return f"NotifyKey(name={self.name!r}, service_id={self.service_id!r}, secret=…)"


def parse_api_key(value: str) -> NotifyKey:
    """Split ``{key_name}-{service_id}-{secret}``; ``ValueError`` (not quoting the key)."""
    match = _API_KEY.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            "is not a GOV.UK Notify API key: expected {key_name}-{service_id}-{secret_key}, "
            "ending in two UUIDs (copy the whole key from Notify's API integration page)"
        )
    return NotifyKey(
        name=match.group("name"),
        service_id=match.group("service").lower(),
        secret=match.group("secret"),
    )


def create_jwt(key: NotifyKey, now: datetime) -> str:
    """A fresh token for one request: HS256 over ``{"iss": service id, "iat": now}``."""
    return jwt.encode(
        {"iss": key.service_id, "iat": int(now.timestamp())},
        key.secret,
        algorithm="HS256",
        headers={"typ": "JWT", "alg": "HS256"},
    )


# --------------------------------------------------------------------------- rate limiter


class RateLimitedError(ResponseError):
    """The client-side limiter is full; ``retry_after`` says when a slot frees."""

    def __init__(self, message: str, retry_after: float) -> None:
        """A retryable error with reason ``rate_limited``."""
        super().__init__(message, reason="rate_limited", retryable=True)
        self.retry_after = retry_after


class RollingLimiter:
    """At most ``limit`` sends in any ``window`` seconds (a rolling window).

    ``clock`` (monotonic seconds) and ``sleep`` are injected so tests need not wait a
    minute. ``acquire`` takes a slot, waiting up to ``max_wait`` seconds in all for one;
    past that it raises ``RateLimitedError`` and takes nothing.
    """

    def __init__(
        self,
        limit: int = RATE_LIMIT,
        window: float = RATE_WINDOW,
        *,
        max_wait: float = RATE_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """A limiter for ``limit`` sends per ``window`` seconds."""
        self.limit = limit
        self.window = window
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()

    def in_window(self) -> int:
        """How many sends the current window holds."""
        self._expire(self._clock())
        return len(self._sent)

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    async def acquire(self) -> None:
        """Take a slot, waiting if one frees soon enough; else ``RateLimitedError``."""
        waited = 0.0
        while True:
            now = self._clock()
            self._expire(now)
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return
            wait = self._sent[0] + self.window - now
            if waited + wait > self.max_wait:
                raise RateLimitedError(
                    f"GOV.UK Notify allows {self.limit:,} messages per {self.window:g}s per API "
                    f"key and that many went out; the next slot frees in {wait:.0f}s",
                    retry_after=wait,
                )
            await self._sleep(wait)
            waited += wait


_LIMITERS: dict[str, RollingLimiter] = {}


def limiter_for(key: NotifyKey) -> RollingLimiter:
    """The limiter shared by every response that uses ``key``."""
    ident = hashlib.sha256(f"{key.service_id}:{key.secret}".encode()).hexdigest()
    limiter = _LIMITERS.get(ident)
    if limiter is None:
        limiter = _LIMITERS[ident] = RollingLimiter()
    return limiter


# --------------------------------------------------------------------------- settings


class GovukNotifySettings(BaseModel):
    """``api_key``, ``kind`` (sms | email), ``template_id``; optional ``to`` (the people
    paged are added), ``personalisation``, ``template``/``subject_template``,
    ``digest_template``/``digest_subject_template``, ``base_url``,
    ``sms_sender_id``/``email_reply_to_id`` and ``timeout`` (default 10s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    api_key: SecretStr
    kind: Literal["sms", "email"]
    template_id: str
    # Optional (the people a response pages are added); the validator refuses ``to: []``
    # written out, and the default is not validated.
    to: tuple[str, ...] = ()
    personalisation: dict[str, MessageTemplate] = {}
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
    digest_template: DigestTemplate | None = None
    digest_subject_template: DigestTemplate | None = None
    base_url: HttpUrl = DEFAULT_BASE_URL
    sms_sender_id: str | None = None
    email_reply_to_id: str | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr) -> SecretStr:
        parse_api_key(value.get_secret_value())
        return value

    @field_validator("template_id", "sms_sender_id", "email_reply_to_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is not None and not _UUID_ONLY.fullmatch(value.strip()):
            raise ValueError(f'"{value}" is not a UUID (copy it from GOV.UK Notify)')
        return None if value is None else value.strip().lower()

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value:
            raise ValueError("must not be empty")
        kind = info.data.get("kind")
        out: list[str] = []
        for item in value:
            if kind == "sms":
                out.append(normalise_uk_mobile(item))
            elif kind == "email":
                out.append(check_email_address(item))
            else:
                out.append(item)  # kind itself is wrong: that error is reported instead
        duplicates = sorted({x for x in out if out.count(x) > 1})
        if duplicates:
            raise ValueError(f'"{duplicates[0]}" is listed twice')
        return tuple(out)

    @field_validator("personalisation")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.strip():
                raise ValueError("a personalisation name must not be empty")
        return value

    @model_validator(mode="after")
    def _sender_matches_kind(self) -> GovukNotifySettings:
        if self.kind == "email" and self.sms_sender_id is not None:
            raise ValueError("sms_sender_id is for kind: sms")
        if self.kind == "sms" and self.email_reply_to_id is not None:
            raise ValueError("email_reply_to_id is for kind: email")
        return self

    @property
    def key(self) -> NotifyKey:
        """The parsed API key."""
        return parse_api_key(self.api_key.get_secret_value())


# --------------------------------------------------------------------------- recipients


def recipients(settings: GovukNotifySettings, people: Sequence[Person]) -> list[str]:
    """Who a notice goes to: ``to``, then each person's ``mobile`` (``kind: sms``) or
    ``email`` (``kind: email``), each once; people without one are skipped."""
    if settings.kind == "sms":
        found = [*settings.to, *(p.mobile for p in people if p.mobile)]
    else:
        # Notify takes a bare address: "Name <a@b>" would be refused.
        found = [
            email.utils.parseaddr(a)[1]
            for a in (*settings.to, *(p.email for p in people if p.email))
        ]
    out: list[str] = []
    seen: set[str] = set()
    for recipient in found:
        if recipient and recipient.lower() not in seen:
            seen.add(recipient.lower())
            out.append(recipient)
    return out


# --------------------------------------------------------------------------- responder


@dataclass(frozen=True, slots=True)
class _Failure:
    recipient: str
    reason: str
    retryable: bool
    message: str
    stop: bool  # the rest would fail the same way: do not try them this run


def _errors(response: httpx.Response) -> str:
    """Notify's ``errors`` as ``Type: message; …``, else the start of the body."""
    try:
        data = response.json()
        errors = data["errors"]
        parts = [f"{e.get('error', '?')}: {e.get('message', '')}" for e in errors]
    except (ValueError, KeyError, TypeError, AttributeError):
        return snippet(response.text)
    return "; ".join(parts) or snippet(response.text)


def _classify(recipient: str, response: httpx.Response) -> _Failure:
    status = response.status_code
    text = f"GOV.UK Notify answered HTTP {status} {_errors(response)}"
    if status == 429:
        return _Failure(recipient, "http_429", True, text, stop=True)
    if status >= 500:
        return _Failure(recipient, "http_5xx", True, text, stop=True)
    if status in (401, 403):
        return _Failure(recipient, "auth", False, text, stop=True)
    return _Failure(recipient, "http_4xx", False, text, stop=False)


def _mask(recipient: str) -> str:
    """A recipient as shown in outcomes and errors: enough to tell them apart."""
    if recipient.startswith("+"):
        return recipient[:-6] + "…" + recipient[-3:]
    return recipient


class GovukNotifyResponder:
    """Sends each notice as a GOV.UK Notify text or email to every recipient."""

    undoable = False

    def __init__(
        self,
        name: str,
        settings: GovukNotifySettings,
        clock: Clock,
        limiter: RollingLimiter | None = None,
    ) -> None:
        """Send with ``settings``; ``clock`` issues the JWTs; ``limiter`` defaults to the
        one shared by the API key."""
        self.name = name
        self._settings = settings
        self._clock = clock
        self._key = settings.key
        self._limiter = limiter if limiter is not None else limiter_for(self._key)
        self._templates = MessageTemplates(
            subject=settings.subject_template, text=settings.template
        )
        self._digest_templates = MessageTemplates(
            subject=settings.digest_subject_template, text=settings.digest_template
        )
        self._url = f"{settings.base_url.rstrip('/')}/v2/notifications/{settings.kind}"
        # key -> {recipient: notification id}: a retry sends only to the others.
        self._sent: OrderedDict[str, dict[str, str]] = OrderedDict()

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Send the message for ``order`` alone; return the ids."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Send the message (one line) or digest (several) for ``notice`` to every
        recipient not yet sent for ``notice.key``; return the ids."""
        skipped = nothing_to_send(notice)
        if skipped is not None:
            return skipped
        facts, message = render_notice(self.name, notice, self._templates, self._digest_templates)
        personalisation = self._personalisation(facts, message)
        everyone = recipients(self._settings, notice.people)
        if not everyone:
            noun = "mobile number" if self._settings.kind == "sms" else "email address"
            raise ResponseError(
                f"response {self.name!r}: nobody to send to (no 'to', and nobody paged is on "
                f"duty with a {noun})",
                reason="no_recipients",
                retryable=False,
            )
        done = self._sent.setdefault(notice.key, {})
        self._sent.move_to_end(notice.key)
        while len(self._sent) > _REMEMBER:
            self._sent.popitem(last=False)
        pending = [r for r in everyone if r not in done]
        failures: list[_Failure] = []
        sent_now: list[str] = []
        timeout = self._settings.timeout.total_seconds()
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=shared_tls_context()
        ) as client:
            for recipient in pending:
                try:
                    await self._limiter.acquire()
                except RateLimitedError as exc:
                    failures.append(
                        _Failure(recipient, exc.reason, True, f"held back: {exc}", True)
                    )
                    break
                failure, notification_id = await self._send_one(
                    client, recipient, notice.key, personalisation
                )
                if failure is None:
                    done[recipient] = notification_id
                    sent_now.append(notification_id)
                    continue
                failures.append(failure)
                if failure.stop:
                    break
        if failures:
            self._raise(failures, len(sent_now), len(pending))
        return self._outcome(sent_now, len(done) - len(sent_now))

    def _personalisation(self, facts: Sequence[MessageFacts], message: Rendered) -> dict[str, str]:
        """The placeholders for one line's message or a digest's (``facts`` highest tier
        first): a digest fills them from its lines, see the module docstring."""
        top = facts[0]
        ack_url = top.ack_url
        if len(facts) > 1:
            board = next((f.board_url for f in facts if f.board_url), None)
            ack_url = board or ack_url
        values = {
            "line": ", ".join(f.line_name for f in facts),
            "tier": str(top.tier),
            "tier_name": top.tier_name,
            "subject": message.subject,
            "message": message.sms if self._settings.kind == "sms" else message.text,
            "ack_url": ack_url or "",
        }
        for name, source in self._settings.personalisation.items():
            try:
                values[name] = render_string(source, top, "text")
            except TemplateError as exc:
                raise template_failure(self.name, exc, f"personalisation {name!r}") from None
        return values

    async def _send_one(
        self,
        client: httpx.AsyncClient,
        recipient: str,
        reference: str,
        personalisation: Mapping[str, str],
    ) -> tuple[_Failure | None, str]:
        s = self._settings
        body: dict[str, Any] = {
            ("phone_number" if s.kind == "sms" else "email_address"): recipient,
            "template_id": s.template_id,
            "personalisation": dict(personalisation),
            "reference": reference,
        }
        if s.sms_sender_id is not None:
            body["sms_sender_id"] = s.sms_sender_id
        if s.email_reply_to_id is not None:
            body["email_reply_to_id"] = s.email_reply_to_id
        headers = {
            # A fresh token per request: Notify refuses an iat more than 30 s old.
            "Authorization": f"Bearer {create_jwt(self._key, self._clock.now())}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            response = await client.post(self._url, content=json.dumps(body), headers=headers)
        except httpx.TimeoutException:
            limit = s.timeout.total_seconds()
            message = f"GOV.UK Notify gave no answer within {limit:g}s"
            return _Failure(recipient, "timeout", True, message, stop=True), ""
        except httpx.TransportError as exc:
            message = f"GOV.UK Notify unreachable: {str(exc) or type(exc).__name__}"
            return _Failure(recipient, "network", True, message, stop=True), ""
        if response.status_code != 201:
            return _classify(recipient, response), ""
        try:
            notification_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            # Notify said 201 Created: the message is on its way even if the body is odd.
            notification_id = "?"
        return None, notification_id

    def _raise(self, failures: list[_Failure], sent: int, tried: int) -> None:
        first = next((f for f in failures if f.stop), failures[0])
        retryable = any(f.retryable for f in failures)
        shown = "; ".join(f"{_mask(f.recipient)}: {f.message}" for f in failures)
        unsent = tried - sent - len(failures)
        tail = f"; sent to {sent}" if sent else ""
        if unsent:
            tail += f"; {unsent} not tried"
        raise ResponseError(
            f"response {self.name!r}: {shown}{tail}",
            reason=first.reason,
            retryable=retryable,
        )

    def _outcome(self, ids: list[str], already: int) -> str:
        noun = "text" if self._settings.kind == "sms" else "email"
        plural = "" if len(ids) == 1 else "s"
        shown = ", ".join(i[:8] for i in ids)
        again = f" ({already} sent before)" if already else ""
        if not ids:
            return f"already sent to all {already} recipients"
        return f"sent {len(ids)} {noun}{plural} (ids {shown}){again}"


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(GovukNotifySettings, settings, f"response {name!r}")
    return GovukNotifyResponder(name, settings, ctx.clock)


def _address_kind(settings: BaseModel) -> str:
    """A paged person is texted at their ``mobile`` or emailed at their ``email``."""
    return "mobile" if getattr(settings, "kind", None) == "sms" else "email"


PLUGIN = ResponderPlugin(
    type="govuk_notify",
    settings_model=GovukNotifySettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Send texts or emails through GOV.UK Notify.",
    address=_address_kind,
)
