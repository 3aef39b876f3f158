"""The pure half of the latency benchmark: flips matched to webhooks, figures, the aims.

``benchmarks/latency.py`` records two lists on one wall clock (``time.time()``): the
instants the feed flipped (to breach or to calm) and the instants webhooks arrived (Rising
Tide's APPLY / UNDO, Alertmanager's firing / resolved). Everything here is plain data in,
plain data out, so it can be tested without starting anything.

Each run is kept as a JSON record inside an HTML comment of its RESULTS.md section, so a
later run (the lead's, after the event-driven daemon lands) adds a row beside today's
instead of replacing it; a run of the same commit and poll interval replaces its old row.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: The two tools and the webhook kind each sends for a breach and for a clear.
TOOLS = ("risingtide", "alertmanager")
TOOL_NAMES = {"risingtide": "Rising Tide", "alertmanager": "Alertmanager"}
EXPECTED = {
    ("risingtide", "breach"): "rt_apply",
    ("risingtide", "clear"): "rt_undo",
    ("alertmanager", "breach"): "am_firing",
    ("alertmanager", "clear"): "am_resolved",
}
#: The issue's aims for our webhooks, by poll interval (s): (median at most, max at most).
AIMS: dict[int, tuple[float | None, float]] = {1: (0.6, 1.1), 15: (None, 15.1)}
RECORD_MARK = "latency-runs"


@dataclass(frozen=True)
class Flip:
    """The feed changed to ``kind`` (``breach`` or ``clear``) at ``at`` (epoch seconds)."""

    kind: str
    at: float


@dataclass(frozen=True)
class Arrival:
    """A webhook of ``kind`` (``rt_apply``, ``am_firing``…) arrived at ``at``."""

    kind: str
    at: float


def match(
    flips: Sequence[Flip], arrivals: Iterable[Arrival], bound: float
) -> dict[tuple[str, str], list[float | None]]:
    """Latency of each flip for each tool: (tool, flip kind) → seconds, None for a miss.

    A flip is answered by the first webhook of the expected kind that arrives after it,
    before the next flip and within ``bound`` seconds; a webhook arriving later is not
    counted for any flip (a late answer is a miss, never credited to the next trial).
    """
    ordered = sorted(arrivals, key=lambda a: a.at)
    out: dict[tuple[str, str], list[float | None]] = {key: [] for key in EXPECTED}
    for i, flip in enumerate(flips):
        until = flip.at + bound
        if i + 1 < len(flips):
            until = min(until, flips[i + 1].at)
        for tool in TOOLS:
            kind = EXPECTED[(tool, flip.kind)]
            hit = next((a.at for a in ordered if a.kind == kind and flip.at <= a.at < until), None)
            out[(tool, flip.kind)].append(None if hit is None else hit - flip.at)
    return out


def summary(latencies: Sequence[float | None]) -> dict[str, Any]:
    """min / median / max of the answered flips, and how many were missed."""
    got = [x for x in latencies if x is not None]
    misses = len(latencies) - len(got)
    if not got:
        return {"n": 0, "misses": misses, "min": None, "median": None, "max": None}
    return {
        "n": len(got),
        "misses": misses,
        "min": min(got),
        "median": statistics.median(got),
        "max": max(got),
    }


def aims_met(poll: int, ours: dict[str, dict[str, Any]]) -> list[tuple[str, bool]]:
    """The issue's aims at this poll interval for our breach and clear figures, each met or not.

    A miss fails every aim: a webhook that never came is not fast.
    """
    if poll not in AIMS:
        return []
    median_aim, max_aim = AIMS[poll]
    out: list[tuple[str, bool]] = []
    for direction in ("breach", "clear"):
        s = ours[direction]
        answered = s["n"] > 0 and s["misses"] == 0
        if median_aim is not None:
            ok = answered and s["median"] <= median_aim
            out.append((f"{direction} median ≤ {median_aim:g} s", ok))
        ok = answered and s["max"] <= max_aim
        out.append((f"{direction} max ≤ {max_aim:g} s", ok))
    return out


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, None when either is missing or theirs is 0."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def read_record(section_text: str) -> list[dict[str, Any]]:
    """The runs recorded in an earlier section (empty when there is none or it is unreadable)."""
    found = re.search(rf"<!-- {RECORD_MARK}: (.*?) -->", section_text, re.DOTALL)
    if not found:
        return []
    try:
        runs = json.loads(found.group(1))
    except json.JSONDecodeError:
        return []
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def merge_runs(old: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """``old`` with ``new`` added; a run of the same commit and poll interval is replaced."""
    key = (new["commit"], new["poll"])
    kept = [r for r in old if (r.get("commit"), r.get("poll")) != key]
    return [*kept, new]


def _sec(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _triple(s: dict[str, Any]) -> str:
    return f"{_sec(s['min'])} / {_sec(s['median'])} / {_sec(s['max'])}"


def runs_table(runs: Sequence[dict[str, Any]]) -> str:
    """One row per tool per run: breach and clear min / median / max, misses, ratio, aims."""
    head = (
        "| run | poll | tool | breach → webhook (s) min / median / max "
        "| clear → webhook (s) min / median / max | misses | median ratio (ours / AM) "
        "breach · clear | aims |\n|---|---:|---|---|---|---:|---|---|\n"
    )
    rows = []
    for run in runs:
        label = (
            f"`{run['commit']}` {run['date']}, {run['trials']} trials, "
            f"load {run['load'][0]:.2f} → {run['load'][1]:.2f}"
        )
        if run.get("evaluate_every"):
            label += f"; `evaluate_every` {run['evaluate_every']}"
        for tool in TOOLS:
            figs = run["figures"][tool]
            misses = figs["breach"]["misses"] + figs["clear"]["misses"]
            if tool == "risingtide":
                rb = ratio(
                    figs["breach"]["median"], run["figures"]["alertmanager"]["breach"]["median"]
                )
                rc = ratio(
                    figs["clear"]["median"], run["figures"]["alertmanager"]["clear"]["median"]
                )
                ratios = f"{_ratio(rb)} · {_ratio(rc)}"
                aims = aims_met(run["poll"], figs)
                aim_text = "; ".join(f"{name}: {'met' if ok else 'not met'}" for name, ok in aims)
            else:
                ratios, aim_text = "", ""
            rows.append(
                f"| {label} | {run['poll']} s | {TOOL_NAMES[tool]} | {_triple(figs['breach'])} "
                f"| {_triple(figs['clear'])} | {misses} | {ratios} | {aim_text} |"
            )
    return head + "\n".join(rows) + "\n"


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def record_comment(runs: Sequence[dict[str, Any]]) -> str:
    """The HTML comment that carries the runs to the next run (invisible when rendered)."""
    return f"<!-- {RECORD_MARK}: {json.dumps(list(runs), separators=(',', ':'))} -->"
