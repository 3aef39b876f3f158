"""The ``http_json`` source against a fake wallboard on loopback.

The fake checks the credentials it receives (Basic, bearer, OAuth client credentials via a
token endpoint), counts requests, and serves a realistic wallboard feed
(``data/wallboard.json``); the HTTP failure modes go through ``PlatformClient``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.config import check_config, load_config
from risingtide.domain.model import QueueStats
from risingtide.ports import BuildContext, SourceError
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.http_json import (
    HttpJsonLine,
    HttpJsonSettings,
    HttpJsonSource,
    parse_json_path,
)
from risingtide.sources.webclient import RetryPolicy
from tests.adapters.loopback import Loopback

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
FEED = json.loads((DATA / "wallboard.json").read_text(encoding="utf-8"))
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=0)
NOW = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
BASIC = "Basic " + base64.b64encode(b"rising-tide:s3cret").decode()

#: The wallboard's mapping, as the docs' worked example writes it.
MAP: dict[str, Any] = {
    "calls_waiting": "realtime.callsWaiting",
    "longest_wait": {"path": "realtime.longestWaitMs", "unit": "ms"},
    "agents_available": "realtime.agentsAvailable",
    "agents_staffed": "realtime.agentsStaffed",
    "offered": "interval.offered",
    "answered": "interval.answered",
    "abandon_rate": {"path": "interval.abandonedPct", "unit": "percent"},
    "avg_wait": "interval.avgWaitSec",
    "avg_handle_time": "interval.avgHandleSec",
    "at": {"path": "updated", "unit": "ms"},
}


class Wallboard:
    """A fake wallboard: checks auth, counts requests, serves the feed or misbehaves."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.feed: Any = copy.deepcopy(FEED)
        self.expected_auth = BASIC
        self.token = ""
        self.tokens_issued = 0
        self.bodies: list[Any] = []

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == self.expected_auth

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.calls["token"] += 1
            form = await request.form()
            client = "Basic " + base64.b64encode(b"rt-client:rt-secret").decode()
            if request.headers.get("authorization") != client:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if form.get("grant_type") != "client_credentials" or form.get("scope") != "stats":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            self.tokens_issued += 1
            self.token = f"tok-{self.tokens_issued}"
            self.expected_auth = f"Bearer {self.token}"
            return JSONResponse({"access_token": self.token, "expires_in": 3600})

        async def wallboard(request: Request) -> Response:
            self.calls["wallboard"] += 1
            if not self.authorised(request):
                return JSONResponse({"message": "unauthorised"}, status_code=401)
            return JSONResponse(self.feed)

        async def by_id(request: Request) -> Response:
            self.calls["by_id"] += 1
            if not self.authorised(request):
                return JSONResponse({"message": "unauthorised"}, status_code=401)
            return JSONResponse({q["id"]: q for q in self.feed["data"]["queues"]})

        async def one_queue(request: Request) -> Response:
            queue = request.path_params["queue"]
            self.calls[f"queue:{queue}"] += 1
            if request.method == "POST":
                self.bodies.append(await request.json())
            for record in self.feed["data"]["queues"]:
                if record["name"] == queue:
                    return JSONResponse({"queue": record})
            return JSONResponse({"message": f"no queue {queue}"}, status_code=404)

        async def broken(request: Request) -> Response:
            self.calls["broken"] += 1
            return PlainTextResponse("wallboard database unavailable", status_code=500)

        async def limited(request: Request) -> Response:
            self.calls["limited"] += 1
            return JSONResponse(
                {"message": "slow down"}, status_code=429, headers={"Retry-After": "120"}
            )

        async def slow(request: Request) -> Response:
            await asyncio.sleep(1)
            return JSONResponse(self.feed)

        async def garbage(request: Request) -> Response:
            return PlainTextResponse("<html><body>Wallboard maintenance</body></html>")

        return Starlette(
            routes=[
                Route("/oauth/token", token, methods=["POST"]),
                Route("/api/wallboard", wallboard),
                Route("/api/by-id", by_id),
                Route("/api/queue/{queue}", one_queue, methods=["GET", "POST"]),
                Route("/broken", broken),
                Route("/limited", limited),
                Route("/slow", slow),
                Route("/garbage", garbage),
            ]
        )


@pytest.fixture
async def board():
    b = Wallboard()
    async with Loopback(b.app()) as url:
        yield b, url


def source(
    settings: dict[str, Any], lines: dict[str, dict[str, Any]], clock: FakeClock | None = None
) -> HttpJsonSource:
    """Validate both blocks as the loader does, then build the source with quick retries."""
    return HttpJsonSource(
        "wallboard",
        HttpJsonSettings.model_validate(settings),
        {k: HttpJsonLine.model_validate(v) for k, v in lines.items()},
        clock or FakeClock(NOW),
        policy=FAST,
    )


def shared(base: str, **extra: Any) -> dict[str, Any]:
    """Settings for the one-request wallboard with Basic auth."""
    return {
        "url": f"{base}/api/wallboard",
        "auth": {"basic": {"username": "rising-tide", "password": "s3cret"}},
        "lines_at": "data.queues",
        "key": "id",
        "map": MAP,
        "window": "15m",
        **extra,
    }


LINES = {
    "council_tax": {"queue": "CT01"},
    "revenues": {"queue": "RB02"},
    "waste": {"queue": "WR03"},
}


async def stats_of(src: HttpJsonSource) -> dict[str, QueueStats]:
    result = await src.poll()
    out: dict[str, QueueStats] = {}
    for line, item in result.items():
        assert not isinstance(item, SourceError), item
        out[line] = item
    return out


async def test_one_request_serves_every_line_with_units_converted(board):
    """One GET with Basic auth maps three lines: ms → s, percent → ratio → count, epoch ms."""
    b, url = board
    src = source(shared(url), LINES)
    try:
        stats = await stats_of(src)
    finally:
        await src.aclose()
    assert b.calls["wallboard"] == 1
    assert stats["council_tax"] == QueueStats(
        line="council_tax",
        at=datetime(2026, 1, 5, 9, 14, 30, tzinfo=UTC),
        calls_waiting=14,
        avg_wait=318.0,
        longest_wait=412.0,
        agents_available=1,
        agents_staffed=24,
        offered=212,
        answered=171,
        abandoned=25,  # 12 % of 212 = 25.44
        window=900.0,
        avg_handle_time=402.5,
    )
    assert stats["revenues"].abandoned == 6
    assert stats["revenues"].longest_wait == 95.5
    assert stats["waste"].longest_wait is None  # null in the feed: unknown
    assert stats["waste"].abandon_rate == 0.0


async def test_a_bearer_token_and_records_keyed_by_queue_id(board):
    """A static bearer token is sent; lines_at may be an object keyed by queue id."""
    b, url = board
    b.expected_auth = "Bearer wb-token-123"
    settings = shared(url, url=f"{url}/api/by-id", auth={"bearer": "wb-token-123"})
    settings["lines_at"] = "$"
    del settings["key"]
    src = source(settings, LINES)
    try:
        stats = await stats_of(src)
    finally:
        await src.aclose()
    assert b.calls["by_id"] == 1
    assert stats["revenues"].calls_waiting == 3


async def test_oauth_client_credentials_fetch_a_token_and_renew_it_after_a_401(board):
    """The token comes from the token endpoint (Basic client auth, scope); a 401 renews it."""
    b, url = board
    b.expected_auth = "Bearer nobody-has-this-yet"
    oauth = {
        "token_url": f"{url}/oauth/token",
        "client_id": "rt-client",
        "client_secret": "rt-secret",
        "scope": "stats",
    }
    src = source(shared(url, auth={"oauth_client_credentials": oauth}), LINES)
    try:
        await stats_of(src)
        await stats_of(src)
        assert (b.tokens_issued, b.calls["wallboard"]) == (1, 2)
        b.expected_auth = "Bearer revoked-by-the-platform"
        b.token = ""
        # The 401 invalidates the token; the new one is what the fake then expects.
        stats = await stats_of(src)
    finally:
        await src.aclose()
    assert b.tokens_issued == 2
    assert stats["council_tax"].calls_waiting == 14


async def test_a_wrong_password_is_a_401_that_is_not_retried_forever(board):
    """Refused Basic credentials: one re-authentication, then http_401, not retryable."""
    b, url = board
    settings = shared(url, auth={"basic": {"username": "rising-tide", "password": "wrong"}})
    src = source(settings, LINES)
    try:
        with pytest.raises(SourceError) as caught:
            await src.poll()
    finally:
        await src.aclose()
    assert (caught.value.reason, caught.value.retryable) == ("http_401", False)
    assert b.calls["wallboard"] == 2


async def test_one_request_per_line_when_the_url_has_a_queue_placeholder(board):
    """``{queue}`` in the URL: one POST per line, queue URL-encoded and put into the body."""
    b, url = board
    settings = {
        "url": f"{url}/api/queue/{{queue}}",
        "method": "post",
        "body": {"queue": "{queue}", "fields": ["realtime", "interval"]},
        "map": {
            "calls_waiting": "queue.realtime.callsWaiting",
            "avg_wait": {"path": "queue.interval.avgWaitSec", "unit": "s"},
        },
    }
    lines = {"council_tax": {"queue": "Council Tax"}, "revenues": {"queue": "Revenues & Benefits"}}
    src = source(settings, lines)
    try:
        stats = await stats_of(src)
    finally:
        await src.aclose()
    assert b.calls["queue:Council Tax"] == 1
    assert b.calls["queue:Revenues & Benefits"] == 1
    assert {"queue": "Council Tax", "fields": ["realtime", "interval"]} in b.bodies
    assert stats["revenues"].avg_wait == 64.0
    assert stats["council_tax"].at == NOW  # no at mapped: the poll's time


async def test_iso_timestamps_with_offsets_or_a_named_time_zone(board):
    """``at`` reads ISO 8601 with an offset, or local time with ``timezone``; a line may
    override the source's mapping (here: minutes instead of seconds)."""
    b, url = board
    queues = b.feed["data"]["queues"]
    queues[0]["updated"] = "2026-07-01T10:14:00+01:00"
    queues[1]["updated"] = "2026-07-01 10:13:00"  # a naive local time
    queues[1]["interval"]["avgWaitMin"] = 1.5
    settings = shared(url)
    settings["map"] = {**MAP, "at": {"path": "updated", "timezone": "Europe/London"}}
    lines = {
        "council_tax": {"queue": "CT01"},
        "revenues": {
            "queue": "RB02",
            "map": {"avg_wait": {"path": "interval.avgWaitMin", "unit": "min"}},
        },
    }
    src = source(settings, lines)
    try:
        stats = await stats_of(src)
    finally:
        await src.aclose()
    assert stats["council_tax"].at == datetime(2026, 7, 1, 9, 14, tzinfo=UTC)
    assert stats["revenues"].at == datetime(2026, 7, 1, 9, 13, tzinfo=UTC)  # BST
    assert stats["revenues"].avg_wait == 90.0


async def test_a_path_missing_from_the_feed_fails_that_line_naming_path_and_line(board):
    """A renamed field is a parse error for its line only, naming line, figure, path and
    where the path stopped; a missing queue and a ratio above 1 are named too."""
    b, url = board
    del b.feed["data"]["queues"][1]["realtime"]["callsWaiting"]
    b.feed["data"]["queues"][1]["realtime"]["callsWaitng"] = 3
    lines = {**LINES, "highways": {"queue": "HW09"}}
    settings = shared(url)
    settings["map"] = {**MAP, "abandon_rate": "interval.abandonedPct"}  # forgot unit: percent
    src = source(settings, lines)
    try:
        result = await src.poll()
    finally:
        await src.aclose()
    revenues, highways, council_tax = result["revenues"], result["highways"], result["council_tax"]
    assert isinstance(revenues, SourceError)
    assert (revenues.reason, revenues.retryable) == ("parse", False)
    assert str(revenues) == (
        'line "revenues": calls_waiting: path "realtime.callsWaiting" not found: '
        'data.queues[1].realtime has no "callsWaiting" (did you mean "callsWaitng"?)'
    )
    assert isinstance(highways, SourceError)
    assert str(highways) == 'line "highways": no record for queue "HW09" in data.queues by id'
    assert isinstance(council_tax, SourceError)
    assert str(council_tax) == (
        'line "council_tax": abandon_rate is 12, above 1 (a ratio is 0–1; '
        "for a percentage set unit: percent)"
    )
    assert isinstance(result["waste"], QueueStats)


async def test_records_not_where_lines_at_says_fail_the_poll_and_duplicates_fail_the_line(board):
    """A moved list fails the whole poll naming lines_at; two records for one queue fail
    that line rather than guess."""
    b, url = board
    b.feed["data"]["queues"][2]["id"] = "RB02"
    src = source(shared(url), LINES)
    try:
        result = await src.poll()
        b.feed = {"data": {"queue_list": []}}
        with pytest.raises(SourceError) as caught:
            await src.poll()
    finally:
        await src.aclose()
    assert str(result["revenues"]) == (
        'line "revenues": more than one record for queue "RB02" in data.queues by id'
    )
    assert isinstance(result["council_tax"], QueueStats)
    assert (caught.value.reason, caught.value.retryable) == ("parse", False)
    assert str(caught.value) == (
        'lines_at: path "data.queues" not found: data has no "queues" (did you mean "queue_list"?)'
    )


async def test_malformed_json_fails_the_whole_poll_as_parse(board):
    """A maintenance page instead of JSON: the poll fails with reason parse."""
    _, url = board
    src = source(shared(url, url=f"{url}/garbage"), LINES)
    try:
        with pytest.raises(SourceError) as caught:
            await src.poll()
    finally:
        await src.aclose()
    assert caught.value.reason == "parse"
    assert "maintenance" in str(caught.value)


async def test_a_feed_that_keeps_failing_is_retried_then_http_5xx(board):
    """500s are retried (three tries with the quick policy), then http_5xx, retryable."""
    b, url = board
    src = source(shared(url, url=f"{url}/broken"), LINES)
    try:
        with pytest.raises(SourceError) as caught:
            await src.poll()
    finally:
        await src.aclose()
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert b.calls["broken"] == 3


async def test_429_beyond_the_request_budget_is_http_429_at_once(board):
    """Retry-After: 120 with a 2 s budget is not waited for: http_429, retryable."""
    b, url = board
    src = source(shared(url, url=f"{url}/limited", request_budget="2s"), LINES)
    try:
        with pytest.raises(SourceError) as caught:
            await src.poll()
    finally:
        await src.aclose()
    assert (caught.value.reason, caught.value.retryable) == ("http_429", True)
    assert b.calls["limited"] == 1


async def test_a_slow_feed_times_out_within_the_request_budget(board):
    """A feed slower than request_budget fails with reason timeout, inside the budget."""
    _, url = board
    src = source(shared(url, url=f"{url}/slow", request_budget="300ms"), LINES)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(SourceError) as caught:
            await src.poll()
    finally:
        await src.aclose()
    assert caught.value.reason == "timeout"
    assert loop.time() - started < 1.5


async def test_the_plugin_is_wired_and_builds_from_a_loaded_config(board, tmp_path):
    """``type: http_json`` is in the wiring table; a loaded config builds a working source."""
    _, url = board
    path = tmp_path / "centre.yaml"
    path.write_text(
        f"""
sources:
  wallboard:
    type: http_json
    url: {url}/api/wallboard
    auth: {{ bearer: "${{WALLBOARD_TOKEN}}" }}
    lines_at: data.queues
    key: id
    map:
      calls_waiting: realtime.callsWaiting
lines:
  council_tax: {{ name: Council Tax, source: {{ use: wallboard, queue: CT01 }} }}
frameworks:
  standard:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }} }}
defaults: {{ framework: standard }}
""",
        encoding="utf-8",
    )
    config = load_config(path, env={"WALLBOARD_TOKEN": "from-env"})
    plugin = SOURCE_TYPES["http_json"]
    src = plugin.build(
        "wallboard",
        config.sources["wallboard"].settings,
        {"council_tax": config.lines["council_tax"].source_params},
        BuildContext(clock=FakeClock(NOW)),
    )
    board[0].expected_auth = "Bearer from-env"
    try:
        result = await src.poll()
    finally:
        await src.aclose()
    assert isinstance(result["council_tax"], QueueStats)
    assert result["council_tax"].calls_waiting == 14


BAD_CONFIG = """\
sources:
  wallboard:
    type: http_json
    url: http://wallboard.local/api/queues
    lines_at: data..queues
    key: id
    map:
      calls_waiting: realtime.callsWaiting
      avg_wait: { path: interval.avgWaitSec, unit: hours }
      offered: { path: interval.offered, unit: ms }
      abandon_rate: { path: interval.abandonedPct, unit: "%" }
lines:
  council_tax:
    name: Council Tax
    source: { use: wallboard, queue: CT01, map: { longest_wait: "realtime[longest]" } }
defaults: { framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
"""


def test_bad_paths_and_units_are_config_errors_with_their_positions(tmp_path, monkeypatch):
    """``check`` reports each bad path and unit as FILE:LINE:COL: message."""
    monkeypatch.chdir(tmp_path)
    Path("centre.yaml").write_text(BAD_CONFIG, encoding="utf-8")
    config, errors, _ = check_config("centre.yaml", env={})
    assert config is None
    assert [str(e) for e in errors] == [
        'centre.yaml:5:15: sources.wallboard.lines_at: "data..queues" is not a JSON path: '
        "empty name at character 6 (write e.g. data.queues[0].waiting)",
        'centre.yaml:9:52: sources.wallboard.map.avg_wait.unit: "hours" is not a time unit '
        "(use s, ms or min)",
        'centre.yaml:10:48: sources.wallboard.map.offered.unit: "ms": a count takes no unit '
        "(leave unit out)",
        'centre.yaml:11:58: sources.wallboard.map.abandon_rate.unit: "%" is not a rate unit '
        "(use ratio or percent)",
        "centre.yaml:15:65: lines.council_tax.source.map.longest_wait: "
        '"realtime[longest]" is not a JSON path: [longest] is not an index '
        '(use [0], or ["name"] for a key) at character 10 (write e.g. data.queues[0].waiting)',
    ]


def test_cross_field_rules_are_config_errors(tmp_path, monkeypatch):
    """A rate without offered, a missing lines_at and both a rate and its count are errors."""
    monkeypatch.chdir(tmp_path)
    text = BAD_CONFIG.replace("data..queues", "data.queues").replace(", unit: hours", "")
    text = text.replace("      offered: { path: interval.offered, unit: ms }\n", "")
    text = text.replace(', unit: "%"', "").replace("realtime[longest]", "realtime.longestMs")
    Path("rate.yaml").write_text(text, encoding="utf-8")
    both = text.replace(
        "      calls_waiting:",
        "      offered: interval.offered\n      abandoned: x\n      calls_waiting:",
    ).replace("    lines_at: data.queues\n    key: id\n", "")
    Path("both.yaml").write_text(both, encoding="utf-8")
    _, rate_errors, _ = check_config("rate.yaml", env={})
    _, both_errors, _ = check_config("both.yaml", env={})
    assert [str(e) for e in rate_errors] == [
        "rate.yaml:3:5: sources.wallboard: map.abandon_rate needs map.offered: "
        "abandoned = round(abandon_rate × offered)"
    ]
    assert [str(e) for e in both_errors] == [
        "both.yaml:6:7: sources.wallboard.map: give abandoned or abandon_rate, not both "
        "(abandoned = round(abandon_rate × offered))"
    ]


def test_json_paths_are_parsed_by_hand():
    """Dots, indexes (negative too), quoted keys and $ parse; anything else says where."""
    assert parse_json_path("data.queues[0].stats.waiting").steps == (
        "data",
        "queues",
        0,
        "stats",
        "waiting",
    )
    assert parse_json_path('$.board["Calls Waiting"][-1]').steps == ("board", "Calls Waiting", -1)
    assert parse_json_path("$").steps == ()
    assert parse_json_path("$").absolute
    for bad, where in [
        ("a.", "the path ends with a dot"),
        ("a b", 'expected . or [ before " "'),
        ("a[0", "unclosed ["),
        ("__import__('os')", "is not a JSON path"),
    ]:
        with pytest.raises(ValueError, match=re.escape(where)):
            parse_json_path(bad)


def test_the_example_config_loads():
    """``config/examples/http-json.yaml`` loads with its secrets from the environment."""
    config = load_config(
        ROOT / "config" / "examples" / "http-json.yaml",
        env={"WALLBOARD_CLIENT_ID": "rising-tide", "WALLBOARD_CLIENT_SECRET": "x"},
    )
    assert config.sources["wallboard"].type == "http_json"
    assert config.warnings == ()
    assert timedelta(0) < config.sources["wallboard"].timeout


async def test_a_big_feed_is_mapped_in_a_worker_thread_with_the_same_answers(board, monkeypatch):
    """From MAP_IN_THREAD_FROM lines the mapping runs off the loop: same figures, and a
    feed of the wrong shape still fails the whole poll."""
    import threading

    from risingtide.sources import http_json

    b, url = board
    inline = source(shared(url), LINES)
    try:
        expected = await stats_of(inline)
    finally:
        await inline.aclose()
    monkeypatch.setattr(http_json, "MAP_IN_THREAD_FROM", 1)
    threads: list[str] = []
    mapper = http_json.HttpJsonSource._map

    def spy(self: HttpJsonSource, payload: Any, now: datetime) -> Any:
        threads.append(threading.current_thread().name)
        return mapper(self, payload, now)

    monkeypatch.setattr(http_json.HttpJsonSource, "_map", spy)
    threaded = source(shared(url), LINES)
    try:
        assert await stats_of(threaded) == expected
        b.feed = {"data": {"queue_list": []}}
        with pytest.raises(SourceError) as caught:
            await threaded.poll()
    finally:
        await threaded.aclose()
    assert caught.value.reason == "parse"
    assert threads and threading.main_thread().name not in threads
