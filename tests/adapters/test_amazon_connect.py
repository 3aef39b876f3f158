"""The ``amazon_connect`` source against a fake Connect on loopback that verifies SigV4.

Covers: figures for several queues in two requests, the signature (recomputed by the fake
with botocore, and cross-checked with botocore's own ``add_auth``), session tokens, refused
signatures, 401, 429 with Retry-After, 5xx, timeouts, malformed JSON, missing fields,
NextToken paging, chunks of 100 queues, OLDEST_CONTACT_AGE units, nulls, queues missing
from either answer, the window failing alone, a missing botocore, settings, and the example
config.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError
from structlog.testing import capture_logs

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.ports import BuildContext, SourceError
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.amazon_connect import (
    AmazonConnectSource,
    ConnectLine,
    ConnectSettings,
    SigV4Signer,
)
from risingtide.sources.webclient import RetryPolicy
from tests.adapters.loopback import Loopback
from tests.adapters.vendors.connect import ConnectQueue, FakeConnect, Fault

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=0)
EXAMPLE = Path(__file__).parents[2] / "config" / "examples" / "amazon-connect.yaml"

# Every test runs on the module's event loop, where the one loopback server lives (so even
# the checks that need no server are ``async def``).
pytestmark = pytest.mark.asyncio(loop_scope="module")


class Harness:
    """A fake Connect served on loopback, and a way to build the source against it."""

    def __init__(self, fake: FakeConnect, url: str, clock: FakeClock) -> None:
        self.fake = fake
        self.url = url
        self.clock = clock
        self.sleeps: list[float] = []

    def source(
        self, lines: dict[str, str], *, secret: str = "s3cr3t", **settings: Any
    ) -> AmazonConnectSource:
        """A source for ``{line: queue id}`` with fast retries and recorded sleeps."""
        values: dict[str, Any] = {
            "region": "eu-west-2",
            "instance_id": "inst-1",
            "account_id": "123456789012",
            "access_key_id": "AKID",
            "secret_access_key": secret,
            "endpoint_url": self.url,
            "request_budget": "2s",
            **settings,
        }

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.sleep(min(seconds, 0.01))

        return AmazonConnectSource(
            "connect",
            ConnectSettings.model_validate(values),
            {line: ConnectLine(queue_id=queue) for line, queue in lines.items()},
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


def serve(server: tuple[Switchboard, str], fake: FakeConnect) -> Harness:
    board, url = server
    board.app = fake.app()
    return Harness(fake, url, fake.clock)


@pytest.fixture
def connect(server: tuple[Switchboard, str]) -> Harness:
    clock = FakeClock(T0)
    fake = FakeConnect(clock)
    fake.queues = {
        "q-tax": ConnectQueue(in_queue=7, oldest_age=412, available=0, staffed=12,
                              avg_answer=260.5, queued=90, handled=70, abandoned=14,
                              avg_handle=300),
        "q-waste": ConnectQueue(in_queue=1, oldest_age=20, available=3, staffed=6),
        "q-care": ConnectQueue(in_queue=0, oldest_age=0, available=2, staffed=5,
                               avg_answer=12, queued=4, handled=4, abandoned=0),
    }  # fmt: skip
    return serve(server, fake)


THREE = {"council_tax": "q-tax", "waste": "q-waste", "adult_social_care": "q-care"}


async def poll(source: AmazonConnectSource) -> dict[str, QueueStats | SourceError]:
    try:
        return dict(await source.poll())
    finally:
        await source.aclose()


def ok(item: QueueStats | SourceError) -> QueueStats:
    assert isinstance(item, QueueStats), item
    return item


# --------------------------------------------------------------------------- success


async def test_figures_for_several_queues_come_from_one_live_and_one_window_request(connect):
    """Three lines cost one GetCurrentMetricData and one GetMetricDataV2, mapped as documented."""
    result = await poll(connect.source(THREE))
    assert connect.fake.calls == {"live": 1, "data": 1}
    tax = ok(result["council_tax"])
    assert tax == QueueStats(
        line="council_tax", at=T0, calls_waiting=7, avg_wait=260.5, longest_wait=412.0,
        agents_available=0, agents_staffed=12, offered=90, answered=70, abandoned=14,
        window=900.0, avg_handle_time=300.0,
    )  # fmt: skip
    assert tax.abandon_rate == pytest.approx(14 / 90)
    assert ok(result["waste"]).calls_waiting == 1
    assert ok(result["adult_social_care"]).avg_wait == 12
    assert connect.fake.rejections == []


async def test_the_requests_carry_the_documented_bodies(connect):
    """Live asks for four metrics by queue and channel; the window spans 15m ending 5s ago."""
    await poll(connect.source(THREE))
    live = connect.fake.bodies["live"][0]
    assert live["CurrentMetrics"] == [
        {"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"},
        {"Name": "OLDEST_CONTACT_AGE", "Unit": "SECONDS"},
        {"Name": "AGENTS_AVAILABLE", "Unit": "COUNT"},
        {"Name": "AGENTS_STAFFED", "Unit": "COUNT"},
    ]
    assert live["Filters"] == {"Queues": ["q-tax", "q-waste", "q-care"], "Channels": ["VOICE"]}
    assert live["Groupings"] == ["QUEUE", "CHANNEL"]
    data = connect.fake.bodies["data"][0]
    assert data["ResourceArn"] == "arn:aws:connect:eu-west-2:123456789012:instance/inst-1"
    end = (T0 - timedelta(seconds=5)).timestamp()
    assert (data["StartTime"], data["EndTime"]) == (end - 900, end)
    assert data["Filters"] == [
        {"FilterKey": "QUEUE", "FilterValues": ["q-tax", "q-waste", "q-care"]},
        {"FilterKey": "CHANNEL", "FilterValues": ["VOICE"]},
    ]
    assert data["Groupings"] == ["QUEUE"]
    assert {m["Name"] for m in data["Metrics"]} == {
        "AVG_QUEUE_ANSWER_TIME", "CONTACTS_QUEUED", "CONTACTS_HANDLED", "CONTACTS_ABANDONED",
        "AVG_HANDLE_TIME",
    }  # fmt: skip


async def test_a_window_setting_changes_the_span_and_the_reported_window(connect):
    """``window: 30m`` asks for 30 minutes and reports 1800 s."""
    result = await poll(connect.source({"waste": "q-waste"}, window="30m"))
    data = connect.fake.bodies["data"][0]
    assert data["EndTime"] - data["StartTime"] == 1800
    assert ok(result["waste"]).window == 1800.0


# --------------------------------------------------------------------------- signing


async def test_every_request_is_signed_with_sigv4_and_the_fake_recomputes_it(connect):
    """Authorization names AKID, the day, eu-west-2 and connect; the fake's botocore agrees."""
    await poll(connect.source(THREE))
    assert connect.fake.verified == 2
    for header in connect.fake.authorizations:
        assert re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=AKID/20260105/eu-west-2/connect/aws4_request, "
            r"SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}",
            header,
        ), header


async def test_a_session_token_is_sent_and_signed(server):
    """Temporary credentials add a signed X-Amz-Security-Token, which the fake requires."""
    fake = FakeConnect(FakeClock(T0), session_token="FQoGZXIvYXdzE-token")
    fake.queues = {"q-tax": ConnectQueue(in_queue=2, oldest_age=30)}
    harness = serve(server, fake)
    result = await poll(harness.source({"council_tax": "q-tax"},
                                       session_token="FQoGZXIvYXdzE-token"))  # fmt: skip
    assert ok(result["council_tax"]).calls_waiting == 2
    assert fake.verified == 2
    assert all("x-amz-security-token" in h for h in fake.authorizations)


async def test_the_signer_agrees_with_botocores_own_add_auth():
    """Our use of SigV4Auth signs exactly as botocore's add_auth does at the same instant."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b'{"CurrentMetrics":[]}'
    for _ in range(5):  # add_auth reads the wall clock: retry if a second ticks over
        now = datetime.now(UTC).replace(microsecond=0)
        ours = httpx.Request(
            "POST", "https://connect.eu-west-2.amazonaws.com/metrics/current/inst-1",
            content=body, headers={"Content-Type": "application/json"},
        )  # fmt: skip
        SigV4Signer("AKID", "s3cr3t", "tok", "eu-west-2", FakeClock(now))(ours)
        theirs = AWSRequest(
            method="POST", url=str(ours.url), data=body,
            headers={"Content-Type": "application/json", "Host": ours.headers["host"]},
        )  # fmt: skip
        SigV4Auth(Credentials("AKID", "s3cr3t", "tok"), "connect", "eu-west-2").add_auth(theirs)
        if theirs.headers["X-Amz-Date"] == ours.headers["X-Amz-Date"]:
            break
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert ours.headers["X-Amz-Security-Token"] == "tok"


async def test_a_wrong_secret_is_refused_by_aws_and_not_retried(connect):
    """A signature AWS cannot verify is a 403: http_4xx, not retryable, asked once."""
    with pytest.raises(SourceError) as caught:
        await poll(connect.source(THREE, secret="not-the-secret"))
    assert (caught.value.reason, caught.value.retryable) == ("http_4xx", False)
    assert "signature we calculated does not match" in str(caught.value)
    assert connect.fake.calls == {"live": 1, "data": 1}
    assert connect.fake.verified == 0


async def test_missing_botocore_is_a_clear_build_error(monkeypatch):
    """Without botocore, building the source says how to install it, reason "dependency"."""
    monkeypatch.setitem(sys.modules, "botocore.auth", None)
    settings = ConnectSettings.model_validate({
        "region": "eu-west-2", "instance_id": "inst-1", "account_id": "123456789012",
        "access_key_id": "AKID", "secret_access_key": "x",
    })  # fmt: skip
    plugin = SOURCE_TYPES["amazon_connect"]
    with pytest.raises(SourceError) as caught:
        plugin.build("connect", settings, {}, BuildContext(clock=FakeClock(T0)))
    assert (caught.value.reason, caught.value.retryable) == ("dependency", False)
    assert "pip install 'risingtide[aws]'" in str(caught.value)


# --------------------------------------------------------------------------- failures


async def test_a_401_is_a_permanent_http_401(connect):
    """Connect answering 401 (no OAuth to renew with SigV4) fails at once with http_401."""
    connect.fake.faults["live"] = [Fault(401, '{"Message":"Unauthorized"}')]
    with pytest.raises(SourceError) as caught:
        await poll(connect.source(THREE))
    assert (caught.value.reason, caught.value.retryable) == ("http_401", False)
    assert connect.fake.calls["live"] == 1


async def test_429_waits_for_retry_after_and_then_succeeds(connect):
    """A throttled request waits for Retry-After (1 s) and is signed afresh for the retry."""
    connect.fake.faults["live"] = [
        Fault(429, '{"Message":"Rate exceeded"}',
              {"Retry-After": "1", "x-amzn-ErrorType": "ThrottlingException"})
    ]  # fmt: skip
    result = await poll(connect.source(THREE))
    assert ok(result["council_tax"]).calls_waiting == 7
    assert connect.sleeps == [1.0]
    assert connect.fake.calls["live"] == 2
    assert connect.fake.verified == 3


async def test_500_is_retried_and_then_succeeds(connect):
    """One InternalServiceException, then the figures."""
    connect.fake.faults["live"] = [Fault()]
    result = await poll(connect.source(THREE))
    assert ok(result["waste"]).calls_waiting == 1
    assert connect.fake.calls["live"] == 2


async def test_500_that_persists_fails_the_poll_as_retryable(connect):
    """Three 500s on the live call: the poll fails with http_5xx, retryable."""
    connect.fake.faults["live"] = [Fault(), Fault(), Fault()]
    with pytest.raises(SourceError) as caught:
        await poll(connect.source(THREE))
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert connect.fake.calls["live"] == 3


async def test_a_slow_platform_is_a_timeout_within_the_budget(connect):
    """A live call slower than the request budget gives reason "timeout" and no overrun."""
    connect.fake.faults["live"] = [Fault(200, "{}", {}, delay=1.0)]
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await poll(connect.source(THREE, request_budget="300ms"))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 1.0


async def test_malformed_json_is_a_parse_error(connect):
    """An HTML error page instead of JSON fails the poll with reason "parse"."""
    connect.fake.faults["live"] = [Fault(200, "<html>Service Unavailable</html>", {})]
    with pytest.raises(SourceError) as caught:
        await poll(connect.source(THREE))
    assert caught.value.reason == "parse"
    assert "Service Unavailable" in str(caught.value)


async def test_a_result_without_its_queue_names_the_missing_field(connect):
    """A result with no Dimensions.Queue fails the poll, naming the path, reason "parse"."""

    def drop_queue(body: dict[str, Any]) -> dict[str, Any]:
        del body["MetricResults"][1]["Dimensions"]["Queue"]
        return body

    connect.fake.mangle["live"] = drop_queue
    with pytest.raises(SourceError) as caught:
        await poll(connect.source(THREE))
    assert caught.value.reason == "parse"
    assert "MetricResults[1].Dimensions.Queue.Id" in str(caught.value)


async def test_a_metric_missing_from_one_result_fails_only_that_line(connect):
    """A result lacking OLDEST_CONTACT_AGE gives its line a parse error naming it."""

    def drop_metric(body: dict[str, Any]) -> dict[str, Any]:
        collections = body["MetricResults"][0]["Collections"]
        body["MetricResults"][0]["Collections"] = [
            c for c in collections if c["Metric"]["Name"] != "OLDEST_CONTACT_AGE"
        ]
        return body

    connect.fake.mangle["live"] = drop_metric
    result = await poll(connect.source(THREE))
    error = result["council_tax"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert "MetricResults[0].Collections has no OLDEST_CONTACT_AGE" in str(error)
    assert ok(result["waste"]).calls_waiting == 1


async def test_a_queue_missing_from_the_live_answer_fails_only_its_line(connect):
    """A queue Connect does not answer for gets reason "missing"; the others are fine."""
    connect.fake.omit_live = {"q-waste"}
    result = await poll(connect.source(THREE))
    error = result["waste"]
    assert isinstance(error, SourceError)
    assert error.reason == "missing"
    assert "q-waste" in str(error)
    assert ok(result["council_tax"]).calls_waiting == 7


async def test_the_window_failing_alone_leaves_the_live_figures(connect):
    """A refused window call: live figures with window figures unknown, logged once."""
    refusal = Fault(400, '{"Message":"Invalid StartTime"}',
                    {"x-amzn-ErrorType": "InvalidParameterException"})  # fmt: skip
    connect.fake.faults["data"] = [refusal, refusal]
    source = connect.source(THREE)
    try:
        with capture_logs() as logs:
            first = await source.poll()
            second = await source.poll()
            third = await source.poll()
    finally:
        await source.aclose()
    tax = ok(first["council_tax"])
    assert (tax.calls_waiting, tax.longest_wait) == (7, 412.0)
    assert (tax.avg_wait, tax.offered, tax.abandoned, tax.window) == (None, None, None, None)
    assert ok(second["council_tax"]).offered is None
    assert ok(third["council_tax"]).offered == 90
    events = [e["event"] for e in logs]
    assert events == [
        "connect window figures failing; lines get live figures only",
        "connect window figures recovered",
    ]


async def test_a_queue_absent_from_the_window_had_no_contacts(connect):
    """No V2 result for a queue means no contacts in the window: zero counts, a calm average."""
    connect.fake.queues["q-care"].in_window = False
    result = await poll(connect.source(THREE))
    care = ok(result["adult_social_care"])
    assert (care.offered, care.answered, care.abandoned) == (0, 0, 0)
    assert care.avg_wait == 0.0  # nobody waiting now either
    assert care.avg_handle_time is None


async def test_v2_dimensions_given_as_queue_arns_are_understood(connect):
    """A V2 QUEUE dimension written as the queue's ARN still finds its line."""
    connect.fake.v2_dimension = "arn"
    result = await poll(connect.source(THREE))
    assert ok(result["council_tax"]).offered == 90


# --------------------------------------------------------------------------- paging, chunks


async def test_next_token_pages_are_followed_with_the_same_parameters(connect):
    """With two results a page, three queues take two pages of each call, all signed."""
    connect.fake.page_size = 2
    result = await poll(connect.source(THREE))
    assert connect.fake.calls == {"live": 2, "data": 2}
    assert all(isinstance(v, QueueStats) for v in result.values())
    assert connect.fake.bodies["live"][1]["NextToken"]
    assert connect.fake.verified == 4


async def test_more_than_100_queues_are_asked_for_in_chunks_of_100(connect):
    """150 queues: two live and two window requests, none naming more than 100 queues."""
    lines = {f"line-{i}": f"q-{i}" for i in range(150)}
    connect.fake.queues = {q: ConnectQueue(in_queue=i % 3) for i, q in enumerate(lines.values())}
    result = await poll(connect.source(lines))
    assert connect.fake.calls == {"live": 2, "data": 2}
    assert sorted(len(b["Filters"]["Queues"]) for b in connect.fake.bodies["live"]) == [50, 100]
    assert all(isinstance(v, QueueStats) for v in result.values())
    assert ok(result["line-149"]).calls_waiting == 149 % 3


async def test_a_failing_chunk_fails_only_its_own_lines(connect):
    """When the chunk holding q-120 keeps failing, lines in the other chunk keep figures."""
    lines = {f"line-{i}": f"q-{i}" for i in range(150)}
    connect.fake.queues = {q: ConnectQueue() for q in lines.values()}
    connect.fake.refuse_live_with = {"q-120"}
    result = await poll(connect.source(lines))
    assert isinstance(result["line-120"], SourceError)
    assert result["line-120"].reason == "http_5xx"
    assert isinstance(result["line-149"], SourceError)
    assert isinstance(result["line-0"], QueueStats)


# --------------------------------------------------------------------------- units, nulls


@pytest.mark.parametrize(
    ("unit", "sent", "setting", "seconds"),
    [
        ("SECONDS", 95, "auto", 95.0),
        ("MILLISECONDS", 95_000, "auto", 95.0),
        (None, 95, "auto", 95.0),
        ("SECONDS", 95_000, "milliseconds", 95.0),
        ("MILLISECONDS", 95, "seconds", 95.0),
    ],
)
async def test_oldest_contact_age_units(connect, unit, sent, setting, seconds):
    """The returned Metric.Unit decides (absent means seconds, as grouped answers are); a
    setting can force either reading."""
    connect.fake.oldest_unit = unit
    connect.fake.queues["q-tax"].oldest_age = sent
    result = await poll(connect.source(THREE, oldest_contact_age_unit=setting))
    assert ok(result["council_tax"]).longest_wait == seconds


async def test_an_unexpected_oldest_contact_age_unit_fails_that_line(connect):
    """A unit that is not a time (COUNT) is a parse error naming the result."""
    connect.fake.oldest_unit = "COUNT"
    result = await poll(connect.source({"council_tax": "q-tax"}))
    error = result["council_tax"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert "MetricResults[0]: OLDEST_CONTACT_AGE has unit 'COUNT'" in str(error)


@pytest.mark.parametrize("style", ["null", "omit"])
async def test_null_values_are_unknown_not_zero(connect, style):
    """A null (or absent) Value is unknown, except where it can only mean nobody is waiting."""
    connect.fake.nulls = style
    connect.fake.queues = {
        "q-tax": ConnectQueue(in_queue=None, oldest_age=None, available=None, staffed=None,
                              avg_answer=None, queued=None, handled=None, abandoned=None,
                              avg_handle=None),
        "q-waste": ConnectQueue(in_queue=0, oldest_age=None, avg_answer=None),
        "q-care": ConnectQueue(in_queue=3, oldest_age=None, avg_answer=None),
    }  # fmt: skip
    result = await poll(connect.source(THREE))
    tax = ok(result["council_tax"])
    assert (tax.calls_waiting, tax.longest_wait, tax.agents_available, tax.agents_staffed) == (
        None, None, None, None,
    )  # fmt: skip
    assert (tax.avg_wait, tax.offered, tax.answered, tax.abandoned) == (None, None, None, None)
    waste = ok(result["waste"])
    assert (waste.longest_wait, waste.avg_wait) == (0.0, 0.0)  # nobody waiting: a quiet line
    care = ok(result["adult_social_care"])
    assert (care.longest_wait, care.avg_wait) == (None, None)  # callers wait: unknown


async def test_the_snapshot_time_stamps_the_figures_but_never_ahead_of_our_clock(connect):
    """DataSnapshotTime becomes ``at``; one in our future is clamped to now."""

    def stamp(seconds: float):
        def mangle(body: dict[str, Any]) -> dict[str, Any]:
            body["DataSnapshotTime"] = seconds
            return body

        return mangle

    connect.fake.mangle["live"] = stamp(T0.timestamp() - 3)
    assert ok((await poll(connect.source(THREE)))["waste"]).at == T0 - timedelta(seconds=3)
    connect.fake.mangle["live"] = stamp(T0.timestamp() + 60)
    assert ok((await poll(connect.source(THREE)))["waste"]).at == T0


# --------------------------------------------------------------------------- config


async def test_settings_are_checked_and_a_queue_arn_is_read_as_its_id():
    """Region, account and instance ids are checked; a queue ARN is accepted for queue_id."""
    base = {"region": "eu-west-2", "instance_id": "inst-1", "account_id": "123456789012",
            "access_key_id": "AKID", "secret_access_key": "x"}  # fmt: skip
    assert ConnectSettings.model_validate(base).request_budget == timedelta(seconds=8)
    bad_values = [
        ("region", "London"), ("account_id", "12345"), ("instance_id", "a/b"),
        ("request_budget", "0s"), ("window", "2d"), ("endpoint_url", "ftp://x"),
    ]  # fmt: skip
    for key, bad in bad_values:
        with pytest.raises(ValidationError):
            ConnectSettings.model_validate({**base, key: bad})
    with pytest.raises(ValidationError):
        ConnectSettings.model_validate({**base, "secret_acces_key": "typo"})
    arn = "arn:aws:connect:eu-west-2:123456789012:instance/inst-1/queue/6c1e-42"
    assert ConnectLine.model_validate({"queue_id": arn}).queue_id == "6c1e-42"
    assert ConnectSettings.model_validate({**base, "account_id": 123456789012}).account_id == (
        "123456789012"
    )


async def test_the_example_config_passes_check_and_builds():
    """config/examples/amazon-connect.yaml loads with its ${AWS_…} variables set."""
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example-secret",
           "AWS_SESSION_TOKEN": "", "CONNECT_INSTANCE_ID": "5d1a7c1e-0000-4000-8000-00000000c0de",
           "AWS_ACCOUNT_ID": "123456789012"}  # fmt: skip
    config = load_config(EXAMPLE, env=env)
    assert config.warnings == ()
    (source,) = config.sources.values()
    assert source.type == "amazon_connect"
    assert source.timeout > source.settings.request_budget  # type: ignore[attr-defined]
    lines = {k: v.source_params for k, v in config.lines.items() if v.source == source.id}
    built = SOURCE_TYPES["amazon_connect"].build(
        source.id, source.settings, lines, BuildContext(clock=FakeClock(T0))
    )
    assert isinstance(built, AmazonConnectSource)
    assert built.base_url == "https://connect.eu-west-2.amazonaws.com"
    await built.aclose()
