"""The ``apprise`` responder: the same message through any of the services Apprise reaches.

For the long tail of services Rising Tide has no channel of its own for (Telegram,
Discord, Matrix, ntfy, Pushover, SMS gateways, plain SMTP…), the `Apprise
<https://github.com/caronc/apprise>`_ library turns one URL per service into a
notification. Apprise is an optional extra (``pip install 'risingtide[apprise]'``): the
daemon runs without it, and only a config with an ``apprise`` response asks for it.

::

    responses:
      tell_ops_chat:
        type: apprise
        urls:
          - "${APPRISE_TELEGRAM_URL}"     # tgram://bottoken/ChatID
          - "mailto://smtp.council.gov.uk?from=rt@council.gov.uk&to=csc.duty@council.gov.uk"
        format: text            # text (default) | markdown | html: what the body is written in
        timeout: 15s            # per send, each URL on its own

``urls`` is a list (or one string) of Apprise URLs. They usually carry tokens, so they are
held as secrets: each is checked when the config is loaded by asking Apprise whether it
understands it, and an error quotes only its scheme (``'xyz://…' is not a URL Apprise
understands``); Apprise's own log line about a URL it cannot parse (which quotes the whole
URL) is held back while the config is checked. One entry may hold several URLs separated
by spaces or commas, as Apprise itself allows; the entry is then one unit for retries.

What is sent, for a notice about one line: the title is the message subject (or
``subject_template``), the body is the message text (or ``template``) — see
``risingtide.messages`` — without its first line when that is the headline again (Apprise
shows the title, or puts it at the top of the body for a service without titles). For a
notice about several lines it is one digest message (the built-in digest: a response's
templates are written, and checked, for one line). The body always ends with a footer line
carrying the idempotency key::

    Rising Tide · council_tax · <notice key>

because most services Apprise reaches do not de-duplicate, and the key makes a repeat
recognisable. ``format`` declares what the body is written in (Apprise's ``body_format``)
so Apprise converts it for each service: ``text`` sends the plain text; ``markdown``
escapes the built-in text for Markdown (a custom ``template`` is sent as written, so it may
use Markdown itself) with the key in a code span; ``html`` sends the HTML message. The
notification type (an icon or colour on many services) is ``success`` back to calm,
``info`` for a lower tier, ``warning`` for a raised tier below 3 and stale figures, and
``failure`` for tier 3 and above; a digest takes its most severe line's.

A JSON receiver (``json://host/path``) gets Apprise's payload::

    {"version": "1.0", "title": "<subject>", "message": "<body>", "attachments": [],
     "type": "warning"}

Each entry of ``urls`` is its own Apprise object, built once when the responder is built
(reused for every message: Apprise keeps no per-call state on it) and sent to
concurrently. Apprise reports only success or failure per call, not why, so failures are
classified coarsely::

    reason "apprise_failed"      Apprise reported the service failed (a 5xx or 4xx,
                                 connection refused, a refused login …)      retryable
    reason "timeout"             no result within ``timeout``, or Apprise's
                                 own service timeout                         retryable
    reason "apprise_no_service"  Apprise loaded no service from the URL      not retryable
    reason "template"            a message template failed                   not retryable

A refused login or an unknown chat is retried until the dispatcher gives up, since Apprise
does not tell it apart from an outage. Errors name the entry (``urls[1]``) and, where
Apprise returns a result object (older versions return only True or False), the service
(``JSON``, ``Telegram``), never the URL; why a service failed is in Apprise's own warnings
on the ``apprise`` logger (which name the host, not the token, at WARNING). On a timeout
Apprise's worker thread is abandoned, not stopped: it ends at the plugin's own socket
timeouts.

Delivery is at-least-once: a retry after a lost answer (or a restart) sends again, and
the footer's key is how a reader tells a repeat. Within one daemon run the responder
remembers which entries succeeded for a key, so a retry after some entries failed sends
only to the others.

An UNDO takes nothing back (a notification is not undone); a notice's UNDO items are left
out, and a notice of UNDOs alone sends nothing. The channel posts to fixed URLs: it pages
no one by address.

Doc pages followed (Apprise's documentation, caronc/apprise-docs): "Quick Start"
(``Apprise()``, ``add()`` returning False for a URL it cannot load, ``notify()``,
``NotifyType`` info/success/warning/failure), "Advanced Usage" (``await
async_notify(...)``), "Notification Results" (``AppriseResult``: ``status`` SUCCESS,
FAILURE, NOMATCH, PARTIAL, TIMEOUT; older versions returned True, False or None),
"Formatting" (``body_format`` declares the input format; Apprise converts per service),
"Custom JSON Notifications" (``json://``: the ``version``/``title``/``message``/``type``
payload) and "Email Notifications" (``mailto://`` to a local relay without
authentication, port 25 unless given).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import html
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    field_validator,
    model_validator,
)

from risingtide.config.schema import PositiveDuration
from risingtide.messages import DEFAULTS, MessageFacts, MessageTemplates, Rendered
from risingtide.ports import (
    BuildContext,
    Notice,
    Responder,
    ResponderPlugin,
    ResponseContext,
    ResponseError,
    settings_as,
)
from risingtide.responders.webhook import MessageTemplate, nothing_to_send, render_notice

if TYPE_CHECKING:
    import apprise

    from risingtide.domain.model import ResponseOrder

__all__ = [
    "EXTRA_NEEDED",
    "PLUGIN",
    "AppriseResponder",
    "AppriseSettings",
    "apprise_installed",
    "check_apprise_url",
]

DEFAULT_TIMEOUT: Final = timedelta(seconds=15)
EXTRA_NEEDED: Final = (
    "the apprise channel needs the \"apprise\" extra: pip install 'risingtide[apprise]'"
)
#: How many notice keys the responder remembers the successful entries for.
_REMEMBER: Final = 1000
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# Apprise's own separators between URLs in one string (spaces and commas).
_SEPARATORS = re.compile(r"[\s,]+")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_SEVERITY: Final = ("success", "info", "warning", "failure")

# --------------------------------------------------------------------------- Apprise, lazily


def apprise_installed() -> bool:
    """True when the ``apprise`` package can be imported."""
    try:
        import apprise  # noqa: F401 (only whether it imports)
    except ImportError:
        return False
    return True


# While set (in this thread or task only), records of the "apprise" logger are dropped:
# Apprise logs a URL it cannot parse in full, and a URL may carry a token.
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("rt_apprise_quiet", default=False)


class _QuietFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET.get()


# Installed once, on the logger's name alone (Apprise need not be installed); a no-op
# except inside ``_quiet()``. A ContextVar, not a logger switch, so that Apprise's log
# lines from sends running in other threads at the same time are not lost.
logging.getLogger("apprise").addFilter(_QuietFilter())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _loads(url: str) -> bool:
    """Whether Apprise loads every service named in ``url`` (quietly)."""
    import apprise

    with _quiet():
        return bool(apprise.Apprise().add(url))


def _shown(url: str) -> str:
    """``url`` as an error may quote it: its scheme only (the rest may be a token)."""
    match = _SCHEME.match(url)
    return f"'{match.group(1)}://…'" if match else "'…'"


def check_apprise_url(value: SecretStr) -> SecretStr:
    """``value`` when Apprise understands every URL in it; else ``ValueError``.

    The error quotes the scheme of the first URL Apprise refuses, never the rest of it.
    """
    url = value.get_secret_value()
    if not url.strip():
        raise ValueError("must not be empty (is its environment variable set?)")
    if not apprise_installed():
        raise ValueError(EXTRA_NEEDED)
    if _loads(url):
        return value
    parts = [p for p in _SEPARATORS.split(url) if p]
    refused = next((p for p in parts if not _loads(p)), url)
    raise ValueError(
        f"{_shown(refused)} is not a URL Apprise understands "
        "(see Apprise's list of services for each one's URL)"
    )


#: An Apprise URL (or several in one string), held as a secret, checked at config time.
AppriseUrl = Annotated[SecretStr, AfterValidator(check_apprise_url)]
AppriseFormat = Literal["text", "markdown", "html"]

# --------------------------------------------------------------------------- settings


class AppriseSettings(BaseModel):
    """``urls``: Apprise URLs (secrets); optional ``template``/``subject_template``,
    ``format`` (text, markdown or html; default text), ``timeout`` (default 15s)."""

    # hide_input_in_errors: a malformed URL (a secret) must not reach logs via str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    urls: tuple[AppriseUrl, ...]
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
    format: AppriseFormat = "text"
    timeout: PositiveDuration = DEFAULT_TIMEOUT

    @model_validator(mode="before")
    @classmethod
    def _needs_apprise(cls, data: Any) -> Any:
        # One clear error for the whole block, rather than one per URL.
        if not apprise_installed():
            raise ValueError(EXTRA_NEEDED)
        return data

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # ``urls: "${APPRISE_URLS}"`` is one entry (which may itself hold several URLs).
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _not_none(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        # Not ``min_length``: pydantic would also call a list of one bad URL too short.
        if not value:
            raise ValueError("must list at least one Apprise URL")
        return value


# --------------------------------------------------------------------------- the message


@dataclass(frozen=True, slots=True)
class _Message:
    title: str
    body: str
    kind: str  # Apprise's notify type: info, success, warning or failure


def _severity(facts: MessageFacts) -> str:
    if facts.kind == "back_to_calm":
        return "success"
    if facts.kind == "tier_lowered":
        return "info"
    if facts.kind != "stats_stale" and facts.tier >= 3:
        return "failure"
    return "warning"


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _markdown(text: str) -> str:
    """Plain text as Markdown: specials escaped, each line kept (a hard line break)."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(
        "  \n".join(_markdown_escape(line.strip()) for line in p.splitlines() if line.strip())
        for p in paragraphs
    )


def _code(text: str) -> str:
    # A code span shows its text as is; a backtick inside needs a longer fence.
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _body(
    rendered: Rendered, fmt: AppriseFormat, *, custom_text: bool, lines: str, key: str
) -> str:
    """The body in ``fmt``, ending with the footer line that carries ``key``."""
    if fmt == "html":
        footer = (
            '<p style="margin:0;font-size:13px;color:#505a5f">Rising Tide &middot; '
            f"{html.escape(lines)} &middot; {html.escape(key)}</p>"
        )
        if html.escape(key) in rendered.html:
            return rendered.html  # the built-in one-line HTML already ends with it
        at = rendered.html.rfind("</body>")
        if at < 0:
            return f"{rendered.html}\n{footer}"
        return f"{rendered.html[:at]}{footer}\n{rendered.html[at:]}"
    text = _without_title(rendered)
    if fmt == "markdown":
        text = text if custom_text else _markdown(text)
        return f"{text}\n\nRising Tide · {_markdown_escape(lines)} · {_code(key)}".lstrip()
    return f"{text}\n\nRising Tide · {lines} · {key}".lstrip()


def _without_title(rendered: Rendered) -> str:
    """The text without its first line when that line is the subject (the built-in text
    starts with the headline): Apprise shows the title, or puts it at the top of the
    body itself for a service without titles."""
    first, _, rest = rendered.text.partition("\n")
    return rest.strip() if first.strip() == rendered.subject else rendered.text


def _compose(
    name: str, notice: Notice, templates: MessageTemplates, fmt: AppriseFormat
) -> _Message:
    """One message for the notice's APPLY items (``render_notice``: one line with the
    response's templates, several as the built-in digest)."""
    facts, rendered = render_notice(name, notice, templates, DEFAULTS)
    body = _body(
        rendered,
        fmt,
        custom_text=len(facts) == 1 and templates.text is not None,
        lines=", ".join(f.line for f in facts),
        key=notice.key,
    )
    kind = max((_severity(f) for f in facts), key=_SEVERITY.index)
    return _Message(title=rendered.subject, body=body, kind=kind)


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one entry of ``urls`` did: ``reason`` is empty on success."""

    index: int
    reason: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def retryable(self) -> bool:
        return self.reason in ("apprise_failed", "timeout")

    def __str__(self) -> str:
        return f"urls[{self.index}] {self.detail}"


def _outcome(index: int, result: object) -> _Outcome:
    """Classify what ``async_notify`` returned: an ``AppriseResult`` (iterating it gives
    each service's result), or True/False/None from older Apprise versions."""
    status = getattr(getattr(result, "status", None), "name", None)
    if status is None:
        status = "SUCCESS" if result is True else "NOMATCH" if result is None else "FAILURE"
    if status == "SUCCESS":
        return _Outcome(index)
    # Service names only ("JSON", "Telegram"): a URL, even masked, may show a token.
    services = result if isinstance(result, Iterable) else ()
    failed = [str(getattr(r, "name", "?")) for r in services if not r]
    named = f" ({', '.join(failed)})" if failed else ""
    if status == "NOMATCH":
        return _Outcome(index, "apprise_no_service", "loaded no service")
    if status == "TIMEOUT":
        return _Outcome(index, "timeout", f"timed out in Apprise{named}")
    return _Outcome(index, "apprise_failed", f"failed{named}")


class AppriseResponder:
    """Sends each notice through every configured Apprise URL."""

    undoable = False

    def __init__(self, name: str, settings: AppriseSettings) -> None:
        """Build one Apprise object per entry of ``settings.urls`` (reused for every send)."""
        import apprise

        self.name = name
        self._settings = settings
        self._templates = MessageTemplates(
            subject=settings.subject_template, text=settings.template
        )
        asset = apprise.AppriseAsset(app_id="Rising Tide", app_desc="Rising Tide")
        self._targets: list[apprise.Apprise] = []
        for index, url in enumerate(settings.urls):
            target = apprise.Apprise(asset=asset)
            with _quiet():
                loaded = target.add(url.get_secret_value())
            if not loaded:
                # Checked when the config was loaded: only a changed Apprise gets here.
                raise ValueError(f"response {name!r}: urls[{index}] is not a URL Apprise loads")
            self._targets.append(target)
        # key -> entries that succeeded: a retry sends only to the others.
        self._sent: OrderedDict[str, set[int]] = OrderedDict()

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """``notify(Notice.of(order, context))``."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Send the notice through each URL not yet sent to for its key.

        Returns ``sent through N Apprise URL(s)``; raises ``ResponseError`` naming the
        entries that failed (after remembering those that did not).
        """
        skipped = nothing_to_send(notice)
        if skipped is not None:
            return skipped
        message = _compose(self.name, notice, self._templates, self._settings.format)
        done = set(self._sent.get(notice.key, ()))
        pending = [i for i in range(len(self._targets)) if i not in done]
        if not pending:
            return f"already sent through all {len(self._targets)} Apprise URLs"
        outcomes = await asyncio.gather(*(self._send(i, message) for i in pending))
        self._remember(notice.key, [o.index for o in outcomes if o.ok])
        failed = [o for o in outcomes if not o.ok]
        sent = len(outcomes) - len(failed)
        if failed:
            first = next((o for o in failed if o.retryable), failed[0])
            also = f"; sent through {sent} other(s)" if sent else ""
            raise ResponseError(
                f"response {self.name!r}: Apprise {'; '.join(map(str, failed))}{also}",
                reason=first.reason,
                retryable=any(o.retryable for o in failed),
            )
        again = f" ({len(done)} had it already)" if done else ""
        return f"sent through {sent} Apprise URL{'' if sent == 1 else 's'}{again}"

    async def _send(self, index: int, message: _Message) -> _Outcome:
        limit = self._settings.timeout.total_seconds()
        try:
            # Apprise runs blocking plugins in its own worker threads: cancelling stops the
            # wait, and the thread ends at the plugin's own socket timeouts.
            async with asyncio.timeout(limit):
                result = await self._targets[index].async_notify(
                    body=message.body,
                    title=message.title,
                    notify_type=message.kind,
                    body_format=self._settings.format,
                )
        except TimeoutError:
            return _Outcome(index, "timeout", f"gave no result within {limit:g}s")
        except Exception as exc:  # a plugin that raised: its text may quote the URL
            return _Outcome(index, "apprise_failed", f"raised {type(exc).__name__}")
        return _outcome(index, result)

    def _remember(self, key: str, sent: list[int]) -> None:
        if not sent:
            return
        self._sent.setdefault(key, set()).update(sent)
        self._sent.move_to_end(key)
        while len(self._sent) > _REMEMBER:
            self._sent.popitem(last=False)


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(AppriseSettings, settings, f"response {name!r}")
    return AppriseResponder(name, settings)


PLUGIN = ResponderPlugin(
    type="apprise",
    settings_model=AppriseSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Notify through Apprise: one URL per service (Telegram, ntfy, Matrix, …).",
)
