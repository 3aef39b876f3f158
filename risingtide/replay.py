"""Replay: run the configured tiers over historical stats with a simulated clock.

The analyst's tool for tuning thresholds on last month's data before going live. Each row
is one line's ``QueueStats``; the clock is the row's own time. Nothing is sent: the result
is the timeline of tier changes (with their reasons) and of the responses that *would*
have run, and a summary per line.

How time works here, since there is no daemon ticking every few seconds:

- a line is evaluated at each of its rows, at the row's time;
- when a line's next row comes more than the framework's ``stale_after`` after its last,
  the line is also evaluated at that moment with its old figures, so the gap shows as a
  stale spell (and a "stats stale" alert if it lasted ``stale_alert_after``) — as the
  daemon would have seen it;
- nobody acknowledges during a replay, so reminders and escalation steps fire as they
  would for a tier nobody picked up.

Rows must be in time order per line; a row older than the line's last is ignored, as the
engine ignores stale observations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from risingtide.config.model import Config
from risingtide.domain.model import (
    Action,
    Event,
    LineState,
    QueueStats,
    ResponseOrder,
    StatsStale,
    TierChanged,
)
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state
from risingtide.store.codec import encode


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
        }


@dataclass(slots=True)
class ReplayResult:
    """The timeline (events and would-be orders, in time order) and each line's summary."""

    events: list[Event] = field(default_factory=list)
    orders: list[ResponseOrder] = field(default_factory=list)
    summaries: dict[str, LineSummary] = field(default_factory=dict)
    rows: int = 0
    unknown_lines: dict[str, int] = field(default_factory=dict)


class _Line:
    """One line's replay state (kept in a plain object: this is the hot loop)."""

    __slots__ = ("config", "last_at", "last_stats", "since", "state", "summary", "tier")

    def __init__(self, config: Any, summary: LineSummary) -> None:
        self.config = config
        self.state: LineState = initial_state(config.id, config.framework)
        self.summary = summary
        self.last_stats: QueueStats | None = None
        self.last_at: datetime | None = None
        self.since: datetime | None = None
        self.tier = 0


def replay(config: Config, rows: Iterable[QueueStats]) -> ReplayResult:
    """Run every row through the engine and planner; return the timeline and summaries."""
    result = ReplayResult()
    switches = config.switches
    lines: dict[str, _Line] = {}
    for lid, lc in config.lines.items():
        summary = LineSummary(line=lid, name=lc.name)
        result.summaries[lid] = summary
        lines[lid] = _Line(lc, summary)
    events_out = result.events
    orders_out = result.orders
    count = 0

    def step(ln: _Line, stats: QueueStats | None, now: datetime) -> None:
        lc = ln.config
        before = ln.state
        decision = evaluate(lc.framework, before, stats, now, calendar=lc.calendar)
        if not decision.events:
            ln.state = decision.state
            return
        state, orders = plan(lc.framework, switches, before, decision)
        ln.state = state
        events_out.extend(decision.events)
        orders_out.extend(orders)
        _account(ln, decision.events, orders, now, switches)

    for stats in rows:
        count += 1
        ln = lines.get(stats.line)
        if ln is None:
            result.unknown_lines[stats.line] = result.unknown_lines.get(stats.line, 0) + 1
            continue
        now = stats.at
        if ln.last_at is not None:
            if now < ln.last_at:
                continue  # older than what the line has seen: the engine would ignore it
            stale_after = ln.config.framework.stale_after
            if now - ln.last_at > stale_after:
                step(ln, ln.last_stats, now)  # the gap, seen with the old figures
        else:
            ln.since = now
            ln.summary.first = now
        step(ln, stats, now)
        ln.last_stats = stats
        ln.last_at = now
        ln.summary.rows += 1
    result.rows = count
    for ln in lines.values():
        s = ln.summary
        s.last = ln.last_at
        if ln.since is not None and ln.last_at is not None:
            s.time_in_tier[ln.tier] = s.time_in_tier.get(ln.tier, timedelta()) + (
                ln.last_at - ln.since
            )
    return result


def _account(
    ln: _Line,
    events: Iterable[Event],
    orders: Iterable[ResponseOrder],
    now: datetime,
    switches: frozenset[str],
) -> None:
    s = ln.summary
    for event in events:
        if isinstance(event, TierChanged):
            if ln.since is not None:
                s.time_in_tier[ln.tier] = s.time_in_tier.get(ln.tier, timedelta()) + (
                    now - ln.since
                )
            ln.since = now
            ln.tier = event.to_tier
            s.tier_changes += 1
            s.highest_tier = max(s.highest_tier, event.to_tier)
            if event.from_tier == 0 and event.to_tier > 0:
                s.episodes += 1
        elif isinstance(event, StatsStale):
            s.stale_alerts += 1
    for order in orders:
        if order.response in switches:
            if order.action is Action.APPLY:
                s.switches_applied += 1
            else:
                s.switches_undone += 1
        elif order.action is Action.APPLY:
            s.notifications += 1


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
                people = _paged(config, o)
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


def _paged(config: Config, order: ResponseOrder) -> list[str]:
    """The names of the people a notification order would have reached, by the rota then."""
    rc = config.responses.get(order.response)
    if rc is None or not rc.page or order.action is not Action.APPLY:
        return []
    return [p.name for p in config.directory.resolve(rc.page, order.at)]


def timeline_json(result: ReplayResult, config: Config | None = None) -> dict[str, Any]:
    """The timeline and summary for tools; with ``config``, each notification says whom it
    would have paged (``"to"``: the names on duty by the rota at the time)."""

    def response(order: ResponseOrder) -> dict[str, Any]:
        data = encode(order)
        if config is not None:
            people = _paged(config, order)
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
