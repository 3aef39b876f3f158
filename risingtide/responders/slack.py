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
acknowledge link is known, and a ``context`` block naming the line and the notice key (for
a single order, its own key). ``text`` is the notification and screen-reader fallback Slack
asks for alongside blocks.

The people the response pages who are on duty and have a Slack member id
(``Person.slack``, ``U…``) are mentioned as ``<@U…>`` in a section under the header (and
in the fallback ``text``, so the notification reaches them); people without one are not
named. A channel's incoming webhook can mention anyone in the workspace this way.

A notice about several lines is one message: a header (the digest's headline), the
mentions, the response's ``digest_template`` if any, then one ``section`` per line, highest
tier first (its headline in bold, its figures on one line, the reason, and an "Acknowledge"
button as the section's ``accessory``), a "+N more" context when lines had to be left out
(a message holds 50 blocks), an "Open the duty board" button when the board's link is
known, and the context block. ``digest_subject_template`` replaces the header.

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

Pace: at most one post a second per response (Slack's documented rate for posting
messages) unless the response sets its own ``rate_limit``; the dispatcher holds the rest.

The webhook URL is the credential: it is held as a secret and never quoted in errors.

Doc pages followed: Slack "Sending messages using incoming webhooks"
(api.slack.com/messaging/webhooks; docs.slack.dev python-slack-sdk ``webhook`` page: the
``text`` + ``blocks`` payload, ``200 ok``), the incoming-webhook error changelog
(api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks), "Rate
limits" (api.slack.com/docs/rate-limits: about one message a second, 429 with
``Retry-After``), and the Block Kit blocks reference
(api.slack.com/reference/block-kit/blocks: header, section, actions, context; a section's
``accessory`` element; at most 50 blocks), and "Formatting message text"
(docs.slack.dev/messaging/formatting-message-text: mentioning a user as ``<@U024BE7LH>``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from risingtide.config.schema import PositiveDuration
from risingtide.domain.model import ResponseOrder
from risingtide.domain.people import Person
from risingtide.messages import (
    MessageFacts,
    MessageTemplates,
    Rendered,
    TemplateError,
    digest_variables,
    format_duration,
    format_percent,
    headline,
    render_string,
    slack_escape,
    wait_line,
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
    MessageTemplate,
    SecretHttpUrl,
    check_status,
    nothing_to_send,
    post,
    render_notice,
    template_failure,
)

__all__ = ["PLUGIN", "SlackResponder", "SlackSettings", "slack_digest_payload", "slack_payload"]

HEADER_MAX: Final = 150
SECTION_MAX: Final = 3000
FIELD_MAX: Final = 2000
FIELDS_MAX: Final = 10
BLOCKS_MAX: Final = 50


class SlackSettings(BaseModel):
    """``url``: the incoming webhook (a secret); optional ``template`` (the main section,
    mrkdwn), ``subject_template`` (the header and fallback), ``digest_template`` and
    ``digest_subject_template`` (the same for a digest), ``timeout`` (default 10s)."""

    # hide_input_in_errors: a malformed secret must not reach logs through str(error).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretHttpUrl
    template: MessageTemplate | None = None
    subject_template: MessageTemplate | None = None
    digest_template: DigestTemplate | None = None
    digest_subject_template: DigestTemplate | None = None
    timeout: PositiveDuration = DEFAULT_TIMEOUT


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pairs(facts: MessageFacts) -> list[tuple[str, str]]:
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
    return pairs


def _fields(facts: MessageFacts) -> list[dict[str, str]]:
    return [
        {"type": "mrkdwn", "text": _cut(f"*{label}*\n{slack_escape(value)}", FIELD_MAX)}
        for label, value in _pairs(facts)[:FIELDS_MAX]
    ]


def mentions(people: Sequence[Person]) -> list[str]:
    """``<@U…>`` for each paged person with a Slack member id, each once, in order."""
    out: list[str] = []
    for person in people:
        tag = f"<@{person.slack}>" if person.slack else None
        if tag and tag not in out:
            out.append(tag)
    return out


def _header(subject: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(subject, HEADER_MAX)}}


def _mrkdwn_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}]}


def _button(text: str, url: str, action_id: str, *, primary: bool = True) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _cut(text, 75)},
        "url": url,
        "action_id": action_id,
    }
    if primary:
        button["style"] = "primary"
    return button


def _fallback(text: str, tags: Sequence[str]) -> str:
    # Escaped first, then the mentions added: they are Slack's own markup.
    escaped = slack_escape(text)
    return f"{escaped}\n{' '.join(tags)}" if tags else str(escaped)


def slack_payload(
    facts: MessageFacts,
    message: Rendered,
    section: str | None,
    *,
    key: str | None = None,
    people: Sequence[Person] = (),
) -> dict[str, Any]:
    """The incoming-webhook body about one line: fallback ``text`` and Block Kit ``blocks``.

    ``section`` is the main section's mrkdwn (already escaped); None writes the reason.
    ``key`` (the notice key; default the order's) is shown in the context block; ``people``
    with a Slack member id are mentioned.
    """
    main = section if section is not None else f"*Why:* {slack_escape(facts.reason)}"
    tags = mentions(people)
    blocks: list[dict[str, Any]] = [_header(message.subject)]
    if tags:
        blocks.append(_mrkdwn_section("For: " + " ".join(tags)))
    if main.strip():
        blocks.append(_mrkdwn_section(main))
    blocks.append({"type": "section", "fields": _fields(facts)})
    if facts.ack_url:
        button = _button("Acknowledge", facts.ack_url, "acknowledge")
        blocks.append({"type": "actions", "elements": [button]})
    shown_key = facts.key if key is None else key
    blocks.append(_context(f"Rising Tide · {slack_escape(facts.line)} · {slack_escape(shown_key)}"))
    # The fallback is what a phone notification shows: the headline and the wait.
    return {"text": _fallback(f"{message.subject}\n{wait_line(facts)}", tags), "blocks": blocks}


def _line_section(facts: MessageFacts, index: int) -> dict[str, Any]:
    figures = " · ".join(f"{label} {value}" for label, value in _pairs(facts))
    parts = [f"*{slack_escape(headline(facts))}*", slack_escape(figures)]
    if facts.reason:
        parts.append(f"_Why:_ {slack_escape(facts.reason)}")
    block = _mrkdwn_section("\n".join(parts))
    if facts.ack_url:
        block["accessory"] = _button("Acknowledge", facts.ack_url, f"acknowledge_{index}")
    return block


def slack_digest_payload(
    facts: Sequence[MessageFacts],
    message: Rendered,
    section: str | None,
    *,
    key: str,
    people: Sequence[Person] = (),
) -> dict[str, Any]:
    """The incoming-webhook body about several lines (``facts`` in the digest's order,
    highest tier first): one section per line, as many as a message's 50 blocks hold.

    ``section`` is the digest template's mrkdwn (already escaped), or None.
    """
    if not facts:
        raise ValueError("a digest needs at least one line")
    tags = mentions(people)
    board_url = next((f.board_url for f in facts if f.board_url), None)
    head: list[dict[str, Any]] = [_header(message.subject)]
    if tags:
        head.append(_mrkdwn_section("For: " + " ".join(tags)))
    if section is not None and section.strip():
        head.append(_mrkdwn_section(section))
    tail: list[dict[str, Any]] = []
    if board_url:
        button = _button("Open the duty board", board_url, "duty_board", primary=False)
        tail.append({"type": "actions", "elements": [button]})
    tail.append(_context(f"Rising Tide · {len(facts)} lines · {slack_escape(key)}"))
    room = BLOCKS_MAX - len(head) - len(tail)
    if len(facts) > room:
        room -= 1  # for the "+N more" line
    shown = list(facts[:room])
    lines = [_line_section(f, i) for i, f in enumerate(shown)]
    if len(shown) < len(facts):
        where = ": see the duty board" if board_url else ""
        lines.append(_context(f"+{len(facts) - len(shown)} more{where}"))
    return {"text": _fallback(message.subject, tags), "blocks": [*head, *lines, *tail]}


class SlackResponder:
    """Posts each notice to a Slack incoming webhook."""

    undoable = False

    def __init__(self, name: str, settings: SlackSettings) -> None:
        """Post to ``settings.url``."""
        self.name = name
        self._settings = settings
        # The body templates are rendered here, in Slack's escaping mode; only the subject
        # goes through the shared renderer.
        self._templates = MessageTemplates(subject=settings.subject_template)
        self._digest_templates = MessageTemplates(subject=settings.digest_subject_template)

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Post the message for ``order`` alone; return ``posted to Slack``."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Post one message for ``notice`` (one line, or a digest of several), mentioning
        the people paged; return ``posted to Slack``."""
        skipped = nothing_to_send(notice)
        if skipped is not None:
            return skipped
        facts, message = render_notice(self.name, notice, self._templates, self._digest_templates)
        s = self._settings
        try:
            if len(facts) == 1:
                section = (
                    None
                    if s.template is None
                    else render_string(s.template, facts[0], "slack").strip()
                )
                payload = slack_payload(
                    facts[0], message, section, key=notice.key, people=notice.people
                )
            else:
                section = (
                    None
                    if s.digest_template is None
                    else render_string(
                        s.digest_template, digest_variables(facts, notice.key), "slack"
                    ).strip()
                )
                payload = slack_digest_payload(
                    facts, message, section, key=notice.key, people=notice.people
                )
        except TemplateError as exc:
            raise template_failure(self.name, exc) from None
        body = json.dumps(payload, ensure_ascii=False)
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
    settings = settings_as(SlackSettings, settings, f"response {name!r}")
    return SlackResponder(name, settings)


PLUGIN = ResponderPlugin(
    type="slack",
    settings_model=SlackSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Post a Block Kit message to a Slack incoming webhook.",
    # Slack's rate limits page: posting messages, 1 per second (short bursts allowed).
    default_rate_limit=(1, timedelta(seconds=1)),
)
