"""The ``genesys_cloud`` source against a fake Genesys Cloud on loopback.

The fake checks the OAuth exchange, the bearer token and the documented query bodies, and
answers with the documented response shapes; the source is built through
``SOURCE_TYPES["genesys_cloud"]`` from validated settings, as the runtime builds it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.ports import BuildContext, SourceError, StatsSource
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.genesys_cloud import GenesysCloudSource
from tests.adapters.loopback import Loopback
from tests.adapters.vendors.genesys import FakeGenesys, Fault, GenesysQueue

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "genesys-cloud.yaml"

COUNCIL_TAX = "6c1e0b2a-1f3d-4c5e-9a7b-2d4f6e8a0c1b"
REVENUES = "0f9e8d7c-6b5a-4321-8fed-cba987654321"
WASTE = "11111111-2222-4333-8444-555555555555"


def _queues() -> dict[str, GenesysQueue]:
    return {
        COUNCIL_TAX: GenesysQueue(
            waiting_since=[T0 - timedelta(seconds=95), T0 - timedelta(seconds=20)],
            agents={"IDLE": 2, "INTERACTING": 5, "NOT_RESPONDING": 1},
            offered=40, answered_ms=[30_000, 90_000, 60_000], abandoned_ms=[70_000],
            handle_ms=[240_000, 360_000],
        ),
        REVENUES: GenesysQueue(
            waiting_since=[T0 - timedelta(seconds=400)], agents={"IDLE": 0, "INTERACTING": 6},
            offered=12, answered_ms=[200_000], abandoned_ms=[100_000, 120_000],
            handle_ms=[300_000],
        ),
        WASTE: GenesysQueue(agents={"IDLE": 3, "INTERACTING": 1}),  # a quiet line
    }  # fmt: skip


LINES = {"council_tax": COUNCIL_TAX, "revenues": REVENUES, "waste": WASTE}


@pytest.fixture
async def vendor():
    clock = FakeClock(T0)
    fake = FakeGenesys(clock)
    fake.queues.update(_queues())
    async with Loopback(fake.app()) as url:
        yield fake, url, clock


def build(
    url: str, clock: FakeClock, lines: dict[str, str] | None = None, **settings: Any
) -> StatsSource:
    """Validate both blocks and build through the wiring table, as the runtime does."""
    plugin = SOURCE_TYPES["genesys_cloud"]
    model = plugin.settings_model.model_validate({
        "environment": "euw2.pure.cloud", "client_id": "rising-tide-client",
        "client_secret": "s3cret", "login_url": url, "api_url": url,
        "request_budget": "3s", **settings,
    })  # fmt: skip
    line_models = {
        line: plugin.line_model.model_validate({"queue_id": queue})
        for line, queue in (lines or LINES).items()
    }
    return plugin.build("genesys", model, line_models, BuildContext(clock=clock))


def stats_of(result: Any, line: str) -> QueueStats:
    stats = result[line]
    assert isinstance(stats, QueueStats), stats
    return stats


async def test_every_queue_comes_from_one_observations_and_one_aggregates_request(vendor):
    """Three lines cost one token, one observations query and one aggregates query."""
    fake, url, clock = vendor
    source = build(url, clock)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    assert (fake.calls["token"], fake.calls["observations"], fake.calls["aggregates"]) == (1, 1, 1)
    ct = stats_of(result, "council_tax")
    assert ct == QueueStats(
        line="council_tax", at=T0, calls_waiting=2, avg_wait=60.0, longest_wait=95.0,
        agents_available=2, agents_staffed=8, offered=40, answered=3, abandoned=1,
        window=900.0, avg_handle_time=300.0,
    )  # fmt: skip
    rev = stats_of(result, "revenues")
    assert (rev.agents_available, rev.agents_staffed, rev.longest_wait) == (0, 6, 400.0)
    assert rev.abandon_rate == pytest.approx(2 / 12)
    observed = fake.bodies["observations"][0]
    assert observed["detailMetrics"] == ["oWaiting"]
    assert observed["filter"]["type"] == "and"
    assert sorted(p["value"] for p in observed["filter"]["clauses"][0]["predicates"]) == sorted(
        LINES.values()
    )
    interval = fake.bodies["aggregates"][0]["interval"]
    assert interval == "2026-01-05T08:45:00.000Z/2026-01-05T09:00:00.000Z"


async def test_milliseconds_become_seconds_and_a_quiet_line_reads_zero(vendor):
    """tAnswered/tHandle sums in ms are averaged into seconds; a quiet line is 0 s, not
    unknown, and a line with nobody answered while callers wait is unknown, not 0 s."""
    fake, url, clock = vendor
    fake.queues[REVENUES].answered_ms = []  # callers wait, nobody answered in the window
    source = build(url, clock)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    waste = stats_of(result, "waste")  # absent from the aggregates: no conversations
    assert (waste.avg_wait, waste.offered, waste.calls_waiting, waste.longest_wait) == (
        0.0, 0, 0, 0.0,
    )  # fmt: skip
    assert stats_of(result, "revenues").avg_wait is None
    assert stats_of(result, "council_tax").avg_handle_time == 300.0


@pytest.mark.parametrize("reading", ["epoch_ms", "duration_ms", "iso"])
async def test_o_longest_waiting_is_read_either_way_without_detail(vendor, reading):
    """Without oWaiting detail, oLongestWaiting as an epoch, a duration in ms or an ISO
    time all give the same longest wait."""
    fake, url, clock = vendor
    fake.longest = reading
    source = build(url, clock)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    assert stats_of(result, "council_tax").longest_wait == pytest.approx(95.0)
    assert stats_of(result, "revenues").longest_wait == pytest.approx(400.0)


async def test_the_token_is_renewed_before_it_expires(vendor):
    """A token given ``expires_in: "3600"`` (a string) is reused, then renewed a minute
    before expiry; the fake refuses expired tokens."""
    fake, url, clock = vendor
    fake.expires_in = "3600"
    source = build(url, clock)
    try:
        await source.poll()
        clock.advance(timedelta(minutes=30))
        await source.poll()
        assert fake.calls["token"] == 1
        clock.advance(timedelta(minutes=29, seconds=1))  # 59 s before expiry
        await source.poll()
        assert fake.calls["token"] == 2
        assert fake.calls["observations"] == 3  # never refused: renewed in time
    finally:
        await source.aclose()


async def test_a_revoked_token_is_replaced_once_and_the_poll_succeeds(vendor):
    """A 401 brings one new token and one repeat of the query, and the poll succeeds."""
    fake, url, clock = vendor
    source = build(url, clock)
    try:
        await source.poll()
        fake.revoke_tokens()
        result = await source.poll()
    finally:
        await source.aclose()
    assert stats_of(result, "council_tax").calls_waiting == 2
    assert fake.calls["token"] == 2
    assert fake.calls["observations"] == 3


async def test_wrong_client_credentials_fail_the_poll_as_auth(vendor):
    """A refused client secret fails the whole poll: reason "auth", not retryable."""
    _, url, clock = vendor
    source = build(url, clock, client_secret="wrong")
    try:
        with pytest.raises(SourceError) as caught:
            await source.poll()
    finally:
        await source.aclose()
    assert (caught.value.reason, caught.value.retryable) == ("auth", False)


async def test_429_waits_for_retry_after_then_succeeds(vendor):
    """A 429 with Retry-After: 1 is waited out within the budget and the poll succeeds."""
    fake, url, clock = vendor
    fake.faults["observations"].append(
        Fault(429, '{"message":"Rate limit exceeded","code":"too.many.requests","status":429}',
              headers={"Retry-After": "1"})
    )  # fmt: skip
    source = build(url, clock)
    started = time.monotonic()
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    assert time.monotonic() - started >= 0.95
    assert stats_of(result, "council_tax").calls_waiting == 2
    assert fake.calls["observations"] == 2


async def test_a_platform_failing_with_500_fails_the_poll_as_retryable(vendor):
    """Observations answering 500 are retried within the budget, then http_5xx."""
    fake, url, clock = vendor
    fake.faults["observations"].extend(Fault() for _ in range(10))
    source = build(url, clock, request_budget="1s")
    try:
        with pytest.raises(SourceError) as caught:
            await source.poll()
    finally:
        await source.aclose()
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert "observations query" in str(caught.value)
    assert fake.calls["observations"] >= 2


async def test_a_failed_aggregates_query_keeps_the_live_figures(vendor):
    """When only the aggregates fail, live figures come back and window figures are unknown."""
    fake, url, clock = vendor
    fake.faults["aggregates"].append(
        Fault(403, '{"message":"Missing analytics:conversationAggregate:view","status":403}')
    )
    source = build(url, clock)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    ct = stats_of(result, "council_tax")
    assert (ct.calls_waiting, ct.longest_wait, ct.agents_available) == (2, 95.0, 2)
    assert (ct.avg_wait, ct.offered, ct.answered, ct.abandoned, ct.window) == (
        None, None, None, None, None,
    )  # fmt: skip


async def test_a_slow_platform_is_a_timeout_within_the_budget(vendor):
    """Observations slower than the request budget fail the poll as "timeout", on time."""
    fake, url, clock = vendor
    fake.faults["observations"].append(Fault(200, '{"results": []}', delay=1.0))
    source = build(url, clock, request_budget="0.3s")
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as caught:
            await source.poll()
    finally:
        await source.aclose()
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 0.9


async def test_malformed_json_fails_the_poll_as_parse(vendor):
    """A maintenance page instead of JSON is reason "parse", showing the body."""
    fake, url, clock = vendor
    fake.faults["observations"].append(Fault(200, "<html>Down for maintenance</html>"))
    source = build(url, clock)
    try:
        with pytest.raises(SourceError) as caught:
            await source.poll()
    finally:
        await source.aclose()
    assert (caught.value.reason, caught.value.retryable) == ("parse", False)
    assert "maintenance" in str(caught.value)


async def test_a_missing_field_fails_its_queue_naming_the_path(vendor):
    """A result without ``stats.count`` fails that queue's line, naming the exact path."""
    fake, url, clock = vendor
    where: list[int] = []

    def drop_count(payload: dict[str, Any]) -> None:
        for i, result in enumerate(payload["results"]):
            if result["group"] == {"queueId": COUNCIL_TAX, "mediaType": "voice"}:
                del result["data"][0]["stats"]["count"]  # its oWaiting
                where.append(i)

    fake.mangle["observations"] = drop_count
    source = build(url, clock)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    error = result["council_tax"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert str(error) == (
        f"queue {COUNCIL_TAX}: the payload has no results[{where[0]}].data[0].stats.count"
    )
    assert stats_of(result, "revenues").calls_waiting == 1


async def test_a_queue_absent_from_the_response_fails_only_its_line(vendor):
    """A queue id the platform does not answer for is a parse error naming it."""
    fake, url, clock = vendor
    fake.omit.add(REVENUES)
    source = build(url, clock)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    error = result["revenues"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert REVENUES in str(error)
    assert stats_of(result, "council_tax").calls_waiting == 2


async def test_more_than_a_hundred_queues_are_asked_for_in_chunks(vendor):
    """101 queues are two observations and two aggregates queries, every line answered."""
    fake, url, clock = vendor
    lines = {f"line_{n}": f"00000000-0000-4000-8000-{n:012d}" for n in range(101)}
    for queue in lines.values():
        fake.queues[queue] = GenesysQueue(waiting_since=[T0 - timedelta(seconds=30)])
    source = build(url, clock, lines)
    try:
        result = await source.poll()
    finally:
        await source.aclose()
    assert (fake.calls["observations"], fake.calls["aggregates"]) == (2, 2)
    assert all(stats_of(result, line).longest_wait == 30.0 for line in lines)


def test_settings_name_what_is_wrong():
    """A queue name instead of its id, or no environment, is refused with a reason."""
    plugin = SOURCE_TYPES["genesys_cloud"]
    with pytest.raises(ValidationError, match="not a Genesys queue id"):
        plugin.line_model.model_validate({"queue_id": "Council Tax"})
    with pytest.raises(ValidationError, match="set environment"):
        plugin.settings_model.model_validate({"client_id": "a", "client_secret": "b"})
    with pytest.raises(ValidationError, match="write the domain only"):
        plugin.settings_model.model_validate(
            {"environment": "https://api.euw2.pure.cloud", "client_id": "a", "client_secret": "b"}
        )


def test_the_example_config_passes_check():
    """``config/examples/genesys-cloud.yaml`` loads with its secrets from the environment."""
    env = {"GENESYS_CLIENT_ID": "client-id", "GENESYS_CLIENT_SECRET": "client-secret"}
    config = load_config(EXAMPLE, env=env)
    assert config.warnings == ()
    (source,) = config.sources.values()
    assert source.type == "genesys_cloud"
    assert source.settings.client_secret == "client-secret"  # type: ignore[attr-defined]
    built = SOURCE_TYPES[source.type].build(
        source.id, source.settings,
        {lid: line.source_params for lid, line in config.lines.items()},
        BuildContext(clock=FakeClock(T0)),
    )  # fmt: skip
    assert isinstance(built, GenesysCloudSource)
