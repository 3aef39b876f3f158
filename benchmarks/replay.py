"""Benchmark replay: a month of history, rows per second.

Two sections of RESULTS.md:

- **Replay**: a CSV of 30 days × 6 lines at one row a minute (259,200 rows, a random walk
  from calm to flood and back) through the demo config: ``risingtide.replay.replay`` over
  ``read_rows`` (parse + engine + planner), and the engine alone over rows already parsed.
  Best of several runs, ``time.perf_counter``.
- **Replay at scale (30 days × 20 lines)**: the file of ``make_history.py`` (≈ 862,000 rows)
  with ``history-config.yaml``: the whole ``risingtide replay`` command as a subprocess
  (wall time, rows/s, peak RSS by ``getrusage(RUSAGE_CHILDREN)``), its start-up (the same
  command on a one-row file), ``read_line_rows`` (rows/s, peak RSS, in a fresh process),
  ``marks()`` over every line, and the CSV readers we could have used, side by side.
  min / median / max over ``RUNS`` runs. Add a command to ``END_TO_END`` (or call
  ``end_to_end_row``) to put another ``risingtide replay`` beside today's.

The aim is at least 200,000 rows a second end to end, start-up under 0.5 s, RSS under 150 MB.

    .venv/bin/python benchmarks/replay.py            # both sections
    .venv/bin/python benchmarks/replay.py --scale    # only the one at scale
"""

from __future__ import annotations

import csv
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.config import load_config
from risingtide.replay import replay
from risingtide.sources.csv_file import read_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
DAYS = 30
RUNS = 3
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def write_month(path: Path, lines: list[str]) -> int:
    """A month of one-minute rows per line; returns the row count."""
    rng = random.Random(2026)
    wait = dict.fromkeys(lines, 60.0)
    rows = 0
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        header = ["time", "line", "calls_waiting", "avg_wait", "longest_wait",
                  "agents_available", "offered", "answered", "abandoned", "window"]  # fmt: skip
        out.writerow(header)
        for minute in range(DAYS * 24 * 60):
            at = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
            for line in lines:
                w = min(1500.0, max(0.0, wait[line] + rng.gauss(0, 12)))
                wait[line] = w * 0.995 + 60 * 0.005  # drifts back towards calm
                offered = 60 + rng.randrange(40)
                abandoned = int(offered * min(0.5, w / 3000))
                out.writerow([at, line, int(w / 15), round(w, 1), round(w * 1.6, 1),
                              max(0, 6 - int(w / 120)), offered, offered - abandoned,
                              abandoned, 900])  # fmt: skip
                rows += 1
    return rows


def run() -> dict[str, float]:
    """Rows per second through replay (parse + engine) and through the engine alone."""
    config = load_config(ROOT / "config" / "rising-tide.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "month.csv"
        rows = write_month(path, list(config.lines))
        full = min(_timed(lambda: replay(config, read_rows(path))) for _ in range(RUNS))
        parsed = list(read_rows(path))
        engine = min(_timed(lambda: replay(config, parsed)) for _ in range(RUNS))
        parse = min(_timed(lambda: sum(1 for _ in read_rows(path))) for _ in range(RUNS))
        changes = sum(s.tier_changes for s in replay(config, parsed).summaries.values())
    return {
        "rows": float(rows),
        "replay_rows_per_second": rows / full,
        "engine_rows_per_second": rows / engine,
        "parse_rows_per_second": rows / parse,
        "replay_seconds": full,
        "tier_changes": float(changes),
    }


def _timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks, print the figures and update RESULTS.md."""
    import argparse

    ap = argparse.ArgumentParser(description="replay benchmarks")
    ap.add_argument("--scale", action="store_true", help="only the 30 days × 20 lines section")
    args = ap.parse_args(argv)
    if not args.scale:
        month()
    from replay_scale import main as at_scale

    at_scale()


def month() -> None:
    """The 30 days × 6 lines section."""
    f = run()
    print(
        f"replay: {f['rows']:,.0f} rows in {f['replay_seconds']:.2f} s — "
        f"{f['replay_rows_per_second']:,.0f} rows/s (engine alone "
        f"{f['engine_rows_per_second']:,.0f}/s, parsing alone {f['parse_rows_per_second']:,.0f}/s)"
    )
    write_section(
        "Replay",
        f"{machine()}\n\n"
        f"`benchmarks/replay.py`: {DAYS} days × 6 lines of one-minute rows "
        f"({f['rows']:,.0f} rows, {f['tier_changes']:,.0f} tier changes) through the demo "
        f"config. Best of {RUNS} runs. Aim: ≥ 200,000 rows/s.\n\n"
        "| stage | rows /s |\n|---|---:|\n"
        f"| `risingtide replay` work: parse CSV + engine + planner | "
        f"{f['replay_rows_per_second']:,.0f} |\n"
        f"| engine + planner on parsed rows | {f['engine_rows_per_second']:,.0f} |\n"
        f"| parsing the CSV alone (`read_rows`) | {f['parse_rows_per_second']:,.0f} |\n\n"
        f"A month of a six-line centre replays in {f['replay_seconds']:.1f} s.\n\n"
        "Reproduce: `.venv/bin/python benchmarks/replay.py`.",
    )


if __name__ == "__main__":
    main()
