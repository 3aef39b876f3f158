"""The capacity model over time: steady arrival and handle-time estimates, and the figures
Erlang C draws from them (agents needed, the capacity gap, the predicted wait).

A source's figures cover a short trailing window (often 5 minutes). On a small line that
window holds a handful of calls, so ``offered / window`` swings from poll to poll and Erlang C
amplifies the swing (the demo's Highways line read 1–14 agents needed where the truth is 6).
Here each line's arrival rate and handle time are smoothed by a time-aware exponentially
weighted mean with a 15-minute time constant: each new observation weighs
``1 − exp(−Δt / τ)``, so irregular polls weigh by the time they cover, a poll at the same
instant weighs nothing, and after a long silence (a night's closure) the first figures
replace the old estimate outright. The effective window (2τ = 30 minutes) is the industry's
half-hour planning interval, for which Erlang C's steady state is meant; a step in demand
shows 63 % after 15 minutes and 86 % after 30.

Everything here is a pure function of a line's sequence of figures, so the daemon (as
figures arrive) and replay (row by row) enrich the same rows the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from risingtide.domain.capacity import agents_needed, predicted_wait, traffic
from risingtide.domain.forecast import FAST, forecast_wait, trend
from risingtide.domain.model import QueueStats

#: The smoothing time constant τ (see the module's docstring for why 15 minutes).
SMOOTHING = timedelta(minutes=15)
#: Predicted waits are capped here: beyond it the calls come faster than the agents answer
#: them and the queue grows without bound (Erlang C says infinity), which JSON cannot carry.
PREDICTED_WAIT_CAP = 3600.0
#: Above this offered load (erlangs) the figures are taken as bad data, not a call centre.
MAX_TRAFFIC = 10_000.0

#: The measures this module adds to a line's figures (see ``enrich``).
CAPACITY_MEASURES: frozenset[str] = frozenset(
    ("agents_needed", "capacity_gap", "capacity_gap_ratio", "predicted_wait", "forecast_wait")
)


@dataclass(frozen=True, slots=True)
class CapacityInputs:
    """What the model needs from a line's config: its target wait, fallback handle time and
    the horizon of its ``forecast_wait`` conditions (seconds; None: no forecast)."""

    target_wait: float
    handle_time: float | None = None
    forecast_within: float | None = None


@dataclass(frozen=True, slots=True)
class CapacityEstimate:
    """One line's smoothed demand: arrivals per hour and the platform's handle time (s).

    Each quantity keeps the time of its own latest observation, so a run of polls without
    one (a feed with no handle time) does not shorten the next observation's weight.
    """

    arrivals_per_hour: float | None = None
    arrivals_at: datetime | None = None
    handle_time: float | None = None
    handle_at: datetime | None = None
    #: The same arrivals under a 5-minute mean: against the slow one, the trend.
    fast_arrivals_per_hour: float | None = None


def observed_arrivals(stats: QueueStats) -> float | None:
    """``offered / window`` in calls per hour, or None when either is unknown."""
    if stats.offered is None or not stats.window or stats.window <= 0:
        return None
    return stats.offered * 3600.0 / stats.window


def _smooth(
    value: float | None,
    at: datetime | None,
    observed: float | None,
    now: datetime,
    horizon: timedelta,
) -> tuple[float | None, datetime | None]:
    """One time-aware exponentially weighted step (the state unchanged when nothing new)."""
    if observed is None or not math.isfinite(observed):
        return value, at
    if value is None or at is None:
        return observed, now
    elapsed = (now - at).total_seconds()
    if elapsed <= 0:  # the same instant again, or older: no news
        return value, at
    weight = 1.0 - math.exp(-elapsed / horizon.total_seconds())
    return value + weight * (observed - value), now


def update(
    previous: CapacityEstimate | None, stats: QueueStats, horizon: timedelta = SMOOTHING
) -> CapacityEstimate:
    """The estimate after ``stats``: each known figure folded in by the time it covers."""
    prev = previous or CapacityEstimate()
    handle = stats.avg_handle_time if stats.avg_handle_time and stats.avg_handle_time > 0 else None
    observed = observed_arrivals(stats)
    rate, rate_at = _smooth(prev.arrivals_per_hour, prev.arrivals_at, observed, stats.at, horizon)
    fast, _ = _smooth(prev.fast_arrivals_per_hour, prev.arrivals_at, observed, stats.at, FAST)
    aht, aht_at = _smooth(prev.handle_time, prev.handle_at, handle, stats.at, horizon)
    return CapacityEstimate(rate, rate_at, aht, aht_at, fast)


def enrich(
    estimate: CapacityEstimate,
    stats: QueueStats,
    inputs: CapacityInputs,
    horizon: timedelta = SMOOTHING,
) -> QueueStats:
    """``stats`` with the capacity figures filled in from ``estimate``.

    The handle time is the platform's (smoothed) where it gives one, else the line's
    configured ``handle_time``. Agents needed wants arrivals and a handle time; the gap,
    its ratio and the predicted wait also want the agents staffed. Unknown stays None.
    """
    rate = estimate.arrivals_per_hour
    handle = estimate.handle_time or inputs.handle_time
    if rate is None or not handle or inputs.target_wait <= 0:
        return stats
    if traffic(rate, handle) > MAX_TRAFFIC:
        return stats
    needed = agents_needed(rate, handle, inputs.target_wait)
    staffed = stats.agents_staffed
    if staffed is None or staffed < 0:
        return replace(stats, agents_needed=needed, arrivals_per_hour=rate, handle_time=handle)
    gap = needed - staffed
    return replace(
        stats,
        agents_needed=needed,
        capacity_gap=gap,
        capacity_gap_ratio=gap / needed if needed > 0 else None,
        predicted_wait=min(predicted_wait(rate, handle, staffed), PREDICTED_WAIT_CAP),
        forecast_wait=_forecast(estimate, stats, inputs, handle, horizon),
        arrivals_per_hour=rate,
        handle_time=handle,
    )


def _forecast(
    estimate: CapacityEstimate,
    stats: QueueStats,
    inputs: CapacityInputs,
    handle: float,
    horizon: timedelta,
) -> float | None:
    """The worst wait within the line's forecast horizon, when it has one (see forecast)."""
    slow, fast = estimate.arrivals_per_hour, estimate.fast_arrivals_per_hour
    staffed, waiting = stats.agents_staffed, stats.calls_waiting
    if inputs.forecast_within is None or slow is None or fast is None or staffed is None:
        return None
    now, slope = trend(slow, fast, horizon)
    return forecast_wait(
        now, slope, handle, staffed, waiting or 0, inputs.forecast_within,
        PREDICTED_WAIT_CAP,
    )  # fmt: skip


class CapacityTracker:
    """Each line's running estimate; ``observe`` enriches a line's figures in arrival order.

    The daemon keeps one for its lifetime and replay one per run, so both walk the same
    sequence through the same steps.
    """

    def __init__(self, horizon: timedelta = SMOOTHING) -> None:
        """An empty tracker smoothing over ``horizon``."""
        self.horizon = horizon
        self.estimates: dict[str, CapacityEstimate] = {}

    def observe(self, stats: QueueStats, inputs: CapacityInputs) -> QueueStats:
        """Fold ``stats`` into its line's estimate and return them enriched."""
        estimate = update(self.estimates.get(stats.line), stats, self.horizon)
        self.estimates[stats.line] = estimate
        return enrich(estimate, stats, inputs, self.horizon)

    def forget(self, line: str) -> None:
        """Drop a line's estimate (a removed line starts afresh if it comes back)."""
        self.estimates.pop(line, None)
