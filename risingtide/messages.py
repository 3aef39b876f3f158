"""Message content for notifications: what a duty manager reads on a phone.

Every notification channel (email, GOV.UK Notify, Slack, Teams, webhook) says the same
things, written here once:

1. ``facts_from(order, context)`` gathers the facts of one order into a frozen
   :class:`MessageFacts` (line, tier, figures, how long raised, what is switched on, the
   reason, the acknowledge link) and picks the message *kind*;
2. ``render(facts, templates)`` writes a :class:`Rendered` message — a one-line
   ``subject``, a plain ``text`` body, an ``html`` body and a short ``sms`` — from built-in
   defaults or from the response's own templates;
3. ``render_digest(facts_list)`` writes one message about several lines ("a citywide surge
   is one text, not ten"), highest tier first (``digest_order``), from built-in defaults or
   from the response's own digest templates, which see other variables
   (``DIGEST_VARIABLES``: ``lines``, ``count``, …) than a single line's.

Kinds (``MessageFacts.kind``), chosen from the order's trigger:

=================  =========================================================
``tier_raised``    ``tier_changed`` going up (and catch-ups: silence ended,
                   re-assert, declared tiers)
``reminder``       ``reminder``: the tier is still unacknowledged
``escalated``      ``escalated``: an escalation step fell due
``tier_lowered``   ``tier_changed`` going down, to a tier above 0
``back_to_calm``   ``tier_changed`` to tier 0
``stats_stale``    ``stats_stale``: no fresh figures; the tier is held
``report``         ``report``: a scheduled report (``risingtide.weekly``) for
                   the pseudo line ``*``; its text is the order's ``reason``
=================  =========================================================

The trigger ``acknowledgement_expired`` (the duty rota's handover) is a ``tier_raised``
whose headline says whose acknowledgement lapsed ("Asha's acknowledgement of Council Tax
at tier 2 lapsed at the 14:00 handover; please acknowledge"). The facts are gathered in
``risingtide.message_facts`` and the wording of each kind is in
``risingtide.message_wording``; both are re-exported here.

A demand calendar event's lead-time responses (trigger ``demand_event_due``) are
``tier_raised`` at the line's current tier (calm too), headed with the order's reason.

Whether a tier change went up or down comes from ``context.extra["tier_from"]`` when the
runtime supplies it, else from the order's idempotency key (whose occurrence part is
``{from}-{to}@{time}`` for a tier change, see ``risingtide.domain.responses``).

``context.extra`` keys read here (all optional; a missing or malformed one is left out of
the message, never an error, because a message must still go out):

- ``"entered_at"`` (aware ``datetime``): when the line entered its current tier;
- ``"live_switches"`` (list of str): the switch responses switched on for the line now;
- ``"ack_url"`` (str, ``http(s)://`` only): where the duty manager acknowledges the tier;
- ``"tier_from"`` (int): the tier before a tier change;
- ``"framework_tiers"`` (list of str, the tier names for levels 1..N; or a mapping from
  level to name): names the previous tier and gives "tier 2 of 4";
- ``"board_url"`` (str, ``http(s)://`` only): the duty board, where a message about several
  lines sends people (a digest ends with it; its SMS keeps it like the acknowledge link).

Templates are Jinja2 strings from the config, rendered in a sandbox
(``ImmutableSandboxedEnvironment``): attribute tricks such as ``{{ ''.__class__ }}`` raise
``SecurityError``, and an unknown variable raises too (``StrictUndefined``), so a broken
template is a :class:`TemplateError` — at config time, where ``check_template`` renders
each template against sample facts of every kind (``check_digest_template``: against
sample digests), or at run time. HTML templates are autoescaped; text templates are not
(they are not HTML).

The variables a template sees are listed in ``TEMPLATE_VARIABLES`` (a digest template's in
``DIGEST_VARIABLES``; both in ``docs/channels.md``). Times are shown in UK time
(``DISPLAY_TZ``).

SMS: the default ``sms`` text uses only GSM 03.38 characters (an en dash or a curly quote
would switch the whole text to UCS-2 and cut a segment from 153 to 67 characters) and is
fitted to at most ``SMS_MAX_SEGMENTS`` (3) segments — 459 characters — by shortening the
reason and then dropping the least important figures; the headline and the acknowledge
link are kept. A digest's SMS lists as many lines as fit, highest tier first, says how many
it left out ("+N more") and ends with the board link when one is known.

Doc pages followed: Jinja2 "Sandbox" (``ImmutableSandboxedEnvironment``,
``SecurityError``) and "API" (``StrictUndefined``, ``finalize``, autoescaping); 3GPP TS
23.038 (the GSM 7-bit default alphabet and its extension table; 160/153 septets per
segment, UCS-2 70/67); Slack "Formatting text for app surfaces" (escape ``&``, ``<``, ``>``).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from risingtide.capacity_text import capacity_line, capacity_variables, forecast_line
from risingtide.message_facts import (
    EXTRA_KEYS,
    KINDS,
    REPORT_TRIGGER,
    MessageFacts,
    MessageKind,
    facts_from,
)
from risingtide.message_wording import (
    DISPLAY_TZ,
    format_duration,
    format_percent,
    headline,
    report_lines,
    report_subject,
)
from risingtide.message_wording import clock as _clock
from risingtide.message_wording import tier_label as _tier_label

# The facts and the wording live in their own modules; these names stay importable here.
_headline = headline

__all__ = [
    "DIGEST_VARIABLES",
    "DISPLAY_TZ",
    "EXTRA_KEYS",
    "KINDS",
    "REPORT_TRIGGER",
    "SMS_MAX_SEGMENTS",
    "TEMPLATE_VARIABLES",
    "MessageFacts",
    "MessageKind",
    "MessageTemplates",
    "Rendered",
    "TemplateError",
    "check_digest_template",
    "check_html_template",
    "check_template",
    "digest_order",
    "digest_variables",
    "facts_from",
    "format_duration",
    "format_percent",
    "gsm_length",
    "headline",
    "render",
    "render_digest",
    "render_string",
    "slack_escape",
    "sms_safe",
    "sms_segments",
    "variables",
    "wait_line",
]

#: The default SMS fits in this many GSM-7 segments (153 characters each when split).
SMS_MAX_SEGMENTS: Final = 3


def wait_line(f: MessageFacts) -> str:
    """``Average wait 6m 40s (target 3m)`` (or "not known")."""
    target = f" (target {format_duration(f.target_wait)})" if f.target_wait > 0 else ""
    if f.avg_wait is None:
        return f"Average wait not known{target}"
    return f"Average wait {format_duration(f.avg_wait)}{target}"


def _waiting_line(f: MessageFacts) -> str | None:
    parts = []
    if f.calls_waiting is not None:
        parts.append(f"{f.calls_waiting} call{'' if f.calls_waiting == 1 else 's'} waiting")
    if f.agents_available is not None:
        parts.append(f"{f.agents_available} agent{'' if f.agents_available == 1 else 's'} free")
    return ", ".join(parts) if parts else None


def _abandon_line(f: MessageFacts) -> str | None:
    if f.abandon_rate is None:
        return None
    window = f" (last {format_duration(f.window)})" if f.window else ""
    return f"Abandoned {format_percent(f.abandon_rate)}{window}"


def _longest_line(f: MessageFacts) -> str | None:
    return None if f.longest_wait is None else f"Longest wait {format_duration(f.longest_wait)}"


def _since_line(f: MessageFacts) -> str | None:
    if f.kind == "tier_raised" and f.trigger == "tier_changed":
        return f"Raised at {_clock(f.at)}"
    if f.kind != "tier_raised" and f.kind not in ("reminder", "escalated", "stats_stale"):
        return None
    if f.entered_at is not None:
        held = f.raised_for
        length = f" ({format_duration(held)})" if held is not None else ""
        return f"At tier {f.tier} since {_clock(f.entered_at)}{length}"
    return None


def _stale_line(f: MessageFacts) -> str | None:
    if f.kind != "stats_stale":
        return None
    return "No figures received" if f.stats_at is None else f"Last figures at {_clock(f.stats_at)}"


def _on_line(f: MessageFacts) -> str | None:
    return f"Already on: {', '.join(f.live_switches)}" if f.live_switches else None


def _capacity_line(f: MessageFacts) -> str | None:
    if f.kind == "stats_stale":  # old figures: no advice on staffing
        return None
    return capacity_line(f.agents_needed, f.capacity_gap, f.target_wait, f.predicted_wait)


def _figures(f: MessageFacts) -> list[str]:
    if f.kind == "report":
        return report_lines(f.reason)
    lines = (
        _stale_line(f),
        wait_line(f),
        _longest_line(f),
        _waiting_line(f),
        _abandon_line(f),
        None if f.kind == "stats_stale" else forecast_line(f.forecast_wait, f.target_wait),
        _capacity_line(f),
        _since_line(f),
        _on_line(f),
    )
    return [line for line in lines if line]


def _colour(f: MessageFacts) -> str:
    """A GOV.UK palette colour for the message's severity (HTML border, card accents)."""
    if f.kind in ("back_to_calm", "tier_lowered"):
        return "#00703c"  # green
    if f.kind == "stats_stale":
        return "#505a5f"  # grey
    return "#d4351c" if f.tier >= 3 else "#f47738"  # red, orange


# --------------------------------------------------------------------------- SMS

# GSM 03.38: the basic set (one septet each) and the extension set (two septets each).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION: Final = frozenset("^{}\\[~]|€")
_SMS_REPLACEMENTS: Final = {
    "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "≥": ">=", "≤": "<=",
    "…": "...", "×": "x", "·": "-", "•": "-", "\u00a0": " ", "\t": " ", "≠": "!=",
}  # fmt: skip


def sms_safe(text: str) -> str:
    """``text`` in GSM 03.38 characters only: dashes, quotes and ≥ spelt out, accents
    dropped where GSM lacks the letter, anything else ``?``."""
    out: list[str] = []
    for ch in text:
        if ch in _GSM_BASIC or ch in _GSM_EXTENSION:
            out.append(ch)
        elif ch in _SMS_REPLACEMENTS:
            out.append(_SMS_REPLACEMENTS[ch])
        else:
            plain = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            ok = plain and all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in plain)
            out.append(plain if ok else "?")
    return "".join(out)


def gsm_length(text: str) -> int:
    """Septets ``text`` takes in GSM-7 (extension characters count twice)."""
    return sum(2 if ch in _GSM_EXTENSION else 1 for ch in text)


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes: GSM-7 160/153, else UCS-2 70/67 per segment."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        n, single, multi = gsm_length(text), 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji is two.
        n, single, multi = len(text.encode("utf-16-le")) // 2, 70, 67
    if n <= single:
        return 1
    return math.ceil(n / multi)


_SMS_LIMIT: Final = SMS_MAX_SEGMENTS * 153
_MIN_REASON: Final = 40


@dataclass(slots=True)
class _Part:
    text: str
    drop_order: int  # 0: never dropped; higher numbers are dropped first
    shrink: bool = False


def _truncate(text: str, septets: int) -> str:
    """``text`` cut to at most ``septets`` GSM septets, ending in ``...`` when cut."""
    if gsm_length(text) <= septets:
        return text
    budget = max(0, septets - 3)
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ch in _GSM_EXTENSION else 1
        if used + cost > budget:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip() + "..."


def _fit(parts: list[_Part], limit: int = _SMS_LIMIT) -> str:
    """Join ``parts`` by lines within ``limit`` septets: shrink, then drop, then cut."""
    parts = [replace(p, text=sms_safe(p.text)) for p in parts if p.text]
    while True:
        text = "\n".join(p.text for p in parts)
        over = gsm_length(text) - limit
        if over <= 0:
            return text
        for p in parts:
            if p.shrink and gsm_length(p.text) - over >= _MIN_REASON:
                p.text = _truncate(p.text, gsm_length(p.text) - over)
                break
        else:
            droppable = [p for p in parts if p.drop_order > 0]
            if droppable:
                parts.remove(max(droppable, key=lambda p: p.drop_order))
            elif len(parts) > 1 and gsm_length(parts[-1].text) > limit // 2:
                parts.pop()  # an absurdly long link is no use cut short
            else:
                return _truncate(text, limit)


def _sms(f: MessageFacts) -> str:
    ack = f"Acknowledge: {f.ack_url}" if f.ack_url else ""
    return _fit(
        [
            # In the order of the plain text; the numbers say what goes first when the
            # text is too long (the reason is shortened before anything is dropped).
            _Part(_headline(f), 0),
            _Part(_stale_line(f) or "", 4),
            _Part(wait_line(f), 1),
            _Part(_longest_line(f) or "", 6),
            _Part(_waiting_line(f) or "", 2),
            _Part(_abandon_line(f) or "", 3),
            _Part(_capacity_line(f) or "", 9),
            _Part(_since_line(f) or "", 5),
            _Part(_on_line(f) or "", 8),
            _Part(f"Why: {f.reason}" if f.reason else "", 7, shrink=True),
            _Part(ack, 0),
        ]
    )


# --------------------------------------------------------------------------- templates


class TemplateError(ValueError):
    """A message template that cannot be compiled or rendered; the message says why."""


def _finalize_none(value: Any) -> Any:
    # "None" in a text message reads as a bug; an unknown figure prints as nothing.
    return "" if value is None else value


def _env(*, html: bool, finalize: Callable[[Any], Any]) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
    )
    env.filters["duration"] = format_duration
    env.filters["percent"] = format_percent
    env.filters["clock"] = _clock
    return env


def slack_escape(value: Any) -> Any:
    """Escape ``&``, ``<`` and ``>`` the way Slack's mrkdwn requires (``<!channel>`` pings)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


TemplateMode = Literal["text", "html", "slack"]
_ENVS: Final[dict[str, ImmutableSandboxedEnvironment]] = {
    "text": _env(html=False, finalize=_finalize_none),
    "html": _env(html=True, finalize=_finalize_none),
    # Slack: every {{ value }} is escaped for mrkdwn; the template's own text is not, so
    # a template may use *bold* and <https://…|links>.
    "slack": _env(html=False, finalize=slack_escape),
}


@functools.lru_cache(maxsize=512)
def _compile(source: str, mode: TemplateMode) -> Template:
    try:
        return _ENVS[mode].from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except JinjaError as exc:
        raise TemplateError(f"template error: {exc}") from None


def render_string(source: str, facts: MessageFacts | Mapping[str, Any], mode: TemplateMode) -> str:
    """Render one template over the facts' variables (or given variables).

    Raises :class:`TemplateError` with a readable sentence for syntax errors, sandbox
    violations, unknown variables and errors inside the template.
    """
    template = _compile(source, mode)
    values = variables(facts) if isinstance(facts, MessageFacts) else facts
    try:
        return template.render(values)
    except SecurityError as exc:
        raise TemplateError(f"not allowed in a template: {exc}") from None
    except UndefinedError as exc:
        raise TemplateError(_undefined(str(exc.message), values)) from None
    except Exception as exc:
        # Anything else the template's own code raised (a division by zero, a bad filter
        # argument): a template problem, not a bug of the daemon.
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None


def _undefined(message: str, values: Mapping[str, Any]) -> str:
    match = re.match(r"'(\w+)' is undefined", message)
    if match is not None:
        close = difflib.get_close_matches(match.group(1), list(values), n=1)
        if close:
            return f"template error: {message} (did you mean {close[0]}?)"
    return f"template error: {message}"


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class MessageTemplates:
    """A response's own templates; ``None`` keeps the built-in default.

    ``text`` also stands in for the SMS text, and, without ``html``, for the HTML body
    (escaped, line breaks kept).
    """

    subject: str | None = None
    text: str | None = None
    html: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message, written for each kind of channel."""

    subject: str
    text: str
    html: str
    sms: str


DEFAULTS: Final = MessageTemplates()

_TEXT: Final = """\
{{ headline }}
{% for line in figures %}
{{ line }}
{% endfor %}
{% if reason %}
Why: {{ reason }}
{% endif %}
{% if ack_url %}
Acknowledge: {{ ack_url }}
{% endif %}
"""

_HTML: Final = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ headline }}</title></head>
<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:16px;\
line-height:1.4;color:#0b0c0c;background:#ffffff">
<div style="max-width:600px">
<h1 style="font-size:20px;margin:0 0 12px;padding:4px 0 4px 12px;\
border-left:6px solid {{ colour }}">{{ headline }}</h1>
<ul style="margin:0 0 12px;padding-left:20px">
{% for line in figures %}
<li>{{ line }}</li>
{% endfor %}
</ul>
{% if reason %}
<p style="margin:0 0 12px"><strong>Why:</strong> {{ reason }}</p>
{% endif %}
{% if ack_url %}
<p style="margin:0 0 16px"><a href="{{ ack_url }}" style="display:inline-block;\
padding:10px 16px;background:#00703c;color:#ffffff;font-weight:bold;text-decoration:none">\
Acknowledge</a></p>
{% endif %}
<p style="margin:0;font-size:13px;color:#505a5f">Rising Tide &middot; {{ line }} &middot; \
{{ key }}</p>
</div>
</body>
</html>
"""

# A custom text body shown as HTML: escaped by autoescape, line breaks kept.
_HTML_FROM_TEXT: Final = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.4">
<div style="white-space:pre-wrap;max-width:600px">{{ text }}</div>
</body></html>
"""


def variables(facts: MessageFacts) -> dict[str, Any]:
    """The variables a template sees for ``facts`` (see ``TEMPLATE_VARIABLES``)."""
    values: dict[str, Any] = {f.name: getattr(facts, f.name) for f in fields(facts)}
    held = facts.raised_for
    values.update(
        live_switches=list(facts.live_switches),
        tier_label=_tier_label(facts.tier, facts.tier_name),
        avg_wait_text=None if facts.avg_wait is None else format_duration(facts.avg_wait),
        longest_wait_text=(
            None if facts.longest_wait is None else format_duration(facts.longest_wait)
        ),
        target_wait_text=format_duration(facts.target_wait),
        abandon_text=None if facts.abandon_rate is None else format_percent(facts.abandon_rate),
        raised_for=None if held is None else held.total_seconds(),
        raised_for_text=None if held is None else format_duration(held),
        at_text=_clock(facts.at),
        entered_at_text=_clock(facts.entered_at) or None,
        wait_line=wait_line(facts),
        headline=_headline(facts),
        figures=_figures(facts),
        colour=_colour(facts),
        **capacity_variables(
            facts.agents_needed,
            facts.capacity_gap,
            facts.capacity_gap_ratio,
            facts.target_wait,
            facts.predicted_wait,
            facts.forecast_wait,
        ),
    )
    values["body"] = _compile(_TEXT, "text").render(values).strip()
    values["sms"] = _sms(facts)
    return values


def _one_line(text: str) -> str:
    # Subjects and headers are one line; a newline in a header is also an injection risk.
    return " ".join(text.split())


def render(facts: MessageFacts, templates: MessageTemplates = DEFAULTS) -> Rendered:
    """The message for ``facts``, from ``templates`` where given, else the defaults.

    A scheduled report is written as it is, whatever the response's templates: they are
    written for news of a line.
    """
    if facts.kind == "report":
        return _report(facts)
    return _rendered(variables(facts), templates, _HTML)


def _report(facts: MessageFacts) -> Rendered:
    """A report's text as the message: its first line the subject, the SMS cut to fit by
    dropping its last lines first."""
    subject = _one_line(report_subject(facts.reason))
    text = facts.reason.strip()
    html = render_string(_HTML_FROM_TEXT, {"subject": subject, "text": text}, "html")
    rest = report_lines(facts.reason)
    parts = [_Part(subject, 0), *(_Part(line, i) for i, line in enumerate(rest, start=1))]
    return Rendered(subject=subject, text=text, html=html, sms=_fit(parts))


def _rendered(values: dict[str, Any], templates: MessageTemplates, html_default: str) -> Rendered:
    """The message from ``values`` (a line's or a digest's, each with ``headline``, ``body``
    and ``sms``): the response's ``templates`` where given, else the defaults, the HTML from
    ``html_default``, or the custom text kept as it is when only ``text`` is given."""
    subject = (
        render_string(templates.subject, values, "text")
        if templates.subject is not None
        else values["headline"]
    )
    subject = _one_line(subject)
    if templates.text is not None:
        text = render_string(templates.text, values, "text").strip()
        sms = text
    else:
        text = values["body"]
        sms = values["sms"]
    if templates.html is not None:
        html = render_string(templates.html, values, "html")
    elif templates.text is not None:
        html = render_string(_HTML_FROM_TEXT, {"subject": subject, "text": text}, "html")
    else:
        html = render_string(html_default, values, "html")
    return Rendered(subject=subject, text=text, html=html, sms=sms)


def digest_order(facts: Sequence[MessageFacts]) -> list[MessageFacts]:
    """``facts`` in the order a digest lists them: highest tier first, then by line name."""
    return sorted(facts, key=lambda f: (-f.tier, f.line_name, f.line))


def digest_variables(facts: Sequence[MessageFacts], key: str | None = None) -> dict[str, Any]:
    """The variables a digest template sees for ``facts`` (see ``DIGEST_VARIABLES``).

    ``key`` is the notice's idempotency key, when the caller has one.
    """
    if not facts:
        raise ValueError("a digest needs at least one line")
    ordered = digest_order(facts)
    # The board is the same for every line; any line that knows it will do.
    board_url = next((f.board_url for f in ordered if f.board_url), None)
    summary = _digest_summary(ordered)
    values: dict[str, Any] = {
        "lines": [variables(f) for f in ordered],
        "count": len(ordered),
        "headline": _digest_headline(ordered),
        "summary": summary,
        "key": key,
        "board_url": board_url,
    }
    values["body"] = _compile(_DIGEST_TEXT, "text").render(values).strip()
    values["sms"] = _digest_sms(ordered, summary, board_url)
    return values


def render_digest(
    facts: Sequence[MessageFacts],
    templates: MessageTemplates = DEFAULTS,
    *,
    key: str | None = None,
) -> Rendered:
    """One message about several lines, highest tier first.

    ``templates`` are the response's *digest* templates: they see ``DIGEST_VARIABLES``
    (``lines``, each line's variables as ``variables`` gives them; ``count``, ``headline``,
    ``summary``, ``key``, ``board_url``, ``body``, ``sms``), not a single line's.
    ``key`` is the notice's idempotency key (shown in the HTML footer).
    """
    return _rendered(digest_variables(facts, key), templates, _DIGEST_HTML)


#: A digest's default subject names lines while it stays this short (Slack's header limit;
#: a phone's notification shows less), then says how many more there are.
_DIGEST_HEADLINE_MAX: Final = 150


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def _digest_headline(ordered: Sequence[MessageFacts]) -> str:
    named = [_one_line(f"{f.line_name} tier {f.tier}") for f in ordered]
    head = f"{_lines(len(ordered))}: "
    for keep in range(len(named), 0, -1):
        more = len(named) - keep
        text = head + ", ".join(named[:keep]) + (f", +{more} more" if more else "")
        if len(text) <= _DIGEST_HEADLINE_MAX:
            return text
    return (head + named[0])[: _DIGEST_HEADLINE_MAX - 1] + "…"


def _digest_summary(ordered: Sequence[MessageFacts]) -> str:
    """``3 lines need attention``, or ``… coming down`` when every line is easing."""
    if all(f.kind in ("tier_lowered", "back_to_calm") for f in ordered):
        return f"{_lines(len(ordered))} coming down"
    return f"{_lines(len(ordered))} need{'s' if len(ordered) == 1 else ''} attention"


def _digest_entry(f: MessageFacts) -> str:
    """One line of a digest SMS: ``Revenues: tier 3 (flood), avg 11m 40s, 14 waiting``."""
    label = _tier_label(f.tier, f.tier_name)
    if f.kind == "back_to_calm":
        return f"{f.line_name}: back to {f.tier_name or 'calm'}"
    if f.kind == "tier_lowered":
        state = f"down to {label}"
    elif f.kind == "stats_stale":
        state = f"no fresh figures, {label}"
    elif f.kind in ("reminder", "escalated"):
        state = f"{label}, not acknowledged"
    else:
        state = label
    bits = [f"{f.line_name}: {state}"]
    if f.avg_wait is not None:
        bits.append(f"avg {format_duration(f.avg_wait)}")
    if f.calls_waiting is not None:
        bits.append(f"{f.calls_waiting} waiting")
    return ", ".join(bits)


def _digest_sms(ordered: Sequence[MessageFacts], summary: str, board_url: str | None) -> str:
    head = sms_safe(summary)
    board = sms_safe(f"Board: {board_url}") if board_url else ""
    if gsm_length(board) > _SMS_LIMIT // 2:
        board = ""  # an absurdly long link is no use cut short
    entries = [sms_safe(_one_line(_digest_entry(f))) for f in ordered]
    # Keep as many lines as fit, highest tier first, say how many were left out, and end
    # with the board, where the rest are.
    for keep in range(len(entries), 0, -1):
        more = len(entries) - keep
        parts = [head, *entries[:keep], f"+{more} more" if more else "", board]
        text = "\n".join(p for p in parts if p)
        if gsm_length(text) <= _SMS_LIMIT:
            return text
    # Even one line does not fit (a very long line name): cut it, keep the tail.
    more = len(entries) - 1
    tail = "\n".join(p for p in (f"+{more} more" if more else "", board) if p)
    room = _SMS_LIMIT - (gsm_length(tail) + 1 if tail else 0)
    first = _truncate("\n".join([head, entries[0]]), room)
    return "\n".join(p for p in (first, tail) if p)


_DIGEST_TEXT: Final = """\
{{ headline }}
{% for l in lines %}

{{ l.headline }}
{% for line in l.figures %}
  {{ line }}
{% endfor %}
{% if l.reason %}
  Why: {{ l.reason }}
{% endif %}
{% if l.ack_url %}
  Acknowledge: {{ l.ack_url }}
{% endif %}
{% endfor %}
{% if board_url %}

Duty board: {{ board_url }}
{% endif %}
"""

_DIGEST_HTML: Final = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ headline }}</title></head>
<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:16px;\
line-height:1.4;color:#0b0c0c;background:#ffffff">
<div style="max-width:600px">
<h1 style="font-size:20px;margin:0 0 12px">{{ summary }}</h1>
{% for l in lines %}
<h2 style="font-size:18px;margin:16px 0 8px;padding:4px 0 4px 12px;\
border-left:6px solid {{ l.colour }}">{{ l.headline }}</h2>
<ul style="margin:0 0 8px;padding-left:20px">
{% for line in l.figures %}
<li>{{ line }}</li>
{% endfor %}
</ul>
{% if l.reason %}
<p style="margin:0 0 8px"><strong>Why:</strong> {{ l.reason }}</p>
{% endif %}
{% if l.ack_url %}
<p style="margin:0 0 8px"><a href="{{ l.ack_url }}">Acknowledge {{ l.line_name }}</a></p>
{% endif %}
{% endfor %}
{% if board_url %}
<p style="margin:16px 0"><a href="{{ board_url }}" style="display:inline-block;\
padding:10px 16px;background:#1d70b8;color:#ffffff;font-weight:bold;text-decoration:none">\
Open the duty board</a></p>
{% endif %}
<p style="margin:16px 0 0;font-size:13px;color:#505a5f">Rising Tide &middot; \
{{ count }} line{% if count != 1 %}s{% endif %}{% if key %} &middot; {{ key }}{% endif %}</p>
</div>
</body>
</html>
"""

# --------------------------------------------------------------------------- config checks

#: Every variable a single-line template sees, with what it holds (documented in
#: docs/channels.md; the sample check below keeps the two in step).
TEMPLATE_VARIABLES: Final[Mapping[str, str]] = {
    "kind": "tier_raised, reminder, escalated, tier_lowered, back_to_calm, stats_stale or report",
    "line": "the line's id in the config",
    "line_name": "the line's name",
    "tier": "the tier number (0 is calm)",
    "tier_name": "the tier's name",
    "tier_label": 'e.g. "tier 2 (high)"',
    "tier_from": "the tier before a tier change, or none",
    "tier_from_name": "its name, when known",
    "tier_count": "how many tiers the framework has, when known",
    "at": "when the order was planned (datetime, UTC)",
    "at_text": "that time as HH:MM, UK time",
    "reason": "the engine's reason sentence",
    "key": "the order's idempotency key",
    "response": "the response id",
    "trigger": "the event that caused the order (tier_changed, reminder, …)",
    "episode": "the episode number (rises from calm)",
    "target_wait": "the line's target wait, seconds",
    "target_wait_text": 'e.g. "3m"',
    "avg_wait": "average wait, seconds, or none",
    "avg_wait_text": 'e.g. "6m 40s"',
    "longest_wait": "longest wait now, seconds, or none",
    "longest_wait_text": 'e.g. "12m 5s"',
    "calls_waiting": "calls waiting now, or none",
    "agents_available": "agents free now, or none",
    "abandon_rate": "abandoned share of offered calls, 0-1, or none",
    "abandon_text": 'e.g. "12.5%"',
    "window": "the window of abandon_rate, seconds, or none",
    "agents_needed": "agents Erlang C says meet the target (smoothed demand), or none",
    "capacity_gap": "agents needed minus staffed (negative: spare), or none",
    "capacity_gap_ratio": "the gap over agents needed, e.g. 0.08, or none",
    "capacity_gap_percent": 'e.g. "8%", or none',
    "predicted_wait": "Erlang C's mean wait with the agents staffed, seconds, or none",
    "predicted_wait_text": 'e.g. "6m 40s" ("over 1h" past the cap), or none',
    "capacity_line": 'e.g. "Needs 4 more agents to get back under 3m (…)", or none',
    "forecast_wait": "the worst wait the forecast sees within its horizon, seconds, or none",
    "forecast_wait_text": 'e.g. "6m 40s", or none',
    "stats_at": "when the figures were true (datetime), or none",
    "entered_at": "when the line entered its tier (datetime), or none",
    "entered_at_text": "that time as HH:MM, UK time",
    "raised_for": "seconds at this tier, or none",
    "raised_for_text": 'e.g. "25m"',
    "live_switches": "list of switch responses on now",
    "ack_url": "the acknowledge link, or none",
    "board_url": "the duty board's link, or none",
    "wait_line": 'e.g. "Average wait 6m 40s (target 3m)"',
    "figures": "the default figure sentences (a list)",
    "headline": "the default subject line",
    "body": "the default plain-text message",
    "sms": "the default SMS text (GSM-7, at most 3 segments)",
    "colour": "a hex colour for the message's severity",
}


def _samples() -> tuple[MessageFacts, ...]:
    at = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
    base = MessageFacts(
        kind="tier_raised",
        line="council_tax",
        line_name="Council Tax",
        tier=2,
        tier_name="high",
        at=at,
        reason="avg_wait 400s > 300s for 5m",
        key="council_tax/3/tier_changed/2/1-2@2026-01-05T09:25:00+00:00/notify/apply",
        response="notify",
        trigger="tier_changed",
        episode=3,
        target_wait=180.0,
        tier_from=1,
        tier_from_name="rising",
        tier_count=4,
        stats_at=at,
        avg_wait=400.0,
        longest_wait=725.0,
        calls_waiting=14,
        agents_available=2,
        abandon_rate=0.125,
        window=900.0,
        agents_needed=12,
        capacity_gap=4,
        capacity_gap_ratio=4 / 12,
        predicted_wait=400.0,
        forecast_wait=520.0,
        entered_at=at - timedelta(minutes=25),
        live_switches=("callback_on",),
        ack_url="https://risingtide.example/ack/council_tax",
        board_url="https://risingtide.example/",
    )
    sparse = replace(
        base, kind="stats_stale", trigger="stats_stale", tier_from=None, tier_from_name=None,
        tier_count=None, stats_at=None, avg_wait=None, longest_wait=None, calls_waiting=None,
        agents_available=None, abandon_rate=None, window=None, agents_needed=None,
        capacity_gap=None, capacity_gap_ratio=None, predicted_wait=None, forecast_wait=None,
        entered_at=None,
        live_switches=(), ack_url=None, board_url=None,
    )  # fmt: skip
    plain = replace(base, tier_from=None, tier_from_name=None)
    return (
        base,
        replace(plain, kind="reminder", trigger="reminder"),
        replace(plain, kind="escalated", trigger="escalated"),
        replace(base, kind="tier_lowered", tier=1, tier_name="rising", tier_from=2,
                tier_from_name="high", live_switches=()),
        replace(base, kind="back_to_calm", tier=0, tier_name="calm", live_switches=()),
        replace(plain, kind="stats_stale", trigger="stats_stale"),
        sparse,
    )  # fmt: skip


#: Every variable a digest template sees (``digest_variables``), documented in
#: docs/channels.md.
DIGEST_VARIABLES: Final[Mapping[str, str]] = {
    "lines": "each line's variables (as a single-line template sees them), highest tier first",
    "count": "how many lines",
    "headline": 'the default subject, e.g. "3 lines: Revenues tier 3, Council Tax tier 2, …"',
    "summary": 'e.g. "3 lines need attention" (or "… coming down" when every line is easing)',
    "key": "the notice's idempotency key, or none",
    "board_url": "the duty board's link, or none",
    "body": "the default plain-text digest",
    "sms": "the default digest SMS (GSM-7, at most 3 segments, ends with the board link)",
}

_SAMPLE_DIGEST_KEY: Final = "batch/notify/2026-01-05T09:25:00+00:00"


def _digest_samples() -> tuple[tuple[MessageFacts, ...], ...]:
    samples = _samples()
    # Every kind at once, on lines of their own; a digest of lines with no figures and no
    # links; and one of lines easing (tier lowered, back to calm).
    every = tuple(
        replace(f, line=f"line_{i}", line_name=f"Line {i}") for i, f in enumerate(samples)
    )
    sparse = samples[-1]
    bare = (sparse, replace(sparse, line="waste", line_name="Waste", tier=1, tier_name="rising"))
    easing = (samples[3], replace(samples[4], line="waste", line_name="Waste"))
    return every, bare, easing


def _check(source: str, mode: TemplateMode) -> str:
    if not isinstance(source, str):
        raise TemplateError("expected a template (text)")
    _compile(source, mode)
    for sample in _samples():
        render_string(source, sample, mode)
    return source


def check_template(source: str) -> str:
    """Validate a text template (config time): it compiles and renders for every kind.

    Returns ``source``; raises :class:`TemplateError` (a ``ValueError``) naming the problem.
    """
    return _check(source, "text")


def check_html_template(source: str) -> str:
    """Validate an HTML template (autoescaped) as ``check_template`` does."""
    return _check(source, "html")


def check_digest_template(source: str) -> str:
    """Validate a digest text template (config time): it compiles and renders against
    sample digests (every kind together; lines without figures or links; lines easing).

    Returns ``source``; raises :class:`TemplateError` (a ``ValueError``) naming the problem.
    """
    if not isinstance(source, str):
        raise TemplateError("expected a template (text)")
    _compile(source, "text")
    for i, sample in enumerate(_digest_samples()):
        key = _SAMPLE_DIGEST_KEY if i == 0 else None
        render_string(source, digest_variables(sample, key), "text")
    return source
