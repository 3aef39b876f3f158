"""The forecast tier against a straight line: lead time, misses and false alarms (#11).

Many seeded days of two lines of the built-in simulator (a Council Tax-sized one and a small
one; a 5-minute stats window polled every 15 s; target 3 min).
A fifth of the days are calm; the rest carry a surge of one of four shapes at a random hour:
a **step** (×1.4–2 for two hours), a **ramp** (up to ×1.5–2.2 over an hour, then held),
a **spike** (×2–3 for 15–40 minutes) and a slow **drift** (to ×1.7 over three hours).
Callers hold on 10 minutes on average, some giving up at the IVR message.

The **breach** is the reported average wait staying above the target for a minute (its
start). Two alarms, each needing its condition to hold for a minute:

* **forecast**: ``forecast_wait: {above: target, within: 15m}`` — the queueing model
  (``risingtide/domain/forecast.py``) over the smoothed arrivals and their trend, the agents
  staffed and the calls waiting, through the same capacity tracker the daemon uses;
* **straight line**: the reported average wait's least-squares line over the last 10
  minutes, extended 15 minutes, above the target.

Per method: the share of breach days with an alarm in the hour before the breach (else a
**miss**), the median **lead time** of those (breach − the alarm's start), and **false
alarms**: alarms (starts within half an hour of the one before folded into it) not followed
by a breach within the hour, as a share of all alarms, and the share of days without a
breach that had any alarm.

Run: ``.venv/bin/python benchmarks/forecast.py [DAYS]`` (default 200); writes the
"Forecast" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.domain.demand import CapacityInputs, CapacityTracker
from risingtide.domain.model import QueueStats
from risingtide.simulation import DemandEvent, LineParams, LineSim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
TARGET = 180.0
HORIZON = 900.0
POLL = 15.0
HOLD = 60.0  # both alarms and the breach must hold a minute
WARMUP = 3600.0
DAY = 9 * 3600.0
LOOKBACK = 3600.0  # an alarm counts for a breach up to an hour before it
FIT = 600.0  # the straight line's fit window
MERGE = 1800.0  # alarm starts within half an hour of the one before are one alarm
PATIENCE = 600.0  # callers hold on 10 minutes on average (some give up at the IVR message)
SHAPES = ("calm", "step", "ramp", "spike", "drift")
#: (label, agents, calls an hour, handle time s): a Council Tax-sized line and a small one.
SIZES = (("large: 30 agents, 250 calls/h, 5 min", 30, 250.0, 300.0),
         ("small: 10 agents, 70 calls/h, 6 min", 10, 70.0, 360.0))  # fmt: skip


def surge(shape: str, rng: random.Random) -> tuple[DemandEvent, ...]:
    """The demand events of one day of ``shape``."""
    start = rng.uniform(2 * 3600, 6 * 3600)
    if shape == "step":
        return (DemandEvent("step", start, 2 * 3600, rng.uniform(1.4, 2.0)),)
    if shape == "spike":
        return (DemandEvent("spike", start, rng.uniform(900, 2400), rng.uniform(2.0, 3.0)),)
    if shape in ("ramp", "drift"):
        top, steps, each = (
            (rng.uniform(1.5, 2.2), 6, 600.0) if shape == "ramp" else (1.7, 12, 900.0)
        )
        events = [
            DemandEvent(shape, start + k * each, each, 1 + (top - 1) * (k + 1) / steps)
            for k in range(steps)
        ]
        events.append(DemandEvent(shape, start + steps * each, 3600, top))
        return tuple(events)
    return ()


@dataclass
class Held:
    """When a condition started to hold, and the starts of its held runs (after ``HOLD``)."""

    since: float | None = None
    starts: list[float] = field(default_factory=list)
    fired: bool = False

    def see(self, t: float, holds: bool) -> None:
        """Feed one poll."""
        if not holds:
            self.since, self.fired = None, False
            return
        if self.since is None:
            self.since = t
        if not self.fired and t - self.since >= HOLD:
            self.fired = True
            self.starts.append(self.since)


def straight_line(points: deque[tuple[float, float]], t: float) -> float | None:
    """The least-squares line through ``points`` (time, wait), read at ``t``."""
    if len(points) < 8:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return my
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my + slope * (t - mx)


@dataclass
class Day:
    """What one simulated day showed."""

    shape: str
    breach: float | None
    forecast: list[float]
    baseline: list[float]


def one_day(seed: int, agents: int, rate: float, handle: float) -> Day:
    """Simulate a day up to its first breach (or its end) and collect the alarm starts."""
    rng = random.Random(seed)
    shape = SHAPES[seed % len(SHAPES)]
    params = LineParams(agents=agents, arrivals_per_hour=rate, handle_time=handle, window=300,
                        patience=PATIENCE,
                        events=surge(shape, rng), day_offset=8 * 3600)  # fmt: skip
    sim = LineSim(params, seed=seed)
    tracker = CapacityTracker()
    inputs = CapacityInputs(TARGET, forecast_within=HORIZON)
    breach, forecast, baseline = Held(), Held(), Held()
    recent: deque[tuple[float, float]] = deque()
    t = 0.0
    while t < DAY and not breach.starts:
        t += POLL
        sim.advance_to(t)
        s = sim.stats()
        row = QueueStats(
            line="l", at=T0 + timedelta(seconds=t), calls_waiting=s.calls_waiting,
            avg_wait=s.avg_wait, agents_staffed=s.agents_staffed, offered=s.offered,
            window=s.window, avg_handle_time=s.avg_handle_time,
        )  # fmt: skip
        out = tracker.observe(row, inputs)
        if s.avg_wait is not None:
            recent.append((t, s.avg_wait))
        while recent and recent[0][0] < t - FIT:
            recent.popleft()
        if t < WARMUP:
            continue
        breach.see(t, s.avg_wait is not None and s.avg_wait > TARGET)
        ahead = straight_line(recent, t + HORIZON)
        forecast.see(t, out.forecast_wait is not None and out.forecast_wait > TARGET)
        baseline.see(t, ahead is not None and ahead > TARGET)
    first = breach.starts[0] if breach.starts else None
    return Day(shape, first, forecast.starts, baseline.starts)


def _episodes(starts: list[float]) -> list[float]:
    """Alarm starts, a start within ``MERGE`` of the one before folded into it (a flapping
    alarm is one alarm to the duty manager: they are already looking)."""
    out: list[float] = []
    for a in starts:
        if not out or a - out[-1] > MERGE:
            out.append(a)
    return out


def score(days: list[Day], alarms: str) -> dict[str, float]:
    """Lead time, miss rate and false alarms of one method over the days."""
    leads: list[float] = []
    misses = breaches = false = starts = quiet = quiet_alarmed = 0
    for d in days:
        onsets = _episodes([a for a in getattr(d, alarms) if d.breach is None or a < d.breach])
        starts += len(onsets)
        if d.breach is None:
            quiet += 1
            quiet_alarmed += bool(onsets)
            false += len(onsets)
            continue
        breaches += 1
        early = [a for a in onsets if d.breach - a <= LOOKBACK]
        false += len(onsets) - len(early)
        if early:
            leads.append((d.breach - early[0]) / 60)
        else:
            misses += 1
    return {
        "lead": statistics.median(leads) if leads else float("nan"),
        "miss": misses / breaches if breaches else float("nan"),
        "false": false / starts if starts else 0.0,
        "quiet": quiet_alarmed / quiet if quiet else float("nan"),
        "breaches": breaches,
        "quiet_days": quiet,
    }


HEADER = (
    "| line | alarm | median lead before the breach | missed breaches | false alarms (not "
    "followed by a breach within the hour) | days without a breach that alarmed |\n"
    "|---|---|---:|---:|---:|---:|"
)


def main() -> None:
    """Run the days for each line size, print and write the table."""
    days_n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    began = time.perf_counter()
    rows, counts = [], []
    for label, agents, rate, handle in SIZES:
        days = [one_day(seed, agents, rate, handle) for seed in range(days_n)]
        for method, key in (
            ("forecast (queueing model)", "forecast"),
            ("straight line", "baseline"),
        ):
            r = score(days, key)
            rows.append(
                f"| {label} | {method} | {r['lead']:.1f} min | {r['miss']:.0%} | "
                f"{r['false']:.0%} | {r['quiet']:.0%} |"
            )
        shapes = {
            sh: sum(1 for d in days if d.shape == sh and d.breach is not None) for sh in SHAPES
        }
        counts.append(
            f"{label}: {r['breaches']} days breached ("
            + ", ".join(f"{k} {v}" for k, v in shapes.items())
            + f"), {r['quiet_days']} did not"
        )
    took = time.perf_counter() - began
    body = f"""{machine()}

`benchmarks/forecast.py`: {days_n} seeded simulated days for each of two lines (callers
abandon; 5-minute window polled every 15 s; target 3 min): a fifth of the days calm, the
rest with a step, ramp, spike or slow drift in demand at a random hour. Breach: the
reported average wait above target for a minute. Both alarms must hold a minute and look
15 minutes ahead. {"; ".join(counts)}. {took:.0f} s in all.

{HEADER}
{chr(10).join(rows)}

A miss is a breach with no alarm in the hour before it. Reproduce:
`.venv/bin/python benchmarks/forecast.py {days_n}`."""
    print(body)
    write_section("Forecast", body)


if __name__ == "__main__":
    main()
