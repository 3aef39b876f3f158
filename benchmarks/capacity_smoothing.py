"""How steady is agents needed? The raw window against the smoothed capacity model (#11).

Three demo-sized lines from the built-in simulator (flat demand, seeded), polled every 15
simulated seconds over an 8-hour day with a 5-minute stats window. For each poll, agents
needed from the window alone (``agents_needed_from_stats``) and from the capacity model
smoothed with τ = 15 and 30 minutes. Reports the 5th–95th percentile and the full range
beside Erlang C's answer for the true demand, and how long each takes to show 90 % of a
doubling of demand. Writes nothing; prints a Markdown table for benchmarks/RESULTS.md.

Run: ``.venv/bin/python benchmarks/capacity_smoothing.py``
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from risingtide.domain.capacity import agents_needed, agents_needed_from_stats
from risingtide.domain.demand import CapacityInputs, CapacityTracker
from risingtide.domain.model import QueueStats
from risingtide.simulation import LineParams, LineSim

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TARGET = 180.0
POLL = 15.0
DAY = 8 * 3600.0
#: (name, arrivals per hour, handle time s, agents) — the demo's small, middle, large lines.
LINES = (("Highways", 48, 360, 8), ("Adult Social Care", 60, 480, 12), ("Revenues", 160, 360, 20))


def _stats(line: str, sim: LineSim) -> QueueStats:
    s = sim.stats()
    return QueueStats(
        line=line, at=T0 + timedelta(seconds=s.t), offered=s.offered, window=s.window,
        agents_staffed=s.agents_staffed, avg_handle_time=s.avg_handle_time,
    )  # fmt: skip


def _spread(values: list[int]) -> str:
    q = statistics.quantiles(values, n=20)
    return f"{q[0]:.0f}–{q[-1]:.0f} ({min(values)}–{max(values)})"


def steadiness(name: str, rate: float, handle: float, agents: int) -> str:
    """One table row: raw and smoothed spreads beside the truth."""
    params = LineParams(agents=agents, arrivals_per_hour=rate, handle_time=handle, window=300)
    sim = LineSim(params, seed=2026)
    trackers = {tau: CapacityTracker(timedelta(minutes=tau)) for tau in (15, 30)}
    raw: list[int] = []
    smooth: dict[int, list[int]] = {15: [], 30: []}
    inputs = CapacityInputs(TARGET, handle)
    t = 0.0
    while t < DAY:
        t += POLL
        sim.advance_to(t)
        row = _stats(name, sim)
        value = agents_needed_from_stats(row, TARGET)
        if t > 3600 and value is not None:  # after an hour's warm-up
            raw.append(value)
        for tau, tracker in trackers.items():
            needed = tracker.observe(row, inputs).agents_needed
            if t > 3600 and needed is not None:
                smooth[tau].append(needed)
    truth = agents_needed(rate, handle, TARGET)
    return f"| {name} | {truth} | {_spread(raw)} | {_spread(smooth[15])} | {_spread(smooth[30])} |"


def lag(tau: float) -> float:
    """Minutes until the smoothed rate shows 90 % of a doubling of demand, polled every 15 s
    (the 5-minute window itself ramps from the old rate to the new over 5 minutes)."""
    tracker = CapacityTracker(timedelta(minutes=tau))
    inputs = CapacityInputs(TARGET, 300.0)
    t = -3600.0  # an hour of steady demand first
    while True:
        ramp = min(max(t, 0.0) / 300.0, 1.0)
        offered = round(100 * (1 + ramp))  # 100 then 200 calls in the window
        row = QueueStats(line="step", at=T0 + timedelta(seconds=t), offered=offered, window=300)
        tracker.observe(row, inputs)
        rate = tracker.estimates["step"].arrivals_per_hour or 0.0
        if t >= 0 and rate >= 1200 * 1.9:
            return t / 60
        t += POLL


def main() -> None:
    """Print the table."""
    print("| line | truth | window alone | τ = 15 min | τ = 30 min |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, handle, agents in LINES:
        print(steadiness(name, rate, handle, agents))
    for tau in (15, 30):
        print(f"τ = {tau} min: 90 % of a doubling after {lag(tau):.0f} min")


if __name__ == "__main__":
    main()
