"""The ``twilio_taskrouter`` source against a fake TaskRouter on loopback.

The fake checks Basic AccountSid:AuthToken, the bulk body and the cumulative query, and
answers with the documented response shapes; the source is built through
``SOURCE_TYPES["twilio_taskrouter"]`` from validated settings, as the runtime builds it.
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
from risingtide.sources.twilio_taskrouter import AgeUnit, TwilioTaskRouterSource
from tests.adapters.loopback import Loopback
from tests.adapters.vendors.twilio import FakeTwilio, Fault, TaskQueue

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "twilio-taskrouter.yaml"


def wq(n: int) -> str:
    """A TaskQueue SID."""
    return f"WQ{n:032x}"


COUNCIL_TAX, WASTE, HIGHWAYS = wq(1), wq(2), wq(3)
LINES = {"council_tax": COUNCIL_TAX, "waste": WASTE, "highways": HIGHWAYS}


def _queues() -> dict[str, TaskQueue]:
    return {
        COUNCIL_TAX: TaskQueue(
            pending=6, reserved=2, assigned=9, longest_age=412, longest_task="WT" + "1" * 32,
            available=1, eligible=12, entered=60, canceled=9, completed=40, accepted=45,
            avg_acceptance=230,
        ),
        WASTE: TaskQueue(available=4, eligible=6),  # a quiet line
        HIGHWAYS: TaskQueue(
            pending=3, longest_age=95, longest_task="WT" + "3" * 32, available=0,
            eligible=5, entered=7, canceled=2, accepted=0,  # callers wait, none answered
        ),
    }  # fmt: skip


@pytest.fixture
async def vendor():
    fake = FakeTwilio()
    fake.queues.update(_queues())
    async with Loopback(fake.app()) as url:
        yield fake, url


def build(
    url: str,
    clock: FakeClock | None = None,
    lines: dict[str, str] | None = None,
    **settings: Any,
) -> StatsSource:
    """Validate both blocks and build through the wiring table, as the runtime does."""
    plugin = SOURCE_TYPES["twilio_taskrouter"]
    model = plugin.settings_model.model_validate({
        "account_sid": "AC" + "a" * 32, "auth_token": "twilio-auth-token",
        "workspace_sid": "WS" + "b" * 32, "base_url": url, "request_budget": "3s",
        **settings,
    })  # fmt: skip
    line_models = {
        line: plugin.line_model.model_validate({"task_queue_sid": sid})
        for line, sid in (lines or LINES).items()
    }
    return plugin.build("twilio", model, line_models, BuildContext(clock=clock or FakeClock(T0)))


def stats_of(result: Any, line: str) -> QueueStats:
    stats = result[line]
    assert isinstance(stats, QueueStats), stats
    return stats


async def poll_once(source: StatsSource) -> Any:
    try:
        return await source.poll()
    finally:
        await source.aclose()


async def test_live_figures_for_every_queue_come_from_one_bulk_request(vendor):
    """Three lines cost one bulk request and one cumulative request per queue."""
    fake, url = vendor
    result = await poll_once(build(url))
    assert (fake.calls["bulk"], fake.calls["cumulative"]) == (1, 3)
    assert fake.bulk_bodies == [sorted(LINES.values())]
    assert stats_of(result, "council_tax") == QueueStats(
        line="council_tax", at=T0, calls_waiting=8, avg_wait=230.0, longest_wait=412.0,
        agents_available=1, agents_staffed=12, offered=60, answered=45, abandoned=9,
        window=900.0,
    )  # fmt: skip
    assert {p["queue"]: (p["Minutes"], p["TaskChannel"]) for p in fake.cumulative_params} == {
        sid: ("15", "voice") for sid in LINES.values()
    }


async def test_a_quiet_line_reads_zero_and_a_stuck_one_unknown(vendor):
    """With nothing answered, avg_wait is 0 on a quiet line but unknown while callers wait."""
    _, url = vendor
    result = await poll_once(build(url))
    waste = stats_of(result, "waste")
    assert (waste.avg_wait, waste.calls_waiting, waste.longest_wait) == (0.0, 0, 0.0)
    highways = stats_of(result, "highways")
    assert (highways.avg_wait, highways.offered, highways.abandon_rate) == (None, 7, 2 / 7)


async def test_more_than_fifty_queues_are_sent_in_chunks_a_few_at_a_time(vendor):
    """Sixty queues are two bulk requests (50 + 10); no more than five requests at once."""
    fake, url = vendor
    lines = {f"line_{n}": wq(100 + n) for n in range(60)}
    for sid in lines.values():
        fake.queues[sid] = TaskQueue(pending=1, longest_age=30, entered=3, accepted=2,
                                     avg_acceptance=20)  # fmt: skip
    result = await poll_once(build(url, lines=lines))
    assert fake.calls["bulk"] == 2
    assert sorted(len(b) for b in fake.bulk_bodies) == [10, 50]
    assert fake.calls["cumulative"] == 60
    assert 1 < fake.max_in_flight <= 5
    assert all(stats_of(result, line).avg_wait == 20.0 for line in lines)


async def test_wrong_credentials_fail_the_poll_as_http_401(vendor):
    """A refused auth token is tried once more, then fails the poll, not retryable."""
    fake, url = vendor
    with pytest.raises(SourceError) as caught:
        await poll_once(build(url, auth_token="revoked"))
    assert (caught.value.reason, caught.value.retryable) == ("http_401", False)
    assert "Authenticate" in str(caught.value)
    assert (fake.calls["bulk"], fake.calls["cumulative"]) == (2, 0)


async def test_429_waits_for_retry_after_then_succeeds(vendor):
    """A 429 with Retry-After: 1 is waited out within the budget and the poll succeeds."""
    fake, url = vendor
    fake.faults["bulk"].append(
        Fault(429, '{"code": 20429, "message": "Too Many Requests", "status": 429}',
              headers={"Retry-After": "1"})
    )  # fmt: skip
    started = time.monotonic()
    result = await poll_once(build(url))
    assert time.monotonic() - started >= 0.95
    assert stats_of(result, "council_tax").calls_waiting == 8
    assert fake.calls["bulk"] == 2


async def test_a_platform_failing_with_500_fails_the_poll_as_retryable(vendor):
    """A bulk endpoint answering 500 is retried within the budget, then http_5xx."""
    fake, url = vendor
    fake.faults["bulk"].extend(Fault() for _ in range(10))
    with pytest.raises(SourceError) as caught:
        await poll_once(build(url, request_budget="1s"))
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert fake.calls["bulk"] >= 2
    assert fake.calls["cumulative"] == 0


async def test_a_failed_cumulative_request_keeps_the_live_figures(vendor):
    """When a queue's window figures fail, its live figures still come back."""
    fake, url = vendor
    fake.faults["cumulative"].append(Fault(403, '{"code": 20403, "message": "Forbidden"}'))
    result = await poll_once(build(url, lines={"council_tax": COUNCIL_TAX}))
    ct = stats_of(result, "council_tax")
    assert (ct.calls_waiting, ct.longest_wait, ct.agents_available) == (8, 412.0, 1)
    assert (ct.avg_wait, ct.offered, ct.window) == (None, None, None)


async def test_a_slow_platform_is_a_timeout_within_the_budget(vendor):
    """A bulk endpoint slower than the request budget fails the poll as "timeout", on time."""
    fake, url = vendor
    fake.faults["bulk"].append(Fault(200, '{"task_queue_data": []}', delay=1.0))
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await poll_once(build(url, request_budget="0.3s"))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 0.9


async def test_malformed_json_fails_the_poll_as_parse(vendor):
    """A maintenance page instead of JSON is reason "parse", showing the body."""
    fake, url = vendor
    fake.faults["bulk"].append(Fault(200, "<html>Twilio is down for maintenance</html>"))
    with pytest.raises(SourceError) as caught:
        await poll_once(build(url))
    assert (caught.value.reason, caught.value.retryable) == ("parse", False)
    assert "maintenance" in str(caught.value)


async def test_a_missing_field_fails_its_queue_naming_the_path(vendor):
    """A queue's data without ``total_available_workers`` fails its line, naming the path."""
    fake, url = vendor

    def drop(payload: dict[str, Any]) -> None:
        del payload["task_queue_data"][0]["total_available_workers"]  # council tax (WQ…01)

    fake.mangle["bulk"] = drop
    result = await poll_once(build(url))
    error = result["council_tax"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert str(error) == (
        f"queue {COUNCIL_TAX}: the payload has no task_queue_data[0].total_available_workers"
    )
    assert stats_of(result, "waste").agents_available == 4


async def test_a_queue_absent_from_the_response_fails_only_its_line(vendor):
    """A SID the platform does not answer for is a parse error naming it."""
    fake, url = vendor
    fake.omit.add(WASTE)
    result = await poll_once(build(url))
    error = result["waste"]
    assert isinstance(error, SourceError)
    assert error.reason == "parse"
    assert WASTE in str(error)
    assert stats_of(result, "council_tax").calls_waiting == 8


async def test_counts_written_as_strings_and_the_other_average_are_read(vendor):
    """``{"pending": "1"}`` (the spec's example) is a count; without avg_task_acceptance_time
    the average comes from wait_duration_until_accepted.avg."""
    fake, url = vendor

    def strings(payload: dict[str, Any]) -> None:
        payload["task_queue_data"][0]["tasks_by_status"]["pending"] = "6"

    def other_average(payload: dict[str, Any]) -> None:
        del payload["avg_task_acceptance_time"]
        payload["wait_duration_until_accepted"]["avg"] = 199

    fake.mangle.update(bulk=strings, cumulative=other_average)
    result = await poll_once(build(url, lines={"council_tax": COUNCIL_TAX}))
    ct = stats_of(result, "council_tax")
    assert (ct.calls_waiting, ct.avg_wait) == (8, 199.0)


async def test_longest_wait_learns_milliseconds_from_the_clock(vendor):
    """Read as seconds at first, the longest task's age growing 1000× faster than the clock
    shows milliseconds, and the source reads milliseconds from then on."""
    fake, url = vendor
    clock = FakeClock(T0)
    source = build(url, clock, lines={"council_tax": COUNCIL_TAX})
    assert isinstance(source, TwilioTaskRouterSource)
    queue = fake.queues[COUNCIL_TAX]
    try:
        queue.longest_age = 30_000
        first = stats_of(await source.poll(), "council_tax").longest_wait
        clock.advance(15)
        queue.longest_age = 45_000
        second = stats_of(await source.poll(), "council_tax").longest_wait
        clock.advance(15)
        queue.longest_age, queue.longest_task = 2_000, "WT" + "9" * 32  # a new longest task
        third = stats_of(await source.poll(), "council_tax").longest_wait
    finally:
        await source.aclose()
    assert (first, second, third) == (30_000.0, 45.0, 2.0)


def test_the_age_unit_can_be_pinned_or_is_settled_by_the_clock():
    """Seconds stay seconds when the age grows with the clock; a pinned unit is never
    second-guessed; an age above a day can only be milliseconds."""
    task = "WT" + "1" * 32
    auto = AgeUnit("auto")
    assert auto.seconds("q", task, 100, T0) == 100
    assert auto.seconds("q", task, 115, T0 + timedelta(seconds=15)) == 115
    assert auto.scale == 1.0 and not auto.auto
    assert auto.seconds("q", task, 200_000, T0 + timedelta(seconds=30)) == 200_000
    assert AgeUnit("milliseconds").seconds("q", task, 95_000, T0) == 95.0
    assert AgeUnit("auto").seconds("q", task, 200_000, T0) == 200.0


def test_settings_name_what_is_wrong():
    """A queue's name instead of its SID, or a malformed workspace SID, is refused."""
    plugin = SOURCE_TYPES["twilio_taskrouter"]
    with pytest.raises(ValidationError, match="not a TaskQueue SID"):
        plugin.line_model.model_validate({"task_queue_sid": "Council Tax"})
    with pytest.raises(ValidationError, match="not a workspace SID"):
        plugin.settings_model.model_validate(
            {"account_sid": "AC1", "auth_token": "t", "workspace_sid": "WS123"}
        )


def test_the_example_config_passes_check():
    """``config/examples/twilio-taskrouter.yaml`` loads with its secrets from the environment."""
    env = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token"}
    config = load_config(EXAMPLE, env=env)
    assert config.warnings == ()
    (source,) = config.sources.values()
    assert source.type == "twilio_taskrouter"
    assert source.settings.auth_token == "token"  # type: ignore[attr-defined]
    built = SOURCE_TYPES[source.type].build(
        source.id, source.settings,
        {lid: line.source_params for lid, line in config.lines.items()},
        BuildContext(clock=FakeClock(T0)),
    )  # fmt: skip
    assert isinstance(built, TwilioTaskRouterSource)
