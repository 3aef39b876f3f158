"""What a line looks like right now: the one read model shared by metrics, API and board.

Built from the line's config, its engine state, its latest stats and the tick's ``now``, so
every reader shows the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from risingtide.config.model import LineConfig
from risingtide.domain.capacity import agents_needed_from_stats
from risingtide.domain.model import LineState, QueueStats


@dataclass(frozen=True, slots=True)
class LineView:
    """One line's public state at ``now``."""

    id: str
    name: str
    target_wait: float
    state: LineState
    stats: QueueStats | None
    tier_name: str
    max_tier: int
    now: datetime
    last_error: str | None = None
    #: Switches whose UNDO is still in the outbox (retrying): still on, as far as anyone knows.
    undo_pending: frozenset[str] = frozenset()

    @property
    def live_switches(self) -> frozenset[str]:
        """Switches on now: applied and not undone, or whose undo has not yet succeeded."""
        return self.state.live | self.undo_pending

    @property
    def stats_age(self) -> float | None:
        """Seconds since the latest stats were true, or None when there never were any."""
        if self.stats is None:
            return None
        return max(0.0, (self.now - self.stats.at).total_seconds())

    @property
    def silenced(self) -> bool:
        """True while a silence is in force."""
        s = self.state.silence
        return s is not None and s.until > self.now

    @property
    def declared_level(self) -> int:
        """The declared tier in force, or 0."""
        d = self.state.declaration
        return d.level if d is not None and d.until > self.now else 0

    @property
    def agents_needed(self) -> int | None:
        """Agents Erlang C says the line needs to meet its target, when the stats allow:
        the capacity model's smoothed figure, else the latest window's own."""
        if self.stats is None:
            return None
        if self.stats.agents_needed is not None:
            return self.stats.agents_needed
        return agents_needed_from_stats(self.stats, self.target_wait)

    @property
    def capacity_gap(self) -> int | None:
        """Agents needed − staffed (negative: spare agents), or None when unknown."""
        return None if self.stats is None else self.stats.capacity_gap

    @property
    def capacity_gap_ratio(self) -> float | None:
        """The gap as a share of agents needed, or None when unknown."""
        return None if self.stats is None else self.stats.capacity_gap_ratio

    @property
    def predicted_wait(self) -> float | None:
        """Erlang C's mean wait (s) with the agents staffed, or None when unknown."""
        return None if self.stats is None else self.stats.predicted_wait

    def to_json(self) -> dict[str, Any]:
        """The line as the JSON API returns it."""
        st = self.state
        stats = self.stats
        return {
            "line": self.id,
            "name": self.name,
            "tier": st.tier,
            "tier_name": self.tier_name,
            "max_tier": self.max_tier,
            "episode": st.episode,
            "entered_at": _iso(st.entered_at),
            "open": st.open,
            "stale": st.stale,
            "stale_since": _iso(st.stale_since),
            "acknowledged": st.acknowledged,
            "acknowledgement": None
            if st.ack is None
            else {"tier": st.ack.tier, "by": st.ack.by, "at": _iso(st.ack.at), "note": st.ack.note},
            "silence": None
            if not self.silenced or st.silence is None
            else {
                "until": _iso(st.silence.until),
                "by": st.silence.by,
                "reason": st.silence.reason,
                "undo": st.silence.undo,
            },
            "declaration": None
            if not self.declared_level or st.declaration is None
            else {
                "level": st.declaration.level,
                "until": _iso(st.declaration.until),
                "by": st.declaration.by,
                "reason": st.declaration.reason,
            },
            "live_switches": sorted(self.live_switches),
            "undo_pending": sorted(self.undo_pending),
            "target_wait": self.target_wait,
            "stats_age": self.stats_age,
            "agents_needed": self.agents_needed,
            "capacity_gap": self.capacity_gap,
            "capacity_gap_ratio": self.capacity_gap_ratio,
            "predicted_wait": self.predicted_wait,
            "forecast_wait": None if stats is None else stats.forecast_wait,
            "last_error": self.last_error,
            "stats": None
            if stats is None
            else {
                "at": _iso(stats.at),
                "calls_waiting": stats.calls_waiting,
                "avg_wait": stats.avg_wait,
                "longest_wait": stats.longest_wait,
                "agents_available": stats.agents_available,
                "agents_staffed": stats.agents_staffed,
                "offered": stats.offered,
                "answered": stats.answered,
                "abandoned": stats.abandoned,
                "abandon_rate": stats.abandon_rate,
                "answered_rate": stats.answered_rate,
                "window": stats.window,
                "avg_handle_time": stats.avg_handle_time,
                "arrivals_per_hour": stats.arrivals_per_hour,
                "handle_time": stats.handle_time,
            },
        }


def build_view(
    config: LineConfig,
    state: LineState,
    stats: QueueStats | None,
    now: datetime,
    last_error: str | None = None,
    undo_pending: frozenset[str] = frozenset(),
) -> LineView:
    """Assemble a line's view from its parts."""
    return LineView(
        id=config.id,
        name=config.name,
        target_wait=config.target_wait,
        state=state,
        stats=stats,
        tier_name=config.framework.tier_name(state.tier),
        max_tier=config.framework.max_level,
        now=now,
        last_error=last_error,
        undo_pending=undo_pending,
    )


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()
