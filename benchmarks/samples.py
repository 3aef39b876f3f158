"""Benchmark the samples around episodes and reading an episode back.

* **observe**: one poll's figures for 10,000 lines into the in-memory ring (the runtime's
  hook on every poll), without a flush.
* **flush**: 10,000 lines all in an episode: one minute's samples written to the store in
  one transaction (the worst minute: every line in flood).
* **episode**: building one episode's whole story (a two-hour episode of one line, with its
  history among 50 lines' and 150 kept samples) as ``GET /api/v1/episodes/{id}`` does.

Real SQLite files in WAL mode; ``time.perf_counter``; min / median / max of several runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.config.model import Config
from risingtide.domain.model import Cause, LineState, QueueStats, TierChanged
from risingtide.episodes import build_episode, find_episode
from risingtide.samples import Sample, SampleRecorder
from risingtide.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

LINES = 10_000
RUNS = 5
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Daemon:
    """What the recorder reads from the runtime."""

    config: Config
    store: Store | None
    clock: FakeClock
    states: dict[str, LineState] = field(default_factory=dict)


def big_config(lines: int) -> Config:
    """The demo config with ``lines`` copies of its Council Tax line."""
    demo = load_config(ROOT / "config" / "rising-tide.yaml")
    lc = demo.lines["council_tax"]
    from dataclasses import replace

    return replace(demo, lines={f"l{i}": replace(lc, id=f"l{i}") for i in range(lines)})


def stats(line: str, at: datetime) -> QueueStats:
    return QueueStats(line=line, at=at, avg_wait=400.0, longest_wait=700.0, calls_waiting=12,
                      agents_staffed=30, offered=180, answered=150, abandoned=30, window=900.0,
                      avg_handle_time=300.0)  # fmt: skip


def observe_and_flush(config: Config) -> tuple[float, float]:
    """(ms for one observe of every line, ms for one flush of every line)."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(T0)
        with Store(Path(tmp) / "state.sqlite", clock) as store:
            d = Daemon(config, None, clock)
            d.states = {n: LineState(n, tier=3, entered_at=T0, episode=1) for n in config.lines}
            rec = SampleRecorder()
            poll = {n: stats(n, clock.now()) for n in config.lines}
            started = time.perf_counter()
            rec.observe(d, poll)  # no store yet: the ring alone
            observed = time.perf_counter() - started
            started = time.perf_counter()
            written = rec.flush(store, d.states)
            flushed = time.perf_counter() - started
            assert written == len(config.lines)
    return observed * 1000, flushed * 1000


def episode_build(config: Config) -> float:
    """ms to build one two-hour episode's story from a store holding 50 lines' history."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(T0)
        with Store(Path(tmp) / "state.sqlite", clock) as store:
            for minute in range(120):
                at = T0 + timedelta(minutes=minute)
                events = [
                    TierChanged(f"l{i}", at, minute % 3, (minute + 1) % 3 or 1, Cause.RAISED,
                                "avg_wait 400s > 300s", 1)
                    for i in range(50)
                ]  # fmt: skip
                store.commit([], events, [])
            store.commit([], [TierChanged("l0", T0 + 121 * timedelta(minutes=1), 1, 0,
                                          Cause.LOWERED, "calm", 1)], [])  # fmt: skip
            rows = [("l0", T0 + timedelta(minutes=m), Sample(at=T0).figures())
                    for m in range(-15, 135)]  # fmt: skip
            store.write_samples(rows)
            ref = find_episode(store, "l0", 1)
            assert ref is not None
            started = time.perf_counter()
            ep = build_episode(store, ref, T0 + timedelta(hours=3), config)
            took = time.perf_counter() - started
            assert len(ep.samples) == 150
    return took * 1000


def spread(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main() -> None:
    """Run the benchmark, print the figures and update RESULTS.md."""
    config = big_config(LINES)
    pairs = [observe_and_flush(config) for _ in range(RUNS)]
    observe = [o for o, _ in pairs]
    flush = [f for _, f in pairs]
    build = [episode_build(big_config(50)) for _ in range(RUNS)]
    print(f"samples: observe {spread(observe)} ms, flush {spread(flush)} ms, "
          f"episode {spread(build)} ms (min / median / max)")  # fmt: skip
    write_section(
        "Samples and episodes",
        f"{machine()}\n\n"
        f"`benchmarks/samples.py`, {RUNS} runs, min / median / max:\n\n"
        "| what | ms |\n|---|---:|\n"
        f"| one poll of {LINES:,} lines into the in-memory ring | {spread(observe)} |\n"
        f"| one minute's flush, {LINES:,} lines in an episode, one transaction | "
        f"{spread(flush)} |\n"
        "| one two-hour episode's whole story (50 lines' history, 150 samples) | "
        f"{spread(build)} |\n\n"
        "The flush is the worst minute (every line in flood, each sample with Erlang C "
        "worked out, most of its time); the daemon makes it in a worker thread, so its event "
        "loop only pays for the ring. A calm centre writes nothing. No reference system "
        "(Prometheus, Alertmanager) keeps an episode view to compare with. "
        "Reproduce: `.venv/bin/python benchmarks/samples.py`.",
    )


if __name__ == "__main__":
    main()
