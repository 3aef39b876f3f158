"""Benchmark the pure tier engine: evaluations per second on one core.

Builds a 4-tier framework like DESIGN.md's (avg_wait above 180/300/600/900 s with
for/clear durations, abandonment in tier 2, longest wait in tier 4), feeds it a random-walk
stats stream (one new observation every 15 s, with occasional gaps), and times
``evaluate`` alone and ``evaluate`` + ``plan``. Best of several runs, ``time.perf_counter``.

``run()`` returns the figures; run as a script (or through ``benchmarks/run.py``) it prints
them and rewrites the ``## Engine`` section of ``benchmarks/RESULTS.md``, keeping the rest.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.domain.model import (
    AnyOf,
    Compare,
    EscalationStep,
    Framework,
    LineState,
    Measure,
    Op,
    QueueStats,
    Tier,
)
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, initial_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import RESULTS, machine, write_section

EVALUATIONS = 100_000
RUNS = 5
# Hourly target average waits (s) and how often each comes up: calm half the time, a
# rising tide a fifth, high water, a flood and a major incident now and then.
WEATHER = (90.0, 130.0, 220.0, 400.0, 700.0, 1000.0)
WEATHER_WEIGHTS = (30, 20, 20, 15, 10, 5)
SWITCHES = frozenset({"callback_on", "ivr_deflection", "webchat_open"})


def framework() -> Framework:
    """The default 4-tier "rising tide" framework for a 180 s target."""

    def above(measure: Measure, value: float) -> Compare:
        return Compare(measure, Op.ABOVE, value)

    def below(measure: Measure, value: float) -> Compare:
        return Compare(measure, Op.BELOW, value)

    m = timedelta(minutes=1)
    return Framework(
        name="standard",
        tiers=(
            Tier(
                level=1, name="rising", when=above("avg_wait", 180), for_=5 * m,
                clear=below("avg_wait", 144), clear_for=10 * m,
                responses=("notify_duty_manager", "callback_on"),
                repeat_every=30 * m, repeat_responses=("notify_duty_manager",),
            ),
            Tier(
                level=2, name="high",
                when=AnyOf((above("avg_wait", 300), above("abandon_rate", 0.10))),
                for_=5 * m,
                clear=AnyOf((below("avg_wait", 240),)), clear_for=10 * m,
                responses=("notify_duty_manager", "page_surge_staff", "ivr_deflection"),
                repeat_every=20 * m, repeat_responses=("notify_duty_manager",),
                escalation=(EscalationStep(after=30 * m, responses=("notify_head_of_service",)),),
            ),
            Tier(
                level=3, name="flood", when=above("avg_wait", 600), for_=2 * m,
                clear=below("avg_wait", 480), clear_for=10 * m,
                responses=("notify_senior_managers", "call_casual_bank", "webchat_open"),
                repeat_every=15 * m, repeat_responses=("notify_senior_managers",),
            ),
            Tier(
                level=4, name="major incident",
                when=AnyOf((above("avg_wait", 900), above("longest_wait", 1200))),
                for_=1 * m,
                clear=below("avg_wait", 720), clear_for=15 * m,
                responses=("notify_service_director", "declare_incident"),
                repeat_every=10 * m, repeat_responses=("notify_service_director",),
            ),
        ),
    )  # fmt: skip


def stream(
    n: int, *, evaluate_every: int = 15, poll_every: int = 15, seed: int = 7
) -> list[tuple[datetime, QueueStats | None]]:
    """``n`` (now, stats) pairs, one per evaluation every ``evaluate_every`` seconds, with a
    new observation every ``poll_every`` seconds (the same object in between, as the
    runtime passes the latest stats): a mean-reverting random walk of the average wait under
    hourly "weather", with the odd missed poll."""
    rng = random.Random(seed)
    t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    wait = 120.0
    target = 120.0
    per_hour = 3600 // poll_every
    polls = 0
    out: list[tuple[datetime, QueueStats | None]] = []
    stats: QueueStats | None = None
    next_poll = t
    for _ in range(n):
        t += timedelta(seconds=evaluate_every)
        if t >= next_poll:
            next_poll += timedelta(seconds=poll_every)
            if polls % per_hour == 0:  # new weather every hour: mostly calm, now and then a flood
                target = rng.choices(WEATHER, weights=WEATHER_WEIGHTS)[0]
            polls += 1
            wait = max(0.0, wait + 0.05 * (target - wait) + rng.gauss(0, 12))
            if rng.random() >= 0.02:  # 2 % of polls fail: the previous stats stay
                stats = _observation(rng, t, wait)
        out.append((t, stats))
    return out


def _observation(rng: random.Random, at: datetime, wait: float) -> QueueStats:
    offered = rng.randint(80, 200)
    abandoned = int(offered * min(0.4, wait / 3000))
    return QueueStats(
        line="revenues",
        at=at,
        calls_waiting=int(wait / 30),
        avg_wait=wait,
        longest_wait=wait * 1.8,
        agents_available=rng.randint(0, 5),
        agents_staffed=30,
        offered=offered,
        answered=offered - abandoned,
        abandoned=abandoned,
        window=900.0,
    )


def _time_evaluate(fw: Framework, data: list[tuple[datetime, QueueStats | None]]) -> float:
    state: LineState = initial_state("revenues", fw)
    start = time.perf_counter()
    for now, stats in data:
        state = evaluate(fw, state, stats, now).state
    return time.perf_counter() - start


def _time_evaluate_plan(fw: Framework, data: list[tuple[datetime, QueueStats | None]]) -> float:
    state: LineState = initial_state("revenues", fw)
    start = time.perf_counter()
    for now, stats in data:
        decision = evaluate(fw, state, stats, now)
        state, _orders = plan(fw, SWITCHES, state, decision)
    return time.perf_counter() - start


def _profile(
    fw: Framework, data: list[tuple[datetime, QueueStats | None]]
) -> tuple[int, int, dict[int, int]]:
    """(tier changes, orders planned, evaluations spent at each tier) over the stream."""
    state: LineState = initial_state("revenues", fw)
    changes = orders = 0
    at_tier = dict.fromkeys(range(fw.max_level + 1), 0)
    for now, stats in data:
        decision = evaluate(fw, state, stats, now)
        changes += sum(1 for e in decision.events if e.kind == "tier_changed")
        state, planned = plan(fw, SWITCHES, state, decision)
        orders += len(planned)
        at_tier[state.tier] += 1
    return changes, orders, at_tier


def run(evaluations: int = EVALUATIONS, runs: int = RUNS) -> dict[str, float]:
    """Time the engine; return evaluations per second (best of ``runs``) and context.

    ``replay_*``: a new observation at every evaluation (replaying a stats file, the
    engine's hardest case). ``daemon_*``: evaluate every 5 s, poll every 15 s (the runtime's
    rhythm, where two evaluations in three see the same stats).
    """
    fw = framework()
    figures: dict[str, float] = {"evaluations": float(evaluations)}
    for mode, every, poll in (("replay", 15, 15), ("daemon", 5, 15)):
        data = stream(evaluations, evaluate_every=every, poll_every=poll)
        best_eval = min(_time_evaluate(fw, data) for _ in range(runs))
        best_plan = min(_time_evaluate_plan(fw, data) for _ in range(runs))
        changes, orders, at_tier = _profile(fw, data)
        figures[f"{mode}_evaluate_per_second"] = evaluations / best_eval
        figures[f"{mode}_evaluate_plan_per_second"] = evaluations / best_plan
        figures[f"{mode}_evaluate_us"] = best_eval / evaluations * 1e6
        figures[f"{mode}_evaluate_plan_us"] = best_plan / evaluations * 1e6
        figures[f"{mode}_tier_changes"] = float(changes)
        figures[f"{mode}_orders"] = float(orders)
        figures[f"{mode}_raised_share"] = 1 - at_tier[0] / evaluations
    return figures


def section(figures: dict[str, float]) -> str:
    """The body of the ``## Engine`` section of RESULTS.md for ``figures``."""
    rows = []
    for mode, label in (
        ("replay", "replay: new stats every evaluation"),
        ("daemon", "daemon: evaluate every 5 s, poll every 15 s"),
    ):
        rows.append(
            f"| {label} | {figures[f'{mode}_evaluate_per_second']:,.0f} "
            f"({figures[f'{mode}_evaluate_us']:.1f} µs) | "
            f"{figures[f'{mode}_evaluate_plan_per_second']:,.0f} "
            f"({figures[f'{mode}_evaluate_plan_us']:.1f} µs) | "
            f"{figures[f'{mode}_tier_changes']:,.0f} | {figures[f'{mode}_orders']:,.0f} | "
            f"{figures[f'{mode}_raised_share']:.0%} |"
        )
    return (
        f"{machine()}\n\n"
        "`benchmarks/engine.py`: the 4-tier framework of DESIGN.md (avg_wait > 180/300/600/900 s "
        "with for/clear durations, abandonment in tier 2, longest wait in tier 4, reminders and "
        f"an escalation step) over {figures['evaluations']:,.0f} evaluations of one line's "
        "random-walk stats stream (hourly weather from calm to major incident; "
        f"2 % missed polls). Best of {RUNS} runs, `time.perf_counter`.\n\n"
        "| stream | `evaluate` /s | `evaluate` + `plan` /s | tier changes | orders "
        "| time raised |\n"
        "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        "Reproduce: `.venv/bin/python benchmarks/engine.py`.\n"
    )


def main() -> None:
    """Run the benchmark, print the figures and update RESULTS.md."""
    figures = run()
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} cores, one used")
    for mode in ("replay", "daemon"):
        print(
            f"{mode:7} evaluate {figures[f'{mode}_evaluate_per_second']:>10,.0f}/s "
            f"({figures[f'{mode}_evaluate_us']:.2f} µs)   evaluate+plan "
            f"{figures[f'{mode}_evaluate_plan_per_second']:>10,.0f}/s "
            f"({figures[f'{mode}_evaluate_plan_us']:.2f} µs)   "
            f"{figures[f'{mode}_tier_changes']:.0f} tier changes, "
            f"{figures[f'{mode}_orders']:.0f} orders, raised {figures[f'{mode}_raised_share']:.0%}"
        )
    write_section("Engine", section(figures))
    print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
