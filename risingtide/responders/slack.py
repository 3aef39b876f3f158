"""The ``slack`` responder: a Block Kit message to a Slack channel's incoming webhook.

::

    responses:
      slack_csc:
        type: slack
        url: "${SLACK_WEBHOOK_URL}"     # https://hooks.slack.com/services/T…/B…/…

The payload is ``{"text": <fallback>, "blocks": [...]}``: a ``header`` block (the
headline), a ``section`` with the reason (or the response's own ``template``), a
``section`` with ``fields`` (average and longest wait, calls waiting, abandoned, since
when, what is already on), an ``actions`` block with an "Acknowledge" link button when an
acknowledge link is known, and a ``context`` block naming the line and the order key.
``text`` is the notification and screen-reader fallback Slack asks for alongside blocks.

Every value put into ``mrkdwn`` is escaped (``&``, ``<``, ``>``), so a line called
``<!channel>`` pings nobody; a custom ``template`` is rendered with the same escaping of
its ``{{ values }}`` while its own text may use mrkdwn (``*bold*``, ``<url|link>``).
Block Kit limits are kept: header text ≤ 150 characters, section text ≤ 3000, at most 10
fields of ≤ 2000 characters each.

Slack answers ``200 ok``; errors are plain-text codes: 400 ``invalid_payload``, 403
``action_prohibited``, 404 ``channel_not_found``, 410 ``channel_is_archived`` (not
retryable), 429 with ``Retry-After`` and 500 ``rollup_error`` (retryable). Classification
is ``risingtide.responders.webhook.check_status``'s (reasons ``timeout``, ``network``,
``http_429``, ``http_5xx``, ``http_4xx``). Slack does not de-duplicate incoming-webhook
posts: a retry after a lost answer may post twice (at-least-once); the key is shown in the
context block so a repeat is recognisable.

The webhook URL is the credential: it is held as a secret and never quoted in errors.

Doc pages followed: Slack "Sending messages using incoming webhooks"
(api.slack.com/messaging/webhooks; docs.slack.dev python-slack-sdk ``webhook`` page: the
``text`` + ``blocks`` payload, ``200 ok``), the incoming-webhook error changelog
(api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks), "Rate
limits" (api.slack.com/docs/rate-limits: about one message a second, 429 with
``Retry-After``), and the Block Kit blocks reference
(api.slack.com/reference/block-kit/blocks: header, section, actions, context).
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.messages import (
    MessageFacts,
    MessageTemplates,
    Rendered,
    TemplateError,
    facts_from,
    format_duration,
    format_percent,
    render,
    render_string,
    slack_escape,
    wait_line,
)
from risingtide.ports import (
    BuildContext,
    Responder,
    ResponderPlugin,
    ResponseContext,
    ResponseError,
)
from risingtide.responders.webhook import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    MessageTemplate,
    SecretHttpUrl,
    check_status,
    not_undone,
    post,
)

__all__ = ["PLUGIN", "SlackResponder", "SlackSettings", "slack_payload"]

HEADER_MAX: Final = 150
SECTION_MAX: Final = 3000
FIELD_MAX: Final = 2000
FIELDS_MAX: Final = 10


class SlackSettings(BaseModel):
    """``url``: the incoming webhook (a secret); optional ``template`` (the main section,
    mrkdwn), ``subject_template`` (the header and fallback), ``timeout`` (default 10s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretHttpUrl
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fields(facts: MessageFacts) -> list[dict[str, str]]:
    pairs: list[tuple[str, str]] = []
    target = f" (target {format_duration(facts.target_wait)})" if facts.target_wait > 0 else ""
    wait = "not known" if facts.avg_wait is None else format_duration(facts.avg_wait)
    pairs.append(("Average wait", wait + target))
    if facts.longest_wait is not None:
        pairs.append(("Longest wait", format_duration(facts.longest_wait)))
    if facts.calls_waiting is not None:
        pairs.append(("Calls waiting", str(facts.calls_waiting)))
    if facts.agents_available is not None:
        pairs.append(("Agents free", str(facts.agents_available)))
    if facts.abandon_rate is not None:
        pairs.append(("Abandoned", format_percent(facts.abandon_rate)))
    if facts.entered_at is not None and facts.kind in ("reminder", "escalated", "stats_stale"):
        held = facts.raised_for
        pairs.append(("At this tier for", "?" if held is None else format_duration(held)))
    if facts.live_switches:
        pairs.append(("Already on", ", ".join(facts.live_switches)))
    return [
        {"type": "mrkdwn", "text": _cut(f"*{label}*\n{slack_escape(value)}", FIELD_MAX)}
        for label, value in pairs[:FIELDS_MAX]
    ]


def slack_payload(facts: MessageFacts, message: Rendered, section: str | None) -> dict[str, Any]:
    """The incoming-webhook body: fallback ``text`` and Block Kit ``blocks``.

    ``section`` is the main section's mrkdwn (already escaped); None writes the reason.
    """
    main = section if section is not None else f"*Why:* {slack_escape(facts.reason)}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(message.subject, HEADER_MAX)},
        },
    ]
    if main.strip():
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(main, SECTION_MAX)}}
        )
    blocks.append({"type": "section", "fields": _fields(facts)})
    if facts.ack_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Acknowledge"},
                        "url": facts.ack_url,
                        "style": "primary",
                        "action_id": "acknowledge",
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(
                        f"Rising Tide · {slack_escape(facts.line)} · {slack_escape(facts.key)}",
                        SECTION_MAX,
                    ),
                }
            ],
        }
    )
    # The fallback is what a phone notification shows: the headline and the wait.
    fallback = f"{message.subject}\n{wait_line(facts)}"
    return {"text": slack_escape(fallback), "blocks": blocks}


class SlackResponder:
    """Posts each order to a Slack incoming webhook."""

    undoable = False

    def __init__(self, name: str, settings: SlackSettings) -> None:
        """Post to ``settings.url``."""
        self.name = name
        self._settings = settings
        self._templates = MessageTemplates(subject=settings.subject_template)

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Post the message for ``order``; return ``posted to Slack``."""
        skipped = not_undone(order)
        if skipped is not None:
            return skipped
        facts = facts_from(order, context)
        try:
            message = render(facts, self._templates)
            section = (
                None
                if self._settings.template is None
                else render_string(self._settings.template, facts, "slack").strip()
            )
        except TemplateError as exc:
            raise ResponseError(
                f"response {self.name!r}: {exc}", reason="template", retryable=False
            ) from None
        body = json.dumps(slack_payload(facts, message, section), ensure_ascii=False)
        what = f"response {self.name!r}: Slack webhook"
        response = await post(
            self._settings.url.get_secret_value(),
            content=body.encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            time_limit=self._settings.timeout.total_seconds(),
            what=what,
        )
        check_status(response, what)
        return "posted to Slack"


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    if not isinstance(settings, SlackSettings):
        raise TypeError(f"response {name!r}: settings are {type(settings).__name__}")
    return SlackResponder(name, settings)


PLUGIN = ResponderPlugin(
    type="slack",
    settings_model=SlackSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Post a Block Kit message to a Slack incoming webhook.",
)
