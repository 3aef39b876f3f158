"""Probe: poll the configured sources once and show what each line's stats look like.

The first thing anyone does when wiring a new platform: no engine, no store, no
responses — just "can we reach it, and do the figures make sense?".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from risingtide.clock import Clock, SystemClock
from risingtide.config.model import Config, LineConfig
from risingtide.domain.model import QueueStats
from risingtide.ports import BuildContext, SourceError, StatsSource
from risingtide.sources import SOURCE_TYPES


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One line's answer: its stats, or why there are none, and how long the poll took."""

    line: str
    source: str
    stats: QueueStats | None
    error: SourceError | None
    seconds: float


async def probe(
    config: Config, lines: Iterable[str] | None = None, clock: Clock | None = None
) -> list[ProbeResult]:
    """Poll, once each and concurrently, the sources serving ``lines`` (default: all)."""
    wanted = set(config.lines if lines is None else lines)
    unknown = wanted - set(config.lines)
    if unknown:
        raise KeyError(f"no such line: {', '.join(sorted(unknown))}")
    ctx = BuildContext(clock=clock or SystemClock())
    source_ids = sorted({config.lines[line].source for line in wanted})
    results = await asyncio.gather(
        *(_poll_one(config, sid, wanted, ctx) for sid in source_ids)
    )
    by_line = {r.line: r for batch in results for r in batch}
    return [by_line[line] for line in config.lines if line in by_line]


async def _poll_one(
    config: Config, source_id: str, wanted: set[str], ctx: BuildContext
) -> list[ProbeResult]:
    sc = config.sources[source_id]
    bound: dict[str, LineConfig] = config.lines_of(source_id)
    source: StatsSource = SOURCE_TYPES[sc.type].build(
        source_id, sc.settings, {lid: lc.source_params for lid, lc in bound.items()}, ctx
    )
    started = time.perf_counter()
    try:
        try:
            result = await asyncio.wait_for(source.poll(), sc.timeout.total_seconds())
        except TimeoutError:
            result = {line: SourceError("poll timed out", reason="timeout") for line in bound}
        except SourceError as exc:
            result = dict.fromkeys(bound, exc)
    finally:
        await source.aclose()
    seconds = time.perf_counter() - started
    out = []
    for line in bound:
        if line not in wanted:
            continue
        item = result.get(line, SourceError("the source returned nothing for this line",
                                            reason="parse"))  # fmt: skip
        if isinstance(item, SourceError):
            out.append(ProbeResult(line, source_id, None, item, seconds))
        else:
            out.append(ProbeResult(line, source_id, item, None, seconds))
    return out


_FIELDS = (
    ("calls_waiting", "waiting", ""),
    ("avg_wait", "avg wait", "s"),
    ("longest_wait", "longest", "s"),
    ("agents_available", "available", ""),
    ("agents_staffed", "staffed", ""),
    ("offered", "offered", ""),
    ("answered", "answered", ""),
    ("abandoned", "abandoned", ""),
    ("abandon_rate", "abandon %", "%"),
    ("window", "window", "s"),
    ("avg_handle_time", "handle", "s"),
)


def probe_text(results: list[ProbeResult]) -> str:
    """A table a person can read: one row per line; unknown figures show as ``–``."""
    header = ["LINE", "SOURCE", *(label for _, label, _ in _FIELDS), "AT / ERROR"]
    rows = [header]
    for r in results:
        if r.stats is None:
            assert r.error is not None
            rows.append([r.line, r.source, *("–" for _ in _FIELDS),
                         f"{r.error.reason}: {r.error}"])  # fmt: skip
            continue
        cells = []
        for name, _, unit in _FIELDS:
            value = getattr(r.stats, name)
            if value is None:
                cells.append("–")
            elif unit == "%":
                cells.append(f"{value * 100:.1f}%")
            elif unit == "s":
                cells.append(f"{value:.0f}s")
            else:
                cells.append(str(value))
        rows.append([r.line, r.source, *cells, r.stats.at.isoformat(timespec="seconds")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                     + "  " + row[-1])  # fmt: skip
    return "\n".join(lines) + "\n"
