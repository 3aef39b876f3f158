"""Replay: run the configured tiers over historical stats with a simulated clock.

The analyst's tool for tuning thresholds on last month's data before going live. Each row
is one line's ``QueueStats``; the clock is the row's own time. Nothing is sent: the result
is the timeline of tier changes (with their reasons) and of the responses that *would*
have run, and a summary per line.

**The same timeline as the daemon.** The daemon evaluates a line when its figures arrive
and when one of the engine's own deadlines falls (``tiers.next_deadline``: a ``for`` or
``clear_for`` elapsing, the figures going stale and the stale alert, reminders and
escalation steps, opening and closing, a silence or declaration running out). Replay walks
each line's rows and those deadlines in time order and evaluates at exactly those instants,
always with the latest row at or before the instant — so a line closes at 18:00:00 with no
row then, a stale alert is stamped when it fell due, and a ``for: 30s`` on one-minute rows
enters 30 s after its condition started to hold, not at the next row. A property test holds
replay, the daemon's runtime on a fake clock and an every-second reference to the same
events, to the second (``tests/unit/test_timeline_equivalence.py``).

**Fast.** A row at which no condition of the line's framework changes its truth, that does
not end a gap longer than ``stale_after``, and at which no deadline falls, cannot change
anything but the time of the last figures, so it is not evaluated: each line's rows say
where their conditions flip (``LineRows.marks``), and only those rows, the gaps and the
deadlines are visited. Lines are independent, so ``jobs`` > 1 replays them in parallel
processes.

Each line's timeline starts at its first row and runs to the last row of the file (a line
whose rows stop early goes stale, as it would live). The demand calendar counts as it
would live (events written ``+2m``, relative to a daemon's start, only when ``started``
says when that was). Nobody acknowledges during a replay, so reminders and escalation
steps fire as they would for a tier nobody picked up. Rows must be in time order per
line; a row older than the line's last is dropped, as the engine ignores older figures.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    #: Row indices or times: a list, or numpy's int64 array (``replay_rows``).
    Ints = Sequence[int] | NDArray[np.int64]

from risingtide.anticipation import inputs_of
from risingtide.config.model import Config, LineConfig
from risingtide.demand_feeds import read_feeds
from risingtide.domain.demand import CapacityTracker
from risingtide.domain.demand_calendar import for_line, resolve
from risingtide.domain.model import (
    Action,
    Event,
    Framework,
    QueueStats,
    ResponseOrder,
    StatsStale,
    TierChanged,
)
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state, next_deadline

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LineRows(Protocol):
    """One line's rows in time order (``risingtide.replay_rows`` reads them from a CSV)."""

    line: str

    def __len__(self) -> int:
        """How many rows."""
        ...

    def times_us(self) -> Ints:
        """Each row's time in epoch microseconds, non-decreasing."""
        ...

    def stats(self, i: int) -> QueueStats:
        """Row ``i`` as the engine reads it."""
        ...

    def stats_many(self, rows: Sequence[int]) -> list[QueueStats]:
        """The rows ``rows``, as ``stats`` gives each (one call: cheaper for columns)."""
        ...

    def marks(self, framework: Framework) -> Ints:
        """Row 0 and every row at which a tier's ``when`` or ``clear`` changes its truth."""
        ...

    def gaps(self, longer_than: timedelta) -> Ints:
        """Every row that comes more than ``longer_than`` after the row before it."""
        ...


class StatsRows:
    """``LineRows`` over ``QueueStats`` already in memory (tests, small files, the API)."""

    __slots__ = ("_rows", "_times", "line")

    def __init__(self, line: str, rows: Sequence[QueueStats]) -> None:
        """``rows`` in time order (callers drop rows older than their predecessor)."""
        self.line = line
        self._rows = rows
        self._times = [_us(r.at) for r in rows]

    def __len__(self) -> int:
        """How many rows."""
        return len(self._rows)

    def times_us(self) -> Sequence[int]:
        """Each row's time in epoch microseconds."""
        return self._times

    def stats(self, i: int) -> QueueStats:
        """Row ``i``."""
        return self._rows[i]

    def stats_many(self, rows: Sequence[int]) -> list[QueueStats]:
        """The rows ``rows``."""
        return [self._rows[i] for i in rows]

    def marks(self, framework: Framework) -> list[int]:
        """Row 0 and each row whose conditions' truths differ from the row before's."""
        conditions = [c for t in framework.tiers for c in (t.when, t.clear)]
        out: list[int] = []
        previous: tuple[bool, ...] | None = None
        for i, row in enumerate(self._rows):
            truth = tuple(c.holds(row) for c in conditions)
            if truth != previous:
                out.append(i)
                previous = truth
        return out

    def peak_capacity_gap(self) -> int | None:
        """The largest capacity gap (agents needed − staffed) over the rows, if any known."""
        gaps = [r.capacity_gap for r in self._rows if r.capacity_gap is not None]
        return max(gaps) if gaps else None

    def gaps(self, longer_than: timedelta) -> list[int]:
        """Rows more than ``longer_than`` after their predecessor."""
        limit = longer_than // _MICROSECOND
        times = self._times
        return [i for i in range(1, len(times)) if times[i] - times[i - 1] > limit]


def rows_by_line(
    rows: Iterable[QueueStats], config: Config | None = None
) -> tuple[dict[str, StatsRows], int]:
    """Group rows by line in order, dropping a row older than its line's latest.

    With ``config``, each configured line's rows get the capacity figures (agents needed,
    the gap, the predicted wait) as the daemon gives them on arrival.
    """
    grouped: dict[str, list[QueueStats]] = {}
    inputs = {lid: inputs_of(lc) for lid, lc in config.lines.items()} if config else {}
    tracker = CapacityTracker()
    count = 0
    for row in rows:
        count += 1
        kept = grouped.setdefault(row.line, [])
        if kept and row.at < kept[-1].at:
            continue
        given = inputs.get(row.line)
        kept.append(row if given is None else tracker.observe(row, given))
    return {line: StatsRows(line, kept) for line, kept in grouped.items()}, count


@dataclass(slots=True)
class LineSummary:
    """What happened to one line over the replay."""

    line: str
    name: str
    first: datetime | None = None
    last: datetime | None = None
    rows: int = 0
    time_in_tier: dict[int, timedelta] = field(default_factory=dict)
    episodes: int = 0
    tier_changes: int = 0
    highest_tier: int = 0
    notifications: int = 0
    switches_applied: int = 0
    switches_undone: int = 0
    stale_alerts: int = 0
    #: The largest capacity gap seen (rows enriched by ``rows_by_line`` only), or None.
    peak_capacity_gap: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-able values (durations in seconds)."""
        return {
            "line": self.line,
            "name": self.name,
            "first": None if self.first is None else self.first.isoformat(),
            "last": None if self.last is None else self.last.isoformat(),
            "rows": self.rows,
            "seconds_in_tier": {
                str(k): v.total_seconds() for k, v in sorted(self.time_in_tier.items())
            },
            "episodes": self.episodes,
            "tier_changes": self.tier_changes,
            "highest_tier": self.highest_tier,
            "notifications": self.notifications,
            "switches_applied": self.switches_applied,
            "switches_undone": self.switches_undone,
            "stale_alerts": self.stale_alerts,
            "peak_capacity_gap": self.peak_capacity_gap,
        }


@dataclass(slots=True)
class ReplayResult:
    """The timeline (events and would-be orders, in time order) and each line's summary."""

    events: list[Event] = field(default_factory=list)
    orders: list[ResponseOrder] = field(default_factory=list)
    summaries: dict[str, LineSummary] = field(default_factory=dict)
    rows: int = 0
    unknown_lines: dict[str, int] = field(default_factory=dict)


def replay(
    config: Config, rows: Iterable[QueueStats], *, started: datetime | None = None
) -> ReplayResult:
    """Run ``rows`` (any order of lines, time order within each) through the tiers, each
    row with the capacity figures the daemon would have worked out as it arrived.

    ``started`` stands for the daemon's start, which demand events written relative to it
    (``start: +2m``, demos and drills) follow; without it they are left out.
    """
    lines, count = rows_by_line(rows, config)
    return replay_lines(config, lines, count, started=started)


def replay_lines(
    config: Config,
    lines: Mapping[str, LineRows],
    rows_read: int,
    *,
    jobs: int = 1,
    started: datetime | None = None,
) -> ReplayResult:
    """Replay each configured line's rows; ``jobs`` > 1 spreads lines over processes;
    ``started`` as for :func:`replay`."""
    result = ReplayResult(rows=rows_read)
    ends = [int(r.times_us()[-1]) for r in lines.values() if len(r)]
    end_us = max(ends) if ends else 0
    config = with_demand(config, started)
    known = [lid for lid in config.lines if lid in lines and len(lines[lid])]
    if jobs > 1 and len(known) > 1:
        from risingtide.replay_jobs import walk_in_processes  # processes only when asked

        walked = walk_in_processes(config, lines, known, end_us, jobs)
    else:
        walked = [walk_line(config, config.lines[lid], lines[lid], end_us) for lid in known]
    by_line = {w.summary.line: w for w in walked}
    for lid, lc in config.lines.items():
        w = by_line.get(lid)
        result.summaries[lid] = w.summary if w else LineSummary(line=lid, name=lc.name)
    for line, r in lines.items():
        if line not in config.lines:
            result.unknown_lines[line] = len(r)
        elif isinstance(r, StatsRows):
            result.summaries[line].peak_capacity_gap = r.peak_capacity_gap()
    result.events = sorted((e for w in walked for e in w.events), key=_at)
    result.orders = sorted((o for w in walked for o in w.orders), key=_at)
    return result


def with_demand(config: Config, started: datetime | None) -> Config:
    """``config`` with its demand calendar fixed for a replay: events relative to the
    daemon's start (``+2m``) placed after ``started``, or left out without it (they belong
    to a live demo or drill, not to last month's figures), and the iCalendar feeds read now,
    as the daemon reads them at its start."""
    if not config.demand and not config.demand_feeds:
        return config
    if started is not None:
        events = resolve(config.demand, started)
    else:
        events = tuple(e for e in config.demand if not e.relative)
    feed_events, problems = read_feeds(config.demand_feeds)
    if problems:
        import structlog  # here, not at the top: a replay without feeds logs nothing

        log = structlog.get_logger(__name__)
        for problem in problems:
            log.warning("demand feed not read", problem=problem, line="*", tier=None)
    return replace(config, demand=(*events, *feed_events), demand_feeds=())


@dataclass(slots=True)
class LineTimeline:
    """One line's part of a replay: its events and orders in time order, and its summary."""

    summary: LineSummary
    events: list[Event] = field(default_factory=list)
    orders: list[ResponseOrder] = field(default_factory=list)


def walk_line(config: Config, lc: LineConfig, rows: LineRows, end_us: int) -> LineTimeline:
    """Evaluate one line at every instant the daemon would have: the rows that can change
    something, the moments its figures go stale, and the engine's deadlines, up to
    ``end_us``."""
    framework, calendar = lc.framework, lc.calendar
    times = _ints(rows.times_us())
    demand = for_line((e for e in config.demand if not e.relative), lc.id)
    stale_us = framework.stale_after // _MICROSECOND
    gaps = _ints(rows.gaps(framework.stale_after))
    visits = sorted({*_ints(rows.marks(framework)), *gaps})
    # The figures in force at each visit (the last row of its instant), read in one call.
    latest = sorted({bisect_right(times, times[v]) - 1 for v in visits})
    figures = dict(zip(latest, rows.stats_many(latest), strict=True))
    # The instant after which the latest figures are stale, for each gap and after the end.
    going_stale = [times[k - 1] + stale_us + 1 for k in gaps] + [times[-1] + stale_us + 1]
    out = LineTimeline(LineSummary(line=lc.id, name=lc.name, rows=len(times)))
    tally = _Tally(out.summary, config.switches, _at_us(times[0]))
    state = initial_state(lc.id, framework)
    never = end_us + 1
    deadline = never
    vi = si = 0
    while True:
        at = min(
            times[visits[vi]] if vi < len(visits) else never,
            going_stale[si] if si < len(going_stale) else never,
            deadline,
        )
        if at > end_us:
            break
        while vi < len(visits) and times[visits[vi]] <= at:
            vi += 1
        while si < len(going_stale) and going_stale[si] <= at:
            si += 1
        now = _at_us(at)
        j = bisect_right(times, at) - 1
        stats = figures[j] if j in figures else rows.stats(j)
        decision = evaluate(framework, state, stats, now, calendar=calendar, demand=demand)
        if decision.events:
            state, orders = plan(framework, config.switches, state, decision)
            out.events.extend(decision.events)
            out.orders.extend(orders)
            tally.count(decision.events, orders, now)
        else:
            state = decision.state
        nxt = next_deadline(
            framework, state, now, calendar=calendar, going_stale=False, demand=demand
        )
        deadline = never if nxt is None else _us(nxt)
    tally.close(_at_us(end_us))
    out.summary.first = _at_us(times[0])
    out.summary.last = _at_us(times[-1])
    return out


class _Tally:
    """Adds up a line's summary as its events and orders come."""

    __slots__ = ("since", "summary", "switches", "tier")

    def __init__(self, summary: LineSummary, switches: frozenset[str], start: datetime) -> None:
        self.summary = summary
        self.switches = switches
        self.since = start
        self.tier = 0

    def count(
        self, events: Iterable[Event], orders: Iterable[ResponseOrder], now: datetime
    ) -> None:
        s = self.summary
        for event in events:
            if isinstance(event, TierChanged):
                self.close(now)
                self.tier = event.to_tier
                s.tier_changes += 1
                s.highest_tier = max(s.highest_tier, event.to_tier)
                if event.from_tier == 0 and event.to_tier > 0:
                    s.episodes += 1
            elif isinstance(event, StatsStale):
                s.stale_alerts += 1
        for order in orders:
            if order.response in self.switches:
                if order.action is Action.APPLY:
                    s.switches_applied += 1
                else:
                    s.switches_undone += 1
            elif order.action is Action.APPLY:
                s.notifications += 1

    def close(self, now: datetime) -> None:
        """Book the time since the last change to the tier in force."""
        spent = self.summary.time_in_tier
        spent[self.tier] = spent.get(self.tier, timedelta()) + (now - self.since)
        self.since = now


def _ints(values: Ints) -> list[int]:
    """Plain ints (numpy's ``tolist`` is far quicker than iterating its scalars)."""
    tolist = getattr(values, "tolist", None)
    return list(tolist()) if tolist is not None else list(values)


def _us(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _at_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _at(item: Event | ResponseOrder) -> datetime:
    return item.at


# --------------------------------------------------------------------------- output


def timeline_text(config: Config, result: ReplayResult) -> str:
    """The timeline and summary as a person reads them."""
    out: list[str] = []
    orders_by_event: dict[tuple[str, datetime], list[ResponseOrder]] = {}
    for o in result.orders:
        orders_by_event.setdefault((o.line, o.at), []).append(o)
    shown: set[tuple[str, datetime]] = set()
    for e in result.events:
        lc = config.lines[e.line]
        when = e.at.astimezone(lc.calendar.tz).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(e, TierChanged):
            fw = lc.framework
            out.append(
                f"{when}  {e.line}  {e.from_tier} {fw.tier_name(e.from_tier)} → "
                f"{e.to_tier} {fw.tier_name(e.to_tier)}  ({e.reason})"
            )
        else:
            out.append(f"{when}  {e.line}  {e.kind.replace('_', ' ')}")
        key = (e.line, e.at)
        if key in orders_by_event and key not in shown:
            shown.add(key)
            for o in orders_by_event[key]:
                verb = "would undo" if o.action is Action.UNDO else "would run"
                people = paged(config, o)
                to = f" → {', '.join(people)}" if people else ""
                out.append(f"{'':21}{verb} {o.response}{to}")
    out.append("")
    out.append(f"Summary ({result.rows:,} rows; nothing was sent)")
    for s in result.summaries.values():
        if not s.rows:
            out.append(f"  {s.line}: no rows")
            continue
        total = sum(s.time_in_tier.values(), timedelta()) or timedelta(seconds=1)
        fw = config.lines[s.line].framework
        shares = ", ".join(
            f"{fw.tier_name(t)} {_span(d)} ({d / total:.0%})"
            for t, d in sorted(s.time_in_tier.items())
        )
        out.append(
            f"  {s.line} ({s.name}): {s.rows:,} rows; {shares}; {s.episodes} episode(s), "
            f"highest tier {s.highest_tier}; {s.notifications} notification(s), "
            f"{s.switches_applied} switch(es) on, {s.switches_undone} off; "
            f"{s.stale_alerts} stale alert(s)"
        )
    for line, n in sorted(result.unknown_lines.items()):
        out.append(f"  {line}: {n:,} rows ignored — no such line in the config")
    return "\n".join(out) + "\n"


def paged(config: Config, order: ResponseOrder) -> list[str]:
    """The names of the people a notification order would have reached, by the rota then."""
    rc = config.responses.get(order.response)
    if rc is None or not rc.page or order.action is not Action.APPLY:
        return []
    return [p.name for p in config.directory.resolve(rc.page, order.at)]


def timeline_json(result: ReplayResult, config: Config | None = None) -> dict[str, Any]:
    """The timeline and summary for tools; with ``config``, each notification says whom it
    would have paged (``"to"``: the names on duty by the rota at the time)."""

    from risingtide.store.codec import encode  # the store's package opens SQLAlchemy

    def response(order: ResponseOrder) -> dict[str, Any]:
        data = encode(order)
        if config is not None:
            people = paged(config, order)
            if people:
                data["to"] = people
        return data

    return {
        "rows": result.rows,
        "events": [encode(e) for e in result.events],
        "responses": [response(o) for o in result.orders],
        "summary": [s.to_json() for s in result.summaries.values()],
        "unknown_lines": result.unknown_lines,
    }


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"
