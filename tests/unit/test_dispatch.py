"""The dispatcher: outbox entries through responders, with retries, order and dead letters."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from risingtide.clock import FakeClock
from risingtide.dispatch import Dispatcher, RetryPolicy
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import ResponseContext, ResponseError
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NO_JITTER = RetryPolicy(jitter=0)


class Scripted:
    """A responder that plays a script: each call returns the next detail or raises the next
    exception ("ok" once the script runs out), and remembers the orders it was given."""

    undoable = False

    def __init__(self, name: str, *script: str | BaseException) -> None:
        self.name = name
        self.script = list(script)
        self.calls: list[ResponseOrder] = []

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        self.calls.append(order)
        result = self.script.pop(0) if self.script else "ok"
        if isinstance(result, BaseException):
            raise result
        return result


class Hanging:
    """A responder that never answers (until released), like a platform that hangs."""

    undoable = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        self.started.set()
        await self.release.wait()
        return "late"


def context_for(order: ResponseOrder) -> ResponseContext:
    """A plain context: the line's id as its name."""
    return ResponseContext(line_name=order.line, tier_name="rising", stats=None, target_wait=180)


def order(
    key: str,
    line: str = "revenues",
    response: str = "notify",
    action: Action = Action.APPLY,
    at: datetime = T0,
) -> ResponseOrder:
    """A response order for tier 1."""
    return ResponseOrder(key, line, response, action, 1, 1, "tier_changed", at, "rising")


@pytest.fixture
def clock() -> FakeClock:
    """A clock at Monday 09:00 UTC."""
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A store on a fresh file."""
    with Store(tmp_path / "rt.sqlite", clock) as s:
        yield s


class Outcomes(list[tuple[str, str, str]]):
    """Collects on_outcome calls as (key, outcome, detail)."""

    def __call__(self, order: ResponseOrder, outcome: str, detail: str) -> None:
        self.append((order.key, outcome, detail))


def dispatcher(
    store: Store,
    clock: FakeClock,
    *responders: Scripted | Hanging,
    policy: RetryPolicy = NO_JITTER,
    outcomes: Outcomes | None = None,
    timeout: timedelta = timedelta(seconds=30),
) -> Dispatcher:
    """A dispatcher over the given responders, by name."""
    return Dispatcher(
        store,
        {r.name: r for r in responders},
        context_for,
        clock,
        policy,
        on_outcome=outcomes,
        rng=random.Random(7),
        timeout=timeout,
    )


def status(store: Store, key: str) -> tuple[str, int]:
    """An entry's status and attempt count."""
    entry = store.outbox_entry(key)
    assert entry is not None
    return entry.status, entry.attempts


# --------------------------------------------------------------------------- back-off policy


def test_backoff_doubles_up_to_the_cap() -> None:
    """Without jitter the delays are base, 2·base, 4·base… capped at max_delay."""
    policy = RetryPolicy(base_delay=timedelta(seconds=2), max_delay=timedelta(seconds=20), jitter=0)
    rng = random.Random(1)
    assert [policy.delay(n, rng).total_seconds() for n in range(1, 7)] == [2, 4, 8, 16, 20, 20]
    assert policy.delay(10_000, rng) == timedelta(seconds=20)


def test_backoff_jitter_stays_within_its_share() -> None:
    """Jitter spreads each delay by at most its share, repeatably for a seeded rng."""
    policy = RetryPolicy(jitter=0.2)
    delays = [policy.delay(3, random.Random(seed)) for seed in range(50)]
    assert all(timedelta(seconds=6.4) <= d <= timedelta(seconds=9.6) for d in delays)
    assert len(set(delays)) > 1
    assert policy.delay(3, random.Random(5)) == policy.delay(3, random.Random(5))


def test_policy_rejects_nonsense() -> None:
    """A policy that could never run, or never wait, is refused."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


# --------------------------------------------------------------------------- outcomes


async def test_success_is_recorded_once(store: Store, clock: FakeClock) -> None:
    """A due entry runs once, is recorded done, and never runs again."""
    notify = Scripted("notify", "posted")
    outcomes = Outcomes()
    d = dispatcher(store, clock, notify, outcomes=outcomes)
    store.commit([], [], [order("k1")])
    assert await d.run_due() == 1
    assert await d.run_due() == 0
    clock.advance(timedelta(hours=2))
    assert await d.run_due() == 0
    assert [o.key for o in notify.calls] == ["k1"]
    assert status(store, "k1") == ("done", 1)
    (record,) = store.history(kinds=["response"])
    assert (record.data["outcome"], record.data["detail"]) == ("ok", "posted")
    assert outcomes == [("k1", "ok", "posted")]


async def test_entries_wait_for_their_time(store: Store, clock: FakeClock) -> None:
    """An order planned for later does not run before its time."""
    notify = Scripted("notify")
    d = dispatcher(store, clock, notify)
    store.commit([], [], [order("k1", at=T0 + timedelta(seconds=30))])
    assert await d.run_due() == 0
    clock.advance(30)
    assert await d.run_due() == 1


async def test_retries_back_off_on_the_clock(store: Store, clock: FakeClock) -> None:
    """Each retryable failure schedules the next attempt base·2**(n-1) after it failed."""
    failures = [ResponseError("HTTP 503", reason="http_5xx") for _ in range(4)]
    notify = Scripted("notify", *failures, "posted")
    outcomes = Outcomes()
    d = dispatcher(store, clock, notify, outcomes=outcomes)
    store.commit([], [], [order("k1")])
    retry_times: list[datetime] = []
    for _ in range(4):
        assert await d.run_due() == 1
        entry = store.outbox_entry("k1")
        assert entry is not None
        retry_times.append(entry.next_attempt_at)
        clock.advance(timedelta(milliseconds=999))
        assert await d.run_due() == 0, "ran before its retry time"
        clock.set(entry.next_attempt_at)
    assert retry_times == [T0 + timedelta(seconds=s) for s in (2, 2 + 4, 2 + 4 + 8, 2 + 4 + 8 + 16)]
    assert await d.run_due() == 1
    assert status(store, "k1") == ("done", 5)
    assert [o for _, o, _ in outcomes] == ["retry"] * 4 + ["ok"]
    assert outcomes[0] == ("k1", "retry", "http_5xx")


async def test_seeded_jitter_gives_repeatable_retry_times(store: Store, clock: FakeClock) -> None:
    """With jitter the retry time is the policy's delay for the injected rng."""
    policy = RetryPolicy(jitter=0.2)
    d = Dispatcher(
        store,
        {"notify": Scripted("notify", ResponseError("busy"))},
        context_for,
        clock,
        policy,
        rng=random.Random(42),
    )
    store.commit([], [], [order("k1")])
    await d.run_due()
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert entry.next_attempt_at == T0 + policy.delay(1, random.Random(42))
    assert entry.next_attempt_at != T0 + timedelta(seconds=2)


async def test_dead_after_max_attempts(store: Store, clock: FakeClock) -> None:
    """After max_attempts failures the entry is dead and never runs again."""
    notify = Scripted("notify", *(ResponseError("HTTP 503", reason="http_5xx") for _ in range(9)))
    outcomes = Outcomes()
    policy = RetryPolicy(max_attempts=3, jitter=0)
    d = dispatcher(store, clock, notify, policy=policy, outcomes=outcomes)
    store.commit([], [], [order("k1")])
    for _ in range(3):
        assert await d.run_due() == 1
        clock.advance(timedelta(minutes=10))
    assert await d.run_due() == 0
    assert status(store, "k1") == ("dead", 3)
    assert (store.pending_count(), store.dead_count()) == (0, 1)
    assert outcomes == [("k1", "retry", "http_5xx")] * 2 + [("k1", "dead", "http_5xx")]
    assert len(notify.calls) == 3


async def test_dead_after_max_age(store: Store, clock: FakeClock) -> None:
    """A failure on an order older than max_age is final, however few attempts it had."""
    notify = Scripted("notify", ResponseError("busy"), ResponseError("busy"))
    outcomes = Outcomes()
    policy = RetryPolicy(max_age=timedelta(seconds=10), jitter=0)
    d = dispatcher(store, clock, notify, policy=policy, outcomes=outcomes)
    store.commit([], [], [order("k1")])
    await d.run_due()
    assert status(store, "k1") == ("pending", 1)
    clock.advance(11)
    await d.run_due()
    assert status(store, "k1") == ("dead", 2)
    assert [o for _, o, _ in outcomes] == ["retry", "dead"]


async def test_non_retryable_error_is_dead_at_once(store: Store, clock: FakeClock) -> None:
    """A responder that says retrying cannot help sends the entry straight to dead."""
    bad = ResponseError("HTTP 400: unknown channel", reason="http_4xx", retryable=False)
    notify = Scripted("notify", bad)
    outcomes = Outcomes()
    d = dispatcher(store, clock, notify, outcomes=outcomes)
    store.commit([], [], [order("k1")])
    with capture_logs() as logs:
        assert await d.run_due() == 1
    assert status(store, "k1") == ("dead", 1)
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert entry.last_error == "HTTP 400: unknown channel"
    assert outcomes == [("k1", "dead", "http_4xx")]
    (gave_up,) = [e for e in logs if e["event"] == "response gave up"]
    assert gave_up["log_level"] == "error"
    assert {k: gave_up[k] for k in ("line", "tier", "response", "key", "reason")} == {
        "line": "revenues",
        "tier": 1,
        "response": "notify",
        "key": "k1",
        "reason": "http_4xx",
    }


async def test_unknown_response_is_dead_at_once(store: Store, clock: FakeClock) -> None:
    """An order for a response no longer configured goes dead with reason unknown_response."""
    outcomes = Outcomes()
    d = dispatcher(store, clock, outcomes=outcomes)
    store.commit([], [], [order("k1", response="pager")])
    assert await d.run_due() == 1
    assert status(store, "k1") == ("dead", 1)
    (record,) = store.history(kinds=["response"])
    assert record.data["reason"] == "unknown_response"
    assert outcomes == [("k1", "dead", "unknown_response")]


async def test_set_responders_takes_effect(store: Store, clock: FakeClock) -> None:
    """After a reload the new responders run, and a removed response is dead at once."""
    d = dispatcher(store, clock, Scripted("notify"))
    replacement = Scripted("notify")
    d.set_responders({"notify": replacement})
    store.commit([], [], [order("k1"), order("k2", line="waste", response="gone")])
    assert await d.run_due() == 2
    assert [o.key for o in replacement.calls] == ["k1"]
    assert status(store, "k2") == ("dead", 1)


async def test_timeout_is_a_retryable_failure(store: Store, clock: FakeClock) -> None:
    """A responder that does not answer within the timeout fails with reason timeout."""
    hanging = Hanging("notify")
    outcomes = Outcomes()
    d = dispatcher(store, clock, hanging, outcomes=outcomes, timeout=timedelta(milliseconds=50))
    store.commit([], [], [order("k1")])
    assert await d.run_due() == 1
    assert status(store, "k1") == ("pending", 1)
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert entry.last_error == "no answer within 0.05s"
    assert outcomes == [("k1", "retry", "timeout")]


async def test_crashing_responder_does_not_crash_the_dispatcher(
    store: Store, clock: FakeClock
) -> None:
    """Any other exception is a retryable "error", logged with its traceback."""
    notify = Scripted("notify", RuntimeError("boom"))
    outcomes = Outcomes()
    d = dispatcher(store, clock, notify, outcomes=outcomes)
    store.commit([], [], [order("k1")])
    with capture_logs() as logs:
        assert await d.run_due() == 1
    entry = store.outbox_entry("k1")
    assert entry is not None
    assert (entry.status, entry.last_error) == ("pending", "RuntimeError: boom")
    assert outcomes == [("k1", "retry", "error")]
    (crash,) = [e for e in logs if e["event"] == "responder raised an unexpected error"]
    assert crash["exc_info"] is True
    assert (crash["line"], crash["tier"], crash["response"], crash["key"]) == (
        "revenues",
        1,
        "notify",
        "k1",
    )
    assert any(e["event"] == "response failed; will retry" for e in logs)


async def test_failing_outcome_hook_is_contained(store: Store, clock: FakeClock) -> None:
    """A broken on_outcome hook is logged; the outcome is still recorded."""

    def broken(order: ResponseOrder, outcome: str, detail: str) -> None:
        raise ValueError("metrics exploded")

    d = Dispatcher(store, {"notify": Scripted("notify")}, context_for, clock, on_outcome=broken)
    store.commit([], [], [order("k1")])
    assert await d.run_due() == 1
    assert status(store, "k1") == ("done", 1)


# --------------------------------------------------------------------------- ordering


async def test_undo_waits_for_its_apply_and_other_lines_go_on(
    store: Store, clock: FakeClock
) -> None:
    """A line's UNDO waits while its APPLY retries; another line is not held up."""
    ivr = Scripted("ivr", ResponseError("platform busy"), "on", "off")
    notify = Scripted("notify", "posted")
    d = dispatcher(store, clock, ivr, notify)
    store.commit(
        [],
        [],
        [
            order("apply", response="ivr"),
            order("undo", response="ivr", action=Action.UNDO),
            order("waste", line="waste"),
        ],
    )
    assert await d.run_due() == 2  # the APPLY (failed) and the other line's order
    assert [o.key for o in notify.calls] == ["waste"]
    assert status(store, "undo") == ("pending", 0)

    clock.advance(1)  # the UNDO is due, but its APPLY is not yet
    assert await d.run_due() == 0

    clock.advance(1)
    assert await d.run_due() == 2
    assert [(o.key, o.action) for o in ivr.calls] == [
        ("apply", Action.APPLY),
        ("apply", Action.APPLY),
        ("undo", Action.UNDO),
    ]
    assert store.pending_count() == 0


async def test_retrying_notification_does_not_hold_up_a_switch_of_its_line(
    store: Store, clock: FakeClock
) -> None:
    """A notification retrying on one line does not delay another response on that line."""
    notify = Scripted("notify", ResponseError("teams down"), "posted")
    ivr = Scripted("ivr", "on")
    d = dispatcher(store, clock, ivr, notify)
    store.commit([], [], [order("page"), order("deflect", response="ivr")])
    assert await d.run_due() == 2
    assert status(store, "page") == ("pending", 1)
    assert status(store, "deflect") == ("done", 1)


async def test_dead_entry_does_not_hold_its_line(store: Store, clock: FakeClock) -> None:
    """Once an earlier entry is dead, the line's later entries run."""
    ivr = Scripted("ivr", ResponseError("no such queue", retryable=False))
    d = dispatcher(store, clock, ivr)
    store.commit([], [], [order("apply", response="ivr"), order("next", response="ivr")])
    assert await d.run_due() == 2
    assert (status(store, "apply"), status(store, "next")) == (("dead", 1), ("done", 1))


async def test_lines_run_concurrently(store: Store, clock: FakeClock) -> None:
    """A hanging responder on one line does not delay another line's response."""
    hanging = Hanging("ivr")
    notify = Scripted("notify")
    d = dispatcher(store, clock, hanging, notify)
    store.commit([], [], [order("slow", response="ivr"), order("fast", line="waste")])
    run = asyncio.create_task(d.run_due())
    await asyncio.wait_for(hanging.started.wait(), 5)
    assert status(store, "fast") == ("done", 1)
    assert status(store, "slow") == ("pending", 0)
    hanging.release.set()
    assert await run == 2


async def test_overlapping_passes_do_not_run_an_entry_twice(store: Store, clock: FakeClock) -> None:
    """A second pass while a line's entry is in flight leaves that line alone."""
    hanging = Hanging("notify")
    d = dispatcher(store, clock, hanging)
    store.commit([], [], [order("k1")])
    first = asyncio.create_task(d.run_due())
    second = asyncio.create_task(d.run_due())
    await asyncio.wait_for(hanging.started.wait(), 5)
    hanging.release.set()
    assert sorted(await asyncio.gather(first, second)) == [0, 1]
    assert status(store, "k1") == ("done", 1)


# --------------------------------------------------------------------------- run_forever


async def test_run_forever_wakes_for_new_orders_and_stops(store: Store, clock: FakeClock) -> None:
    """wake() makes the loop look at once (no idle wait); stop ends it."""
    ran = asyncio.Event()

    class Signalling(Scripted):
        async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
            ran.set()
            return await super().run(order, context)

    notify = Signalling("notify")
    d = dispatcher(store, clock, notify)
    stop = asyncio.Event()
    loop = asyncio.create_task(d.run_forever(stop, idle=timedelta(hours=1)))
    store.commit([], [], [order("k1")])
    d.wake()
    await asyncio.wait_for(ran.wait(), 5)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert status(store, "k1") == ("done", 1)


async def test_run_forever_survives_a_failing_store(tmp_path: Path, clock: FakeClock) -> None:
    """A pass that fails (here: the store is closed) is logged, and the loop goes on."""
    broken = Store(tmp_path / "broken.sqlite", clock)
    broken.close()
    d = dispatcher(broken, clock, Scripted("notify"))
    stop = asyncio.Event()
    with capture_logs() as logs:
        loop = asyncio.create_task(d.run_forever(stop, idle=timedelta(hours=1)))
        for _ in range(100):  # let the loop make its first pass (no timing involved)
            await asyncio.sleep(0)
        assert any(e["event"] == "dispatcher pass failed; will try again" for e in logs)
        assert not loop.done(), "run_forever must keep going after a failed pass"
        stop.set()
        await asyncio.wait_for(loop, 5)


async def test_an_undo_keeps_retrying_past_max_attempts_until_its_own_age_limit(
    store: Store, clock: FakeClock
) -> None:
    """A switch must not be left on: an UNDO outlives max_attempts and dies only at undo_max_age."""
    policy = RetryPolicy(max_attempts=2, base_delay=timedelta(seconds=1),
                         max_delay=timedelta(seconds=10), jitter=0,
                         undo_max_age=timedelta(minutes=10))  # fmt: skip
    failing = Scripted("ivr", *([ResponseError("platform down")] * 500))
    d = Dispatcher(store, {"ivr": failing}, context_for, clock, policy)
    store.commit([], [], [order("off", response="ivr", action=Action.UNDO)])
    for _ in range(20):
        await d.run_due()
        clock.advance(10)
    entry = store.outbox_entry("off")
    assert entry is not None
    assert entry.status == "pending" and entry.attempts > 2
    for _ in range(60):
        await d.run_due()
        clock.advance(10)
    entry = store.outbox_entry("off")
    assert entry is not None and entry.status == "dead"
