"""The dispatcher: runs the outbox's response orders through their responders.

Each pending entry is handed to the responder named by its order's ``response``; the outcome
is recorded in the store (done, retry later, or dead) together with a ``response`` history
entry. Delivery is at-least-once: an entry is recorded done only after its responder
returned, so a crash in between runs it again after a restart, with the same idempotency
key (``order.key``), and responders de-duplicate by that key.

Ordering: the entries of one response on one line (a *lane*) run one at a time in outbox
order, and an entry waits while an earlier entry of its lane is still pending (retrying), so
an UNDO never overtakes its APPLY. Different lanes run concurrently: a Teams outage that
keeps a notification retrying never holds up the IVR switch of the same line.

Failures: a responder raises ``ResponseError`` saying whether to retry and why (its
``reason`` labels metrics); a call that outlives the timeout is a retryable ``timeout``; any
other exception is a retryable ``error``, logged with its traceback. The ``RetryPolicy`` alone
decides back-off and when to give up (the entry goes "dead"). An order whose response is no
longer configured (removed by a reload) is dead at once. Nothing a responder does can stop
the dispatcher.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import structlog

from risingtide.clock import Clock
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import Responder, ResponseContext, ResponseError
from risingtide.store import OutboxEntry, Store

__all__ = ["DEFAULT_POLICY", "Dispatcher", "Outcome", "OutcomeHook", "RetryPolicy"]

log = structlog.get_logger(__name__)

#: What happened to one run of an entry.
Outcome = Literal["ok", "retry", "dead"]

#: ``on_outcome(order, outcome, detail)``: ``detail`` is the responder's outcome detail for
#: "ok", and the failure's short reason (``timeout``, ``http_500``…) for "retry" and "dead".
OutcomeHook = Callable[[ResponseOrder, str, str], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a failed response, and when to give up on it.

    The n-th failure waits ``base_delay * 2**(n-1)``, capped at ``max_delay``, then spread
    by ± ``jitter`` (a share of the delay) so that many lines failing together do not retry
    in lockstep. An entry is dead when it has run ``max_attempts`` times, when the order is
    older than ``max_age`` (a page about a flood an hour ago helps nobody), or when the
    error says retrying cannot help.

    An UNDO is different: a switch left on (the IVR telling residents to go online when
    the lines are calm) does harm for as long as it stays on, so an UNDO is not given up
    after ``max_attempts``; it keeps retrying, at most ``max_delay`` apart, until
    ``undo_max_age`` or an error retrying cannot help.
    """

    max_attempts: int = 6
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=5)
    jitter: float = 0.2
    max_age: timedelta = timedelta(hours=1)
    undo_max_age: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        """Refuse settings that would retry forever or never wait."""
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt (1 for the first)."""
        # In float seconds: 2**attempts as a timedelta would overflow for large counts.
        doubling = 2.0 ** min(max(attempts - 1, 0), 1000)
        seconds = min(self.base_delay.total_seconds() * doubling, self.max_delay.total_seconds())
        if self.jitter:
            seconds *= 1 + rng.uniform(-self.jitter, self.jitter)
        return timedelta(seconds=seconds)

    def gives_up(
        self, attempts: int, age: timedelta, *, retryable: bool, undo: bool = False
    ) -> bool:
        """True when, after ``attempts`` failed attempts on an order ``age`` old, it is dead."""
        if not retryable:
            return True
        if undo:
            return age > self.undo_max_age
        return attempts >= self.max_attempts or age > self.max_age


#: The policy a dispatcher uses unless told otherwise.
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    message: str
    retryable: bool


class Dispatcher:
    """Runs due outbox entries through responders, with retries and dead letters."""

    def __init__(
        self,
        store: Store,
        responders: Mapping[str, Responder],
        context_for: Callable[[ResponseOrder], ResponseContext],
        clock: Clock,
        policy: RetryPolicy = DEFAULT_POLICY,
        *,
        on_outcome: OutcomeHook | None = None,
        rng: random.Random | None = None,
        timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        """Dispatch ``store``'s outbox to ``responders`` (by response id).

        ``context_for`` gives a responder what it needs beyond the order (line and tier
        names, the latest stats). ``on_outcome(order, outcome, detail)`` is told every
        outcome, for metrics. ``rng`` makes the back-off jitter repeatable in tests.
        ``timeout`` bounds each responder call.
        """
        self._store = store
        self._responders: Mapping[str, Responder] = dict(responders)
        self._context_for = context_for
        self._clock = clock
        self._policy = policy
        self._on_outcome = on_outcome
        self._rng = rng or random.Random()
        self._timeout = timeout
        self._wake = asyncio.Event()
        # Lines with a run in progress: an overlapping run_due must not start their entries
        # a second time, nor run a later entry of the line before an earlier one finishes.
        self._busy: set[str] = set()

    def set_responders(self, responders: Mapping[str, Responder]) -> None:
        """Use a new set of responders (after a config reload); runs in flight finish."""
        self._responders = dict(responders)

    def wake(self) -> None:
        """Tell ``run_forever`` that new orders were committed, so it looks now."""
        self._wake.set()

    async def run_due(self) -> int:
        """Run every entry that is due now, once; return how many ran.

        Lines run concurrently; within a line, entries run in order and stop at the first
        that is not due or is left pending for a retry.
        """
        now = self._clock.now()
        lanes: dict[str, list[OutboxEntry]] = {}
        for entry in self._store.pending():
            lanes.setdefault(_lane(entry.order), []).append(entry)
        ready = {
            lane: entries
            for lane, entries in lanes.items()
            if lane not in self._busy and entries[0].next_attempt_at <= now
        }
        # Marked busy before any await, so an overlapping run_due cannot start them too.
        self._busy.update(ready)
        try:
            results = await asyncio.gather(
                *(self._run_lane(entries, now) for entries in ready.values()),
                return_exceptions=True,
            )
        finally:
            self._busy.difference_update(ready)
        ran = 0
        for result in results:
            if isinstance(result, BaseException):
                # _run_lane catches responder trouble; this is a bug here or in the store.
                log.error("dispatching a line failed", exc_info=result)
            else:
                ran += result
        return ran

    async def run_forever(
        self, stop: asyncio.Event, idle: timedelta = timedelta(seconds=1)
    ) -> None:
        """Run due entries until ``stop`` is set.

        After each pass it waits for ``wake()``, ``stop`` or ``idle``, whichever comes first.
        Never raises: a failed pass is logged and the loop goes on.
        """
        while not stop.is_set():
            # Cleared before the pass, so a wake() during the pass causes another pass.
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:
                log.exception("dispatcher pass failed; will try again")
            await _wait_any((stop, self._wake), idle.total_seconds())

    # ------------------------------------------------------------------ one line

    async def _run_lane(self, entries: list[OutboxEntry], now: datetime) -> int:
        """Run one lane's due entries in order; return how many ran."""
        ran = 0
        for entry in entries:
            if entry.next_attempt_at > now:
                break
            ran += 1
            if await self._run_entry(entry, now) not in ("ok", "dead"):
                break  # still pending: later entries of the line wait for it
        return ran

    async def _run_entry(self, entry: OutboxEntry, now: datetime) -> Outcome | None:
        """Run one entry and record its outcome; None when the outcome could not be recorded."""
        order = entry.order
        responder = self._responders.get(order.response)
        if responder is None:
            failure = _Failure(
                "unknown_response",
                f"no response {order.response!r} is configured (removed by a reload?)",
                retryable=False,
            )
            return self._fail(entry, failure, now)
        try:
            context = self._context_for(order)
            async with asyncio.timeout(self._timeout.total_seconds()):
                detail = await responder.run(order, context)
        except TimeoutError:
            message = f"no answer within {self._timeout.total_seconds():g}s"
            return self._fail(entry, _Failure("timeout", message, retryable=True), now)
        except ResponseError as exc:
            failure = _Failure(exc.reason, str(exc) or exc.reason, retryable=exc.retryable)
            return self._fail(entry, failure, now)
        except Exception as exc:
            # A bug in a responder: keep the traceback, treat it as passing trouble.
            log.exception("responder raised an unexpected error", **_fields(order))
            message = f"{type(exc).__name__}: {exc}"
            return self._fail(entry, _Failure("error", message, retryable=True), now)
        return self._succeed(entry, str(detail), now)

    def _succeed(self, entry: OutboxEntry, detail: str, now: datetime) -> Outcome | None:
        order = entry.order
        try:
            self._store.record_success(order.key, detail, now)
        except Exception:
            # The responder did act; the entry stays pending and will run again (same key).
            log.exception("response ran but could not be recorded", **_fields(order))
            return None
        log.info("response done", detail=detail, attempts=entry.attempts + 1, **_fields(order))
        self._tell(order, "ok", detail)
        return "ok"

    def _fail(self, entry: OutboxEntry, failure: _Failure, now: datetime) -> Outcome | None:
        order = entry.order
        attempts = entry.attempts + 1
        dead = self._policy.gives_up(
            attempts, now - order.at, retryable=failure.retryable,
            undo=order.action is Action.UNDO,
        )  # fmt: skip
        retry_at = None if dead else now + self._policy.delay(attempts, self._rng)
        try:
            self._store.record_failure(order.key, failure.message, failure.reason, now, retry_at)
        except Exception:
            log.exception("response failure could not be recorded", **_fields(order))
            return None
        outcome: Outcome = "dead" if dead else "retry"
        if retry_at is None:
            log.error(
                "response gave up",
                reason=failure.reason,
                error=failure.message,
                attempts=attempts,
                **_fields(order),
            )
        else:
            log.warning(
                "response failed; will retry",
                reason=failure.reason,
                error=failure.message,
                attempts=attempts,
                retry_in=round((retry_at - now).total_seconds(), 3),
                **_fields(order),
            )
        self._tell(order, outcome, failure.reason)
        return outcome

    def _tell(self, order: ResponseOrder, outcome: Outcome, detail: str) -> None:
        if self._on_outcome is None:
            return
        try:
            self._on_outcome(order, outcome, detail)
        except Exception:
            log.exception("on_outcome hook failed", **_fields(order))


def _lane(order: ResponseOrder) -> str:
    """The ordering lane of an order: entries of one lane run one at a time, in order.

    One lane per (line, response), so each response of a line keeps the order the engine
    planned (an UNDO never overtakes its APPLY) while one channel's retries hold up no other.
    """
    return f"{order.line}\x1f{order.response}"


def _fields(order: ResponseOrder) -> dict[str, object]:
    """The fields every log line about an order carries."""
    return {
        "line": order.line,
        "tier": order.tier,
        "response": order.response,
        "action": order.action.value,
        "key": order.key,
    }


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Wait until any of ``events`` is set, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
