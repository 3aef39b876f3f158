"""Make the replay benchmark's history: 30 days × 20 lines of one-minute rows, seeded.

    .venv/bin/python benchmarks/make_history.py [OUT.csv] [--days N] [--lines N] [--seed N]

Writes (by default) ``benchmarks/.data/history.csv`` — never committed — in the columns of
``docs/sources/csv.md`` (all twelve), rows in time order and, within a minute, line order,
as a platform's export would come. The same seed gives the same bytes.

What is in it:

- each line has its own size (agents, calls an hour, handle time, patience) and a noisy
  daily demand curve: a morning peak near 10:00 and a smaller one after lunch, quiet nights;
- a few **surges a week per line** (Poisson, 3 a week on average) of four shapes: a
  *spike* (a jump and a slow decay, like bills landing), a *plateau* (ramp up, hold, ramp
  down, like a storm day), a *ramp* (a climb that stops suddenly), and a *double* (two spikes
  40 minutes apart); each multiplies demand by 1.5–4×;
- the waiting figures follow demand through a lagging queue model, so waits rise and fall
  across tier thresholds and sometimes flap near them;
- about **0.2 % of rows are missing** at random, and a few cells are empty (unknown):
  ``longest_wait`` on ~0.1 % of rows, ``abandoned`` on ~0.05 %;
- **half the lines keep office hours** (the ``office`` calendar of ``history-config.yaml``:
  Monday–Friday 08:30–17:00, Saturday 09:00–12:00, Europe/London, closed on England and
  Wales bank holidays — the default 30 days from 27 April 2026 include the early May and
  spring bank holidays and run in BST). Their platform **keeps reporting all day**: outside
  hours a row of zeros (nobody staffed, nothing offered, so ``abandon_rate`` is unknown).
  That keeps the file at the issue's ≈ 864,000 rows; the engine ignores the closed hours.
  ``--office-rows open`` writes rows only while the line is open instead (≈ 536,000 rows),
  which is the harder case for a replay that must close lines with no row to do it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / ".data" / "history.csv"
START = datetime(2026, 4, 27, tzinfo=UTC)  # a Monday; BST; two bank holidays follow
LONDON = ZoneInfo("Europe/London")
HEADER = (
    "time,line,calls_waiting,avg_wait,longest_wait,agents_available,agents_staffed,"
    "offered,answered,abandoned,window,avg_handle_time"
)
WINDOW = 15  # minutes of calls counted in offered/answered/abandoned
SHAPES = ("spike", "plateau", "ramp", "double")


def line_ids(count: int) -> list[str]:
    """The lines' ids: ``line_01`` … ; the even-numbered ones keep office hours."""
    return [f"line_{i:02d}" for i in range(1, count + 1)]


def is_office(line: str) -> bool:
    """True for a line on the office calendar (every second line)."""
    return int(line.rsplit("_", 1)[1]) % 2 == 0


@dataclass(frozen=True, slots=True)
class Profile:
    """One line's size."""

    agents: int
    calls_per_hour: float
    handle: float  # seconds
    patience: float  # seconds


def profile(rng: np.random.Generator) -> Profile:
    """A random line size, loaded so that an ordinary peak sits near the targets."""
    agents = int(rng.integers(6, 31))
    handle = float(rng.uniform(240, 480))
    # At an ordinary peak the agents are 72–86 % busy: near the target, rarely over it.
    calls = agents * 3600 / handle * float(rng.uniform(0.72, 0.86))
    return Profile(agents, calls, handle, float(rng.uniform(300, 900)))


def open_mask(minutes: int, office: bool) -> np.ndarray:
    """Per minute from START: is the line open (always True off the office calendar)."""
    if not office:
        return np.ones(minutes, dtype=bool)
    days = {START.date() + timedelta(days=d) for d in range(minutes // 1440 + 2)}
    closed: set[date] = {
        d for d in holidays.country_holidays("GB", subdiv="ENG", years={d.year for d in days})
    }
    mask = np.zeros(minutes, dtype=bool)
    for m in range(minutes):
        local = (START + timedelta(minutes=m)).astimezone(LONDON)
        if local.date() in closed:
            continue
        hm = local.hour * 60 + local.minute
        wd = local.weekday()
        mask[m] = (wd < 5 and 510 <= hm < 1020) or (wd == 5 and 540 <= hm < 720)
    return mask


def local_hours(minutes: int) -> np.ndarray:
    """Per minute from START: the local (London) hour of day as a float."""
    out = np.empty(minutes)
    for m in range(0, minutes, 60):
        local = (START + timedelta(minutes=m)).astimezone(LONDON)
        out[m : m + 60] = local.hour + np.arange(min(60, minutes - m)) / 60
    return out


def daily_curve(hours: np.ndarray) -> np.ndarray:
    """Relative demand by hour: quiet nights, a morning peak, a smaller afternoon one."""
    morning = np.exp(-(((hours - 10.2) / 1.6) ** 2))
    afternoon = 0.75 * np.exp(-(((hours - 14.3) / 1.9) ** 2))
    return 0.06 + morning + afternoon


def surges(rng: np.random.Generator, minutes: int, hours: np.ndarray) -> np.ndarray:
    """A demand multiplier per minute: 1, with a few surges a week of various shapes."""
    mult = np.ones(minutes)
    n = int(rng.poisson(3 * minutes / (7 * 1440)))
    for _ in range(n):
        # Surges start in the working day (08:00–16:00 local), when people phone.
        start = int(rng.integers(0, minutes))
        start -= round((hours[start] - float(rng.uniform(8, 16))) * 60)
        start = max(0, min(minutes - 1, start))
        peak = float(rng.uniform(1.5, 4.0))
        length = int(rng.integers(20, 240))
        shape = SHAPES[int(rng.integers(0, len(SHAPES)))]
        t = np.arange(minutes - start, dtype=float)
        if shape == "spike":
            bump = (peak - 1) * np.exp(-t / max(1, length / 3))
        elif shape == "plateau":
            up = np.clip(t / 15, 0, 1)
            down = np.clip((length + 15 - t) / 15, 0, 1)
            bump = (peak - 1) * up * down
        elif shape == "ramp":
            bump = np.where(t < length, (peak - 1) * t / length, 0.0)
        else:
            first = np.exp(-t / 12)
            second = np.where(t >= 40, np.exp(-(t - 40) / 12), 0.0)
            bump = (peak - 1) * (first + 0.8 * second)
        mult[start:] += bump
    return mult


def waits(rho: np.ndarray, noise: np.ndarray, handle: float, agents: int) -> np.ndarray:
    """Average wait per minute (s): a queue that fills when busy, with lag and noise."""
    target = 1.5 * handle / agents * np.clip(rho, 0, None) / np.maximum(0.02, 1.0 - rho)
    target = np.minimum(target * noise, 2400.0)
    out = np.empty_like(target)
    w = 0.0
    for i, goal in enumerate(target.tolist()):
        # Queues fill faster than they empty.
        w += (goal - w) * (0.15 if goal > w else 0.07)
        out[i] = w
    return out


def line_columns(
    rng: np.random.Generator, minutes: int, hours: np.ndarray, office: bool
) -> dict[str, np.ndarray]:
    """Every column of one line, per minute from START."""
    p = profile(rng)
    is_open = open_mask(minutes, office)
    # Overnight the all-day lines keep a skeleton staff.
    staffed = (
        np.where(is_open, p.agents, 0)
        if office
        else np.where((hours >= 7.5) & (hours < 19), p.agents, max(2, p.agents // 5))
    )
    demand_h = p.calls_per_hour * daily_curve(hours) * surges(rng, minutes, hours)
    demand_h *= rng.lognormal(0, 0.12, minutes)
    demand_h = np.where(is_open, demand_h, 0.0)
    arrivals = rng.poisson(demand_h / 60)
    capacity_h = np.maximum(staffed, 1) * 3600 / p.handle
    rho = np.where(is_open, demand_h / capacity_h, 0.0)
    avg_wait = np.where(
        is_open, waits(rho, rng.lognormal(0, 0.08, minutes), p.handle, p.agents), 0.0
    )
    offered = np.convolve(arrivals, np.ones(WINDOW, dtype=np.int64))[:minutes]
    offered = np.where(is_open, offered, 0)
    p_abandon = np.clip(avg_wait / (p.patience * 2.5), 0, 0.6)
    abandoned = rng.binomial(offered, p_abandon)
    waiting_now = np.minimum(offered - abandoned, np.round(demand_h / 60 * avg_wait / 60))
    waiting_now = np.maximum(waiting_now, 0).astype(np.int64)
    answered = offered - abandoned - rng.binomial(waiting_now, 0.5)
    busy = np.minimum(staffed, np.round(staffed * np.minimum(rho, 1.0)))
    return {
        "calls_waiting": waiting_now,
        "avg_wait": avg_wait,
        "longest_wait": avg_wait * rng.uniform(1.4, 2.6, minutes),
        "agents_available": (staffed - busy).astype(np.int64),
        "agents_staffed": staffed.astype(np.int64),
        "offered": offered,
        "answered": np.maximum(answered, 0),
        "abandoned": abandoned,
        "avg_handle_time": np.where(is_open, p.handle + rng.normal(0, 20, minutes), 0.0),
        "open": is_open,
    }


def _cells(cols: dict[str, np.ndarray], rng: np.random.Generator, n: int) -> list[str]:
    """Each row's figure cells as one text (after time and line), a few of them unknown."""
    no_longest = (rng.random(n) < 0.001).tolist()
    no_abandoned = (rng.random(n) < 0.0005).tolist()
    staffed = cols["agents_staffed"].tolist()
    handle = cols["avg_handle_time"].tolist()
    text = [
        [str(v) for v in cols["calls_waiting"].tolist()],
        [f"{v:.1f}" for v in cols["avg_wait"].tolist()],
        _unless(no_longest, [f"{v:.1f}" for v in cols["longest_wait"].tolist()]),
        [str(v) for v in cols["agents_available"].tolist()],
        [str(v) for v in staffed],
        [str(v) for v in cols["offered"].tolist()],
        [str(v) for v in cols["answered"].tolist()],
        _unless(no_abandoned, [str(v) for v in cols["abandoned"].tolist()]),
        [str(WINDOW * 60)] * n,
        # Unknown when nobody is staffed (a closed line).
        _unless([s == 0 for s in staffed], [f"{max(0.0, v):.0f}" for v in handle]),
    ]  # fmt: skip
    return [",".join(row) for row in zip(*text, strict=True)]


def _unless(unknown: list[bool], cells: list[str]) -> list[str]:
    """The cells, empty where ``unknown``."""
    return ["" if gone else c for c, gone in zip(cells, unknown, strict=True)]


def write_history(
    out: Path, days: int = 30, lines: int = 20, seed: int = 2026, office_rows: str = "all"
) -> int:
    """Write the history CSV to ``out``; returns the number of data rows written."""
    minutes = days * 1440
    rng = np.random.default_rng(seed)
    hours = local_hours(minutes)
    ids = line_ids(lines)
    per_line = []
    for line in ids:
        cols = line_columns(rng, minutes, hours, is_office(line))
        keep = rng.random(minutes) >= 0.002  # ~0.2 % of rows missing
        if office_rows == "open" and is_office(line):
            keep &= cols["open"]
        per_line.append((line, _cells(cols, rng, minutes), keep.tolist()))
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with out.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER + "\n")
        for m in range(minutes):
            stamp = (START + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
            chunk = []
            for line, cells, keep in per_line:
                if keep[m]:
                    chunk.append(f"{stamp},{line},{cells[m]}\n")
            f.write("".join(chunk))
            rows += len(chunk)
    return rows


def main() -> None:
    """Parse the command line and write the file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--office-rows", choices=("all", "open"), default="all")
    args = ap.parse_args()
    rows = write_history(args.out, args.days, args.lines, args.seed, args.office_rows)
    size = args.out.stat().st_size / 2**20
    print(f"{args.out}: {rows:,} rows, {size:.1f} MiB ({math.ceil(rows / args.lines):,} a line)")


if __name__ == "__main__":
    main()
