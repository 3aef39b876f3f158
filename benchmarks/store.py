"""Benchmark the state store: one evaluation tick's commit, as the daemon makes it.

Each tick commits every changed line state, its events and its outbox orders in one
transaction. Measured for 6 lines (the demo) and 50 lines (a large centre), on a real
SQLite file in WAL mode. Best of several runs, ``time.perf_counter``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.domain.model import Action, Cause, LineState, ResponseOrder, TierChanged
from risingtide.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

TICKS = 300
RUNS = 3
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def once(lines: int) -> float:
    """Milliseconds per tick: every line's state, one event and one order per line."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "state.sqlite", FakeClock(T0))
        try:
            started = time.perf_counter()
            for tick in range(TICKS):
                now = T0 + timedelta(seconds=5 * tick)
                names = [f"line{i}" for i in range(lines)]
                states = [LineState(line=n, tier=1, entered_at=now, episode=tick) for n in names]
                events = [
                    TierChanged(n, now, 0, 1, Cause.RAISED, "avg_wait 400s > 180s", tick)
                    for n in names
                ]
                orders = [
                    ResponseOrder(f"{n}/{tick}/notify", n, "notify", Action.APPLY, 1, tick,
                                  "tier_changed", now, "entering tier 1")
                    for n in names
                ]  # fmt: skip
                store.commit(states, events, orders)
            return (time.perf_counter() - started) * 1000 / TICKS
        finally:
            store.close()


def run() -> dict[str, float]:
    """Best of ``RUNS`` for 6 and 50 lines: ms per tick."""
    return {f"lines_{n}_ms": min(once(n) for _ in range(RUNS)) for n in (6, 50)}


def main() -> None:
    """Run the benchmark, print the figures and update RESULTS.md."""
    f = run()
    print(f"store: 6 lines {f['lines_6_ms']:.2f} ms/tick, 50 lines {f['lines_50_ms']:.2f} ms/tick")
    write_section(
        "Store",
        f"{machine()}\n\n"
        f"`benchmarks/store.py`: {TICKS} evaluation ticks, each committing every line's state, "
        "one tier change and one outbox order per line in one SQLite transaction (WAL). "
        f"Best of {RUNS} runs.\n\n"
        "| lines per tick | ms per tick (commit) |\n|---:|---:|\n"
        f"| 6 | {f['lines_6_ms']:.2f} |\n| 50 | {f['lines_50_ms']:.2f} |\n\n"
        "Reproduce: `.venv/bin/python benchmarks/store.py`.",
    )


if __name__ == "__main__":
    main()
