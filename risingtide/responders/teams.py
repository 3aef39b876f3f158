"""The ``teams`` responder: a card in a Microsoft Teams channel, through a Workflows webhook.

::

    responses:
      teams_csc:
        type: teams
        url: "${TEAMS_WEBHOOK_URL}"   # the URL of a "When a Teams webhook request is received" flow
        format: adaptive              # or messagecard, for a legacy Office 365 connector

``format: adaptive`` (the default) posts the envelope the Workflows trigger takes::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.2",
                                  "body": [TextBlock headline, TextBlock mentions?,
                                           TextBlock text?, FactSet, TextBlock reason,
                                           TextBlock footer],
                                  "actions": [Action.OpenUrl "Acknowledge"],
                                  "msteams": {"entities": [mention, …]}}}]}

(the ``actions`` only when an acknowledge link is known). The people the response pages
who are on duty and have a Teams user (``Person.teams``, their user principal name) are
@mentioned: ``For: <at>Asha Patel</at>, …`` in a TextBlock, and for each one an entity
``{"type": "mention", "text": "<at>Asha Patel</at>", "mentioned": {"id": "<UPN>", "name":
"Asha Patel"}}`` in the card's ``msteams.entities``; people without one are not named.

A notice about several lines is one card: the digest's headline, the mentions, then for
each line, highest tier first, its own headline (a TextBlock), its figures (a FactSet) and
its reason with an inline "Acknowledge" link, and an ``Action.OpenUrl`` "Open the duty
board" when the board's link is known. ``digest_subject_template`` replaces the headline
and ``digest_template`` adds a text block under it. The footer shows the notice key.

``format: messagecard`` posts a legacy ``MessageCard`` (``summary``, ``title``,
``themeColor``, ``sections[].facts``, ``potentialAction`` ``OpenUri``; a digest has a
section per line with its own ``potentialAction``) for an Office 365 connector webhook that
has not been moved to Workflows yet; Microsoft is retiring those connectors. A connector
card cannot @mention: the people are named in its text.

Size: Teams refuses a message over 28 KB, so a payload is kept under 28,000 bytes by
shortening the longest text (a custom ``template`` can be long) and, in a digest, by
leaving out the lowest lines ("+N more"); if it still does not fit, the notice fails, not
retryable (reason ``too_large``).

Answers: Workflows answers ``202 Accepted``; a legacy connector ``200`` with body ``1``.
A throttled connector may answer **200 with an error text** in the body ("Microsoft Teams
endpoint returned HTTP error 429 …") instead of a 429, so a 2xx body that names an HTTP
error is classified by that code: 429 → retryable ``http_429``, 5xx → retryable
``http_5xx``, 413 → ``too_large``, other 4xx → ``http_4xx``. Non-2xx answers are classified
by ``risingtide.responders.webhook.check_status``. Teams does not de-duplicate posts:
delivery is at-least-once; the card's footer shows the notice key (for a single order, its
own key).

Pace: at most four posts a second per response (Teams throttles more) unless the response
sets its own ``rate_limit``; the dispatcher holds the rest.

The webhook URL is the credential: it is held as a secret and never quoted in errors.

Doc pages followed: MicrosoftDocs/msteams-docs
``msteams-platform/webhooks-and-connectors/how-to/connectors-using.md`` ("Send Adaptive
Cards using an Incoming Webhook": the ``type: message`` envelope, ``contentType``,
``contentUrl: null``, version 1.2, ``Action.OpenUrl`` supported; the MessageCard example;
"Rate limiting for connectors": responses carry "Microsoft Teams endpoint returned HTTP
error 429" instead of a 429), ``add-incoming-webhook.md`` ("The message size limit is 28
KB"; more than four requests a second are throttled) and ``create-workflows.md``
(connectors move to Workflows); ``task-modules-and-cards/cards/cards-format.md`` ("Mention
support within Adaptive Cards": ``<at>name</at>`` in a TextBlock or FactSet and a
``mention`` entity under ``msteams.entities``; "User mention in Incoming Webhook with
Adaptive Cards": the user principal name as ``mentioned.id``; 28 KB with several mentions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.domain.people import Person
from risingtide.messages import (
    MessageFacts,
    MessageTemplates,
    Rendered,
    format_duration,
    format_percent,
    headline,
)
from risingtide.ports import (
    BuildContext,
    Notice,
    Responder,
    ResponderPlugin,
    ResponseContext,
    settings_as,
)
from risingtide.responders.webhook import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    DigestTemplate,
    HttpError,
    MessageTemplate,
    SecretHttpUrl,
    check_status,
    nothing_to_send,
    post,
    render_notice,
    snippet,
)

__all__ = [
    "MAX_BYTES",
    "PLUGIN",
    "TeamsResponder",
    "TeamsSettings",
    "mentions",
    "teams_digest_payload",
    "teams_payload",
]

#: Teams refuses messages over 28 KB; read as 28,000 bytes, the stricter reading.
MAX_BYTES: Final = 28_000
ADAPTIVE_CARD_VERSION: Final = "1.2"
_HTTP_ERROR_IN_BODY = re.compile(r"HTTP error (\d{3})")


class TeamsSettings(BaseModel):
    """``url``: the Workflows (or legacy connector) webhook, a secret; ``format``:
    ``adaptive`` (default) or ``messagecard``; optional ``template`` (a text block under the
    headline), ``subject_template`` (the headline), ``digest_template`` and
    ``digest_subject_template`` (the same for a digest), ``timeout`` (default 10s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretHttpUrl
    format: Literal["adaptive", "messagecard"] = "adaptive"
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
    digest_template: DigestTemplate | None = None
    digest_subject_template: DigestTemplate | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT


def _facts_list(facts: MessageFacts) -> list[tuple[str, str]]:
    target = f" (target {format_duration(facts.target_wait)})" if facts.target_wait > 0 else ""
    wait = "not known" if facts.avg_wait is None else format_duration(facts.avg_wait)
    pairs = [("Average wait", wait + target)]
    if facts.longest_wait is not None:
        pairs.append(("Longest wait", format_duration(facts.longest_wait)))
    if facts.calls_waiting is not None:
        pairs.append(("Calls waiting", str(facts.calls_waiting)))
    if facts.agents_available is not None:
        pairs.append(("Agents free", str(facts.agents_available)))
    if facts.abandon_rate is not None:
        pairs.append(("Abandoned", format_percent(facts.abandon_rate)))
    held = facts.raised_for
    if held is not None and facts.kind in ("reminder", "escalated", "stats_stale"):
        pairs.append(("At this tier for", format_duration(held)))
    if facts.live_switches:
        pairs.append(("Already on", ", ".join(facts.live_switches)))
    return pairs


def _severity(facts: MessageFacts) -> tuple[str, str]:
    """An Adaptive Card text colour and a MessageCard theme colour for the message."""
    if facts.kind in ("back_to_calm", "tier_lowered"):
        return "Good", "00703C"
    if facts.kind == "stats_stale":
        return "Default", "505A5F"
    return ("Attention", "D4351C") if facts.tier >= 3 else ("Warning", "F47738")


# --------------------------------------------------------------------------- mentions

#: A person to @mention: the name shown in ``<at>…</at>`` and their user principal name.
Mention = tuple[str, str]


def mentions(people: Sequence[Person]) -> list[Mention]:
    """``(name, UPN)`` for each paged person with a Teams user, each once, in order."""
    out: list[Mention] = []
    seen: set[str] = set()
    for person in people:
        if not person.teams or person.teams.lower() in seen:
            continue
        seen.add(person.teams.lower())
        # <at>…</at> is markup: a name must not close it early, and is one line.
        name = " ".join(person.name.replace("<", "").replace(">", "").split()) or person.teams
        out.append((name, person.teams))
    return out


def _mention_block(people: Sequence[Mention]) -> dict[str, Any]:
    tags = ", ".join(f"<at>{name}</at>" for name, _ in people)
    return {"type": "TextBlock", "text": f"For: {tags}", "wrap": True}


def _mention_entities(people: Sequence[Mention]) -> dict[str, Any]:
    """The card's ``msteams`` property: one mention entity per ``<at>`` tag in the text."""
    return {
        "entities": [
            {"type": "mention", "text": f"<at>{name}</at>", "mentioned": {"id": upn, "name": name}}
            for name, upn in people
        ]
    }


# --------------------------------------------------------------------------- cards


def _envelope(content: dict[str, Any]) -> dict[str, Any]:
    """The Workflows (and incoming webhook) envelope around an Adaptive Card."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }


def _card(
    body: list[dict[str, Any]], actions: list[dict[str, Any]], people: Sequence[Mention]
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if actions:
        content["actions"] = actions
    if people:
        content["msteams"] = _mention_entities(people)
    return _envelope(content)


def _head(
    subject: str, colour: str, text: str | None, people: Sequence[Mention]
) -> list[dict[str, Any]]:
    """The top of a card: the headline in the tier's colour, who it is for, the text."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": subject,
            "weight": "Bolder",
            "size": "Medium",
            "color": colour,
            "wrap": True,
        }
    ]
    if people:
        body.append(_mention_block(people))
    if text:
        body.append({"type": "TextBlock", "text": text, "wrap": True})
    return body


def _fact_set(facts: MessageFacts) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in _facts_list(facts)]}


def _footer(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "isSubtle": True, "size": "Small", "wrap": True}


def _open_url(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _adaptive(
    facts: MessageFacts,
    subject: str,
    text: str | None,
    reason: str,
    key: str,
    people: Sequence[Mention],
) -> dict[str, Any]:
    colour, _ = _severity(facts)
    body = _head(subject, colour, text, people)
    body.append(_fact_set(facts))
    if reason:
        body.append({"type": "TextBlock", "text": f"Why: {reason}", "wrap": True})
    body.append(_footer(f"Rising Tide · {facts.line} · {key}"))
    actions = [_open_url("Acknowledge", facts.ack_url)] if facts.ack_url else []
    return _card(body, actions, people)


def _message_card(
    facts: MessageFacts,
    subject: str,
    text: str | None,
    reason: str,
    people: Sequence[Mention],
) -> dict[str, Any]:
    _, theme = _severity(facts)
    section: dict[str, Any] = {
        "facts": [{"name": t, "value": v} for t, v in _facts_list(facts)],
        "markdown": False,
    }
    # A legacy connector cannot @mention: the people are named.
    named = f"For: {', '.join(name for name, _ in people)}" if people else None
    lines = [part for part in (named, text, f"Why: {reason}" if reason else None) if part]
    if lines:
        section["text"] = "\n\n".join(lines)
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "summary": subject,
        "themeColor": theme,
        "title": subject,
        "sections": [section],
    }
    if facts.ack_url:
        card["potentialAction"] = [_open_uri("Acknowledge", facts.ack_url)]
    return card


def _open_uri(name: str, url: str) -> dict[str, Any]:
    return {"@type": "OpenUri", "name": name, "targets": [{"os": "default", "uri": url}]}


def _adaptive_digest(
    lines: Sequence[MessageFacts],
    more: int,
    subject: str,
    text: str | None,
    key: str,
    people: Sequence[Mention],
    board_url: str | None,
) -> dict[str, Any]:
    colour, _ = _severity(lines[0])
    body = _head(subject, colour, text, people)
    for facts in lines:
        line_colour, _ = _severity(facts)
        body.append(
            {
                "type": "TextBlock",
                "text": headline(facts),
                "weight": "Bolder",
                "color": line_colour,
                "wrap": True,
                "separator": True,
                "spacing": "Medium",
            }
        )
        body.append(_fact_set(facts))
        notes = [f"Why: {facts.reason}" if facts.reason else ""]
        if facts.ack_url:
            # One card has room for a few actions only: each line's link goes inline.
            notes.append(f"[Acknowledge {facts.line_name}]({facts.ack_url})")
        shown = " · ".join(n for n in notes if n)
        if shown:
            body.append({"type": "TextBlock", "text": shown, "wrap": True, "size": "Small"})
    if more:
        where = ": see the duty board" if board_url else ""
        body.append({"type": "TextBlock", "text": f"+{more} more{where}", "wrap": True})
    count = len(lines) + more
    body.append(_footer(f"Rising Tide · {count} lines · {key}"))
    actions = [_open_url("Open the duty board", board_url)] if board_url else []
    return _card(body, actions, people)


def _message_card_digest(
    lines: Sequence[MessageFacts],
    more: int,
    subject: str,
    text: str | None,
    key: str,
    people: Sequence[Mention],
    board_url: str | None,
) -> dict[str, Any]:
    _, theme = _severity(lines[0])
    sections: list[dict[str, Any]] = []
    named = f"For: {', '.join(name for name, _ in people)}" if people else None
    intro = [part for part in (named, text) if part]
    if intro:
        sections.append({"text": "\n\n".join(intro), "markdown": False})
    for facts in lines:
        section: dict[str, Any] = {
            "activityTitle": headline(facts),
            "facts": [{"name": t, "value": v} for t, v in _facts_list(facts)],
            "markdown": False,
        }
        if facts.reason:
            section["text"] = f"Why: {facts.reason}"
        if facts.ack_url:
            section["potentialAction"] = [_open_uri("Acknowledge", facts.ack_url)]
        sections.append(section)
    tail = f"+{more} more · " if more else ""
    sections.append({"text": f"{tail}Rising Tide · {len(lines) + more} lines · {key}"})
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "summary": subject,
        "themeColor": theme,
        "title": subject,
        "sections": sections,
    }
    if board_url:
        card["potentialAction"] = [_open_uri("Open the duty board", board_url)]
    return card


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def _too_large(payload: dict[str, Any]) -> HttpError:
    return HttpError(
        f"the Teams message would be {_size(payload)} bytes, over the {MAX_BYTES} limit",
        reason="too_large",
        retryable=False,
    )


def _shorten(texts: dict[str, str], over: int) -> bool:
    """Cut the longest of ``texts`` by about ``over`` bytes; False when none is long."""
    longest = max(texts, key=lambda k: len(texts[k]))
    value = texts[longest]
    if len(value) < 200:
        return False
    texts[longest] = value[: max(100, len(value) - over - 100)].rstrip() + "…"
    return True


def teams_payload(
    facts: MessageFacts,
    message: Rendered,
    *,
    key: str | None = None,
    people: Sequence[Person] = (),
    card_format: Literal["adaptive", "messagecard"] = "adaptive",
    custom_text: bool = False,
) -> dict[str, Any]:
    """The JSON to post about one line, under ``MAX_BYTES``; ``HttpError(reason=
    "too_large")`` if it cannot be made to fit.

    ``key`` (the notice key; default the order's) is shown in the footer; ``people`` with a
    Teams user are @mentioned. ``custom_text``: show ``message.text`` (the response's own
    ``template``) under the headline; the default card shows the figures and the reason.
    """
    shown_key = facts.key if key is None else key
    tagged = mentions(people)
    texts = {
        "subject": message.subject,
        "text": message.text if custom_text else "",
        "reason": facts.reason,
    }
    # Shorten the longest free text until the payload fits (a long custom template, a long
    # reason); the figures and the link are small and stay.
    for _ in range(20):
        if card_format == "adaptive":
            payload = _adaptive(
                facts, texts["subject"], texts["text"] or None, texts["reason"], shown_key, tagged
            )
        else:
            payload = _message_card(
                facts, texts["subject"], texts["text"] or None, texts["reason"], tagged
            )
        over = _size(payload) - MAX_BYTES
        if over <= 0 or not _shorten(texts, over):
            break
    if _size(payload) > MAX_BYTES:
        raise _too_large(payload)
    return payload


def teams_digest_payload(
    facts: Sequence[MessageFacts],
    message: Rendered,
    *,
    key: str,
    people: Sequence[Person] = (),
    card_format: Literal["adaptive", "messagecard"] = "adaptive",
    custom_text: bool = False,
) -> dict[str, Any]:
    """One card about several lines (``facts`` in the digest's order, highest tier first):
    a heading and figures per line, under ``MAX_BYTES``.

    To fit, a long custom text is shortened first, then the lowest lines are left out
    ("+N more"); ``HttpError(reason="too_large")`` if even one line does not fit.
    """
    if not facts:
        raise ValueError("a digest needs at least one line")
    build = _adaptive_digest if card_format == "adaptive" else _message_card_digest
    tagged = mentions(people)
    board_url = next((f.board_url for f in facts if f.board_url), None)
    texts = {"subject": message.subject, "text": message.text if custom_text else ""}
    keep = len(facts)
    while True:
        payload = build(
            facts[:keep],
            len(facts) - keep,
            texts["subject"],
            texts["text"] or None,
            key,
            tagged,
            board_url,
        )
        over = _size(payload) - MAX_BYTES
        if over <= 0:
            return payload
        if _shorten(texts, over):
            continue
        if keep == 1:
            raise _too_large(payload)
        # Drop about as many lines as the excess takes, at least one.
        per_line = max(1, (_size(payload) - 1000) // keep)
        keep = max(1, keep - max(1, -(-over // per_line)))


def check_teams_body(response_text: str, what: str) -> None:
    """Raise for a 2xx answer whose body reports an error (a throttled connector)."""
    match = _HTTP_ERROR_IN_BODY.search(response_text)
    if match is None:
        return
    status = int(match.group(1))
    shown = f"{what} answered 2xx but reported HTTP error {status}: {snippet(response_text)}"
    if status == 429:
        raise HttpError(shown, reason="http_429", retryable=True, status=status)
    if status >= 500:
        raise HttpError(shown, reason="http_5xx", retryable=True, status=status)
    if status == 413:
        raise HttpError(shown, reason="too_large", retryable=False, status=status)
    raise HttpError(shown, reason="http_4xx", retryable=False, status=status)


class TeamsResponder:
    """Posts each notice as a card to a Teams Workflows (or legacy connector) webhook."""

    undoable = False

    def __init__(self, name: str, settings: TeamsSettings) -> None:
        """Post to ``settings.url`` in ``settings.format``."""
        self.name = name
        self._settings = settings
        self._templates = MessageTemplates(
            subject=settings.subject_template, text=settings.template
        )
        self._digest_templates = MessageTemplates(
            subject=settings.digest_subject_template, text=settings.digest_template
        )

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Post the card for ``order`` alone; return ``posted to Teams (HTTP <status>)``."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Post one card for ``notice`` (one line, or a digest of several), @mentioning the
        people paged; return ``posted to Teams (HTTP <status>)``."""
        skipped = nothing_to_send(notice)
        if skipped is not None:
            return skipped
        facts, message = render_notice(self.name, notice, self._templates, self._digest_templates)
        s = self._settings
        if len(facts) == 1:
            payload = teams_payload(
                facts[0],
                message,
                key=notice.key,
                people=notice.people,
                card_format=s.format,
                custom_text=s.template is not None,
            )
        else:
            payload = teams_digest_payload(
                facts,
                message,
                key=notice.key,
                people=notice.people,
                card_format=s.format,
                custom_text=s.digest_template is not None,
            )
        what = f"response {self.name!r}: Teams webhook"
        response = await post(
            s.url.get_secret_value(),
            content=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            time_limit=s.timeout.total_seconds(),
            what=what,
        )
        check_status(response, what)
        check_teams_body(response.text, what)
        return f"posted to Teams (HTTP {response.status_code})"


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(TeamsSettings, settings, f"response {name!r}")
    return TeamsResponder(name, settings)


PLUGIN = ResponderPlugin(
    type="teams",
    settings_model=TeamsSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Post a card to a Microsoft Teams channel (Workflows or connector webhook).",
    # Teams throttles more than four requests a second (add-incoming-webhook.md).
    default_rate_limit=(4, timedelta(seconds=1)),
)
