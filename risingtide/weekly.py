"""Scheduled reports: the week's episodes summed up and sent through notification responses.

A report under ``reports:`` (``risingtide.config.reports``) falls due each week on its day
at its time, in its zone ("mon 08:00", Europe/London). When it does, one
:class:`~risingtide.domain.model.ResponseOrder` per named response goes into the outbox:
for the pseudo line ``*``, trigger ``report``, tier 0, with the summary as the order's
``reason``. The dispatcher sends it like any notification (retries, the history's
``response`` record, dead letters and their fallback), alone, never in a digest with news
of lines; ``risingtide.messages`` writes it as it is (kind ``report``).

Once a week, whatever restarts: an order's key is ``report/{id}/{ISO week}/{response}``
(the week of the due time, in the report's zone), the outbox keeps a key it has seen (done
entries for ``DONE_KEPT``, a week) and ignores it when queued again, and a report is
looked at only within ``CATCH_UP`` of its due time. So a daemon that was down at 08:00 and
comes back at 10:00 sends it then; one that restarts on Tuesday does not send it again; one
that was down all Monday skips that week's report rather than send it days late.

``risingtide report --send RESPONSE`` (``risingtide.report_send``) sends the same summary
by hand for a period, for cron users.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

import structlog

from risingtide.clock import Clock
from risingtide.config.model import Config, ReportConfig
from risingtide.dispatch import Dispatcher
from risingtide.domain.model import Action, ResponseOrder
from risingtide.episode_report import UK, duration, uk_time
from risingtide.episodes import Episode, build_episode, find_episodes
from risingtide.message_facts import REPORT_TRIGGER
from risingtide.store import Store

__all__ = [
    "CATCH_UP",
    "CHECK_EVERY",
    "MAX_LISTED",
    "PERIOD",
    "REPORT_LINE",
    "ReportHost",
    "build_summary",
    "due_orders",
    "last_due",
    "next_due",
    "report_key",
    "report_orders",
    "run_reports",
    "send_due",
    "summary_text",
    "week_of",
]

log = structlog.get_logger(__name__)

#: The pseudo line of a report's orders: it is about every line.
REPORT_LINE = "*"
#: A report is sent this long after its due time at most (a daemon down at 08:00).
CATCH_UP = timedelta(days=1)
#: The longest the loop sleeps between looks (the clock may be moved by tests).
CHECK_EVERY = 60.0
#: The period a weekly report covers, ending at its due time.
PERIOD = timedelta(days=7)
#: A summary lists at most this many episodes, then says how many more there were.
MAX_LISTED = 40


class ReportHost(Protocol):
    """What the report loop needs from the daemon (``risingtide.runtime.Runtime``)."""

    @property
    def config(self) -> Config:
        """The config now (it changes on a reload)."""
        ...

    @property
    def store(self) -> Store | None:
        """The open store."""
        ...

    def leads(self, line: str) -> bool:
        """Whether this daemon leads ``line`` (among replicas, only its share)."""
        ...

    @property
    def clock(self) -> Clock:
        """The daemon's clock."""
        ...

    @property
    def dispatcher(self) -> Dispatcher | None:
        """The dispatcher, woken when orders are queued."""
        ...

    @property
    def public_url(self) -> str:
        """Where the board is, for the report's link to the episodes."""
        ...


# --------------------------------------------------------------------------- the schedule


def _at(rc: ReportConfig, day: date) -> datetime:
    return datetime.combine(day, rc.at, tzinfo=rc.timezone)


def last_due(rc: ReportConfig, now: datetime) -> datetime:
    """The latest time at or before ``now`` when ``rc`` fell due (aware, in its zone)."""
    local = now.astimezone(rc.timezone)
    day = local.date() - timedelta(days=(local.weekday() - rc.weekday) % 7)
    due = _at(rc, day)
    # Same weekday but later in the day: last week's. (Local dates, so 08:00 stays 08:00
    # across the clocks changing.)
    return _at(rc, day - timedelta(days=7)) if due > now else due


def next_due(rc: ReportConfig, now: datetime) -> datetime:
    """The first time after ``now`` when ``rc`` falls due."""
    return _at(rc, last_due(rc, now).date() + timedelta(days=7))


def week_of(rc: ReportConfig, due: datetime) -> str:
    """``2026-W02``: the ISO week of ``due`` in the report's zone."""
    year, week, _ = due.astimezone(rc.timezone).isocalendar()
    return f"{year}-W{week:02d}"


def report_key(report: str, period: str, response: str) -> str:
    """The idempotency key of one report sent through one response for one period."""
    return f"report/{report}/{period}/{response}"


# --------------------------------------------------------------------------- the summary


def _episode_line(ep: Episode) -> str:
    ref = ep.ref
    end = ref.ended_at
    length = ((end or ep.now) - ref.started_at).total_seconds()
    until = f"{end.astimezone(UK):%H:%M}" if end else "still raised"
    ack = ep.first_ack
    acked = (
        f"first acknowledged after {duration(ep.time_to_first_ack)} by {ack.by}"
        if ack is not None
        else "not acknowledged"
    )
    return (
        f"{uk_time(ref.started_at)}: {ep.name}, episode {ref.number}, peak "
        f"{ep.tier_label(ref.peak_tier).replace('Tier', 'tier', 1)}, {duration(length)} "
        f"(until {until}); {acked}"
    )


def summary_text(
    episodes: Sequence[Episode], *, title: str, start: datetime, end: datetime, link: str = ""
) -> str:
    """The report's text: a subject line, one line per episode (oldest first), totals, and
    where to read more. Plain text, UK times."""
    n = len(episodes)
    head = f"{title}: {n} episode{'' if n == 1 else 's'} from {uk_time(start)} to {uk_time(end)}"
    if not episodes:
        return f"{head}\n\nNo line rose above calm."
    ordered = sorted(episodes, key=lambda ep: (ep.ref.started_at, ep.ref.line))
    shown = [_episode_line(ep) for ep in ordered[:MAX_LISTED]]
    if n > MAX_LISTED:
        shown.append(f"… and {n - MAX_LISTED} more")
    raised = sum(((ep.ref.ended_at or ep.now) - ep.ref.started_at).total_seconds()
                 for ep in episodes)  # fmt: skip
    lines = len({ep.ref.line for ep in episodes})
    unacked = sum(1 for ep in episodes if ep.first_ack is None)
    totals = (
        f"In all: {n} episode{'' if n == 1 else 's'} on {lines} line{'' if lines == 1 else 's'}, "
        f"{duration(raised)} raised, {unacked} not acknowledged."
    )
    more = [f"Every episode: {link}"] if link else []
    return "\n".join([head, "", *shown, "", totals, *more])


def build_summary(
    store: Store, config: Config | None, *, title: str, start: datetime, end: datetime, link: str
) -> str:
    """The summary of the episodes that began in ``[start, end)``, read from ``store``."""
    refs = find_episodes(store, since=start, until=end, limit=100_000)
    episodes = [build_episode(store, ref, end, config) for ref in refs]
    return summary_text(episodes, title=title, start=start, end=end, link=link)


def report_orders(keys: dict[str, str], text: str, at: datetime) -> list[ResponseOrder]:
    """One order per response (``keys``: response -> key) carrying ``text``."""
    return [
        ResponseOrder(
            key=key,
            line=REPORT_LINE,
            response=response,
            action=Action.APPLY,
            tier=0,
            episode=0,
            trigger=REPORT_TRIGGER,
            at=at,
            reason=text,
        )
        for response, key in keys.items()
    ]


# --------------------------------------------------------------------------- sending


def due_orders(store: Store, config: Config, now: datetime, link: str = "") -> list[ResponseOrder]:
    """The orders of every report due at ``now`` (within ``CATCH_UP``) and not yet queued."""
    orders: list[ResponseOrder] = []
    for rc in config.reports.values():
        due = last_due(rc, now)
        if now - due > CATCH_UP:
            continue
        period = week_of(rc, due)
        keys = {r: report_key(rc.id, period, r) for r in rc.responses}
        keys = {r: k for r, k in keys.items() if store.outbox_entry(k) is None}
        if not keys:
            continue
        title = f"Rising Tide {rc.id} report"
        text = build_summary(store, config, title=title, start=due - PERIOD, end=due, link=link)
        orders += report_orders(keys, text, now)
    return orders


async def send_due(host: ReportHost) -> list[str]:
    """Queue the reports due now; return the keys queued. The store is read in a thread."""
    store, config, now = host.store, host.config, host.clock.now()
    if store is None or not config.reports or not host.leads("*"):
        return []  # among replicas, the leader of the reports' line ("*") sends them
    link = f"{host.public_url.rstrip('/')}/episodes"
    orders = await asyncio.to_thread(due_orders, store, config, now, link)
    if not orders:
        return []
    # No states, no events: only the orders, in one transaction (a key already there is
    # ignored, so two passes racing still queue each report once).
    await asyncio.to_thread(store.commit, [], [], orders)
    if host.dispatcher is not None:
        host.dispatcher.wake()
    for order in orders:
        log.info("report queued", response=order.response, key=order.key, line="*", tier=0)
    return [order.key for order in orders]


def _sleep_for(config: Config, now: datetime) -> float:
    soonest = min((next_due(rc, now) for rc in config.reports.values()), default=None)
    if soonest is None:
        return CHECK_EVERY
    return max(0.0, min(CHECK_EVERY, (soonest - now).total_seconds()))


async def run_reports(host: ReportHost, stop: asyncio.Event) -> None:
    """Send each report when it falls due, until ``stop``; never raises."""
    while not stop.is_set():
        try:
            await send_due(host)
        except Exception:
            log.exception("a scheduled report could not be queued; will try again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _sleep_for(host.config, host.clock.now()))
