"""The ``eightbyeight`` source against a fake 8x8 on loopback (token endpoint and queues).

Covers: figures for several queues in one request, the token (Basic at the token endpoint,
Bearer after, cached, renewed before expiry by the FakeClock, renewed after a 401), refused
credentials, 429 with Retry-After, 5xx, timeouts, malformed JSON, missing fields, paging
by X-Total-Pages, millisecond times, nulls and numeric strings, queues missing from the
answer, an unknown queue id refused by 8x8, the region and tenant, and the example config.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import ValidationError

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.ports import BuildContext, SourceError
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.eightbyeight import (
    EightByEightLine,
    EightByEightSettings,
    EightByEightSource,
)
from risingtide.sources.webclient import RetryPolicy
from tests.adapters.loopback import Loopback
from tests.adapters.vendors.eightbyeight import EightQueue, Fake8x8, Fault

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=0)
EXAMPLE = Path(__file__).parents[2] / "config" / "examples" / "8x8.yaml"

# Every test runs on the module's event loop, where the one loopback server lives (so even
# the checks that need no server are ``async def``).
pytestmark = pytest.mark.asyncio(loop_scope="module")


KEYS = (
    "interactionsWaitInQueue.rt", "interactionsLongestWaitInQueue.rt", "availableIdle.rt",
    "enabled.rt", "entered.{p}", "accepted.{p}", "abandoned.{p}",
    "interactionsAvgWaitTime.{p}", "avgHandlingTime.{p}",
)  # fmt: skip


def figures(*values: Any, period: str = "int-15m") -> dict[str, Any]:
    """A queue's metrics by 8x8 key, as the API sends them, in the order of ``KEYS``: waiting,
    longest wait, idle, enabled, entered, accepted, abandoned, average wait, handling time."""
    assert len(values) == len(KEYS)
    return {key.format(p=period): value for key, value in zip(KEYS, values, strict=True)}


class Harness:
    """A fake 8x8 served on loopback, and a way to build the source against it."""

    def __init__(self, fake: Fake8x8, url: str) -> None:
        self.fake = fake
        self.url = url
        self.clock = fake.clock
        self.sleeps: list[float] = []

    def source(
        self, lines: dict[str, str], *, secret: str = "secret-1", **settings: Any
    ) -> EightByEightSource:
        """A source for ``{line: queue id}`` with fast retries and recorded sleeps."""
        values: dict[str, Any] = {
            "api_key": "key-1",
            "api_secret": secret,
            "base_url": self.url,
            "request_budget": "2s",
            **settings,
        }

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.sleep(min(seconds, 0.01))

        return EightByEightSource(
            "eightbyeight",
            EightByEightSettings.model_validate(values),
            {line: EightByEightLine(queue_id=queue) for line, queue in lines.items()},
            self.clock,
            policy=FAST,
            sleep=sleep,
        )


class Switchboard:
    """One loopback server for the whole module, answering with the current test's fake."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[tuple[Switchboard, str]]:
    # Starting and stopping uvicorn costs ~0.2 s; once per module keeps the file fast.
    board = Switchboard()
    async with Loopback(board) as url:
        yield board, url


def serve(server: tuple[Switchboard, str], fake: Fake8x8) -> Harness:
    board, url = server
    board.app = fake.app()
    return Harness(fake, url)


@pytest.fixture
def eight(server: tuple[Switchboard, str]) -> Harness:
    fake = Fake8x8(FakeClock(T0))
    fake.queues = {
        "103": EightQueue("Council Tax", figures(7, 412_000, 0, 12, 90, 70, 14, 260_500, 300_000)),
        "107": EightQueue("Waste", figures(1, 20_000, 3, 6, 10, 9, 1, 30_000, 240_000)),
        "112": EightQueue("Adult Social Care", figures(0, 0, 2, 5, 4, 4, 0, 12_000, 400_000)),
    }
    return serve(server, fake)


THREE = {"council_tax": "103", "waste": "107", "adult_social_care": "112"}


async def poll(source: EightByEightSource) -> dict[str, QueueStats | SourceError]:
    try:
        return dict(await source.poll())
    finally:
        await source.aclose()


def ok(item: QueueStats | SourceError) -> QueueStats:
    assert isinstance(item, QueueStats), item
    return item


# --------------------------------------------------------------------------- success


async def test_figures_for_several_queues_come_from_one_request(eight):
    """Three lines cost one token and one queues request; times arrive in ms, leave in s."""
    result = await poll(eight.source(THREE))
    assert eight.fake.calls == {"token": 1, "queues": 1}
    assert ok(result["council_tax"]) == QueueStats(
        line="council_tax", at=T0, calls_waiting=7, avg_wait=260.5, longest_wait=412.0,
        agents_available=0, agents_staffed=12, offered=90, answered=70, abandoned=14,
        window=900.0, avg_handle_time=300.0,
    )  # fmt: skip
    assert ok(result["waste"]).abandon_rate == pytest.approx(0.1)
    assert ok(result["adult_social_care"]).longest_wait == 0.0


async def test_the_request_names_queues_and_metrics_as_documented(eight):
    """queue-ids and metrics are repeated parameters; page starts at 0; the token is Bearer."""
    await poll(eight.source(THREE))
    (query,) = eight.fake.requests
    assert query["queue-ids"] == ["103", "107", "112"]
    assert set(query["metrics"]) == set(figures(*[0] * 9))
    assert (query["page"], query["size"]) == (["0"], ["100"])
    assert eight.fake.auth_seen == ["Bearer tok-1"]


async def test_int_30m_reads_the_30_minute_keys(eight):
    """``period: int-30m`` asks for the .int-30m keys and reports a 1800 s window."""
    eight.fake.queues["107"].metrics = figures(1, 20_000, 3, 6, 20, 18, 2, 31_000, 250_000,
                                               period="int-30m")  # fmt: skip
    result = await poll(eight.source({"waste": "107"}, period="int-30m"))
    waste = ok(result["waste"])
    assert (waste.offered, waste.avg_wait, waste.window) == (20, 31.0, 1800.0)


async def test_time_unit_s_reads_times_as_seconds(eight):
    """``time_unit: s`` takes 8x8's times as seconds, for a tenant that reports them so."""
    eight.fake.queues["107"].metrics = figures(1, 20, 3, 6, 10, 9, 1, 30, 240)
    waste = ok((await poll(eight.source({"waste": "107"}, time_unit="s")))["waste"])
    assert (waste.longest_wait, waste.avg_wait, waste.avg_handle_time) == (20.0, 30.0, 240.0)


async def test_nulls_are_unknown_and_numeric_strings_are_numbers(eight):
    """null is unknown (but no wait when nobody waits); "4" is read as 4."""
    eight.fake.queues = {
        "103": EightQueue("Council Tax", figures(*[None] * 9)),
        "107": EightQueue("Waste", figures("0", None, "3", "6", "0", "0", "0", None, None)),
        "112": EightQueue("Care", figures("4", None, 0, 5, 4, 0, 0, None, None)),
    }
    result = await poll(eight.source(THREE))
    tax = ok(result["council_tax"])
    assert (tax.calls_waiting, tax.longest_wait, tax.avg_wait, tax.offered) == (
        None, None, None, None,
    )  # fmt: skip
    waste = ok(result["waste"])
    assert (waste.calls_waiting, waste.longest_wait, waste.avg_wait) == (0, 0.0, 0.0)
    assert (waste.agents_available, waste.avg_handle_time) == (3, None)
    care = ok(result["adult_social_care"])
    assert (care.calls_waiting, care.longest_wait, care.avg_wait) == (4, None, None)


async def test_a_multi_tenant_customer_sends_x_tenant_info(server):
    """``tenant_id`` is sent as X-Tenant-Info, which a multi-tenant fake insists on."""
    fake = Fake8x8(FakeClock(T0), tenant="tenant-9")
    fake.queues = {"103": EightQueue("Council Tax", figures(*[1] * 9))}
    harness = serve(server, fake)
    assert ok((await poll(harness.source({"tax": "103"}, tenant_id="tenant-9")))["tax"])
    with pytest.raises(SourceError) as caught:
        await poll(harness.source({"tax": "103"}))
    assert "X-Tenant-Info header is missing" in str(caught.value)


async def test_the_us_region_has_no_path_part(server):
    """``region: us`` calls /analytics/cc/v5/… with no region in the path."""
    fake = Fake8x8(FakeClock(T0), region="us")
    fake.queues = {"103": EightQueue("Council Tax", figures(*[1] * 9))}
    harness = serve(server, fake)
    assert ok((await poll(harness.source({"tax": "103"}, region="us")))["tax"])


# --------------------------------------------------------------------------- the token


async def test_the_token_is_reused_then_renewed_before_it_expires(eight):
    """One token serves polls until a minute before its 1799 s run out; then a new one."""
    source = eight.source(THREE)
    try:
        for _ in range(3):
            await source.poll()
        assert eight.fake.calls == {"token": 1, "queues": 3}
        eight.clock.advance(timedelta(seconds=1799 - 59))
        assert ok((await source.poll())["waste"]).calls_waiting == 1
        assert eight.fake.calls["token"] == 2
        assert eight.fake.auth_seen[-1] == "Bearer tok-2"
    finally:
        await source.aclose()


async def test_a_revoked_token_brings_a_new_one_after_a_401(eight):
    """8x8 answering 401 makes the source fetch a new token and ask again, once."""
    source = eight.source(THREE)
    try:
        await source.poll()
        eight.fake.revoke_tokens()
        assert ok((await source.poll())["council_tax"]).calls_waiting == 7
        assert eight.fake.calls == {"token": 2, "queues": 3}
    finally:
        await source.aclose()


async def test_a_401_that_persists_is_a_permanent_http_401(eight):
    """A 401 after a fresh token too is http_401, not retryable, not hammered."""
    eight.fake.faults["queues"] = [Fault(401, '{"message":"Unauthorized"}')] * 2
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE))
    assert (caught.value.reason, caught.value.retryable) == ("http_401", False)
    assert eight.fake.calls == {"token": 2, "queues": 2}


async def test_a_wrong_secret_is_an_auth_error(eight):
    """The token endpoint refusing the key and secret is reason "auth", not retryable."""
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE, secret="wrong"))
    assert (caught.value.reason, caught.value.retryable) == ("auth", False)
    assert eight.fake.calls == {"token": 1}


# --------------------------------------------------------------------------- failures


async def test_429_waits_for_retry_after_and_then_succeeds(eight):
    """A rate-limited request waits for Retry-After (1 s), then gets the figures."""
    eight.fake.faults["queues"] = [Fault(429, '{"message":"Too Many Requests"}',
                                         {"Retry-After": "1"})]  # fmt: skip
    result = await poll(eight.source(THREE))
    assert ok(result["waste"]).calls_waiting == 1
    assert eight.sleeps == [1.0]
    assert eight.fake.calls["queues"] == 2


async def test_500_is_retried_and_then_succeeds(eight):
    """One 500, then the figures."""
    eight.fake.faults["queues"] = [Fault()]
    assert ok((await poll(eight.source(THREE)))["waste"]).calls_waiting == 1
    assert eight.fake.calls["queues"] == 2


async def test_500_that_persists_fails_the_poll_as_retryable(eight):
    """Three 500s: http_5xx, retryable; no fallback request for a server failure."""
    eight.fake.faults["queues"] = [Fault(), Fault(), Fault()]
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE))
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert eight.fake.calls["queues"] == 3


async def test_a_slow_platform_is_a_timeout_within_the_budget(eight):
    """A queues call slower than the request budget gives reason "timeout" and no overrun."""
    eight.fake.faults["queues"] = [Fault(200, "[]", delay=1.0)]
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE, request_budget="300ms"))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 1.0


async def test_malformed_json_is_a_parse_error(eight):
    """A maintenance page instead of JSON fails the poll with reason "parse"."""
    eight.fake.faults["queues"] = [Fault(200, "<html>maintenance</html>")]
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE))
    assert caught.value.reason == "parse"
    assert "malformed JSON" in str(caught.value)


async def test_a_queue_without_metrics_names_the_missing_field(eight):
    """A queue entry with no ``metrics`` fails the poll, naming the path, reason "parse"."""

    def drop(body: list[Any]) -> list[Any]:
        del body[1]["metrics"]
        return body

    eight.fake.mangle["queues"] = drop
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE))
    assert caught.value.reason == "parse"
    assert "page 0: the payload has no [1].metrics" in str(caught.value)


async def test_a_metric_missing_from_one_queue_fails_only_that_line(eight):
    """A queue whose answer lacks availableIdle.rt gets a parse error naming it."""

    def drop(body: list[Any]) -> list[Any]:
        body[0]["metrics"] = [m for m in body[0]["metrics"] if m["key"] != "availableIdle.rt"]
        return body

    eight.fake.mangle["queues"] = drop
    result = await poll(eight.source(THREE))
    error = result["council_tax"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert "queue 103: 8x8's answer has no availableIdle.rt" in str(error)  # needs unknown: all
    assert ok(result["waste"]).agents_available == 3


def dropping(*keys: str) -> Any:
    """A mangler that removes ``keys`` from the first queue's metrics (queue 103)."""

    def drop(body: list[Any]) -> list[Any]:
        body[0]["metrics"] = [m for m in body[0]["metrics"] if m["key"] not in keys]
        return body

    return drop


def built(eight: Harness, needs: dict[str, frozenset[str]]) -> EightByEightSource:
    """The source as the daemon builds it: through the plugin, told what each line needs."""
    settings = EightByEightSettings.model_validate(
        {"api_key": "key-1", "api_secret": "secret-1", "base_url": eight.url}
    )
    lines = {line: EightByEightLine(queue_id=queue) for line, queue in THREE.items()}
    source = SOURCE_TYPES["eightbyeight"].build(
        "eightbyeight", settings, lines, BuildContext(clock=eight.clock, needs=needs)
    )
    assert isinstance(source, EightByEightSource)
    return source


async def test_a_metric_no_tier_reads_leaves_only_its_figure_unknown(eight):
    """A line whose tiers read avg_wait keeps its figures when idle agents are missing."""
    eight.fake.mangle["queues"] = dropping("availableIdle.rt", "avgHandlingTime.int-15m")
    result = await poll(built(eight, {"council_tax": frozenset({"avg_wait", "calls_waiting"})}))
    stats = ok(result["council_tax"])
    assert (stats.agents_available, stats.avg_handle_time) == (None, None)
    assert (stats.calls_waiting, stats.avg_wait, stats.offered) == (7, 260.5, 90)


async def test_a_metric_a_tier_reads_still_fails_the_line(eight):
    """A missing metric a tier reads (directly, or through a rate) fails the line, naming it."""
    eight.fake.mangle["queues"] = dropping("entered.int-15m")
    result = await poll(built(eight, {"council_tax": frozenset({"abandon_rate"})}))
    error = result["council_tax"]
    assert isinstance(error, SourceError) and error.reason == "parse"
    assert "entered.int-15m" in str(error)
    assert ok(result["waste"]).offered == 10


async def test_a_queue_missing_from_the_answer_fails_only_its_line(eight):
    """A queue 8x8 leaves out gets reason "missing"; the others are fine."""
    eight.fake.hidden = {"107"}
    result = await poll(eight.source(THREE))
    error = result["waste"]
    assert isinstance(error, SourceError)
    assert (error.reason, "queue 107" in str(error)) == ("missing", True)
    assert ok(result["council_tax"]).calls_waiting == 7


async def test_an_unknown_queue_id_does_not_blind_the_other_lines(eight):
    """8x8 refuses the whole request for one unknown id; asking for all queues saves the rest."""
    result = await poll(eight.source({**THREE, "highways": "999"}))
    assert eight.fake.calls["queues"] == 2
    assert "queue-ids" not in eight.fake.requests[1]
    error = result["highways"]
    assert isinstance(error, SourceError)
    assert error.reason == "missing"
    assert "invalid queue-ids 999" in str(error)
    assert ok(result["council_tax"]).calls_waiting == 7


async def test_a_refusal_that_is_not_about_queues_fails_the_poll(eight):
    """A 403 stays a 403: the fallback request is refused too and the original is reported."""
    forbidden = Fault(403, '{"message":"Forbidden: analytics realtime-api not granted"}')
    eight.fake.faults["queues"] = [forbidden, forbidden]
    with pytest.raises(SourceError) as caught:
        await poll(eight.source(THREE))
    assert (caught.value.reason, caught.value.retryable) == ("http_4xx", False)
    assert "not granted" in str(caught.value)


async def test_pages_are_followed_by_x_total_pages(eight):
    """With two queues a page, five queues take pages 0, 1 and 2."""
    for queue in ("120", "121"):
        eight.fake.queues[queue] = EightQueue(queue, figures(*[2] * 9))
    lines = {**THREE, "highways": "120", "libraries": "121"}
    result = await poll(eight.source(lines, page_size=2))
    assert [r["page"] for r in eight.fake.requests] == [["0"], ["1"], ["2"]]
    assert all(isinstance(v, QueueStats) for v in result.values())
    assert ok(result["libraries"]).calls_waiting == 2


async def test_more_than_100_queues_are_asked_for_in_requests_of_100(eight):
    """150 queues: two requests, none naming more than 100 queue ids."""
    lines = {f"line-{i}": str(1000 + i) for i in range(150)}
    eight.fake.queues = {
        q: EightQueue(q, figures(*[i % 4] * 9)) for i, q in enumerate(lines.values())
    }
    result = await poll(eight.source(lines))
    assert [len(r["queue-ids"]) for r in eight.fake.requests] == [100, 50]
    assert all(isinstance(v, QueueStats) for v in result.values())
    assert ok(result["line-149"]).calls_waiting == 149 % 4


# --------------------------------------------------------------------------- config


async def test_settings_are_checked():
    """Unknown keys, bad periods, units, sizes and URLs are refused; numeric ids are text."""
    base = {"api_key": "k", "api_secret": "s"}
    settings = EightByEightSettings.model_validate(base)
    assert (settings.region, settings.period, settings.time_unit) == ("eu", "int-15m", "ms")
    assert settings.request_budget == timedelta(seconds=8)
    bad_values = [
        ("period", "today"), ("time_unit", "minutes"), ("page_size", 1001),
        ("base_url", "api.8x8.com"), ("region", "uk"), ("request_budget", "0s"),
        ("api_secret", ""), ("api_sceret", "typo"),
    ]  # fmt: skip
    for key, bad in bad_values:
        with pytest.raises(ValidationError):
            EightByEightSettings.model_validate({**base, key: bad})
    assert EightByEightLine.model_validate({"queue_id": 103}).queue_id == "103"


async def test_the_example_config_passes_check_and_builds():
    """config/examples/8x8.yaml loads with its secrets set, and builds through the table."""
    env = {"EIGHTBYEIGHT_API_KEY": "key", "EIGHTBYEIGHT_API_SECRET": "secret"}
    config = load_config(EXAMPLE, env=env)
    assert config.warnings == ()
    (source,) = config.sources.values()
    assert source.type == "eightbyeight"
    lines = {k: v.source_params for k, v in config.lines.items() if v.source == source.id}
    assert {p.queue_id for p in lines.values()} == {"103", "107", "112"}  # type: ignore[attr-defined]
    built = SOURCE_TYPES["eightbyeight"].build(
        source.id, source.settings, lines, BuildContext(clock=FakeClock(T0))
    )
    assert isinstance(built, EightByEightSource)
    assert built.path == "/eu/analytics/cc/v5/realtime-metrics/queues"
    assert built.auth.token_url == "https://api.8x8.com/oauth/v2/token"
    await built.aclose()


async def test_the_daemon_tells_the_source_what_each_line_reads():
    """Built by the runtime, the source knows each line's measures: those its tiers read."""
    from risingtide.config.frameworks import measures_read
    from risingtide.runtime import Runtime

    env = {"EIGHTBYEIGHT_API_KEY": "key", "EIGHTBYEIGHT_API_SECRET": "secret"}
    config = load_config(EXAMPLE, env=env)
    runtime = Runtime(config, clock=FakeClock(T0))
    runtime._build_adapters(config, previous=None)
    (source,) = runtime.sources.values()
    assert isinstance(source, EightByEightSource)
    expected = {lid: measures_read(lc.framework) for lid, lc in config.lines.items()}
    assert source._needs == expected
    assert all(needs < frozenset(MEASURES) for needs in expected.values())
    await source.aclose()
