"""The daemon's wiring: sources, scheduler, tier engine, store, dispatcher, HTTP; reload.

Time moves by events, not by a fixed tick. A line is evaluated the moment its new figures
arrive (in the poll's own pass, so its responses go to the dispatcher at once), and again
when one of the engine's own deadlines falls (``tiers.next_deadline``: a ``for`` or
``clear_for`` elapsing, the figures going stale, reminders, escalation steps, opening and
closing, a silence or declaration running out); the timeline task sleeps until the
earliest one. Replay drives the same engine from the same deadlines, which is why it tells
the daemon's story to the second. Each pass reads the clock once, evaluates its lines with
the pure engine, plans the responses, and commits states, events and outbox orders in one
transaction *before* the in-memory state moves on — so a crash loses nothing and the
dispatcher never runs an order that was not durably recorded.

Reload (SIGHUP or ``POST /-/reload``) keeps line state and keeps sources whose config did
not change (a simulator keeps its queue); a bad config keeps the old one running and sets
``risingtide_config_last_reload_successful`` to 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import signal
import socket
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from risingtide.anticipation import enrich_polled
from risingtide.api.links import make_ack_link, with_personal_links
from risingtide.clock import Clock, SystemClock
from risingtide.config import ConfigErrors, load_config
from risingtide.config.frameworks import measures_read
from risingtide.config.model import Config, LineConfig, SourceConfig
from risingtide.demand_feeds import read_feeds
from risingtide.dispatch import Delivery, Dispatcher
from risingtide.domain import commands
from risingtide.domain.demand import CapacityTracker
from risingtide.domain.demand_calendar import DemandEvent, for_line, resolve
from risingtide.domain.model import (
    Action,
    Decision,
    Event,
    Framework,
    LineState,
    QueueStats,
    ResponseOrder,
    TierChanged,
)
from risingtide.domain.responses import plan, reassert
from risingtide.domain.tiers import evaluate, initial_state, next_deadline
from risingtide.handover import ack_expiry
from risingtide.health import Health
from risingtide.leader_metrics import LeaderCollector
from risingtide.leadership import SharedLeadership, SoleLeadership
from risingtide.metrics import Metrics
from risingtide.persistence import Persistence, restored
from risingtide.polling import Poller
from risingtide.ports import (
    AdapterError,
    BuildContext,
    Responder,
    ResponseContext,
    SourceError,
    StatsSource,
)
from risingtide.relay import COMMANDS, relay
from risingtide.replica import apply as apply_change
from risingtide.replica import leadership_for, refresh_line, run_replica
from risingtide.responders import RESPONDER_TYPES
from risingtide.retire import removal_orders, removal_record
from risingtide.samples import SampleRecorder
from risingtide.sources import SOURCE_TYPES
from risingtide.store import Fenced, OutboxEntry, Store, StoreError, open_store
from risingtide.store.leases import partition_of
from risingtide.store.relay import RelayTable
from risingtide.view import LineView, build_view
from risingtide.weekly import run_reports

log = structlog.get_logger(__name__)

#: A poll bringing more lines than this is taken in chunks of it, the event loop free
#: between them (a line costs 50–80 µs to take in: a chunk is under a tenth of a second).
POLL_CHUNK = 1000

#: How often the store is pruned and its write-ahead log truncated.
MAINTAIN_EVERY = timedelta(hours=1)
#: How long an outbox entry is kept once done (its history record stays for the retention).
DONE_KEPT = timedelta(days=7)


class Runtime:
    """A running Rising Tide: owns the store, the sources, the responders and the loop."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        host: str | None = None,
        port: int | None = None,
        fresh_state: bool = False,
    ) -> None:
        """Prepare (but do not start) a daemon for ``config``; ``host``/``port`` override it.

        ``fresh_state``: the operator's word that an empty (0-byte) state file may be taken
        as a new store (``risingtide run --fresh-state``).
        """
        self.fresh_state = fresh_state
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry, self.views, lambda: self.config)
        self.host = host or config.server.host
        self.port = config.server.port if port is None else port
        self.states: dict[str, LineState] = {}
        self.persistence = Persistence()  # what the store holds: write changes, not figures
        self.latest: dict[str, QueueStats] = {}
        #: Each line's smoothed demand; polled figures are enriched with capacity figures.
        self.capacity = CapacityTracker()
        self.last_error: dict[str, str] = {}
        self.samples = SampleRecorder()  # figures over time: the board's trend, episodes
        self.sources: dict[str, StatsSource] = {}
        self.responders: dict[str, Responder] = {}
        self.store: Store | None = None
        #: Which lines this daemon leads: all, alone on its store; a share among replicas.
        self.leadership: SoleLeadership | SharedLeadership = SoleLeadership()
        self._undo_pending_seen: dict[str, frozenset[str]] = {}
        self.registry.register(LeaderCollector(lambda: self.leadership))
        self.dispatcher: Dispatcher | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.poller: Poller | None = None
        self.server: uvicorn.Server | None = None
        self.ready = False
        self.last_tick: datetime | None = None
        # When each line must next be evaluated with no new figures, and a heap of the same
        # (entries made stale by a later evaluation are skipped when they surface).
        self._deadlines: dict[str, datetime] = {}
        self._due: list[tuple[datetime, str]] = []
        self._wake_timeline = asyncio.Event()
        self._first_polls: set[str] = set()
        self.health = Health()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[object]] = set()
        #: The demand calendar, resolved (``+2m`` from this start) and with its feeds read:
        #: every event, and each line's own.
        self.started_at = self.clock.now()
        self.demand_events: tuple[DemandEvent, ...] = ()
        self.demand: dict[str, tuple[DemandEvent, ...]] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, serve_http: bool = True, schedule: bool = True) -> None:
        """Open the store, build the adapters, restore state, start polling and serving.

        Tests pass ``schedule=False`` and drive ``poll``/``evaluate_all`` by hand on a
        FakeClock; the dispatcher still runs.
        """
        self.health.started(self.clock.now())
        self.started_at = self.clock.now()
        self._use_demand(self.config, await self._read_feeds(self.config))
        self.store = open_store(self.config.server, self.clock, fresh=self.fresh_state)
        self.leadership = leadership_for(self.config.server, self.store)
        await self.leadership.start()
        stored = self.store.load_states()
        self.persistence.written(stored.values())
        self._build_adapters(self.config, previous=None)
        self._restore(stored)
        self._retire_lines(
            {lid: st for lid, st in stored.items() if lid not in self.config.lines},
            why="not in the config at start",
        )
        self._reassert_switches(self.config.lines)
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(self.clock.now().timestamp())
        self.metrics.prime(self.config)
        self.dispatcher = Dispatcher(
            self.store,
            self.responders,
            self._context_for,
            self.clock,
            on_outcome=self._on_outcome,
            deliveries=_deliveries(self.config),
            directory=self.config.directory,
            leads=self.leadership.leads,
        )
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.poller = Poller(self.scheduler, self.metrics, self._on_poll)
        self.poller.schedule(self._source_entries())
        self._schedule_maintenance()
        if schedule:
            self._first_polls = set(self.config.sources)
            await self.tick()
            self.scheduler.start()
            self._tasks.append(asyncio.create_task(self._run_timeline()))
        self._tasks.append(asyncio.create_task(self.dispatcher.run_forever(self._stop)))
        self._tasks.append(asyncio.create_task(run_reports(self, self._stop)))
        if self.leadership.shared:
            self._tasks.append(asyncio.create_task(run_replica(self, self._stop)))
        if serve_http:
            await self._start_http()
        log.info(
            "rising tide started",
            config=str(self.config.path),
            lines=len(self.config.lines),
            listen=f"{self.host}:{self.port}",
            store=self.store.describe,
        )

    def _restore(self, stored: Mapping[str, LineState]) -> None:
        """Take up the stored states at start (see ``restore_lines``)."""
        self.states = {}
        self.restore_lines(stored, self.config.lines)

    def restore_lines(self, stored: Mapping[str, LineState], lines: Iterable[str]) -> None:
        """Take up ``lines``' stored states (fitted to the config and to a restart or a
        takeover), writing back those this changed, of the lines this daemon leads, so a
        second restart dates them the same."""
        assert self.store is not None
        observed_at = self.store.observed_at()
        now = self.clock.now()
        changed: dict[str, LineState] = {}
        for lid in lines:
            lc = self.config.lines[lid]
            state = _reconcile(lc.framework, stored.get(lid) or initial_state(lid, lc.framework))
            state = restored(lc.framework, state, observed_at, now)
            self.states[lid] = state
            if lid in stored and state != stored[lid] and self.leadership.leads(lid):
                changed[lid] = state
        if changed:
            self.store.commit(list(changed.values()), [], [])
            self.persistence.written(changed.values())

    async def _start_http(self) -> None:
        from risingtide.api.app import create_app  # the HTTP side imports the runtime's types

        config = uvicorn.Config(
            create_app(self),
            host=self.host,
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        # Bind here, not in uvicorn, so a busy port is an OSError that names the address
        # rather than uvicorn's sys.exit inside a task.
        sock = _bind(self.host, self.port)
        self.server = _Server(config)
        task = asyncio.create_task(self.server.serve(sockets=[sock]))
        self._tasks.append(task)
        while not self.server.started:
            if task.done():
                raise OSError(f"cannot serve HTTP on {self.host}:{self.port}")
            await asyncio.sleep(0.01)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._in_background(self.reload()))

    def _in_background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` as a task the runtime keeps a reference to until it is done."""
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def stop(self) -> None:
        """Ask the daemon to stop."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        """Block until ``stop()``; then shut everything down in order."""
        await self._stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop polling, finish the dispatcher's current work, close adapters and the store."""
        self._stop.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.server is not None:
            self.server.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self._tasks.clear()
        self._keep_last_figures()
        # Last: nothing of this replica runs any more, so another may lead at once.
        await self.leadership.release_all()
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                await source.aclose()
        if self.store is not None:
            self.store.close()
        log.info("rising tide stopped")

    def _keep_last_figures(self) -> None:
        """Write the states whose ``last_stats_at`` ran ahead of the store (a clean stop)."""
        if self.store is None:
            return
        behind = [s for s in self.persistence.behind(self.states) if self.leadership.leads(s.line)]
        try:
            self.store.commit(behind, [], [])
        except StoreError as exc:
            log.warning("could not keep the last figures' times at shutdown", error=str(exc))
            return
        self.persistence.written(behind)

    # ------------------------------------------------------------------ adapters

    def _build_adapters(self, config: Config, previous: Config | None) -> set[str]:
        """Build sources then responders; keep sources whose config and lines are unchanged.

        Returns the ids of the sources built anew.
        """
        ctx = BuildContext(clock=self.clock, needs=_needs(config))
        sources: dict[str, StatsSource] = {}
        built: set[str] = set()
        for sid, sc in config.sources.items():
            old = self.sources.get(sid)
            if (
                previous is not None
                and old is not None
                and previous.sources.get(sid) == sc
                and _line_params(previous, sid) == _line_params(config, sid)
                and _needs(previous, sid) == _needs(config, sid)
            ):
                sources[sid] = old
                continue
            plugin = SOURCE_TYPES[sc.type]
            try:
                sources[sid] = plugin.build(sid, sc.settings, _line_params(config, sid), ctx)
            except Exception as exc:
                # A source that cannot be built (a missing optional package, say) fails its
                # polls, so its lines go stale and hold their tiers; the daemon runs on.
                error = _as_source_error(exc)
                log.error("source could not be built", source=sid, error=str(error),
                          reason=error.reason)  # fmt: skip
                sources[sid] = _BrokenSource(sid, error)
            built.add(sid)
        for sid, old in self.sources.items():
            if sources.get(sid) is not old:
                self._in_background(old.aclose())
        self.sources = sources
        rctx = BuildContext(clock=self.clock, sources=sources)
        self.responders = {
            rid: with_personal_links(
                RESPONDER_TYPES[rc.type].build(rid, rc.settings, rctx),
                RESPONDER_TYPES[rc.type],
                rc.settings,
                lambda: self.config.server.secret_key,
            )
            for rid, rc in config.responses.items()
        }
        return built

    def _reassert_switches(self, lines: Iterable[str]) -> None:
        """Queue an idempotent APPLY of every live switch of ``lines`` (see ``reassert``)."""
        assert self.store is not None
        now = self.clock.now()
        orders = [
            o
            for line in lines
            if line in self.states and self.leadership.leads(line)
            for o in reassert(self.states[line], now)
        ]
        if orders:
            self.store.commit([], [], orders)
            if self.dispatcher is not None:
                self.dispatcher.wake()

    def _retire_lines(
        self, removed: Mapping[str, LineState], *, why: str, by: str | None = None
    ) -> None:
        """Undo the live switches of lines the config no longer has and close their
        episodes (see ``risingtide.retire``); their state leaves memory and the store."""
        assert self.store is not None
        now = self.clock.now()
        queued = False
        for lid, state in sorted(removed.items()):
            if not self.leadership.leads(lid):
                continue  # its partition's leader retires it
            orders = removal_orders(state, now, why)
            try:
                self.store.retire_line(lid, orders, removal_record(state, why, by), now)
            except StoreError as exc:
                # Kept in memory (off the board: not in the config), so the next reload or
                # start retires it; its switches stay on until then.
                log.error("could not retire a removed line; will try again at the next "
                          "reload or start", line=lid, tier=state.tier, error=str(exc))  # fmt: skip
                continue
            for held in (self.states, self.latest, self.last_error):
                held.pop(lid, None)
            self.persistence.forget(lid)
            queued = queued or bool(orders)
            log.warning(
                "line removed; its live switches are undone and its episode closed",
                line=lid, tier=state.tier, undone=sorted(state.live), why=why, by=by,
            )  # fmt: skip
        if queued and self.dispatcher is not None:
            self.dispatcher.wake()

    def _schedule_maintenance(self) -> None:
        """Keep the store from growing without bound: ``maintain`` hourly, and the store's
        size on ``/metrics`` (read at each scrape)."""
        assert self.scheduler is not None
        # Never raises: the store keeps its last figure while the database is away.
        self.metrics.store_bytes.set_function(
            lambda: float(self.store.size_bytes()) if self.store is not None else 0.0
        )
        self.scheduler.add_job(
            self.maintain, "interval", id="maintain", seconds=MAINTAIN_EVERY.total_seconds(),
            max_instances=1, coalesce=True, misfire_grace_time=None,
        )  # fmt: skip

    async def maintain(self) -> None:
        """Delete history older than ``server.history_retention`` and outbox entries done
        more than ``DONE_KEPT`` ago, then truncate the write-ahead log; in a worker thread,
        off the event loop. Never raises."""
        store = self.store
        if store is None:
            return
        now = self.clock.now()
        try:
            history, outbox = await asyncio.to_thread(
                store.prune,
                history_before=now - self.config.server.history_retention,
                done_before=now - DONE_KEPT,
            )
            await asyncio.to_thread(store.checkpoint)
        except Exception as exc:
            log.warning("store maintenance failed; will try again", error=str(exc))
            return
        if history or outbox:
            log.info("old history and done responses deleted", history=history, outbox=outbox)

    def _source_entries(self) -> dict[str, tuple[SourceConfig, StatsSource]]:
        return {sid: (sc, self.sources[sid]) for sid, sc in self.config.sources.items()}

    # ------------------------------------------------------------------ polling and evaluation

    def _on_poll(
        self,
        source_id: str,
        stats: Mapping[str, QueueStats],
        errors: Mapping[str, SourceError],
    ) -> None:
        """Take a poll's figures: at once when few, else in chunks of ``POLL_CHUNK`` lines
        with the event loop free between them (``/healthz`` and the API answer while
        50,000 lines go through)."""
        if len(stats) <= POLL_CHUNK:
            self._take_poll(source_id, stats, errors, last=True)
            return
        self._in_background(self._take_poll_in_chunks(source_id, stats, errors))

    async def _take_poll_in_chunks(
        self,
        source_id: str,
        stats: Mapping[str, QueueStats],
        errors: Mapping[str, SourceError],
    ) -> None:
        items = list(stats.items())
        for start in range(0, len(items), POLL_CHUNK):
            chunk = dict(items[start : start + POLL_CHUNK])
            last = start + POLL_CHUNK >= len(items)
            self._take_poll(source_id, chunk, errors if start == 0 else {}, last=last)
            if not last:
                await asyncio.sleep(0)

    def _take_poll(
        self,
        source_id: str,
        stats: Mapping[str, QueueStats],
        errors: Mapping[str, SourceError],
        *,
        last: bool,
    ) -> None:
        """Keep each line's latest good stats and evaluate those lines at once; a failure
        keeps the last good ones (the line goes stale at its deadline). ``last``: the
        poll's last chunk (readiness waits for it)."""
        stats = enrich_polled(self.capacity, self.config, stats)  # the same step as replay's
        if self.leadership.shared:  # each line's leader keeps its samples
            leads = self.leadership.leads
            self.samples.observe(self, {line: s for line, s in stats.items() if leads(line)})
        else:
            self.samples.observe(self, stats)
        arrived: list[str] = []
        for line, s in stats.items():
            if line in self.config.lines:
                previous = self.latest.get(line)
                self.latest[line] = s
                self.last_error.pop(line, None)
                if previous is None or previous.at != s.at:  # the same figures again: no news
                    arrived.append(line)
        if "*" in errors:
            for line in self.config.lines_of(source_id):
                self.last_error[line] = str(errors["*"])
        for line, err in errors.items():
            if line in self.config.lines:
                self.last_error[line] = str(err)
        if arrived:
            self._evaluate_safely(arrived, self.clock.now())
        if last and self._first_polls:
            self._first_polls.discard(source_id)
            self.ready = not self._first_polls

    async def _run_timeline(self) -> None:
        """Sleep until the earliest deadline (or ``evaluate_every`` at most), evaluate the
        lines due, and again; never raises."""
        heartbeat = self.config.server.evaluate_every.total_seconds()
        while not self._stop.is_set():
            now = self.clock.now()
            self.last_tick = now
            if not self.health.failures:  # the loop is alive and nothing is failing
                self._evaluation_succeeded(now)
            due = self.next_wakeup()
            wait = heartbeat if due is None else (due - now).total_seconds()
            if wait > 0:
                self._wake_timeline.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_timeline.wait(), min(wait, heartbeat))
                continue
            self.run_due(now)

    async def tick(self) -> None:
        """Evaluate every line now, as at start or after a reload; never raises."""
        self._evaluate_safely(list(self.config.lines), self.clock.now())

    def next_wakeup(self) -> datetime | None:
        """The earliest deadline of any line, or None when no line has one."""
        due = self._due
        while due and self._deadlines.get(due[0][1]) != due[0][0]:
            heapq.heappop(due)  # superseded by a later evaluation of that line
        return due[0][0] if due else None

    def run_due(self, now: datetime) -> None:
        """Evaluate every line whose deadline is at or before ``now``."""
        lines: list[str] = []
        while (first := self.next_wakeup()) is not None and first <= now:
            _, line = heapq.heappop(self._due)
            del self._deadlines[line]
            lines.append(line)
        if lines:
            self._evaluate_safely(lines, now)

    def _evaluate_safely(self, lines: list[str], now: datetime) -> None:
        try:
            self.evaluate_lines(lines, now)
        except Fenced as exc:
            self.lost_lead(exc)
        except Exception as exc:
            self._evaluation_failed(self.clock.now(), exc)
            for line in lines:  # try again shortly rather than at the next figures only
                self._set_deadline(line, now + self.config.server.evaluate_every)

    def evaluate_all(self, now: datetime) -> None:
        """Evaluate every line at ``now``; commit, then publish, the new states and orders."""
        self.evaluate_lines(self.config.lines, now)
        self.ready = self.ready or not self._first_polls

    def evaluate_lines(self, lines: Iterable[str], now: datetime) -> None:
        """Evaluate ``lines`` at ``now`` in one pass: engine, planner, one commit, then the
        dispatcher is woken and each line's next deadline set."""
        assert self.store is not None
        new_states: dict[str, LineState] = {}
        durable: dict[str, LineState] = {}  # what the store must hold (see persistence)
        events: list[Event] = []
        orders: list[ResponseOrder] = []
        switches = self.config.switches
        evaluated: list[str] = []
        leads = self.leadership.leads
        for lid in lines:
            lc = self.config.lines.get(lid)
            if lc is None or not leads(lid):
                continue  # gone, or another replica's to evaluate
            before = self.states[lid]
            demand = self.demand.get(lid, ())
            decision = evaluate(
                lc.framework, before, self.latest.get(lid), now, calendar=lc.calendar, demand=demand
            )
            state, planned = plan(lc.framework, switches, before, decision)
            if state != before:
                new_states[lid] = state
                if self.persistence.wants(before, state):
                    durable[lid] = state
            events.extend(decision.events)
            orders.extend(planned)
            evaluated.append(lid)
        observed = now if self.persistence.mark_due(now) else None
        self._commit(new_states, events, orders, durable=durable, observed_at=observed)
        for lid in evaluated:
            lc = self.config.lines[lid]
            due = next_deadline(
                lc.framework,
                self.states[lid],
                now,
                calendar=lc.calendar,
                demand=self.demand.get(lid, ()),
            )
            self._set_deadline(lid, due)
        self.last_tick = now
        self.metrics.evaluations.inc()
        self._evaluation_succeeded(now)

    def _set_deadline(self, line: str, due: datetime | None) -> None:
        """Remember when ``line`` must next be evaluated; wake the timeline if sooner."""
        if due is None:
            self._deadlines.pop(line, None)
            return
        if self._deadlines.get(line) == due:
            return
        earliest = self.next_wakeup()
        self._deadlines[line] = due
        heapq.heappush(self._due, (due, line))
        if earliest is None or due < earliest:
            self._wake_timeline.set()

    def _commit(
        self,
        new_states: Mapping[str, LineState],
        events: Iterable[Event],
        orders: Iterable[ResponseOrder],
        *,
        durable: Mapping[str, LineState] | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """Make a decision durable, then visible: store first, memory and logs after.

        ``durable``: the states the store must hold (default: all of ``new_states``); the
        others differ only in their figures' time (see ``risingtide.persistence``).
        """
        assert self.store is not None
        events = list(events)
        orders = list(orders)
        stored = new_states if durable is None else durable
        if stored or events or orders:
            self.store.commit(list(stored.values()), events, orders)
            self.persistence.written(stored.values())
        self.states.update(new_states)
        for event in events:
            self._log_event(event)
        if orders and self.dispatcher is not None:
            self.dispatcher.wake()
        self._update_outbox_metrics()
        if observed_at is not None:  # after the commit: what it holds was true then
            self._note_observed(observed_at)

    def _note_observed(self, at: datetime) -> None:
        """Note when the lines were seen; a failure only weakens a restart's dating."""
        assert self.store is not None
        try:
            self.store.note_observed(at)
        except StoreError as exc:
            log.warning("could not note when the lines were seen", error=str(exc))

    def _log_event(self, event: Event) -> None:
        state = self.states.get(event.line)
        tier = state.tier if state is not None else 0
        if isinstance(event, TierChanged):
            self.metrics.count_transition(event.line, event.from_tier, event.to_tier)
            lc = self.config.lines.get(event.line)
            log.info(
                "tier changed",
                line=event.line,
                tier=event.to_tier,
                from_tier=event.from_tier,
                to_tier=event.to_tier,
                tier_name=lc.framework.tier_name(event.to_tier) if lc else "",
                cause=event.cause.value,
                reason=event.reason,
            )
            return
        fields = {
            k: v
            for k, v in dataclasses.asdict(event).items()
            if k not in ("line", "at", "kind", "tier")
        }
        log.info(event.kind.replace("_", " "), line=event.line, tier=tier, **fields)

    # ------------------------------------------------------------------ dispatcher hooks

    def _context_for(self, order: ResponseOrder) -> ResponseContext:
        """What a responder may say about the order's line (see ``risingtide.messages``)."""
        lc = self.config.lines.get(order.line)
        state = self.states.get(order.line)
        extra: dict[str, Any] = {}
        if lc is not None:
            extra["framework_tiers"] = [t.name for t in lc.framework.tiers]
        if state is not None:
            extra["live_switches"] = sorted(state.live)
            if state.entered_at is not None:
                extra["entered_at"] = state.entered_at
        # A notification can offer a signed "acknowledge" link for its own tier and episode.
        link = (
            self.ack_link(order.line, tier=order.tier, episode=order.episode)
            if order.action is Action.APPLY
            else None
        )
        if link:
            extra["ack_url"] = link
        # Where a message about several lines sends people: the duty board.
        extra["board_url"] = f"{self.public_url.rstrip('/')}/"
        return ResponseContext(
            line_name=lc.name if lc else order.line,
            tier_name=lc.framework.tier_name(order.tier) if lc else str(order.tier),
            stats=self.latest.get(order.line),
            target_wait=lc.target_wait if lc else 0.0,
            extra=extra,
        )

    def _on_outcome(self, order: ResponseOrder, outcome: str, detail: str) -> None:
        self.metrics.count_run(order.line, order.response, order.action.value, outcome, detail)
        rc = self.config.responses.get(order.response)
        if rc is not None and not rc.undoable:
            self.metrics.notifications.labels(channel=rc.type, outcome=outcome).inc()
        self._update_outbox_metrics()

    def _update_outbox_metrics(self) -> None:
        if self.store is None:
            return
        self.metrics.outbox_pending.set(self.store.pending_count())
        self.metrics.outbox_dead.set(self.store.dead_count())

    # ------------------------------------------------------------------ duty-manager commands

    def acknowledge(self, line: str, *, by: str, note: str = "") -> Decision:
        """The duty manager's "I've got this" for the line's tier (see ``domain.commands``)."""
        lc = self._line(line)
        return self._command(
            line,
            lambda st, now: commands.acknowledge(
                lc.framework, st, by=by, note=note, now=now,
                expires=ack_expiry(self.config, lc, st.tier, now),  # ack_expires: at_handover
            ),
        )  # fmt: skip

    def silence(
        self, line: str, *, until: datetime, by: str, reason: str, undo: bool = False
    ) -> Decision:
        """Silence the line for planned work until ``until``."""
        self._line(line)
        return self._command(
            line,
            lambda st, now: commands.silence(
                st, until=until, by=by, reason=reason, undo=undo, now=now
            ),
        )

    def lift_silence(self, line: str, *, by: str) -> Decision:
        """End the line's silence early."""
        self._line(line)
        return self._command(line, lambda st, now: commands.lift_silence(st, by=by, now=now))

    def declare(self, line: str, *, level: int, until: datetime, by: str, reason: str) -> Decision:
        """Declare a tier for the line ahead of a known event."""
        lc = self._line(line)
        return self._command(
            line,
            lambda st, now: commands.declare(
                lc.framework, st, level=level, until=until, by=by, reason=reason, now=now
            ),
        )

    def clear_declaration(self, line: str, *, by: str) -> Decision:
        """End the line's declared tier early."""
        lc = self._line(line)
        return self._command(
            line, lambda st, now: commands.clear_declaration(lc.framework, st, by=by, now=now)
        )

    def _line(self, line: str) -> LineConfig:
        lc = self.config.lines.get(line)
        if lc is None:
            raise KeyError(line)
        return lc

    def _command(self, line: str, command: Callable[[LineState, datetime], Decision]) -> Decision:
        """Run a pure command, plan its responses, and commit both like an evaluation.

        Raises ``KeyError`` for an unknown line and ``CommandRejected`` when the command
        makes no sense; nothing changes then.
        """
        before = self.states[line]
        now = self.clock.now()
        decision = command(before, now)
        lc = self.config.lines[line]
        state, orders = plan(lc.framework, self.config.switches, before, decision)
        self._commit({line: state}, decision.events, orders)
        # A silence or declaration brings its own expiry; evaluate at once so a declared
        # floor takes effect now, not at the line's next figures.
        self._set_deadline(line, now)
        return decision

    # ------------------------------------------------------------------ replicas

    async def command(self, line: str, name: str, **args: Any) -> str:
        """Run the duty manager's command ``name`` (``relay.COMMANDS``) on ``line``; its
        reason. Runs here when this daemon leads the line, else is relayed to its leader
        (``risingtide.relay``). Raises ``KeyError``, ``CommandRejected`` or ``NoLeader``.
        """
        self._line(line)
        if self.leadership.leads(line):
            try:
                return self.run_named(line, name, args).reason
            except Fenced as exc:  # lost the lead just now: its new leader runs it
                self.lost_lead(exc)
        assert self.store is not None
        partition = partition_of(line, self.leadership.partitions)
        table = RelayTable(self.store.transaction)
        reason = await relay(table, self.clock, line, partition, name, args)
        await refresh_line(self, line)
        return reason

    def run_named(self, line: str, name: str, args: Mapping[str, Any]) -> Decision:
        """Run command ``name`` here (``acknowledge``, ``silence``…) with ``args``."""
        if name not in COMMANDS:
            raise ValueError(f"no command {name!r}")
        method: Callable[..., Decision] = getattr(self, name)
        return method(line, **args)

    def leads(self, line: str) -> bool:
        """Whether this daemon leads ``line`` now (alone: every line)."""
        return self.leadership.leads(line)

    def lost_lead(self, refused: Fenced) -> None:
        """The database refused a write: another replica leads those partitions now."""
        log.warning("a write was refused: another replica leads these lines now",
                    partitions=sorted(refused.partitions))  # fmt: skip
        self.leadership.lost(refused.partitions)
        apply_change(self, self.leadership.settle())

    def forget_deadlines(self, lines: Iterable[str]) -> None:
        """Drop ``lines``' deadlines: another replica evaluates them now."""
        for line in lines:
            self._deadlines.pop(line, None)

    def show_stored(self, states: Mapping[str, LineState]) -> int:
        """Show the stored states of lines another replica leads; how many changed."""
        changed = 0
        for line, state in states.items():
            if line in self.config.lines and not self.leadership.leads(line):
                if self.states.get(line) != state:
                    self.states[line] = state
                    changed += 1
                self.persistence.written((state,))
        return changed

    # ------------------------------------------------------------------ dead letters

    def requeue(self, key: str, *, by: str, note: str = "") -> OutboxEntry:
        """Run the dead letter ``key`` again, as a fresh order due now (``Store.requeue``).

        Refused with ``CommandRejected`` when running it again would do harm or cannot
        work (see ``_requeue_refusal``); ``UnknownEntryError``/``NotDeadError`` from the
        store when there is no such dead letter. The outbox gauges follow, and the
        dispatcher is woken to run it.
        """
        store = self._open_store()
        entry = store.outbox_entry(key)
        if entry is not None and entry.status == "dead":
            refusal = _requeue_refusal(
                entry.order,
                self.states.get(entry.order.line),
                self.config.switches,
                configured=entry.order.response in self.config.responses,
            )
            if refusal is not None:
                raise commands.CommandRejected(refusal)
        requeued = store.requeue(key, self.clock.now(), by, note)
        order = requeued.order
        log.info(
            "dead letter requeued",
            line=order.line, tier=order.tier, response=order.response,
            action=order.action.value, key=key, by=by, note=note,
        )  # fmt: skip
        self._update_outbox_metrics()
        if self.dispatcher is not None:
            self.dispatcher.wake()
        return requeued

    def dismiss(self, key: str, *, by: str, note: str = "") -> OutboxEntry:
        """Dismiss the dead letter ``key``: it never runs and no longer counts as dead.

        ``UnknownEntryError``/``NotDeadError`` from the store when there is no such dead
        letter. The outbox gauges follow.
        """
        dismissed = self._open_store().dismiss(key, self.clock.now(), by, note)
        order = dismissed.order
        log.info(
            "dead letter dismissed",
            line=order.line, tier=order.tier, response=order.response,
            action=order.action.value, key=key, by=by, note=note,
        )  # fmt: skip
        self._update_outbox_metrics()
        return dismissed

    def _open_store(self) -> Store:
        if self.store is None:
            raise StoreError("the store is not open yet")
        return self.store

    # ------------------------------------------------------------------ reload

    async def reload(self, path: Path | None = None, *, by: str | None = None) -> list[str]:
        """Load the config again; on success swap it in keeping line state.

        Returns the errors (empty on success); a bad config leaves the old one running.
        ``by`` names who asked (``POST /-/reload``); it is logged and kept in the history.
        """
        target = path or self.config.path
        try:
            new = load_config(target)
        except ConfigErrors as exc:
            messages = [str(e) for e in exc.errors]
            self.metrics.config_reload_ok.set(0)
            log.error("config reload failed; keeping the running config", errors=messages, by=by)
            return messages
        previous = self.config
        feed_events = await self._read_feeds(new)
        rebuilt = self._build_adapters(new, previous)
        self.config = new
        self._use_demand(new, feed_events)
        for lid, lc in new.lines.items():
            old = self.states.get(lid)
            self.states[lid] = _reconcile(lc.framework, old or initial_state(lid, lc.framework))
        self._retire_lines(
            {lid: st for lid, st in self.states.items() if lid not in new.lines},
            why="removed by a reload", by=by,
        )  # fmt: skip
        self._reassert_switches(lid for sid in rebuilt for lid in new.lines_of(sid))
        for lid in set(self.latest) - set(new.lines):
            del self.latest[lid]
            self.capacity.forget(lid)
        now = self.clock.now()
        for lid in set(self._deadlines) - set(new.lines):
            del self._deadlines[lid]
        for lid in new.lines:  # frameworks and calendars may have changed: look again now
            self._set_deadline(lid, now)
        if self.dispatcher is not None:
            self.dispatcher.set_responders(self.responders, _deliveries(new), new.directory)
        if self.poller is not None:
            self.poller.schedule(self._source_entries())
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(self.clock.now().timestamp())
        self.metrics.prime(new)
        if self.store is not None:
            data: dict[str, Any] = {"path": str(target)}
            if by is not None:
                data["by"] = by
            self.store.append_history([("*", "config_reloaded", self.clock.now(), None, data)])
        log.info("config reloaded", config=str(target), lines=len(new.lines), by=by)
        return []

    async def _read_feeds(self, config: Config) -> tuple[DemandEvent, ...]:
        """Read the config's iCalendar feeds (off the loop); a failing feed is logged, and
        the rest of the calendar still counts."""
        if not config.demand_feeds:
            return ()
        events, problems = await asyncio.to_thread(read_feeds, config.demand_feeds)
        for problem in problems:
            log.warning("demand feed not read", problem=problem, line="*", tier=None)
        return events

    def _use_demand(self, config: Config, feed_events: tuple[DemandEvent, ...]) -> None:
        """The demand calendar in force: ``config.demand`` placed after this daemon's start
        (relative events, for demos) and the feeds' events, by line."""
        self.demand_events = (*resolve(config.demand, self.started_at), *feed_events)
        self.demand = {
            lid: events for lid in config.lines if (events := for_line(self.demand_events, lid))
        }

    # ------------------------------------------------------------------ links in messages

    @property
    def public_url(self) -> str:
        """The base of links in messages: ``server.public_url``, else the listen address."""
        if self.config.server.public_url:
            return self.config.server.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def ack_link(
        self, line: str, *, tier: int | None = None, episode: int | None = None
    ) -> str | None:
        """A signed link that acknowledges ``line``'s tier, for a message to carry.

        ``tier`` and ``episode`` default to the line's current ones (give the order's when
        the message is about a particular tier). The link expires ``server.ack_link_ttl``
        from now. None when links are off (no ``server.secret_key``), the line is unknown,
        or the tier is 0 (nothing to acknowledge). The link is a credential: never log it.
        """
        secret = self.config.server.secret_key
        state = self.states.get(line)
        if secret is None or state is None:
            return None
        tier = state.tier if tier is None else tier
        if tier <= 0:
            return None
        return make_ack_link(
            secret,
            self.public_url,
            line,
            tier,
            state.episode if episode is None else episode,
            self.clock.now() + self.config.server.ack_link_ttl,
        )

    # ------------------------------------------------------------------ read side

    def views(self) -> list[LineView]:
        """Every configured line as it stands now."""
        return self.views_of(self.config.lines)

    def views_of(self, lines: Iterable[str]) -> list[LineView]:
        """The named lines as they stand now, in that order (ids not configured skipped)."""
        now = self.clock.now()
        undos = self._undo_pending()
        return [
            build_view(
                lc,
                self.states[lid],
                self.latest.get(lid),
                now,
                self.last_error.get(lid),
                undos.get(lid, frozenset()),
            )
            for lid in lines
            if (lc := self.config.lines.get(lid)) is not None and lid in self.states
        ]

    def views_later(self) -> Callable[[], list[LineView]]:
        """``views()`` as of now, to build in a thread: the store is read here, on the loop.

        The builder reads the line dicts by key only (the loop may update them meanwhile;
        a line then shows its newer state), so ``/metrics`` spends no loop time per line.
        """
        now, config, undos = self.clock.now(), self.config, self._undo_pending()
        states, latest, errors = self.states, self.latest, self.last_error

        def build() -> list[LineView]:
            none: frozenset[str] = frozenset()
            return [
                build_view(lc, st, latest.get(lid), now, errors.get(lid), undos.get(lid, none))
                for lid, lc in config.lines.items()
                if (st := states.get(lid)) is not None
            ]

        return build

    def view(self, line: str) -> LineView | None:
        """One line as it stands now, or None if the config has no such line."""
        lc = self.config.lines.get(line)
        if lc is None or line not in self.states:
            return None
        return build_view(
            lc, self.states[line], self.latest.get(line), self.clock.now(),
            self.last_error.get(line), self._undo_pending().get(line, frozenset()),
        )  # fmt: skip

    def _undo_pending(self) -> dict[str, frozenset[str]]:
        """Per line, the switches whose UNDO has not yet succeeded (a switch is shown as
        live until its undo goes through)."""
        if self.store is None:
            return {}
        try:
            entries = self.store.pending()
        except StoreError:
            return self._undo_pending_seen  # the store is away: the board shows what it last saw
        pending: dict[str, set[str]] = {}
        for entry in entries:
            if entry.order.action is Action.UNDO:
                pending.setdefault(entry.order.line, set()).add(entry.order.response)
        self._undo_pending_seen = {line: frozenset(names) for line, names in pending.items()}
        return self._undo_pending_seen

    @property
    def healthy(self) -> bool:
        """False when no evaluation pass has succeeded within the grace: since start when
        none ever has, else since the last success (the loop stalled, or every attempt
        fails). The grace is ``max(30 s, 6 × server.evaluate_every)``."""
        return self.health_problem is None

    @property
    def health_problem(self) -> str | None:
        """Why ``healthy`` is False, in a sentence (for ``/healthz``'s body); else None."""
        return self.health.problem(self.clock.now(), self._health_grace())

    def _health_grace(self) -> timedelta:
        return max(timedelta(seconds=30), 6 * self.config.server.evaluate_every)

    def _evaluation_succeeded(self, now: datetime) -> None:
        """Record a successful evaluation pass (health; "store recovered" once)."""
        recovered = self.health.succeeded(now)
        if recovered:
            log.info("store recovered", failures=recovered)

    def _evaluation_failed(self, now: datetime, exc: BaseException) -> None:
        """Record a failed evaluation pass: a store failure is logged with its traceback
        when it starts and only counted after that (``risingtide_store_errors_total``);
        any other failure is logged each time (a bug to see)."""
        first_store_failure = self.health.failed(now, store=isinstance(exc, StoreError))
        if isinstance(exc, StoreError):
            self.metrics.store_errors.inc()
            if first_store_failure:
                log.error(
                    "state store failing; state kept, evaluation retries (further failures "
                    "are counted in risingtide_store_errors_total until it recovers)",
                    exc_info=exc,
                )
            return
        log.error("evaluation failed; state kept, will retry shortly", exc_info=exc)


class _BrokenSource:
    """Stands in for a source that could not be built: every poll fails with why."""

    def __init__(self, name: str, error: SourceError) -> None:
        self.name = name
        self._error = error

    async def poll(self) -> dict[str, QueueStats | SourceError]:
        raise self._error

    async def aclose(self) -> None:
        return None


def _as_source_error(exc: Exception) -> SourceError:
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, AdapterError):
        return SourceError(str(exc), reason=exc.reason, retryable=exc.retryable)
    return SourceError(f"{type(exc).__name__}: {exc}", reason="build", retryable=False)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the runtime owns SIGTERM, SIGINT and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6), or an OSError saying which."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(f"cannot listen on {host}:{port}: {reason}") from exc
    sock.setblocking(False)
    return sock


def _line_params(config: Config, source_id: str) -> dict[str, BaseModel]:
    lines: dict[str, LineConfig] = config.lines_of(source_id)
    return {lid: lc.source_params for lid, lc in lines.items()}


def _needs(config: Config, source_id: str | None = None) -> dict[str, frozenset[str]]:
    """The measures each line's framework reads (of one source's lines, if given)."""
    lines = config.lines if source_id is None else config.lines_of(source_id)
    return {lid: measures_read(lc.framework) for lid, lc in lines.items()}


def _deliveries(config: Config) -> dict[str, Delivery]:
    """How each response is delivered: its group wait, rate limit and who it pages."""
    return {
        rid: Delivery(
            group_wait=rc.group_wait, rate_limit=rc.rate_limit, page=rc.page, fallback=rc.fallback
        )
        for rid, rc in config.responses.items()
    }


def _requeue_refusal(
    order: ResponseOrder,
    state: LineState | None,
    switches: frozenset[str],
    *,
    configured: bool,
) -> str | None:
    """Why the dead ``order`` must not run again, or None when it may.

    A notification may always go again. A switch may not when the line has moved on: its
    live switches say what the platform should show now (a switch counts as off from the
    moment its UNDO is planned). Applying a switch the state has since undone would leave
    it on with no UNDO to come; undoing one a later tier has applied again would switch it
    off under that tier.
    """
    if not configured:
        return (
            f"no response {order.response!r} is configured now (removed by a reload?), so it "
            "would be given up on again at once; dismiss it instead"
        )
    if order.response not in switches:
        return None
    live = state is not None and order.response in state.live
    if order.action is Action.APPLY and not live:
        return (
            f"{order.response} is no longer on for {order.line} (it has been undone since this "
            "was given up on), so applying it now would leave it on with nothing to undo it; "
            "dismiss this one, and switch it on the platform by hand if it is wanted"
        )
    if order.action is Action.UNDO and live:
        return (
            f"{order.response} is on again for {order.line} (applied since this undo was given "
            "up on), so undoing it now would switch it off while its tier wants it on; dismiss "
            "this one"
        )
    return None


def _reconcile(framework: Framework, state: LineState) -> LineState:
    """Fit a stored state to a (possibly changed) framework without losing its tier."""
    n = len(framework.tiers)
    if len(state.when_since) == n and state.tier <= framework.max_level:
        return state
    return dataclasses.replace(
        state,
        tier=min(state.tier, framework.max_level),
        when_since=(None,) * n,
        clear_since=None,
    )
