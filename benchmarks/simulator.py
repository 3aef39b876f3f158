"""Benchmark the simulator: how fast it runs a council's lines, per simulated hour.

The demo config's six lines (the Council Tax line with its 3× demand event) are simulated
for one hour after a 30-minute warm-up, reading stats every 10 simulated seconds as the
daemon does. Best of several runs, ``time.perf_counter``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from risingtide.simulation import DemandEvent, LineParams, LineSim, line_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

RUNS = 5
WARMUP = 1800.0
HOUR = 3600.0
LINES = {  # agents, calls per hour, handle time (s)
    "council_tax": (30, 250.0, 300.0),
    "revenues": (20, 180.0, 330.0),
    "waste": (12, 110.0, 240.0),
    "adult_social_care": (10, 50.0, 480.0),
    "highways": (8, 60.0, 300.0),
    "helping_hands": (8, 50.0, 360.0),
}


def once() -> tuple[float, int]:
    """Seconds to simulate the demo centre for warm-up + one hour; callers simulated."""
    sims = []
    for name, (agents, rate, handle) in LINES.items():
        events = (
            (DemandEvent("Council Tax reminders", WARMUP - 240, 720, 3.0),)
            if name == "council_tax"
            else ()
        )
        params = LineParams(
            agents=agents, arrivals_per_hour=rate, handle_time=handle, patience=600.0,
            events=events,
        )  # fmt: skip
        sims.append(LineSim(params, line_seed(2026, name)))
    started = time.perf_counter()
    t = 0.0
    while t <= WARMUP + HOUR:
        for sim in sims:
            sim.advance_to(t)
            sim.stats()
        t += 10.0
    elapsed = time.perf_counter() - started
    callers = sum(sim.totals.offered + sim.totals.deflected for sim in sims)
    return elapsed, callers


def run() -> dict[str, float]:
    """Best of ``RUNS``: seconds per simulated 90 minutes, callers per second."""
    best = min(once() for _ in range(RUNS))
    elapsed, callers = best
    return {
        "seconds": elapsed,
        "callers": float(callers),
        "callers_per_second": callers / elapsed,
        "speedup": (WARMUP + HOUR) / elapsed,
    }


def main() -> None:
    """Run the benchmark, print the figures and update RESULTS.md."""
    f = run()
    print(
        f"simulator: {f['seconds'] * 1000:.1f} ms for 6 lines × 90 simulated minutes, "
        f"{f['callers']:.0f} callers, {f['callers_per_second']:,.0f} callers/s, "
        f"{f['speedup']:,.0f}× real time"
    )
    write_section(
        "Simulator",
        f"{machine()}\n\n"
        "`benchmarks/simulator.py`: the demo config's six lines (Council Tax with its 3× "
        "demand event) for a 30-minute warm-up plus one hour, stats read every 10 simulated "
        f"seconds. Best of {RUNS} runs.\n\n"
        "| simulated | wall time | callers | callers /s | faster than real time |\n"
        "|---|---:|---:|---:|---:|\n"
        f"| 6 lines × 90 min | {f['seconds'] * 1000:.1f} ms | {f['callers']:,.0f} | "
        f"{f['callers_per_second']:,.0f} | {f['speedup']:,.0f}× |\n\n"
        "Reproduce: `.venv/bin/python benchmarks/simulator.py`.",
    )


if __name__ == "__main__":
    main()
