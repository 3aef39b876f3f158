"""The dispatcher's notices: one message per person across lines, batches, rate limits."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from risingtide.clock import FakeClock
from risingtide.dispatch import Delivery, Dispatcher, RateLimiter, RetryPolicy, batch_key
from risingtide.domain.model import Action, ResponseOrder
from risingtide.domain.people import Directory, Group, Person, Shift
from risingtide.ports import Notice, Notifier, ResponseContext, ResponseError
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday, 09:00 in London
NO_JITTER = RetryPolicy(jitter=0)
ASHA = Person("asha", "Asha Patel", mobile="+447700900123")
BEN = Person("ben", "Ben Okafor", mobile="+447700900456")
DIRECTORY = Directory(
    people={"asha": ASHA, "ben": BEN},
    groups={
        "duty_managers": Group(
            "duty_managers",
            "duty managers",
            ("asha", "ben"),
            rota=(
                Shift((0, 1, 2, 3, 4), time(8), time(13), ("asha",)),
                Shift((0, 1, 2, 3, 4), time(13), time(20), ("ben",)),
            ),
        )
    },
)


class Told:
    """A notifier that plays a script and keeps every notice it was given."""

    undoable = False

    def __init__(self, name: str, *script: str | BaseException) -> None:
        self.name = name
        self.script = list(script)
        self.notices: list[Notice] = []

    async def notify(self, notice: Notice) -> str:
        self.notices.append(notice)
        result = self.script.pop(0) if self.script else f"sent {len(notice.items)}"
        if isinstance(result, BaseException):
            raise result
        return result

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        return await self.notify(Notice.of(order, context))


class Switch:
    """A switch-like responder that counts its runs."""

    undoable = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        self.calls.append(order.key)
        return "on"


def context_for(order: ResponseOrder) -> ResponseContext:
    return ResponseContext(line_name=order.line, tier_name="rising", stats=None, target_wait=180)


def order(key: str, line: str, response: str = "text", at: datetime = T0) -> ResponseOrder:
    return ResponseOrder(key, line, response, Action.APPLY, 1, 1, "tier_changed", at, "rising")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store(tmp_path / "rt.sqlite", clock) as s:
        yield s


def dispatcher(
    store: Store, clock: FakeClock, *responders: Told | Switch, **deliveries: Delivery
) -> Dispatcher:
    return Dispatcher(
        store,
        {r.name: r for r in responders},
        context_for,
        clock,
        NO_JITTER,
        rng=random.Random(7),
        deliveries=deliveries,
        directory=DIRECTORY,
    )


GROUPED = Delivery(group_wait=timedelta(seconds=5), page=("duty_managers",))


def test_told_is_a_notifier() -> None:
    """The test double is what the dispatcher looks for."""
    assert isinstance(Told("x"), Notifier) and not isinstance(Switch("y"), Notifier)


async def test_lines_changing_together_are_one_notice_to_the_person_on_duty(
    store: Store, clock: FakeClock
) -> None:
    """Three lines within the group wait: nothing until it ends, then one notice for all
    three, to the morning duty manager only, under the batch's key."""
    text = Told("text")
    d = dispatcher(store, clock, text, text=GROUPED)
    store.commit([], [], [order("a", "revenues")])
    clock.advance(timedelta(seconds=2))
    store.commit(
        [], [], [order("b", "waste", at=clock.now()), order("c", "highways", at=clock.now())]
    )
    assert await d.run_due() == 0 and text.notices == []
    clock.advance(timedelta(seconds=3))
    assert await d.run_due() == 3
    (notice,) = text.notices
    assert [o.line for o in notice.orders] == ["revenues", "waste", "highways"]
    assert notice.people == (ASHA,)
    assert notice.key == batch_key("text", ["a", "b", "c"])
    assert store.pending() == []


async def test_the_afternoon_rota_pages_someone_else(store: Store, clock: FakeClock) -> None:
    """At 14:00 the rota's afternoon shift is on duty."""
    text = Told("text")
    clock.set(T0.replace(hour=14))
    d = dispatcher(store, clock, text, text=Delivery(page=("duty_managers",)))
    store.commit([], [], [order("a", "revenues", at=clock.now())])
    await d.run_due()
    (notice,) = text.notices
    assert notice.people == (BEN,) and notice.key == "a"


async def test_a_failed_batch_is_retried_as_it_was_even_after_a_restart(
    store: Store, clock: FakeClock
) -> None:
    """A batch keeps its members and key on retry; a newcomer goes separately; a new
    dispatcher (a restart) sends the same batch under the same key."""
    text = Told("text", ResponseError("down", reason="http_5xx", retryable=True))
    d = dispatcher(store, clock, text, text=GROUPED)
    store.commit([], [], [order("a", "revenues"), order("b", "waste")])
    clock.advance(timedelta(seconds=5))
    await d.run_due()
    first_key = text.notices[0].key
    assert {e.batch for e in store.pending()} == {first_key}
    store.commit([], [], [order("c", "highways", at=clock.now())])
    clock.advance(timedelta(seconds=10))
    again = Told("text")
    await dispatcher(store, clock, again, text=GROUPED).run_due()
    keys = sorted((n.key, tuple(o.key for o in n.orders)) for n in again.notices)
    assert keys == sorted([(first_key, ("a", "b")), ("c", ("c",))])
    assert store.pending() == []


async def test_an_order_retrying_alone_never_joins_a_batch(store: Store, clock: FakeClock) -> None:
    """Its key is already out there, so it keeps it; fresh orders batch without it."""
    text = Told("text", ResponseError("down", reason="timeout", retryable=True))
    d = dispatcher(store, clock, text, text=Delivery(group_wait=timedelta(seconds=1)))
    store.commit([], [], [order("a", "revenues")])
    clock.advance(timedelta(seconds=1))
    await d.run_due()
    store.commit(
        [], [], [order("b", "waste", at=clock.now()), order("c", "parking", at=clock.now())]
    )
    clock.advance(timedelta(seconds=5))
    await d.run_due()
    assert sorted(n.key for n in text.notices[1:]) == sorted(["a", batch_key("text", ["b", "c"])])


async def test_a_dead_batch_kills_every_member(store: Store, clock: FakeClock) -> None:
    """A refusal retrying cannot help gives up on all of the batch's orders."""
    text = Told("text", ResponseError("bad template", reason="template", retryable=False))
    d = dispatcher(store, clock, text, text=Delivery(group_wait=timedelta(seconds=1)))
    store.commit([], [], [order("a", "revenues"), order("b", "waste")])
    clock.advance(timedelta(seconds=1))
    await d.run_due()
    assert len(text.notices) == 1
    assert store.pending() == [] and store.dead_count() == 2


async def test_later_orders_of_a_line_follow_once_the_head_is_sent(
    store: Store, clock: FakeClock
) -> None:
    """Within one run_due, each line's next order goes out after its first (lane order)."""
    text = Told("text")
    d = dispatcher(store, clock, text, text=Delivery(group_wait=timedelta(seconds=1)))
    store.commit([], [], [order("a1", "revenues"), order("a2", "revenues"), order("b1", "waste")])
    clock.advance(timedelta(seconds=1))
    assert await d.run_due() == 3
    assert [tuple(o.key for o in n.orders) for n in text.notices] == [("a1", "b1"), ("a2",)]


async def test_without_a_group_wait_each_line_goes_alone(store: Store, clock: FakeClock) -> None:
    """``group_wait: 0s`` (a webhook's default): one notice per order, under its own key."""
    hook = Told("hook")
    d = dispatcher(store, clock, hook, hook=Delivery())
    store.commit([], [], [order("a", "revenues", "hook"), order("b", "waste", "hook")])
    assert await d.run_due() == 2
    assert sorted(n.key for n in hook.notices) == ["a", "b"]
    assert all(e.batch is None for e in [store.outbox_entry("a"), store.outbox_entry("b")] if e)


async def test_rate_limit_holds_runs_back_without_counting_attempts(
    store: Store, clock: FakeClock
) -> None:
    """Two runs a minute: the third line's switch waits for the window, unattempted."""
    switch = Switch("ivr")
    d = dispatcher(store, clock, switch, ivr=Delivery(rate_limit=(2, timedelta(minutes=1))))
    store.commit([], [], [order(f"k{i}", f"line{i}", "ivr") for i in range(3)])
    assert await d.run_due() == 2
    (waiting,) = store.pending()
    assert waiting.attempts == 0
    clock.advance(timedelta(seconds=30))
    assert await d.run_due() == 0
    clock.advance(timedelta(seconds=30))
    assert await d.run_due() == 1 and len(switch.calls) == 3


def test_rate_limiter_slides() -> None:
    """A sliding window: the oldest run leaving it frees a slot, and it says when."""
    limiter = RateLimiter(2, timedelta(seconds=10))
    assert limiter.take(T0) is None
    assert limiter.take(T0 + timedelta(seconds=4)) is None
    assert limiter.take(T0 + timedelta(seconds=5)) == T0 + timedelta(seconds=10)
    assert limiter.take(T0 + timedelta(seconds=10)) is None


async def test_a_reload_keeps_an_unchanged_limit_window(store: Store, clock: FakeClock) -> None:
    """Reloading with the same limit does not hand out a fresh allowance."""
    switch = Switch("ivr")
    limit = Delivery(rate_limit=(1, timedelta(minutes=1)))
    d = dispatcher(store, clock, switch, ivr=limit)
    store.commit([], [], [order("k0", "l0", "ivr"), order("k1", "l1", "ivr")])
    await d.run_due()
    d.set_responders({"ivr": switch}, {"ivr": limit}, DIRECTORY)
    assert await d.run_due() == 0
    d.set_responders({"ivr": switch}, {"ivr": Delivery(rate_limit=(5, timedelta(minutes=1)))})
    assert await d.run_due() == 1


async def test_a_dead_letter_and_its_fallback_are_recorded_together(
    store: Store, clock: FakeClock
) -> None:
    """The fallback is queued in the transaction that records the order dead: both, or
    (when recording fails) neither, so a crash cannot lose the fallback."""
    text = Told("text", ResponseError("refused", reason="http_4xx", retryable=False))
    email = Told("email")
    deliveries = {"text": Delivery(fallback="email"), "email": Delivery()}
    d = Dispatcher(store, {"text": text, "email": email}, context_for, clock, NO_JITTER,
                   deliveries=deliveries)  # fmt: skip
    store.commit([], [], [order("a", "revenues")])
    broken = Told("text", ResponseError("refused", reason="http_4xx", retryable=False))
    failing = Dispatcher(store, {"text": broken}, context_for, clock, NO_JITTER,
                         deliveries=deliveries)  # fmt: skip

    def no_store(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    original = store.record_failure
    store.record_failure = no_store  # type: ignore[method-assign]
    await failing.run_due()
    store.record_failure = original  # type: ignore[method-assign]
    assert [e.order.key for e in store.pending()] == ["a"]  # neither dead nor a fallback

    await d.run_due()
    assert store.dead_count() == 1
    assert [n.key for n in email.notices] == ["a/fallback/email"]
    (fallback,) = email.notices[0].orders
    assert fallback.line == "revenues" and fallback.reason.startswith("text was given up on")
    await d.run_due()
    assert len(email.notices) == 1  # once
