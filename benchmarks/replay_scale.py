"""Replay at scale: 30 days × 20 lines of one-minute rows (see ``replay.py``'s docstring).

Every figure is min / median / max over ``RUNS`` runs, each in a fresh process where memory
or start-up counts. ``END_TO_END`` lists the ``risingtide replay`` commands timed end to
end; the lead adds the event-driven walker's command there (or calls ``end_to_end_row``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_history import DEFAULT_OUT, write_history
from results import machine, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

RUNS = 3
CONFIG = HERE / "history-config.yaml"
PYTHON = sys.executable
RISINGTIDE = str(Path(PYTHON).with_name("risingtide"))

#: (label, argv before the CSV path) of each ``risingtide replay`` timed end to end.
END_TO_END: list[tuple[str, list[str]]] = [
    ("`risingtide replay`: columns, only the rows that can change anything, and deadlines",
     [RISINGTIDE, "replay", "-c", str(CONFIG)]),
    ("the same with `--jobs 2`", [RISINGTIDE, "replay", "-c", str(CONFIG), "--jobs", "2"]),
]  # fmt: skip

#: The figure before the event-driven walk (commit 51ca537: ``read_rows``, every row
#: evaluated), measured by this script on 2026-12-06 at a load of 7–12 on 2 cores; CPU
#: seconds were not recorded then.
BEFORE = (
    "| before (`51ca537`: `read_rows`, every row evaluated) | 8.55 / 8.56 / 8.81 | — | "
    "97,825 / 100,750 / 100,820 | — | 1.01 / 1.02 / 1.17 | 93 / 93 / 94 |"
)


@dataclass(frozen=True, slots=True)
class Spread:
    """min / median / max of some runs."""

    low: float
    mid: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values``."""
        return cls(min(values), statistics.median(values), max(values))

    def show(self, fmt: str = "{:,.0f}") -> str:
        """``low / mid / high`` in ``fmt``."""
        return " / ".join(fmt.format(v) for v in (self.low, self.mid, self.high))

    def per(self, rows: int) -> Spread:
        """Rows per second for these times (the fastest run gives the highest rate)."""
        return Spread(rows / self.high, rows / self.mid, rows / self.low)


# A child that runs a command and reports its wall time and its own child's peak RSS:
# getrusage(RUSAGE_CHILDREN) is the largest of all children waited for, so each measured
# command gets a fresh parent.
_TIMER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
if done.returncode:
    sys.exit(done.stderr.decode()[-2000:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": wall, "rss_mb": usage.ru_maxrss / 1024, "cpu": cpu}))
"""


def timed_command(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one run of ``argv`` in a fresh process.

    CPU seconds (user + system, all processes of the command) are what one core spends: on
    a shared machine the wall time also counts the waits for a core.
    """
    out = subprocess.run(
        [PYTHON, "-c", _TIMER, *argv], capture_output=True, text=True, check=True, env=env
    ).stdout
    figures = json.loads(out)
    return figures["seconds"], figures["rss_mb"], figures["cpu"]


def spread_of_runs(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> tuple[Spread, Spread, Spread]:
    """Seconds, peak RSS and CPU seconds of ``RUNS`` runs of ``argv``."""
    runs = [timed_command(argv, env) for _ in range(RUNS)]
    return tuple(Spread.of([r[k] for r in runs]) for k in range(3))  # type: ignore[return-value]


def end_to_end_row(label: str, argv: Sequence[str], history: Path, one_row: Path, rows: int) -> str:
    """One table row: a ``risingtide replay`` command on the history and on one row."""
    seconds, rss, cpu = spread_of_runs([*argv, str(history)])
    startup, _, _ = spread_of_runs([*argv, str(one_row)])
    return (
        f"| {label} | {seconds.show('{:.2f}')} | {cpu.show('{:.2f}')} | "
        f"{seconds.per(rows).show()} | {cpu.per(rows).show()} | "
        f"{startup.show('{:.2f}')} | {rss.show('{:.0f}')} |"
    )


# Each reader in a fresh process: import time, parse time, rows, peak RSS (MB).
_READERS = {
    "numpy (ours): `read_line_rows`": """
import numpy
import risingtide.replay_csv
from risingtide.replay_rows import read_line_rows
rows = read_line_rows(PATH)[1]
""",
    "Python `csv` loop: `read_rows` (today)": """
from risingtide.sources.csv_file import read_rows
rows = sum(1 for _ in read_rows(PATH))
""",
    "pyarrow `csv.read_csv`, one thread": """
import pyarrow.csv as pcsv
table = pcsv.read_csv(PATH, read_options=pcsv.ReadOptions(use_threads=False))
rows = table.num_rows
""",
    "polars `read_csv`, one thread": """
import polars as pl
rows = pl.read_csv(PATH).height
""",
}
# Every reader starts from what ``risingtide replay`` has loaded anyway (its CSV module and
# so pydantic): the import column is the reader's own cost.
_READER = """
import json, resource, sys, time
import risingtide.sources.csv_file
PATH = sys.argv[1]
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{parse}
t2 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"import": t1 - t0, "parse": t2 - t1, "rows": rows, "rss_mb": rss}}))
"""


def reader_rows(history: Path) -> list[str]:
    """A table row per CSV reader: import time, rows/s, peak RSS; or why it was skipped."""
    out = []
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for label, code in _READERS.items():
        lines = code.strip().splitlines()
        imports = "\n".join(x for x in lines if x.startswith(("import", "from")))
        parse = "\n".join(x for x in lines if not x.startswith(("import", "from")))
        script = _READER.format(imports=imports, parse=parse)
        runs = []
        for _ in range(RUNS):
            done = subprocess.run(
                [PYTHON, "-c", script, str(history)], capture_output=True, text=True, env=env
            )
            if done.returncode:
                break
            runs.append(json.loads(done.stdout))
        if not runs:
            out.append(f"| {label} | not installed here | | | |")
            continue
        rows = runs[0]["rows"]
        imp = Spread.of([r["import"] for r in runs])
        parse_s = Spread.of([r["parse"] for r in runs])
        rss = Spread.of([r["rss_mb"] for r in runs])
        out.append(
            f"| {label} | {imp.show('{:.2f}')} | {parse_s.per(rows).show()} | "
            f"{rss.show('{:.0f}')} | {rows:,} |"
        )
    return out


def marks_rate(history: Path) -> tuple[Spread, int, Spread]:
    """``read_line_rows`` once, then ``marks()`` over every line: rows/s and marks; and the
    in-process read rows/s."""
    sys.path.insert(0, str(ROOT))
    from risingtide.config import load_config
    from risingtide.replay_rows import read_line_rows

    config = load_config(CONFIG)
    reads, times = [], []
    lines: dict[str, object] = {}
    rows = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        lines, rows = read_line_rows(history)
        reads.append(time.perf_counter() - started)
    marks = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        marks = sum(
            len(lr.marks(config.lines[name].framework))  # type: ignore[attr-defined]
            for name, lr in lines.items()
        )
        times.append(time.perf_counter() - started)
    return Spread.of(times).per(rows), marks, Spread.of(reads).per(rows)


def main(history: Path = DEFAULT_OUT, make: Callable[..., int] = write_history) -> None:
    """Make the history if missing, measure, print, and write the RESULTS.md section."""
    if not history.exists():
        make(history)
    rows = sum(1 for _ in history.open("rb")) - 1
    one_row = history.with_name("one-row.csv")
    with history.open() as src, one_row.open("w") as dst:
        dst.write(src.readline() + src.readline())
    if not shutil.which(RISINGTIDE):
        raise SystemExit(f"{RISINGTIDE} not found: run `make install-test` first")
    e2e = [end_to_end_row(label, argv, history, one_row, rows) for label, argv in END_TO_END]
    readers = reader_rows(history)
    marks, count, in_process = marks_rate(history)
    body = "\n".join(
        [
            machine(),
            "",
            f"`benchmarks/replay.py` (`replay_scale.py`) on `make_history.py`'s file: 30 days × "
            f"20 lines of one-minute rows ({rows:,} rows, {history.stat().st_size / 2**20:.0f} "
            "MiB; half the lines on office hours, reporting zeros when closed), config "
            "`benchmarks/history-config.yaml`. Every figure is min / median / max over "
            f"{RUNS} runs, each command in a fresh process. Aim: ≥ 200,000 rows/s end to "
            "end, start-up < 0.5 s, peak RSS < 150 MB.",
            "",
            "| end to end | wall s | CPU s | rows /s (wall) | rows /s (CPU) | "
            "start-up s (1-row file) | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
            BEFORE,
            *e2e,
            "",
            "Reading the file (each reader in a fresh process that has already imported "
            "`risingtide.sources.csv_file`, as `risingtide replay` has; import s is the "
            "reader's own; peak RSS includes everything):",
            "",
            "| reader | import s | rows /s | peak RSS MB | rows |",
            "|---|---:|---:|---:|---:|",
            *readers,
            "",
            "pyarrow and polars parse into one table with inferred types; ours also splits "
            "the rows per line, drops out-of-order rows and checks every cell as `read_rows` "
            "would (falling back to it for anything else). Importing pyarrow or polars "
            "costs 55–70 MB of RSS before a row is read.",
            "",
            f"In one process: `read_line_rows` {in_process.show()} rows/s; `marks()` over all "
            f"20 lines of `history-config.yaml`'s framework {marks.show()} rows/s "
            f"({count:,} marks: the rows an event-driven walker must look at, "
            f"{count / rows:.1%} of them).",
            "",
            "Reproduce: `.venv/bin/python benchmarks/replay.py --scale` (writes "
            "`benchmarks/.data/history.csv` first if it is missing).",
        ]
    )
    print(body)
    write_section("Replay at scale (30 days × 20 lines)", body)


if __name__ == "__main__":
    main()
