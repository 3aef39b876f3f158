"""The ``email`` responder: a plain-text and HTML email through an SMTP relay (``aiosmtplib``).

::

    responses:
      email_duty_manager:
        type: email
        host: smtp.council.gov.uk
        security: starttls            # starttls (port 587) | ssl (port 465) | none (port 25)
        username: risingtide
        password: "${SMTP_PASSWORD}"
        from: Rising Tide <rising-tide@council.gov.uk>
        to: [csc.duty@council.gov.uk, "Head of CSC <head.csc@council.gov.uk>"]

Recipients: the addresses in ``to`` (optional) and the ``email`` of each person the
response pages who is on duty (``Notice.people``), each once, in that order. A notice is one
message: every recipient is on its envelope and in its ``To:`` header (a person is named
``Name <address>``), so nobody gets one per line.

The message is ``multipart/alternative`` with a plain-text part and an HTML part (see
``risingtide.messages``; ``subject_template``, ``template`` and ``html_template`` override
them for a message about one line). A notice about several lines is one digest, highest
tier first; ``digest_subject_template`` and ``digest_template`` override its subject and
body (the HTML part then shows the text). Headers: ``From``, ``To``, ``Subject``, ``Date``,
``Message-ID``, ``X-Rising-Tide-Key: <notice key>``, ``X-Rising-Tide-Tier`` (the highest
tier in the message) and ``Auto-Submitted: auto-generated`` (RFC 3834: out-of-office replies
stay away).

Idempotency: the ``Message-ID`` is derived from the notice key (``<{sha256(key)[:32]}
.risingtide@{from domain}>``; for a single order its own key), so a repeat of a notice
carries the same Message-ID and mail clients and archives show it as one message. Within
one daemon run the responder also remembers which recipients the relay accepted for a key,
and a retry goes only to the others (after a temporary refusal of one recipient, the rest
are not mailed twice). A notice with no recipient at all (no ``to``, and nobody paged on
duty) fails, not retryable (reason ``no_recipients``), so that its fallback runs.

Addresses (``from``, ``to``) are checked when the config is loaded (``email.utils``
parsing plus a conservative address pattern); ``Name <address>`` is allowed. Credentials
need ``starttls`` or ``ssl``: a password never crosses the network in clear. ``ca_file``
trusts a private CA (a council's internal relay) on top of nothing else; without it the
system's CAs are used, and the relay's certificate and host name are always verified.

Failures, classified for the dispatcher::

    reason "timeout"          no answer within ``timeout``                      retryable
    reason "network"          connection refused or dropped                     retryable
    reason "smtp_temporary"   a 4xx reply (451 try later, 421, 452, 454 …)      retryable
    reason "smtp_permanent"   a 5xx reply (550 unknown recipient, 554 …)        not retryable
    reason "auth"             the relay refused the username/password (535)     not retryable
    reason "tls"              the relay's certificate failed verification, or
                              it does not offer STARTTLS                        not retryable
    reason "template"         a message template failed                         not retryable
    reason "no_recipients"    nobody to send to                                 not retryable

When some recipients are accepted and others refused, the accepted ones are remembered and
the error names the refused ones (retryable if any refusal was temporary).

Doc pages followed: aiosmtplib's ``send`` API and exception hierarchy
(``aiosmtplib/api.py``, ``aiosmtplib/errors.py``), RFC 5321 §4.2 (reply codes: 4yz
transient, 5yz permanent), RFC 3834 (``Auto-Submitted``), RFC 5322 §3.6.4 (``Message-ID``).
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Final, Literal

import aiosmtplib
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from risingtide.addresses import check_email_address
from risingtide.clock import Clock
from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.domain.people import Person
from risingtide.messages import MessageTemplates, Rendered, check_html_template
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
    DigestTemplate,
    MessageTemplate,
    nothing_to_send,
    render_notice,
)

__all__ = [
    "PLUGIN",
    "EmailAddress",
    "EmailResponder",
    "EmailSettings",
    "build_message",
    "check_email_address",
    "message_id",
    "recipients",
]

DEFAULT_PORTS: Final = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT: Final = timedelta(seconds=15)
#: How many order keys the responder remembers accepted recipients for.
_REMEMBER: Final = 1000

#: An email address, checked when the config is loaded.
EmailAddress = Annotated[str, AfterValidator(check_email_address)]
HtmlTemplate = Annotated[str, AfterValidator(check_html_template)]


def _address(value: str) -> str:
    return email.utils.parseaddr(value)[1]


class EmailSettings(BaseModel):
    """SMTP relay ``host``/``port``/``security``, optional ``username``/``password``,
    ``from``, ``to`` (optional: the people paged are added), optional templates (digest
    ones too), ``ca_file`` and ``timeout`` (default 15s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_: EmailAddress = Field(alias="from")
    # Optional (the people a response pages are added), but an empty list written out is
    # a mistake, refused by ``_unique`` (not min_length: with one bad address that would
    # also say "must not be empty", a second error for one mistake).
    to: tuple[EmailAddress, ...] = ()
    subject_template: MessageTemplate | None = None
    template: MessageTemplate | None = None
    html_template: HtmlTemplate | None = None
    digest_subject_template: DigestTemplate | None = None
    digest_template: DigestTemplate | None = None
    ca_file: str | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT

    @field_validator("to")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must not be empty")
        seen: set[str] = set()
        for item in value:
            address = _address(item).lower()
            if address in seen:
                raise ValueError(f'"{item}" is listed twice')
            seen.add(address)
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f'"{value}" is not a file (a PEM bundle of CA certificates)')
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.username is not None and self.security == "none":
            raise ValueError(
                "a username and password need security: starttls or ssl "
                "(they would cross the network in clear)"
            )
        return self

    @property
    def effective_port(self) -> int:
        """``port``, or the usual port for ``security``."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]


def message_id(key: str, sender: str) -> str:
    """The Message-ID for a notice key: the same key always gives the same Message-ID."""
    domain = _address(sender).rpartition("@")[2] or "risingtide.invalid"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.risingtide@{domain}>"


def recipients(settings: EmailSettings, people: Sequence[Person]) -> list[Address]:
    """Who a notice goes to: ``to``, then each person's email (named as the person unless
    the address has a name of its own), each address once; people without one skipped.

    ``Address`` objects, so that the email package quotes a name such as ``O'Neil, Siân``
    correctly in ``To:`` (a comma in a name would otherwise split it in two).
    """
    found: list[Address] = []
    for text in settings.to:
        name, bare = email.utils.parseaddr(text)
        found.append(Address(display_name=name, addr_spec=bare))
    for person in people:
        if person.email:
            name, bare = email.utils.parseaddr(person.email)
            found.append(
                Address(display_name=name or " ".join(person.name.split()), addr_spec=bare)
            )
    out: list[Address] = []
    seen: set[str] = set()
    for address in found:
        if address.addr_spec.lower() not in seen:
            seen.add(address.addr_spec.lower())
            out.append(address)
    return out


def build_message(
    settings: EmailSettings,
    key: str,
    tier: int,
    to: Sequence[Address],
    message: Rendered,
    date: str,
) -> EmailMessage:
    """The ``multipart/alternative`` email for one notice (``key``) to ``to``; ``tier`` is
    the highest tier it is about."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = settings.from_
    msg["To"] = tuple(to)
    msg["Subject"] = message.subject
    msg["Date"] = date
    msg["Message-ID"] = message_id(key, settings.from_)
    msg["X-Rising-Tide-Key"] = key
    msg["X-Rising-Tide-Tier"] = str(tier)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(message.text + "\n")
    msg.add_alternative(message.html, subtype="html")
    return msg


# Headers up to RFC 5322's 998 characters are not folded: X-Rising-Tide-Key has no spaces
# to fold at, and a fold right after the colon reaches readers as a leading space. Messages
# are flattened with this policy here, because aiosmtplib would re-flatten an EmailMessage
# with its own (folding at 78).
_POLICY: Final = email.policy.SMTP.clone(max_line_length=998)


def _tls_context(settings: EmailSettings) -> ssl.SSLContext | None:
    if settings.security == "none":
        return None
    # Always verified: certificate chain and host name. A private CA goes in ca_file.
    return ssl.create_default_context(cafile=settings.ca_file)


def _reply(code: int, text: str) -> str:
    return f"{code} {' '.join(text.split())}".strip()


class EmailResponder:
    """Sends each notice as one email through one SMTP relay."""

    undoable = False

    def __init__(self, name: str, settings: EmailSettings, clock: Clock) -> None:
        """Send through ``settings``' relay; ``clock`` dates the messages."""
        self.name = name
        self._settings = settings
        self._clock = clock
        self._templates = MessageTemplates(
            subject=settings.subject_template, text=settings.template, html=settings.html_template
        )
        self._digest_templates = MessageTemplates(
            subject=settings.digest_subject_template, text=settings.digest_template
        )
        self._tls = _tls_context(settings)
        # key -> recipients the relay accepted: a retry mails only the others.
        self._accepted: OrderedDict[str, set[str]] = OrderedDict()

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Mail the message for ``order`` alone; return ``sent to N recipients``."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Mail the message (one line) or digest (several) for ``notice`` to ``to`` and the
        people paged; return ``sent to N recipients``."""
        skipped = nothing_to_send(notice)
        if skipped is not None:
            return skipped
        facts, message = render_notice(self.name, notice, self._templates, self._digest_templates)
        to = recipients(self._settings, notice.people)
        if not to:
            raise ResponseError(
                f"response {self.name!r}: nobody to send to (no 'to' addresses, and nobody "
                "paged is on duty with an email address)",
                reason="no_recipients",
                retryable=False,
            )
        everyone = [address.addr_spec for address in to]
        done = set(self._accepted.get(notice.key, ()))
        pending = [r for r in everyone if r not in done]
        if not pending:
            return f"already sent to all {len(everyone)} recipients"
        date = email.utils.format_datetime(self._clock.now())
        tier = max(f.tier for f in facts)
        msg = build_message(self._settings, notice.key, tier, to, message, date)
        refused = await self._send(msg, pending)
        accepted = [r for r in pending if r not in refused]
        self._remember(notice.key, accepted)
        if refused:
            temporary = any(400 <= code < 500 for code, _ in refused.values())
            shown = "; ".join(f"{r} ({_reply(c, t)})" for r, (c, t) in refused.items())
            sent = f"; sent to {len(accepted)} other(s)" if accepted else ""
            raise ResponseError(
                f"response {self.name!r}: the relay refused {shown}{sent}",
                reason="smtp_temporary" if temporary else "smtp_permanent",
                retryable=temporary,
            )
        again = f" ({len(done)} had it already)" if done else ""
        plural = "" if len(accepted) == 1 else "s"
        return f"sent to {len(accepted)} recipient{plural}{again}"

    def _remember(self, key: str, accepted: list[str]) -> None:
        if not accepted:
            return
        self._accepted.setdefault(key, set()).update(accepted)
        self._accepted.move_to_end(key)
        while len(self._accepted) > _REMEMBER:
            self._accepted.popitem(last=False)

    async def _send(self, msg: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, str]]:
        """Send; return the refused recipients (code, text); raise classified errors."""
        s = self._settings
        where = f"response {self.name!r}: SMTP {s.host}:{s.effective_port}"
        try:
            errors, _ = await aiosmtplib.send(
                msg.as_bytes(policy=_POLICY),
                sender=_address(s.from_),
                recipients=recipients,
                hostname=s.host,
                port=s.effective_port,
                username=s.username,
                password=None if s.password is None else s.password.get_secret_value(),
                use_tls=s.security == "ssl",
                start_tls=s.security == "starttls",
                tls_context=self._tls,
                timeout=s.timeout.total_seconds(),
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            temporary = 400 <= exc.code < 500  # 454: "temporary authentication failure"
            raise ResponseError(
                f"{where}: login refused: {_reply(exc.code, exc.message)}",
                reason="smtp_temporary" if temporary else "auth",
                retryable=temporary,
            ) from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = {r.recipient: (r.code, r.message) for r in exc.recipients}
            temporary = any(400 <= code < 500 for code, _ in codes.values())
            shown = "; ".join(f"{r} ({_reply(c, t)})" for r, (c, t) in codes.items())
            raise ResponseError(
                f"{where}: every recipient refused: {shown}",
                reason="smtp_temporary" if temporary else "smtp_permanent",
                retryable=temporary,
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            temporary = 400 <= exc.code < 500
            raise ResponseError(
                f"{where}: {_reply(exc.code, exc.message)}",
                reason="smtp_temporary" if temporary else "smtp_permanent",
                retryable=temporary,
            ) from None
        except aiosmtplib.SMTPNotSupported as exc:
            # The relay lacks an extension the message needs (SMTPUTF8): retrying won't help.
            raise ResponseError(
                f"{where}: {exc.message}", reason="smtp_unsupported", retryable=False
            ) from None
        except aiosmtplib.SMTPTimeoutError as exc:
            raise ResponseError(
                f"{where}: no answer within {s.timeout.total_seconds():g}s ({exc.message})",
                reason="timeout",
                retryable=True,
            ) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            cert = _cert_failure(exc)
            if cert is not None:
                raise ResponseError(
                    f"{where}: the relay's certificate is not trusted: {cert}",
                    reason="tls",
                    retryable=False,
                ) from None
            raise ResponseError(
                f"{where}: {_text(exc)}", reason="network", retryable=True
            ) from None
        except aiosmtplib.SMTPException as exc:
            if "STARTTLS" in exc.message:
                # Asked for STARTTLS and the relay does not offer it: never fall back to
                # clear text; a config (or relay) problem for a person to fix.
                raise ResponseError(
                    f"{where}: {exc.message}", reason="tls", retryable=False
                ) from None
            raise ResponseError(f"{where}: {exc.message}", reason="smtp_error") from None
        return {r: (resp.code, resp.message) for r, resp in errors.items()}


def _cert_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _text(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPException):
        return exc.message
    return str(exc) or type(exc).__name__


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(EmailSettings, settings, f"response {name!r}")
    return EmailResponder(name, settings, ctx.clock)


PLUGIN = ResponderPlugin(
    type="email",
    settings_model=EmailSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Send an email (plain text and HTML) through an SMTP relay.",
    address=lambda _settings: "email",
)
