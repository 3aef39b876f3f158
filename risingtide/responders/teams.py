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
                                  "body": [TextBlock headline, TextBlock text?, FactSet,
                                           TextBlock reason],
                                  "actions": [Action.OpenUrl "Acknowledge"]}}]}

(the ``actions`` only when an acknowledge link is known). ``format: messagecard`` posts a
legacy ``MessageCard`` (``summary``, ``title``, ``themeColor``, ``sections[].facts``,
``potentialAction`` ``OpenUri``) for an Office 365 connector webhook that has not been
moved to Workflows yet; Microsoft is retiring those connectors.

Size: Teams refuses a message over 28 KB, so a payload is kept under 28,000 bytes by
shortening the longest text (a custom ``template`` can be long); if it still does not fit,
the order fails, not retryable (reason ``too_large``).

Answers: Workflows answers ``202 Accepted``; a legacy connector ``200`` with body ``1``.
A throttled connector may answer **200 with an error text** in the body ("Microsoft Teams
endpoint returned HTTP error 429 …") instead of a 429, so a 2xx body that names an HTTP
error is classified by that code: 429 → retryable ``http_429``, 5xx → retryable
``http_5xx``, 413 → ``too_large``, other 4xx → ``http_4xx``. Non-2xx answers are classified
by ``risingtide.responders.webhook.check_status``. Teams does not de-duplicate posts:
delivery is at-least-once; the card's footer shows the order key.

The webhook URL is the credential: it is held as a secret and never quoted in errors.

Doc pages followed: MicrosoftDocs/msteams-docs
``msteams-platform/webhooks-and-connectors/how-to/connectors-using.md`` ("Send Adaptive
Cards using an Incoming Webhook": the ``type: message`` envelope, ``contentType``,
``contentUrl: null``, version 1.2, ``Action.OpenUrl`` supported; the MessageCard example;
"Rate limiting for connectors": responses carry "Microsoft Teams endpoint returned HTTP
error 429" instead of a 429), ``add-incoming-webhook.md`` ("The message size limit is 28
KB"; more than four requests a second are throttled) and ``create-workflows.md``
(connectors move to Workflows).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.messages import (
    MessageFacts,
    MessageTemplates,
    Rendered,
    format_duration,
    format_percent,
)
from risingtide.ports import (
    BuildContext,
    Responder,
    ResponderPlugin,
    ResponseContext,
)
from risingtide.responders.webhook import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    HttpError,
    MessageTemplate,
    SecretHttpUrl,
    check_status,
    not_undone,
    post,
    render_or_fail,
    snippet,
)

__all__ = ["MAX_BYTES", "PLUGIN", "TeamsResponder", "TeamsSettings", "teams_payload"]

#: Teams refuses messages over 28 KB; read as 28,000 bytes, the stricter reading.
MAX_BYTES: Final = 28_000
ADAPTIVE_CARD_VERSION: Final = "1.2"
_HTTP_ERROR_IN_BODY = re.compile(r"HTTP error (\d{3})")


class TeamsSettings(BaseModel):
    """``url``: the Workflows (or legacy connector) webhook, a secret; ``format``:
    ``adaptive`` (default) or ``messagecard``; optional ``template`` (a text block under the
    headline), ``subject_template`` (the headline), ``timeout`` (default 10s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretHttpUrl
    format: Literal["adaptive", "messagecard"] = "adaptive"
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
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


def _adaptive(facts: MessageFacts, subject: str, text: str | None, reason: str) -> dict[str, Any]:
    colour, _ = _severity(facts)
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
    if text:
        body.append({"type": "TextBlock", "text": text, "wrap": True})
    body.append(
        {
            "type": "FactSet",
            "facts": [{"title": t, "value": v} for t, v in _facts_list(facts)],
        }
    )
    if reason:
        body.append({"type": "TextBlock", "text": f"Why: {reason}", "wrap": True})
    body.append(
        {
            "type": "TextBlock",
            "text": f"Rising Tide · {facts.line} · {facts.key}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if facts.ack_url:
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": "Acknowledge", "url": facts.ack_url}
        ]
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


def _message_card(
    facts: MessageFacts, subject: str, text: str | None, reason: str
) -> dict[str, Any]:
    _, theme = _severity(facts)
    section: dict[str, Any] = {
        "facts": [{"name": t, "value": v} for t, v in _facts_list(facts)],
        "markdown": False,
    }
    lines = [part for part in (text, f"Why: {reason}" if reason else None) if part]
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
        card["potentialAction"] = [
            {
                "@type": "OpenUri",
                "name": "Acknowledge",
                "targets": [{"os": "default", "uri": facts.ack_url}],
            }
        ]
    return card


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def teams_payload(
    facts: MessageFacts,
    message: Rendered,
    *,
    card_format: Literal["adaptive", "messagecard"] = "adaptive",
    custom_text: bool = False,
) -> dict[str, Any]:
    """The JSON to post, under ``MAX_BYTES``; ``HttpError(reason="too_large")`` if it
    cannot be made to fit.

    ``custom_text``: show ``message.text`` (the response's own ``template``) under the
    headline; the default card shows the figures and the reason instead.
    """
    build = _adaptive if card_format == "adaptive" else _message_card
    texts = {
        "subject": message.subject,
        "text": message.text if custom_text else "",
        "reason": facts.reason,
    }
    # Shorten the longest free text until the payload fits (a long custom template, a long
    # reason); the figures and the link are small and stay.
    for _ in range(20):
        payload = build(facts, texts["subject"], texts["text"] or None, texts["reason"])
        over = _size(payload) - MAX_BYTES
        if over <= 0:
            return payload
        longest = max(texts, key=lambda k: len(texts[k]))
        value = texts[longest]
        if len(value) < 200:
            break
        texts[longest] = value[: max(100, len(value) - over - 100)].rstrip() + "…"
    raise HttpError(
        f"the Teams message would be {_size(payload)} bytes, over the {MAX_BYTES} limit",
        reason="too_large",
        retryable=False,
    )


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
    """Posts each order as a card to a Teams Workflows (or legacy connector) webhook."""

    undoable = False

    def __init__(self, name: str, settings: TeamsSettings) -> None:
        """Post to ``settings.url`` in ``settings.format``."""
        self.name = name
        self._settings = settings
        self._templates = MessageTemplates(
            subject=settings.subject_template, text=settings.template
        )

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Post the card for ``order``; return ``posted to Teams (HTTP <status>)``."""
        skipped = not_undone(order)
        if skipped is not None:
            return skipped
        facts, message = render_or_fail(self.name, order, context, self._templates)
        payload = teams_payload(
            facts,
            message,
            card_format=self._settings.format,
            custom_text=self._settings.template is not None,
        )
        what = f"response {self.name!r}: Teams webhook"
        response = await post(
            self._settings.url.get_secret_value(),
            content=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            time_limit=self._settings.timeout.total_seconds(),
            what=what,
        )
        check_status(response, what)
        check_teams_body(response.text, what)
        return f"posted to Teams (HTTP {response.status_code})"


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    if not isinstance(settings, TeamsSettings):
        raise TypeError(f"response {name!r}: settings are {type(settings).__name__}")
    return TeamsResponder(name, settings)


PLUGIN = ResponderPlugin(
    type="teams",
    settings_model=TeamsSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Post a card to a Microsoft Teams channel (Workflows or connector webhook).",
)
