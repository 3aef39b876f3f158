"""Scores for a replay, and two configs compared on the same history.

An analyst tuning a framework wants a few numbers per line, not a timeline: how many
episodes, how high, how long in each tier, how long callers waited over target before
anyone was told, who would have been paged how often, how many switches, and how many
episodes were over almost as soon as they began. ``score`` gives those for one replay;
``compare`` puts two replays of the same rows side by side with the difference.

How each figure is counted (for each line; the total adds the lines up, and takes the
highest peak):

- **episodes**: rises from calm (tier 0) to any tier.
- **peak tier**: the highest tier reached.
- **minutes in each tier**: from the replay's own summary (first to last row).
- **minutes above target before the first notification**, summed over episodes. A row's
  ``avg_wait`` holds from its time until the line's next row, for at most the framework's
  ``stale_alert_after`` (by then a "stats stale" alert says the figures stopped). For each
  episode, count the time with ``avg_wait`` above the line's ``target_wait`` from the
  start of the spell above target that was running when the episode began (rows above
  target one after the other, none further apart than ``stale_alert_after``; or from the
  episode's start, if the wait was not above target then, e.g. a rise on abandonment),
  but not before the previous episode ended, up to the episode's first notification (an
  order to notify triggered by a tier change, reminder or escalation; a "stats stale"
  alert does not count). An episode with no notification counts up to its end (or the
  last row): nobody was told.
- **notifications**: orders to run a response that is not a switch; **notifications per
  person**: for each order, the people its response pages, by the rota at that moment
  (``config.directory.resolve``), as the text timeline names them.
- **switches applied**: orders to apply a switch (a response that is undone on the way down).
- **short episodes** ("likely false alarms"): episodes that were back to calm within their
  top tier's ``clear_for`` of the earliest they could have been. Once a tier is entered the
  line must sit out each tier's ``clear_for`` on the way down (with ``step_down``, every
  tier from the top to 1; without, the top tier's only), so an episode that reached tier 2
  cannot end sooner than ``clear_for(2) + clear_for(1)`` after it began; it is short when it
  ended at most ``clear_for(2)`` later than that: what raised it stopped within one clear
  period. An episode still open at the last row, or ended by the line closing for the
  day, is never short.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from risingtide.config.model import Config, LineConfig
from risingtide.domain.model import (
    Action,
    Cause,
    Framework,
    QueueStats,
    ResponseOrder,
    TierChanged,
)
from risingtide.replay import ReplayResult, paged, replay
from risingtide.replay_series import LineSeries, SeriesRecorder

#: Orders that tell people about the data, not about the wait: not a "first notification".
_DATA_TRIGGERS = frozenset({"stats_stale", "stats_fresh"})


@dataclass(slots=True)
class Run:
    """One config replayed: the config, its result and the figures it saw."""

    config: Config
    result: ReplayResult
    series: dict[str, LineSeries]


def run(config: Config, rows: Iterable[QueueStats]) -> Run:
    """Replay ``rows`` through ``config``, keeping the figures for scores and charts."""
    recorder = SeriesRecorder()
    result = replay(config, recorder.watch(rows))
    return Run(config, result, recorder.lines)


@dataclass(slots=True)
class Episode:
    """One rise from calm, to its return to calm (``end`` None: still raised at the end)."""

    start: datetime
    end: datetime | None
    peak: int
    #: Ended by the line closing (out of hours), not by its figures clearing.
    closed: bool = False


@dataclass(slots=True)
class LineScore:
    """The figures for one line (or, for the total, for all of them)."""

    line: str
    name: str
    episodes: int = 0
    peak_tier: int = 0
    minutes_in_tier: dict[int, float] = field(default_factory=dict)
    minutes_above_target_unnotified: float = 0.0
    notifications: int = 0
    notifications_by_person: dict[str, int] = field(default_factory=dict)
    switches_applied: int = 0
    short_episodes: int = 0

    def add(self, other: LineScore) -> None:
        """Add another line's figures into this one (peak: the higher)."""
        self.episodes += other.episodes
        self.peak_tier = max(self.peak_tier, other.peak_tier)
        for tier, minutes in other.minutes_in_tier.items():
            self.minutes_in_tier[tier] = self.minutes_in_tier.get(tier, 0.0) + minutes
        self.minutes_above_target_unnotified += other.minutes_above_target_unnotified
        self.notifications += other.notifications
        for person, n in other.notifications_by_person.items():
            self.notifications_by_person[person] = self.notifications_by_person.get(person, 0) + n
        self.switches_applied += other.switches_applied
        self.short_episodes += other.short_episodes

    def figures(self) -> dict[str, float]:
        """Every figure under a flat key, as the tables and the differences use them."""
        out: dict[str, float] = {"episodes": self.episodes, "peak_tier": self.peak_tier}
        for tier, minutes in sorted(self.minutes_in_tier.items()):
            out[f"minutes_in_tier.{tier}"] = round(minutes, 1)
        out["minutes_above_target_unnotified"] = round(self.minutes_above_target_unnotified, 1)
        out["notifications"] = self.notifications
        for person, n in sorted(self.notifications_by_person.items()):
            out[f"notifications_to.{person}"] = n
        out["switches_applied"] = self.switches_applied
        out["short_episodes"] = self.short_episodes
        return out

    def to_json(self) -> dict[str, Any]:
        """The score as JSON-able values (minutes to one decimal)."""
        return {
            "line": self.line,
            "name": self.name,
            "episodes": self.episodes,
            "peak_tier": self.peak_tier,
            "minutes_in_tier": {
                str(k): round(v, 1) for k, v in sorted(self.minutes_in_tier.items())
            },
            "minutes_above_target_before_first_notification": round(
                self.minutes_above_target_unnotified, 1
            ),
            "notifications": self.notifications,
            "notifications_by_person": dict(sorted(self.notifications_by_person.items())),
            "switches_applied": self.switches_applied,
            "short_episodes": self.short_episodes,
        }


def episodes(result: ReplayResult, line: str) -> list[Episode]:
    """A line's episodes, from its tier changes, in time order."""
    out: list[Episode] = []
    current: Episode | None = None
    for e in result.events:
        if e.line != line or not isinstance(e, TierChanged):
            continue
        if e.from_tier == 0 and e.to_tier > 0:
            current = Episode(e.at, None, e.to_tier)
            out.append(current)
        elif current is not None:
            current.peak = max(current.peak, e.to_tier)
            if e.to_tier == 0:
                current.end = e.at
                current.closed = e.cause is Cause.CLOSED
                current = None
    return out


def score(run_: Run) -> dict[str, LineScore]:
    """Each configured line's score (in config order)."""
    config, result = run_.config, run_.result
    switches = config.switches
    orders_by_line: dict[str, list[ResponseOrder]] = {}
    for order in result.orders:
        orders_by_line.setdefault(order.line, []).append(order)
    scores: dict[str, LineScore] = {}
    for lid, lc in config.lines.items():
        summary = result.summaries[lid]
        s = LineScore(line=lid, name=lc.name)
        eps = episodes(result, lid)
        s.episodes = len(eps)
        s.peak_tier = summary.highest_tier
        s.minutes_in_tier = {0: 0.0, **{t.level: 0.0 for t in lc.framework.tiers}}
        for tier, spent in summary.time_in_tier.items():
            s.minutes_in_tier[tier] = spent.total_seconds() / 60
        s.minutes_in_tier = dict(sorted(s.minutes_in_tier.items()))
        notices = [
            o
            for o in orders_by_line.get(lid, [])
            if o.action is Action.APPLY and o.response not in switches
        ]
        s.switches_applied = sum(
            1
            for o in orders_by_line.get(lid, [])
            if o.action is Action.APPLY and o.response in switches
        )
        s.notifications = len(notices)
        for order in notices:
            for person in paged(config, order):
                s.notifications_by_person[person] = s.notifications_by_person.get(person, 0) + 1
        series = run_.series.get(lid, LineSeries())
        s.minutes_above_target_unnotified = _unnotified(lc, eps, notices, series) / 60
        s.short_episodes = sum(1 for ep in eps if _short(lc.framework, ep))
        scores[lid] = s
    return scores


def total(scores: Iterable[LineScore]) -> LineScore:
    """All lines added up."""
    out = LineScore(line="total", name="All lines")
    for s in scores:
        out.add(s)
    out.minutes_in_tier = dict(sorted(out.minutes_in_tier.items()))
    return out


def _short(framework: Framework, ep: Episode) -> bool:
    if ep.end is None or ep.closed:
        return False
    top = framework.tier(ep.peak)
    if top is None:
        return False
    if framework.step_down:
        way_down = sum(
            (t.clear_for for t in framework.tiers if 0 < t.level <= ep.peak), timedelta()
        )
    else:
        way_down = top.clear_for
    return ep.end - ep.start <= way_down + top.clear_for


def _unnotified(
    lc: LineConfig, eps: list[Episode], notices: list[ResponseOrder], series: LineSeries
) -> float:
    """Seconds above target before each episode's first notification, summed."""
    times, waits = series.times, series.avg_wait
    if not times:
        return 0.0
    hold = lc.framework.stale_alert_after.total_seconds()
    target = lc.target_wait
    firsts = sorted(o.at.timestamp() for o in notices if o.trigger not in _DATA_TRIGGERS)
    last_end = -math.inf
    seconds = 0.0
    for ep in eps:
        start = ep.start.timestamp()
        end = ep.end.timestamp() if ep.end is not None else times[-1]
        k = bisect.bisect_left(firsts, start)
        told = firsts[k] if k < len(firsts) and firsts[k] <= end else end
        # Walk back from the row in force at the start through the spell above target.
        i = bisect.bisect_right(times, start) - 1
        begin = start
        while i >= 0 and waits[i] > target and times[i] >= last_end:
            begin = times[i]
            if i == 0 or times[i] - times[i - 1] > hold or not waits[i - 1] > target:
                break
            i -= 1
        seconds += _above(times, waits, target, hold, max(begin, last_end), told)
        last_end = end
    return seconds


def _above(times: Any, waits: Any, target: float, hold: float, begin: float, until: float) -> float:
    """Seconds in [begin, until) with the wait in force above ``target``."""
    if until <= begin:
        return 0.0
    seconds = 0.0
    i = max(bisect.bisect_right(times, begin) - 1, 0)
    n = len(times)
    while i < n and times[i] < until:
        if waits[i] > target:
            valid_to = times[i] + hold
            if i + 1 < n:
                valid_to = min(valid_to, times[i + 1])
            lo, hi = max(times[i], begin), min(valid_to, until)
            if hi > lo:
                seconds += hi - lo
        i += 1
    return seconds


# --------------------------------------------------------------------------- comparison


@dataclass(slots=True)
class LineComparison:
    """One line in both configs (a side is None when the line is only in the other)."""

    line: str
    name: str
    today: LineScore | None
    proposed: LineScore | None

    @property
    def only_in(self) -> str | None:
        """ "today" or "proposed" when the line is in one config only, else None."""
        if self.today is None:
            return "proposed"
        if self.proposed is None:
            return "today"
        return None

    def change(self) -> dict[str, float] | None:
        """Proposed minus today, figure by figure (None when the line is in one only)."""
        if self.today is None or self.proposed is None:
            return None
        return difference(self.today.figures(), self.proposed.figures())


def difference(today: dict[str, float], proposed: dict[str, float]) -> dict[str, float]:
    """``proposed - today`` for every key in either (a missing figure counts as 0)."""
    keys = list(today) + [k for k in proposed if k not in today]
    return {k: round(proposed.get(k, 0) - today.get(k, 0), 1) for k in keys}


@dataclass(slots=True)
class Comparison:
    """Two runs of the same rows, line by line and in total."""

    today: Run
    proposed: Run
    lines: list[LineComparison]
    total_today: LineScore
    total_proposed: LineScore


def compare(today: Run, proposed: Run) -> Comparison:
    """Score both runs; lines in today's order, then those only in the proposed config."""
    a, b = score(today), score(proposed)
    lines: list[LineComparison] = []
    for lid in [*a, *(k for k in b if k not in a)]:
        name = (a.get(lid) or b[lid]).name
        lines.append(LineComparison(lid, name, a.get(lid), b.get(lid)))
    return Comparison(today, proposed, lines, total(a.values()), total(b.values()))


def comparison_json(c: Comparison) -> dict[str, Any]:
    """The comparison for tools."""

    def side(s: LineScore | None) -> dict[str, Any] | None:
        return None if s is None else s.to_json()

    return {
        "today": _side(c.today),
        "proposed": _side(c.proposed),
        "lines": [
            {
                "line": lc.line,
                "name": lc.name,
                "only_in": lc.only_in,
                "today": side(lc.today),
                "proposed": side(lc.proposed),
                "change": lc.change(),
            }
            for lc in c.lines
        ],
        "total": {
            "today": c.total_today.to_json(),
            "proposed": c.total_proposed.to_json(),
            "change": difference(c.total_today.figures(), c.total_proposed.figures()),
        },
    }


def _side(r: Run) -> dict[str, Any]:
    return {
        "config": str(r.config.path),
        "rows": r.result.rows,
        "unknown_lines": dict(sorted(r.result.unknown_lines.items())),
    }


def ignored(c: Comparison) -> dict[str, int]:
    """Rows for lines in neither config, by line: replayed by neither."""
    both = c.proposed.config.lines
    return {line: n for line, n in sorted(c.today.result.unknown_lines.items()) if line not in both}
