"""The ``teams`` responder against a fake Teams webhook on loopback.

The fake checks the Workflows envelope and Adaptive Card as Microsoft documents them (or
the legacy MessageCard), refuses payloads over 28 KB, and can answer like a throttled
connector: 200 with an error text in the body.
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
from risingtide.responders.teams import TeamsSettings
from tests.adapters import notices
from tests.adapters.loopback import Loopback, free_port
from tests.adapters.notices import ASHA, BATCH_KEY, BEN, BOARD, HEADLINES

T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
HOOK_PATH = "/workflows/abc123/triggers/manual/paths/invoke"
ACK = "https://rt.example/ack/revenues"
THROTTLED = (
    "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP "
    "error 429 with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef"
)


def _order(tier: int = 3) -> ResponseOrder:
    return ResponseOrder(
        key=f"revenues/7/tier_changed/{tier}/0-{tier}@2026-01-05T09:25:00+00:00/teams_csc/apply",
        line="revenues", response="teams_csc", action=Action.APPLY, tier=tier, episode=7,
        trigger="tier_changed", at=T0, reason="avg_wait 700s > 600s for 5m",
    )  # fmt: skip


def _context(ack: str | None = ACK) -> ResponseContext:
    return ResponseContext(
        line_name="Revenues & Benefits",
        tier_name="flood",
        stats=QueueStats(line="revenues", at=T0, calls_waiting=31, avg_wait=700.0,
                         offered=80, abandoned=12, window=900.0),
        target_wait=180.0,
        extra={"ack_url": ack} if ack else {},
    )  # fmt: skip


def adaptive_problems(payload: dict[str, Any]) -> list[str]:
    """What a Workflows webhook would refuse (the documented envelope and card basics)."""
    problems = []
    if payload.get("type") != "message":
        problems.append('"type" must be "message"')
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return [*problems, "one attachment expected"]
    att = attachments[0]
    if att.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append("contentType must be the adaptive card type")
    if "contentUrl" not in att or att["contentUrl"] is not None:
        problems.append("contentUrl must be null")
    card = att.get("content", {})
    if card.get("type") != "AdaptiveCard" or card.get("version") != "1.2":
        problems.append("content must be an AdaptiveCard of version 1.2")
    for element in card.get("body", []):
        if element["type"] not in ("TextBlock", "FactSet"):
            problems.append(f"unexpected element {element['type']}")
    for action in card.get("actions", []):
        if action["type"] != "Action.OpenUrl" or not action["url"].startswith("https://"):
            problems.append("only Action.OpenUrl with a link")
    problems.extend(mention_problems(card))
    return problems


def mention_problems(card: dict[str, Any]) -> list[str]:
    """Mentions as cards-format.md documents them: each ``msteams.entities`` item is
    ``{type: mention, text: "<at>Name</at>", mentioned: {id, name}}`` and its text appears
    in a TextBlock of the body."""
    entities = card.get("msteams", {}).get("entities", [])
    texts = " ".join(e["text"] for e in card.get("body", []) if e["type"] == "TextBlock")
    problems = []
    for entity in entities:
        mentioned = entity.get("mentioned", {})
        name = mentioned.get("name", "")
        if entity.get("type") != "mention" or entity.get("text") != f"<at>{name}</at>":
            problems.append(f"malformed mention entity {entity}")
        if not mentioned.get("id") or not name:
            problems.append(f"mention without id or name {entity}")
        if entity.get("text", "?") not in texts:
            problems.append(f"{entity.get('text')} is in no TextBlock")
    return problems


@dataclass
class FakeTeams:
    """A Teams webhook: validates, answers ``status``/``body`` (202 like Workflows)."""

    status: int = 202
    body: str = ""
    payloads: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            raw = await request.body()
            self.sizes.append(len(raw))
            if len(raw) > 28_000:
                return PlainTextResponse("The payload is too large", status_code=413)
            payload = json.loads(raw)
            self.payloads.append(payload)
            if "@type" not in payload and adaptive_problems(payload):
                return PlainTextResponse("; ".join(adaptive_problems(payload)), status_code=400)
            return PlainTextResponse(self.body, status_code=self.status)

        return Starlette(routes=[Route(HOOK_PATH, hook, methods=["POST"])])


def _responder(base: str, **settings: Any) -> Any:
    plugin = RESPONDER_TYPES["teams"]
    validated = plugin.settings_model.model_validate({"url": base + HOOK_PATH, **settings})
    return plugin.build("teams_csc", validated, BuildContext(clock=SystemClock()))


async def test_posts_the_documented_adaptive_card_envelope_with_an_ack_action() -> None:
    """type message, one adaptive attachment, contentUrl null, version 1.2, OpenUrl action."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        assert await _responder(base).run(_order(), _context()) == "posted to Teams (HTTP 202)"
    payload = teams.payloads[0]
    assert adaptive_problems(payload) == []
    card = payload["attachments"][0]["content"]
    headline, facts, why, footer = card["body"]
    assert headline["text"] == "Revenues & Benefits raised to tier 3 (flood)"
    assert headline["color"] == "Attention" and headline["wrap"] is True
    assert facts["facts"] == [
        {"title": "Average wait", "value": "11m 40s (target 3m)"},
        {"title": "Calls waiting", "value": "31"},
        {"title": "Abandoned", "value": "15%"},
    ]
    assert why["text"] == "Why: avg_wait 700s > 600s for 5m"
    assert footer["isSubtle"] is True
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Acknowledge", "url": ACK}]


async def test_no_ack_link_means_no_actions() -> None:
    """Without an acknowledge link the card has no actions at all."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        await _responder(base).run(_order(), _context(ack=None))
    assert "actions" not in teams.payloads[0]["attachments"][0]["content"]


async def test_messagecard_format_for_a_legacy_connector() -> None:
    """format: messagecard posts a MessageCard with facts and an OpenUri action."""
    teams = FakeTeams(status=200, body="1")
    async with Loopback(teams.app()) as base:
        await _responder(base, format="messagecard").run(_order(), _context())
    card = teams.payloads[0]
    assert (card["@type"], card["@context"]) == ("MessageCard", "http://schema.org/extensions")
    assert card["summary"] == card["title"] == "Revenues & Benefits raised to tier 3 (flood)"
    assert card["themeColor"] == "D4351C"
    assert card["sections"][0]["facts"][0] == {
        "name": "Average wait",
        "value": "11m 40s (target 3m)",
    }
    assert card["potentialAction"] == [
        {"@type": "OpenUri", "name": "Acknowledge", "targets": [{"os": "default", "uri": ACK}]}
    ]


async def test_a_200_carrying_a_throttling_error_text_is_a_retryable_failure() -> None:
    """A throttled connector says 200 but names HTTP error 429 in its body: retry later."""
    teams = FakeTeams(status=200, body=THROTTLED)
    async with Loopback(teams.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(base, format="messagecard").run(_order(), _context())
    assert (caught.value.reason, caught.value.retryable) == ("http_429", True)
    assert "reported HTTP error 429" in str(caught.value)


async def test_a_long_custom_template_is_cut_to_stay_under_28kb() -> None:
    """A template writing 40 KB is shortened: the card still goes, under the limit."""
    teams = FakeTeams()
    template = "{% for i in range(4000) %}Line {{ line_name }} {% endfor %}"
    async with Loopback(teams.app()) as base:
        await _responder(base, template=template).run(_order(), _context())
    assert teams.sizes[0] <= 28_000
    text_block = teams.payloads[0]["attachments"][0]["content"]["body"][1]
    assert text_block["text"].startswith("Line Revenues & Benefits") and text_block[
        "text"
    ].endswith("…")


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [(400, "http_4xx", False), (404, "http_4xx", False), (502, "http_5xx", True)],
)
async def test_http_failures_are_classified(status: int, reason: str, retryable: bool) -> None:
    """A 4xx is not retryable; a 5xx is."""
    teams = FakeTeams(status=status, body='{"error":{"code":"x","message":"y"}}')
    async with Loopback(teams.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(base).run(_order(), _context())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert "abc123" not in str(caught.value)  # the URL is the credential: never quoted


# --------------------------------------------------------------------------- notices


def _card(payload: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = payload["attachments"][0]["content"]
    return content


def _texts(card: dict[str, Any]) -> list[str]:
    return [e["text"] for e in card["body"] if e["type"] == "TextBlock"]


async def test_a_digest_of_three_lines_is_one_card_highest_tier_first() -> None:
    """One post: each line's headline and figures, the notice key in the footer, inline
    acknowledge links and a board action."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        outcome = await _responder(base).notify(notices.digest("teams_csc"))
    assert outcome == "posted to Teams (HTTP 202)"
    assert len(teams.payloads) == 1
    payload = teams.payloads[0]
    assert adaptive_problems(payload) == []
    card = _card(payload)
    texts = _texts(card)
    assert texts[0] == (
        "3 lines: Revenues & Benefits tier 3, Council Tax tier 2, Waste & Recycling tier 1"
    )
    positions = [texts.index(h) for h in HEADLINES]
    assert positions == sorted(positions)
    fact_sets = [e for e in card["body"] if e["type"] == "FactSet"]
    assert [fs["facts"][0]["value"] for fs in fact_sets] == [
        "11m 40s (target 3m)", "6m 40s (target 3m)", "3m 20s (target 3m)",
    ]  # fmt: skip
    assert any("[Acknowledge Council Tax](https://rt.example/ack/council_tax)" in t for t in texts)
    assert texts[-1] == f"Rising Tide · 3 lines · {BATCH_KEY}"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the duty board", "url": BOARD}
    ]


async def test_the_people_paged_are_mentioned_by_their_teams_user() -> None:
    """Asha and Ben have Teams users: a mention each, well formed; Chloe has none."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        await _responder(base).notify(notices.digest("teams_csc"))
    card = _card(teams.payloads[0])
    assert card["msteams"]["entities"] == [
        {"type": "mention", "text": "<at>Asha Patel</at>",
         "mentioned": {"id": ASHA.teams, "name": "Asha Patel"}},
        {"type": "mention", "text": "<at>Ben Okafor</at>",
         "mentioned": {"id": BEN.teams, "name": "Ben Okafor"}},
    ]  # fmt: skip
    assert "For: <at>Asha Patel</at>, <at>Ben Okafor</at>" in _texts(card)
    assert "Chloe" not in json.dumps(card)


async def test_a_single_line_card_mentions_too_and_shows_the_notice_key() -> None:
    """An APPLY among UNDOs is the single-line card about it alone, with the mentions."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        await _responder(base).notify(notices.mixed("teams_csc"))
    payload = teams.payloads[0]
    assert adaptive_problems(payload) == []
    card = _card(payload)
    texts = _texts(card)
    assert texts[0] == "Council Tax raised to tier 2 (high)"
    assert texts[1] == "For: <at>Asha Patel</at>, <at>Ben Okafor</at>"
    assert texts[-1] == f"Rising Tide · council_tax · {BATCH_KEY}"
    assert "Waste" not in json.dumps(card) and "Revenues" not in json.dumps(card)
    assert len(card["msteams"]["entities"]) == 2


async def test_a_digest_as_a_legacy_messagecard_names_the_people() -> None:
    """format: messagecard: a section per line with its Acknowledge link; a connector card
    cannot mention, so the people are named."""
    teams = FakeTeams(status=200, body="1")
    async with Loopback(teams.app()) as base:
        await _responder(base, format="messagecard").notify(notices.digest("teams_csc"))
    card = teams.payloads[0]
    assert card["@type"] == "MessageCard" and "msteams" not in card
    sections = card["sections"]
    assert sections[0]["text"] == "For: Asha Patel, Ben Okafor"
    assert [s["activityTitle"] for s in sections[1:4]] == list(HEADLINES)
    assert sections[2]["potentialAction"][0]["targets"][0]["uri"].endswith("/council_tax")
    assert BATCH_KEY in sections[-1]["text"]
    assert card["potentialAction"][0]["name"] == "Open the duty board"


async def test_a_digest_too_big_for_one_card_leaves_out_the_lowest_lines() -> None:
    """Sixty lines do not fit in 28 KB: the card keeps the highest and says how many more."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        await _responder(base).notify(notices.many("teams_csc", 60))
    assert teams.sizes[0] <= 28_000
    texts = _texts(_card(teams.payloads[0]))
    more = [t for t in texts if t.startswith("+")]
    assert len(more) == 1 and more[0].endswith(" more: see the duty board")
    shown = [t for t in texts if t.startswith("Service line number")]
    assert len(shown) + int(more[0].split()[0][1:]) == 60


async def test_a_digest_template_adds_its_text_under_the_headline() -> None:
    """digest_template and digest_subject_template are used for a digest."""
    teams = FakeTeams()
    async with Loopback(teams.app()) as base:
        responder = _responder(
            base, template="{{ line_name }}", digest_subject_template="{{ summary }}",
            digest_template="{% for l in lines %}{{ l.line }}={{ l.tier }} {% endfor %}",
        )  # fmt: skip
        await responder.notify(notices.digest("teams_csc", people=()))
    texts = _texts(_card(teams.payloads[0]))
    assert texts[:2] == ["3 lines need attention", "revenues=3 council_tax=2 waste=1"]


async def test_a_notice_of_undos_only_posts_nothing() -> None:
    """UNDOs take nothing back: nothing is posted."""
    responder = _responder(f"http://127.0.0.1:{free_port()}")
    assert "nothing to undo" in await responder.notify(notices.undo_only("teams_csc"))


def test_an_invalid_digest_template_is_refused_when_the_config_is_loaded() -> None:
    """A digest template sees the digest's variables: a single line's is an error."""
    with pytest.raises(ValidationError, match="'tier_label' is undefined"):
        TeamsSettings.model_validate(
            {"url": "https://x.example/h", "digest_template": "{{ tier_label }}"}
        )
    assert RESPONDER_TYPES["teams"].address(TeamsSettings(url="https://x.example/h")) is None
