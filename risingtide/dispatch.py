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

Notifications go out together: the pending orders of one notifier response (one per line,
the head of each lane) wait ``group_wait`` from the first of them falling due and then go
out as one ``Notice`` to the people the response pages who are on duty, so a citywide surge
is one message per person, not one per line. A notice about several lines is a *batch*:
its members are written to the store under the batch's key before it is first sent, and
are sent, retried and recorded together under that key from then on, after a restart too.
An order already retrying on its own never joins a batch (its key is already out there).

Rate limits: a response with ``rate_limit`` (count per period) runs at most that often; a
run that would exceed it waits in the outbox for its turn (not counted as an attempt).

Failures: a responder raises ``ResponseError`` saying whether to retry and why (its
``reason`` labels metrics); a call that outlives the timeout is a retryable ``timeout``; any
other exception is a retryable ``error``, logged with its traceback. The ``RetryPolicy`` alone
decides back-off (timed from the end of the attempt) and when to give up (the entry goes
"dead"). An outcome the store cannot take (a full disk) is held in memory and written on a
later pass; its entry is not run again meanwhile. An order whose response is no
longer configured (removed by a reload) is dead at once. Nothing a responder does can stop
the dispatcher. A dead entry runs again only when an operator requeues it
(``Runtime.requeue``): it is then pending with no attempts and no batch, like a fresh order.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import structlog

from risingtide.clock import Clock
from risingtide.domain.model import Action, ResponseOrder
from risingtide.domain.people import Directory
from risingtide.message_facts import REPORT_TRIGGER
from risingtide.ports import Notice, Notifier, Responder, ResponseContext, ResponseError
from risingtide.store import Fenced, OutboxEntry, Store, StoreError

__all__ = [
    "DEFAULT_POLICY",
    "Delivery",
    "Dispatcher",
    "Outcome",
    "OutcomeHook",
    "RateLimiter",
    "RetryPolicy",
]

log = structlog.get_logger(__name__)

#: What happened to one run of an entry.
Outcome = Literal["ok", "retry", "dead"]

#: ``on_outcome(order, outcome, detail)``: ``detail`` is the responder's outcome detail for
#: "ok", and the failure's short reason (``timeout``, ``http_5xx``…) for "retry" and "dead".
OutcomeHook = Callable[[ResponseOrder, str, str], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a failed response, and when to give up on it.

    The n-th failure waits ``base_delay * 2**(n-1)`` from the end of that failed attempt
    (a 10 s timeout still leaves the full 2 s before the next), capped at ``max_delay``,
    then spread by ± ``jitter`` (a share of the delay) so that many lines failing together
    do not retry in lockstep. An entry is dead when it has run ``max_attempts`` times, when
    the order is older than ``max_age`` (a page about a flood an hour ago helps nobody), or
    when the error says retrying cannot help.

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
class Delivery:
    """How one response's orders are delivered: grouped, paced, and to whom.

    ``group_wait``: a notification waits this long from the first due order so that the
    same response's orders for other lines go with it (0: at once). ``rate_limit``:
    ``(count, period)``, at most ``count`` runs per ``period``. ``page``: groups and people
    (ids in the directory) a notification reaches. ``fallback``: the response queued, in
    the same transaction that records an APPLY dead, to run in its place.
    """

    group_wait: timedelta = timedelta(0)
    rate_limit: tuple[int, timedelta] | None = None
    page: tuple[str, ...] = ()
    #: Another response to run, once, for an APPLY given up on (e.g. email when SMS dies).
    fallback: str | None = None


_IMMEDIATE = Delivery()


@dataclass(slots=True)
class RateLimiter:
    """At most ``count`` runs in any ``period`` (a sliding window of run times)."""

    count: int
    period: timedelta
    _runs: deque[datetime] = field(default_factory=deque)

    def take(self, now: datetime) -> datetime | None:
        """Take a run at ``now``: None when allowed, else when the next one will be."""
        while self._runs and now - self._runs[0] >= self.period:
            self._runs.popleft()
        if len(self._runs) >= self.count:
            return self._runs[0] + self.period
        self._runs.append(now)
        return None


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
        deliveries: Mapping[str, Delivery] | None = None,
        directory: Directory | None = None,
        leads: Callable[[str], bool] | None = None,
    ) -> None:
        """Dispatch ``store``'s outbox to ``responders`` (by response id).

        ``context_for`` gives a responder what it needs beyond the order (line and tier
        names, the latest stats). ``on_outcome(order, outcome, detail)`` is told every
        outcome, for metrics. ``rng`` makes the back-off jitter repeatable in tests.
        ``timeout`` bounds each responder call. ``deliveries`` (by response id; missing:
        at once, no limit, nobody paged) and ``directory`` (who is on duty) shape how
        notifications go out. ``leads(line)``: whether this replica leads the line now
        (``risingtide.leadership``); only those lines' entries run (default: all).
        """
        self._store = store
        self._leads = leads or (lambda _line: True)
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
        self._deliveries: Mapping[str, Delivery] = {}
        self._directory = directory or Directory()
        self._limiters: dict[str, RateLimiter] = {}
        #: Outcomes the store refused (full disk), by the keys they cover; see ``_record``.
        self._unrecorded: dict[tuple[str, ...], Callable[[], None]] = {}
        self._set_deliveries(deliveries or {})

    def set_responders(
        self,
        responders: Mapping[str, Responder],
        deliveries: Mapping[str, Delivery] | None = None,
        directory: Directory | None = None,
    ) -> None:
        """Use a new set of responders (after a config reload); runs in flight finish.

        ``deliveries`` and ``directory``, when given, replace the old ones; a response whose
        rate limit is unchanged keeps its window of recent runs.
        """
        self._responders = dict(responders)
        if deliveries is not None:
            self._set_deliveries(deliveries)
        if directory is not None:
            self._directory = directory

    def _set_deliveries(self, deliveries: Mapping[str, Delivery]) -> None:
        self._deliveries = dict(deliveries)
        limiters: dict[str, RateLimiter] = {}
        for response, delivery in self._deliveries.items():
            if delivery.rate_limit is None:
                continue
            count, period = delivery.rate_limit
            old = self._limiters.get(response)
            if old is not None and (old.count, old.period) == (count, period):
                limiters[response] = old
            else:
                limiters[response] = RateLimiter(count, period)
        self._limiters = limiters

    def wake(self) -> None:
        """Tell ``run_forever`` that new orders were committed, so it looks now."""
        self._wake.set()

    async def run_due(self) -> int:
        """Run every entry that is due now; return how many ran.

        Lanes run concurrently; within a lane, entries run in order and stop at the first
        that is not due or is left pending for a retry. A notifier's lanes go out together,
        one head each per pass, so passes repeat (a bounded number of times) while they
        finish entries and more are due.
        """
        ran = 0
        for _ in range(_MAX_PASSES):
            count, finished = await self._pass()
            ran += count
            if not finished:
                break
        return ran

    async def _pass(self) -> tuple[int, bool]:
        """One look at the outbox: (entries run, whether any finished, done or dead)."""
        now = self._clock.now()
        if self._unrecorded:
            self._flush_unrecorded()
        held = self._held()
        lanes: dict[str, list[OutboxEntry]] = {}
        for entry in self._store.pending():
            if self._leads(entry.order.line):  # another replica runs the rest
                lanes.setdefault(_lane(entry.order), []).append(entry)
        units: list[tuple[set[str], str, Callable[[], _Run]]] = []
        heads: dict[str, list[OutboxEntry]] = {}  # notifier response -> lane heads
        for lane, entries in lanes.items():
            if lane in self._busy or entries[0].order.key in held:
                continue  # running, or ran with its outcome not yet in the store
            head = entries[0]
            if isinstance(self._responders.get(head.order.response), Notifier):
                heads.setdefault(head.order.response, []).append(head)
            elif head.next_attempt_at <= now:
                units.append(({lane}, head.order.response, _bind(self._run_lane, entries, now)))
        for response, notifier_heads in heads.items():
            for members, batch in self._notices(response, notifier_heads, now):
                busy = {_lane(m.order) for m in members}
                units.append((busy, response, _bind(self._run_notice, members, batch, now)))
        started: list[tuple[set[str], Callable[[], _Run]]] = []
        for busy, response, run in units:
            limiter = self._limiters.get(response)
            if limiter is not None:
                wait_until = limiter.take(now)
                if wait_until is not None:
                    log.debug(
                        "response held back by its rate limit",
                        response=response,
                        until=wait_until.isoformat(),
                    )
                    continue
            # Marked busy before any await, so an overlapping run_due cannot start them too.
            self._busy.update(busy)
            started.append((busy, run))
        try:
            results = await asyncio.gather(*(run() for _, run in started), return_exceptions=True)
        finally:
            for busy, _ in started:
                self._busy.difference_update(busy)
        ran = 0
        finished = False
        for result in results:
            if isinstance(result, BaseException):
                # The runs catch responder trouble; this is a bug here or in the store.
                log.error("dispatching failed", exc_info=result)
            else:
                ran += result[0]
                finished = finished or result[1]
        return ran, finished

    def _notices(
        self, response: str, heads: list[OutboxEntry], now: datetime
    ) -> list[tuple[list[OutboxEntry], str | None]]:
        """The notices due now from a notifier's lane heads: (members, batch key or None).

        A batch already sent once goes again as it was; an order retrying alone goes alone;
        fresh orders wait ``group_wait`` from the first of them and then go as one (with no
        ``group_wait``, each goes alone at once).
        """
        out: list[tuple[list[OutboxEntry], str | None]] = []
        batches: dict[str, list[OutboxEntry]] = {}
        fresh: list[OutboxEntry] = []
        for head in heads:
            if head.batch is not None:
                batches.setdefault(head.batch, []).append(head)
            elif head.next_attempt_at <= now:
                # A scheduled report is never a digest's line: it goes alone.
                if head.attempts or head.order.trigger == REPORT_TRIGGER:
                    out.append(([head], None))
                else:
                    fresh.append(head)
        for batch, members in batches.items():
            if min(m.next_attempt_at for m in members) <= now:
                out.append((members, batch))
        wait = self._deliveries.get(response, _IMMEDIATE).group_wait
        if fresh and not wait:
            out.extend(([head], None) for head in fresh)  # no grouping: one per line
        elif fresh and now >= min(h.next_attempt_at for h in fresh) + wait:
            out.append((fresh, None))
        return out

    async def run_forever(
        self, stop: asyncio.Event, idle: timedelta = timedelta(seconds=1)
    ) -> None:
        """Run due entries until ``stop`` is set.

        After each pass it waits for ``wake()``, ``stop`` or ``idle``, whichever comes first.
        Never raises: a failed pass is logged and the loop goes on.
        """
        failing = 0  # passes failed in a row: the first is logged, then the recovery
        while not stop.is_set():
            # Cleared before the pass, so a wake() during the pass causes another pass.
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:
                failing += 1
                if failing == 1:
                    # Once per spell: a full disk would otherwise log a traceback a second.
                    log.exception("dispatcher pass failed; will try again")
            else:
                if failing:
                    log.info("dispatcher recovered", failures=failing)
                failing = 0
            await _wait_any((stop, self._wake), idle.total_seconds())

    # ------------------------------------------------------------------ one line

    async def _run_lane(self, entries: list[OutboxEntry], now: datetime) -> tuple[int, bool]:
        """Run one lane's due entries in order; return how many ran and whether any finished.

        Only the lane's own entries run here, so it does not ask for another pass.
        """
        ran = 0
        for entry in entries:
            if entry.next_attempt_at > now:
                break
            ran += 1
            if await self._run_entry(entry, now) not in ("ok", "dead"):
                break  # still pending: later entries of the line wait for it
        return ran, False

    async def _run_notice(
        self, members: list[OutboxEntry], batch: str | None, now: datetime
    ) -> tuple[int, bool]:
        """Send one notice about ``members`` (one per line); record each member's outcome."""
        orders = [m.order for m in members]
        response = orders[0].response
        responder = self._responders.get(response)
        if not isinstance(responder, Notifier):
            # A reload replaced it since the pass began: each entry goes its own way.
            outcomes = [await self._run_entry(m, now) for m in members]
            return len(members), any(o in ("ok", "dead") for o in outcomes)
        keys = [o.key for o in orders]
        if batch is None and len(members) > 1:
            batch = batch_key(response, keys)
            try:
                self._store.assign_batch(keys, batch)
            except Exception:
                log.exception("could not record a batch; will try again", response=response)
                return 0, False
        key = batch or keys[0]
        attempts = max(m.attempts for m in members) + 1
        if not self._claim(keys, orders[0]):
            return 0, False
        try:
            items = tuple((o, self._context_for(o)) for o in orders)
            page = self._deliveries.get(response, _IMMEDIATE).page
            people = self._directory.resolve(page, min(o.at for o in orders))
            async with asyncio.timeout(self._timeout.total_seconds()):
                detail = await responder.notify(Notice(key, items, people))
        except TimeoutError:
            message = f"no answer within {self._timeout.total_seconds():g}s"
            failure = _Failure("timeout", message, retryable=True)
        except ResponseError as exc:
            failure = _Failure(exc.reason, str(exc) or exc.reason, retryable=exc.retryable)
        except Exception as exc:
            log.exception("responder raised an unexpected error", **_fields(orders[0], key))
            failure = _Failure("error", f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            ended = self._clock.now()  # stamped at the end of the attempt, as in _run_entry
            return len(members), self._succeed_all(orders, key, str(detail), attempts, ended)
        return len(members), self._fail_all(orders, key, failure, attempts, self._clock.now())

    def _succeed_all(
        self, orders: list[ResponseOrder], key: str, detail: str, attempts: int, now: datetime
    ) -> bool:
        keys = [o.key for o in orders]
        write = partial(self._store.record_success, keys, detail, now)
        if not self._record(keys, write, "notice sent", orders[0], key):
            return False
        for order in orders:
            log.info("response done", detail=detail, attempts=attempts, **_fields(order, key))
            self._tell(order, "ok", detail)
        return True

    def _fail_all(
        self,
        orders: list[ResponseOrder],
        key: str,
        failure: _Failure,
        attempts: int,
        now: datetime,
    ) -> bool:
        oldest = min(o.at for o in orders)
        dead = self._policy.gives_up(attempts, now - oldest, retryable=failure.retryable)
        retry_at = None if dead else now + self._policy.delay(attempts, self._rng)
        fallbacks = self._fallbacks(orders, failure) if dead else []
        keys = [o.key for o in orders]

        def write() -> None:
            self._store.record_failure(
                keys, failure.message, failure.reason, now, retry_at, enqueue=fallbacks
            )

        if not self._record(keys, write, "notice failed", orders[0], key):
            return False
        outcome: Outcome = "dead" if dead else "retry"
        for order in orders:
            self._log_failure(order, failure, attempts, now, retry_at, key)
            self._tell(order, outcome, failure.reason)
        self._queued(fallbacks)
        return dead

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
        if not self._claim([order.key], order):
            return None
        # Outcomes are stamped, and back-off timed, from the END of the attempt: after a
        # 10 s timeout the next try waits its full 2 s from then, not from when it began.
        try:
            context = self._context_for(order)
            async with asyncio.timeout(self._timeout.total_seconds()):
                detail = await responder.run(order, context)
        except TimeoutError:
            message = f"no answer within {self._timeout.total_seconds():g}s"
            failure = _Failure("timeout", message, retryable=True)
        except ResponseError as exc:
            failure = _Failure(exc.reason, str(exc) or exc.reason, retryable=exc.retryable)
        except Exception as exc:
            # A bug in a responder: keep the traceback, treat it as passing trouble.
            log.exception("responder raised an unexpected error", **_fields(order))
            failure = _Failure("error", f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            return self._succeed(entry, str(detail), self._clock.now())
        return self._fail(entry, failure, self._clock.now())

    def _succeed(self, entry: OutboxEntry, detail: str, now: datetime) -> Outcome | None:
        order = entry.order
        write = partial(self._store.record_success, order.key, detail, now)
        if not self._record([order.key], write, "response ran", order, order.key):
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
        fallbacks = self._fallbacks([order], failure) if dead else []
        write = partial(
            self._store.record_failure,
            order.key, failure.message, failure.reason, now, retry_at, enqueue=fallbacks,
        )  # fmt: skip
        if not self._record([order.key], write, "response failed", order, order.key):
            return None
        outcome: Outcome = "dead" if dead else "retry"
        self._log_failure(order, failure, attempts, now, retry_at, order.key)
        self._tell(order, outcome, failure.reason)
        self._queued(fallbacks)
        return outcome

    def _record(
        self,
        keys: Sequence[str],
        write: Callable[[], None],
        what: str,
        order: ResponseOrder,
        key: str,
    ) -> bool:
        """Write an outcome to the store; False when the store failed.

        The responder did act, so a failed write is held in memory with the keys it covers:
        those entries are not run again (a full disk would otherwise resend them on every
        pass) and the write is tried again at the start of each pass until it goes in. A
        crash meanwhile runs them once more after the restart (at-least-once, same key).
        The first failure of a spell is logged with its traceback, the rest only counted.
        """
        try:
            write()
        except Fenced:
            # Another replica leads the line now and runs what is still pending: it may
            # send this once more (at-least-once, the same key), never this replica again.
            log.warning(f"{what}, but this replica no longer leads the line; its new leader "
                        "may run it once more", **_fields(order, key))  # fmt: skip
            return False
        except Exception:
            if not self._unrecorded:
                log.exception(
                    f"{what} but could not be recorded; holding the outcome until the store "
                    "takes it", **_fields(order, key),
                )  # fmt: skip
            self._unrecorded[tuple(keys)] = write
            return False
        return True

    def _flush_unrecorded(self) -> None:
        """Write the outcomes held since the store failed, oldest first; stop at a failure."""
        written = 0
        for keys, write in list(self._unrecorded.items()):
            try:
                write()
            except Exception:
                break
            del self._unrecorded[keys]
            written += 1
        if written:
            log.info("held outcomes recorded", count=written, left=len(self._unrecorded))

    def _claim(self, keys: Sequence[str], order: ResponseOrder) -> bool:
        """Take ``keys`` to run them now: only while this replica leads their line by its
        own clock, and (among replicas) with the database's word (``Store.claim``)."""
        if not self._leads(order.line):
            return False
        if self._store.fence is None:
            return True  # the only daemon on its store: nothing to ask
        try:
            self._store.claim(keys)
        except Fenced:
            log.warning("not sent: another replica leads the line now", **_fields(order))
            return False
        except StoreError as exc:
            log.warning("could not claim a response; will try again", error=str(exc),
                        **_fields(order))  # fmt: skip
            return False
        # Again by the clock: the claim may have waited on the database past the lease.
        return self._leads(order.line)

    def _held(self) -> set[str]:
        """Keys whose outcome is held in memory (not to be run again)."""
        return {k for keys in self._unrecorded for k in keys}

    def _fallbacks(self, orders: Sequence[ResponseOrder], failure: _Failure) -> list[ResponseOrder]:
        """The fallback orders for APPLYs given up on: same line, tier and trigger, so the
        message says what the original would have; keyed from the dead order's key, so
        each is queued once however often this is asked."""
        out: list[ResponseOrder] = []
        for order in orders:
            fallback = self._deliveries.get(order.response, _IMMEDIATE).fallback
            if fallback is None or order.action is not Action.APPLY:
                continue
            out.append(
                replace(
                    order,
                    key=f"{order.key}/fallback/{fallback}",
                    response=fallback,
                    reason=f"{order.response} was given up on ({failure.reason}): {order.reason}",
                )
            )
        return out

    def _queued(self, fallbacks: Sequence[ResponseOrder]) -> None:
        for substitute in fallbacks:
            log.warning(
                "response given up on; running its fallback",
                fallback=substitute.response,
                **_fields(substitute),
            )
        if fallbacks:
            self.wake()

    def _log_failure(
        self,
        order: ResponseOrder,
        failure: _Failure,
        attempts: int,
        now: datetime,
        retry_at: datetime | None,
        key: str,
    ) -> None:
        if retry_at is None:
            log.error(
                "response gave up",
                reason=failure.reason,
                error=failure.message,
                attempts=attempts,
                **_fields(order, key),
            )
        else:
            log.warning(
                "response failed; will retry",
                reason=failure.reason,
                error=failure.message,
                attempts=attempts,
                retry_in=round((retry_at - now).total_seconds(), 3),
                **_fields(order, key),
            )

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


def batch_key(response: str, keys: Sequence[str]) -> str:
    """The idempotency key of a batch: the same members always give the same key."""
    digest = hashlib.sha256("\x1f".join(sorted(keys)).encode("utf-8")).hexdigest()[:20]
    return f"{response}/batch/{digest}"


def _fields(order: ResponseOrder, key: str | None = None) -> dict[str, object]:
    """The fields every log line about an order carries (``key``: the batch's, if sent in one)."""
    fields: dict[str, object] = {
        "line": order.line,
        "tier": order.tier,
        "response": order.response,
        "action": order.action.value,
        "key": order.key,
    }
    if key is not None and key != order.key:
        fields["batch"] = key
    return fields


#: What one unit of a pass returns: entries run, and whether any finished.
_Run = Coroutine[Any, Any, tuple[int, bool]]
#: A pass repeats while entries finish, at most this many times per run_due.
_MAX_PASSES = 20


def _bind(run: Callable[..., _Run], *args: Any) -> Callable[[], _Run]:
    """``run`` with ``args``, to be started later (after the rate limit says yes)."""
    return lambda: run(*args)


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Wait until any of ``events`` is set, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
