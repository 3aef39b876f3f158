"""The ``slack`` responder against a fake incoming webhook on loopback.

The fake checks the Block Kit structure the way Slack documents it (block types, text
object types, the header and field limits) and answers ``ok`` or Slack's error codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import SystemClock
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.ports import BuildContext, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.slack import SlackSettings
from tests.adapters import notices
from tests.adapters.loopback import Loopback, free_port
from tests.adapters.notices import ASHA, BATCH_KEY, BOARD, CHLOE, HEADLINES

T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
HOOK_PATH = "/services/T000/B000/XXXXSECRETXXXX"
ACK = "https://rt.example/ack/council_tax"


def _order(trigger: str = "reminder") -> ResponseOrder:
    return ResponseOrder(
        key=f"council_tax/3/{trigger}/2/2026-01-05T09:00:00+00:00#1/slack_csc/apply",
        line="council_tax", response="slack_csc", action=Action.APPLY, tier=2, episode=3,
        trigger=trigger, at=T0, reason="tier 2 high still unacknowledged",
    )  # fmt: skip


def _context(line_name: str = "Council Tax", ack: str | None = ACK) -> ResponseContext:
    extra: dict[str, Any] = {"entered_at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC)}
    if ack:
        extra["ack_url"] = ack
    return ResponseContext(
        line_name=line_name,
        tier_name="high",
        stats=QueueStats(line="council_tax", at=T0, calls_waiting=14, avg_wait=400.0,
                         longest_wait=725.0, agents_available=2),
        target_wait=180.0,
        extra=extra,
    )  # fmt: skip


def block_kit_problems(payload: dict[str, Any]) -> list[str]:
    """What Slack would refuse in an incoming-webhook payload (a subset of its rules)."""
    problems = []
    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("text fallback missing")
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return [*problems, "blocks missing or more than 50"]
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            text = block["text"]
            if text["type"] != "plain_text" or len(text["text"]) > 150:
                problems.append("header must be plain_text of at most 150 characters")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append("section needs text or fields")
            if "text" in block and len(block["text"]["text"]) > 3000:
                problems.append("section text over 3000")
            for f in block.get("fields", []):
                if f["type"] not in ("mrkdwn", "plain_text") or len(f["text"]) > 2000:
                    problems.append("bad field")
            if len(block.get("fields", [])) > 10:
                problems.append("more than 10 fields")
            accessory = block.get("accessory")
            if accessory is not None and (
                accessory.get("type") != "button" or accessory["text"]["type"] != "plain_text"
            ):
                problems.append("bad accessory")
        elif kind == "actions":
            for el in block["elements"]:
                if el["type"] != "button" or el["text"]["type"] != "plain_text":
                    problems.append("bad action element")
        elif kind == "context":
            if not block["elements"] or len(block["elements"]) > 10:
                problems.append("context needs 1 to 10 elements")
        else:
            problems.append(f"unexpected block type {kind}")
    return problems


@dataclass
class FakeSlack:
    """An incoming webhook: validates the payload, answers ``status``/``body``."""

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            payload = json.loads(await request.body())
            self.payloads.append(payload)
            if block_kit_problems(payload):
                return PlainTextResponse("invalid_blocks", status_code=400)
            return PlainTextResponse(self.body, status_code=self.status, headers=self.headers)

        return Starlette(routes=[Route(HOOK_PATH, hook, methods=["POST"])])


def _responder(base: str, **settings: Any) -> Any:
    plugin = RESPONDER_TYPES["slack"]
    validated = plugin.settings_model.model_validate({"url": base + HOOK_PATH, **settings})
    return plugin.build("slack_csc", validated, BuildContext(clock=SystemClock()))


async def test_posts_a_block_kit_message_with_fields_and_an_acknowledge_button() -> None:
    """Header, reason section, figure fields, an Acknowledge link button and context."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        assert await _responder(base).run(_order(), _context()) == "posted to Slack"
    payload = slack.payloads[0]
    assert block_kit_problems(payload) == []
    types = [b["type"] for b in payload["blocks"]]
    assert types == ["header", "section", "section", "actions", "context"]
    header, why, figures, actions, context = payload["blocks"]
    assert header["text"]["text"] == (
        "Reminder: Council Tax still at tier 2 (high), not acknowledged"
    )
    assert why["text"] == {"type": "mrkdwn", "text": "*Why:* tier 2 high still unacknowledged"}
    assert [f["text"] for f in figures["fields"]] == [
        "*Average wait*\n6m 40s (target 3m)",
        "*Longest wait*\n12m 5s",
        "*Calls waiting*\n14",
        "*Agents free*\n2",
        "*At this tier for*\n25m",
    ]
    button = actions["elements"][0]
    assert (button["url"], button["text"]["text"]) == (ACK, "Acknowledge")
    assert "council_tax/3/reminder" in context["elements"][0]["text"]
    assert payload["text"].startswith("Reminder: Council Tax still at tier 2")
    assert "Average wait 6m 40s (target 3m)" in payload["text"]


async def test_without_an_ack_link_there_is_no_button() -> None:
    """The actions block appears only when an acknowledge link is known."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        await _responder(base).run(_order(), _context(ack=None))
    assert "actions" not in [b["type"] for b in slack.payloads[0]["blocks"]]


async def test_a_hostile_line_name_cannot_ping_the_channel() -> None:
    """<!channel> in a line name reaches Slack escaped in every mrkdwn text."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        await _responder(base, template="*{{ line_name }}* waits {{ avg_wait_text }}").run(
            _order(), _context(line_name="Tax <!channel> & co")
        )
    payload = slack.payloads[0]
    assert "<!channel>" not in payload["text"]
    assert "Tax &lt;!channel&gt; &amp; co" in payload["text"]
    assert payload["blocks"][1]["text"]["text"] == "*Tax &lt;!channel&gt; &amp; co* waits 6m 40s"


@pytest.mark.parametrize(
    ("status", "body", "reason", "retryable"),
    [
        (400, "invalid_payload", "http_4xx", False),
        (403, "action_prohibited", "http_4xx", False),
        (404, "channel_not_found", "http_4xx", False),
        (410, "channel_is_archived", "http_4xx", False),
        (429, "rate_limited", "http_429", True),
        (500, "rollup_error", "http_5xx", True),
    ],
)
async def test_slack_error_codes_are_classified_and_quoted_without_the_url(
    status: int, body: str, reason: str, retryable: bool
) -> None:
    """Slack's documented webhook errors keep their code in the message; the URL never shows."""
    slack = FakeSlack(status=status, body=body, headers={"Retry-After": "1"})
    async with Loopback(slack.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(base).run(_order(), _context())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert body in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_the_webhook_url_is_a_secret_and_must_be_a_url() -> None:
    """The URL is hidden in reprs and checked when the config is loaded."""
    settings = SlackSettings.model_validate({"url": "https://hooks.slack.com/services/T/B/S"})
    assert "hooks.slack.com" not in repr(settings)
    with pytest.raises(ValidationError, match="http:// or https://"):
        SlackSettings.model_validate({"url": "hooks.slack.com/services/T/B/S"})


# --------------------------------------------------------------------------- notices


def _sections(payload: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]


async def test_a_digest_of_three_lines_is_one_message_with_a_section_per_line() -> None:
    """One post: a section per line, highest tier first, each with its Acknowledge button;
    the board button and the notice key at the end."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        assert await _responder(base).notify(notices.digest("slack_csc")) == "posted to Slack"
    assert len(slack.payloads) == 1
    payload = slack.payloads[0]
    assert block_kit_problems(payload) == []
    blocks = payload["blocks"]
    assert blocks[0]["text"]["text"] == (
        "3 lines: Revenues & Benefits tier 3, Council Tax tier 2, Waste & Recycling tier 1"
    )
    lines = [b for b in blocks if b["type"] == "section" and "accessory" in b]
    expected = [f"*{h.replace('&', '&amp;')}*" for h in HEADLINES]
    assert [b["text"]["text"].splitlines()[0] for b in lines] == expected
    assert "Average wait 11m 40s (target 3m) · Calls waiting 31" in lines[0]["text"]["text"]
    assert lines[1]["accessory"]["url"] == "https://rt.example/ack/council_tax"
    assert len({b["accessory"]["action_id"] for b in lines}) == 3
    assert blocks[-2]["elements"][0]["url"] == BOARD
    assert blocks[-1]["elements"][0]["text"] == f"Rising Tide · 3 lines · {BATCH_KEY}"


async def test_the_people_paged_are_mentioned_by_member_id() -> None:
    """Asha and Chloe have Slack ids: <@U…> in a section and in the fallback text (which
    is what notifies); Ben has none and is not named."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        await _responder(base).notify(notices.digest("slack_csc"))
    payload = slack.payloads[0]
    mentions = f"<@{ASHA.slack}> <@{CHLOE.slack}>"
    assert _sections(payload)[0] == f"For: {mentions}"
    assert payload["text"].endswith(mentions)
    assert "Okafor" not in json.dumps(payload)


async def test_a_single_line_message_mentions_too_and_shows_the_notice_key() -> None:
    """An APPLY among UNDOs is the single-line message about it, with the mentions."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        await _responder(base).notify(notices.mixed("slack_csc"))
    payload = slack.payloads[0]
    assert block_kit_problems(payload) == []
    types = [b["type"] for b in payload["blocks"]]
    assert types == ["header", "section", "section", "section", "actions", "context"]
    assert payload["blocks"][0]["text"]["text"] == "Council Tax raised to tier 2 (high)"
    assert _sections(payload)[0] == f"For: <@{ASHA.slack}> <@{CHLOE.slack}>"
    assert payload["blocks"][-1]["elements"][0]["text"].endswith(BATCH_KEY)
    assert "Waste" not in json.dumps(payload) and "Revenues" not in json.dumps(payload)


async def test_a_digest_of_sixty_lines_stays_within_fifty_blocks() -> None:
    """Slack takes at most 50 blocks: the rest are counted in a "+N more" line."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        await _responder(base).notify(notices.many("slack_csc", 60))
    payload = slack.payloads[0]
    assert block_kit_problems(payload) == []
    more = next(b for b in payload["blocks"] if b["type"] == "context")
    shown = [b for b in payload["blocks"] if "accessory" in b]
    assert more["elements"][0]["text"] == f"+{60 - len(shown)} more: see the duty board"


async def test_a_digest_template_is_mrkdwn_with_its_values_escaped() -> None:
    """digest_template writes a section under the header, escaping every value."""
    slack = FakeSlack()
    async with Loopback(slack.app()) as base:
        responder = _responder(
            base, template="{{ line_name }}", digest_subject_template="{{ summary }}",
            digest_template="{% for l in lines %}*{{ l.line_name }}* {% endfor %}",
        )  # fmt: skip
        await responder.notify(notices.digest("slack_csc", people=()))
    payload = slack.payloads[0]
    assert payload["blocks"][0]["text"]["text"] == "3 lines need attention"
    assert _sections(payload)[0] == (
        "*Revenues &amp; Benefits* *Council Tax* *Waste &amp; Recycling*"
    )


async def test_a_notice_of_undos_only_posts_nothing() -> None:
    """UNDOs take nothing back: nothing is posted."""
    responder = _responder(f"http://127.0.0.1:{free_port()}")
    assert "nothing to undo" in await responder.notify(notices.undo_only("slack_csc"))


def test_an_invalid_digest_template_is_refused_when_the_config_is_loaded() -> None:
    """A digest template sees the digest's variables only."""
    with pytest.raises(ValidationError, match="'reason' is undefined"):
        SlackSettings.model_validate(
            {"url": "https://hooks.slack.com/services/T/B/S", "digest_template": "{{ reason }}"}
        )
