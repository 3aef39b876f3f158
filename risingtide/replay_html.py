"""A replay (or two compared) as one self-contained HTML page with a chart per line.

The page works on a laptop with no network: uPlot's script and style sheet (vendored in
``risingtide/api/static``), the page's own script and every figure are inlined; nothing is
fetched from anywhere.

Each chart shows, over time in the line's calendar timezone:

- the average wait (minutes, left axis, solid blue line) and the abandonment (per cent of
  calls offered, right axis, dashed purple line), downsampled to at most ``MAX_POINTS``
  buckets per line, each keeping its bucket's highest figures so that peaks show, with a
  break wherever the line had no rows for longer than ``stale_alert_after`` (as the
  scores in ``replay_compare`` hold a figure);
- the tier in force as shaded bands (the duty board's tier colours);
- every threshold that can be read off the framework's conditions on ``avg_wait`` or
  ``abandon_rate``: a solid horizontal line where a tier is entered (a comparison in its
  ``when``) and a dashed one where it clears (in its ``clear``; the default clear, "not
  when", is the entry line itself). A comparison that is only part of a condition (``all:``
  with another measure) is still drawn; the legend under the chart says the whole condition;
- tier changes as vertical lines (solid going up, dashed going down) and responses as
  triangles along the top edge (filled: would run; hollow: would be undone). A line that
  changed tier more than ``MAX_MARKS`` times has these thinned to one per chart bucket,
  the bands keeping the highest tier of each bucket (``chart_marks``); where the marks would
  still be closer than 6 pixels on average, the chart leaves them out and the bands and
  the timeline table tell the story.

Every chart has a text alternative: a summary sentence, the tiers' conditions in words and
the timeline as a table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from risingtide.config.durations import format_duration
from risingtide.config.model import LineConfig
from risingtide.domain.model import (
    Action,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Framework,
    Not,
    ResponseOrder,
    TierChanged,
    format_measure,
)
from risingtide.replay_compare import Comparison, Run, compare, ignored, score, total
from risingtide.replay_series import LineSeries
from risingtide.replay_tables import TableRow, table

#: At most this many buckets per line in a chart; a 30-day file stays a few MB.
MAX_POINTS = 2000
#: A line with more tier changes than this has its bands and marks thinned for the chart.
MAX_MARKS = 500
#: At most this many timeline entries per line in the page's tables.
MAX_TIMELINE = 500
_API = Path(__file__).parent / "api"
_ENV = Environment(
    loader=FileSystemLoader(_API / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_CHARTED = ("avg_wait", "abandon_rate")


@dataclass(frozen=True, slots=True)
class ChartView:
    """One line under one config: its chart's id, words and table rows."""

    id: str
    heading: str
    summary: str
    conditions: list[str]
    timeline: list[tuple[str, str]]
    timeline_more: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SectionView:
    """One line: its charts (one per config it is in) and its score table."""

    line: str
    name: str
    note: str
    charts: list[ChartView]
    columns: tuple[str, ...]
    rows: list[TableRow]


def report_html(today: Run, proposed: Run | None = None) -> str:
    """The whole page: one run, or two compared (``proposed`` given)."""
    if proposed is None:
        sections, columns, totals = _single(today)
        title = f"Replay of {today.config.path.name}"
        unknown = dict(sorted(today.result.unknown_lines.items()))
    else:
        c = compare(today, proposed)
        sections, columns, totals = _compared(c)
        title = f"Replay: {today.config.path.name} compared with {proposed.config.path.name}"
        unknown = ignored(c)
    data = {"charts": [chart.data for s in sections for chart in s.charts]}
    return _ENV.get_template("replay_report.html").render(
        title=title,
        today=today,
        proposed=proposed,
        sections=sections,
        columns=columns,
        totals=totals,
        unknown=unknown,
        uplot_css=(_API / "static" / "uPlot.min.css").read_text(encoding="utf-8"),
        uplot_js=_script(_API / "static" / "uPlot.iife.min.js"),
        chart_js=_script(_API / "static" / "replay-report.js"),
        data_json=json.dumps(data, separators=(",", ":")).replace("</", "<\\/"),
    )


def _script(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if "</script" in text.lower():  # pragma: no cover - a vendored file that would end the tag
        raise ValueError(f"{path} cannot be inlined: it contains </script")
    return text


def _single(run: Run) -> tuple[list[SectionView], tuple[str, ...], list[TableRow]]:
    scores = score(run)
    columns = (run.config.path.name,)
    sections = [
        SectionView(
            lid,
            lc.name,
            "",
            [_chart(run, lc, f"chart-{i}", f"{lc.name}: average wait and abandonment")],
            columns,
            table(lc.framework, (scores[lid],), change=False),
        )
        for i, (lid, lc) in enumerate(run.config.lines.items())
    ]
    return sections, columns, table(None, (total(scores.values()),), change=False)


def _compared(c: Comparison) -> tuple[list[SectionView], tuple[str, ...], list[TableRow]]:
    columns = ("today", "proposed", "change")
    sections: list[SectionView] = []
    for i, lc in enumerate(c.lines):
        charts = []
        framework: Framework | None = None
        for role, run in (("today", c.today), ("proposed", c.proposed)):
            line_config = run.config.lines.get(lc.line)
            if line_config is not None:
                framework = framework or line_config.framework
                heading = f"{lc.name}, {role} ({run.config.path.name})"
                charts.append(_chart(run, line_config, f"chart-{i}-{role}", heading))
        note = f"Only in the {lc.only_in} config." if lc.only_in else ""
        rows = table(framework, (lc.today, lc.proposed), change=True)
        sections.append(SectionView(lc.line, lc.name, note, charts, columns, rows))
    totals = table(None, (c.total_today, c.total_proposed), change=True)
    return sections, columns, totals


def _chart(run: Run, lc: LineConfig, chart_id: str, heading: str) -> ChartView:
    series = run.series.get(lc.id, LineSeries())
    fw = lc.framework
    tz = lc.calendar.tz
    changes = [e for e in run.result.events if e.line == lc.id and isinstance(e, TierChanged)]
    orders = [o for o in run.result.orders if o.line == lc.id]
    t, wait, abandon = downsample(series, fw.stale_alert_after.total_seconds())
    span = (series.times[0], series.times[-1]) if series.times else None
    bands, marks, responses = chart_marks(span, changes, orders)
    data = {
        "id": chart_id,
        "tz": tz.key,
        "t": t,
        "wait": wait,
        "abandon": abandon,
        "bands": bands,
        "thresholds": _thresholds(fw),
        "changes": marks,
        "responses": responses,
    }
    timeline = _timeline(run, lc, tz)
    return ChartView(
        chart_id,
        heading,
        _summary(lc, series, changes, tz),
        _conditions(fw),
        timeline[:MAX_TIMELINE],
        max(0, len(timeline) - MAX_TIMELINE),
        data,
    )


def downsample(
    series: LineSeries, gap: float, limit: int = MAX_POINTS
) -> tuple[list[float], list[float | None], list[float | None]]:
    """At most ``limit`` buckets of equal time: each bucket's first time and its highest
    average wait (minutes) and abandonment (per cent); None breaks the line at a gap longer
    than ``gap`` seconds (one extra point per gap)."""
    times = series.times
    if not times:
        return [], [], []
    width = max((times[-1] - times[0]) / limit, 1e-9)
    out_t: list[float] = []
    out_w: list[float | None] = []
    out_a: list[float | None] = []
    bucket = -1
    previous = times[0]
    for i, at in enumerate(times):
        if at - previous > gap:
            out_t.append(previous + gap)
            out_w.append(None)
            out_a.append(None)
            bucket = -1
        previous = at
        b = min(int((at - times[0]) / width), limit - 1)
        w, a = series.avg_wait[i], series.abandon_rate[i]
        w_val = None if math.isnan(w) else round(w / 60, 2)
        a_val = None if math.isnan(a) else round(a * 100, 1)
        if b != bucket:
            bucket = b
            out_t.append(at)
            out_w.append(w_val)
            out_a.append(a_val)
            continue
        out_w[-1] = _higher(out_w[-1], w_val)
        out_a[-1] = _higher(out_a[-1], a_val)
    return out_t, out_w, out_a


def chart_marks(
    span: tuple[float, float] | None, changes: list[TierChanged], orders: list[ResponseOrder]
) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Tier bands ``[start, end, tier]``, changes ``[at, from, to]`` and responses
    ``[at, 1 run / 0 undo]`` in whole seconds. A line that changes tier more than
    ``MAX_MARKS`` times is thinned to what a chart can show: bands to ``MAX_POINTS``
    buckets, each shaded with the highest tier in force in it, and at most one change
    each way and one response of each kind per bucket."""
    if span is None:
        return [], [], []
    first, last = span
    bands: list[list[int]] = []
    at, tier = first, 0
    for e in changes:
        bands.append([int(at), int(e.at.timestamp()), tier])
        at, tier = e.at.timestamp(), e.to_tier
    bands.append([int(at), int(max(at, last)), tier])
    marks = [[int(e.at.timestamp()), e.from_tier, e.to_tier] for e in changes]
    responses = [[int(o.at.timestamp()), int(o.action is Action.APPLY)] for o in orders]
    if len(changes) <= MAX_MARKS:
        return bands, marks, responses
    width = max((last - first) / MAX_POINTS, 1.0)

    def bucket(t: float) -> int:
        return min(max(int((t - first) / width), 0), MAX_POINTS - 1)

    highest = [0] * MAX_POINTS
    for start, end, level in bands:
        for b in range(bucket(start), bucket(end) + 1):
            highest[b] = max(highest[b], level)
    thinned: list[list[int]] = []
    for b, level in enumerate(highest):
        if thinned and thinned[-1][2] == level:
            thinned[-1][1] = int(first + (b + 1) * width)
        else:
            thinned.append([int(first + b * width), int(first + (b + 1) * width), level])
    return thinned, _one_per_bucket(marks, bucket), _one_per_bucket(responses, bucket)


def _one_per_bucket(marks: list[list[int]], bucket: Callable[[float], int]) -> list[list[int]]:
    """The first mark of each kind (up or down; run or undo) in each bucket."""
    seen: set[tuple[int, bool]] = set()
    out = []
    for m in marks:
        key = (bucket(m[0]), m[-1] > m[1] if len(m) == 3 else bool(m[1]))
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def _higher(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _compares(cond: Condition) -> list[Compare]:
    """The comparisons on charted measures in a condition (not under ``Not``: the default
    clear, ``Not(when)``, is the entry line itself)."""
    if isinstance(cond, Compare):
        return [cond] if cond.measure in _CHARTED else []
    if isinstance(cond, AllOf | AnyOf):
        return [c for part in cond.parts for c in _compares(part)]
    return []


def _thresholds(fw: Framework) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tier in fw.tiers:
        for kind, cond in (("enter", tier.when), ("clear", tier.clear)):
            for c in _compares(cond):
                value = c.threshold / 60 if c.measure == "avg_wait" else c.threshold * 100
                out.append({"tier": tier.level, "kind": kind, "measure": c.measure, "value": value})
    return out


def describe(cond: Condition) -> str:
    """A condition in words: ``avg_wait > 300s or (abandon_rate > 10.0% and offered ≥ 20)``."""
    if isinstance(cond, Compare):
        return f"{cond.measure} {cond.op.symbol} {format_measure(cond.measure, cond.threshold)}"
    if isinstance(cond, Not):
        return f"not ({describe(cond.part)})"
    joiner = " and " if isinstance(cond, AllOf) else " or "
    parts = [describe(p) if isinstance(p, Compare) else f"({describe(p)})" for p in cond.parts]
    return joiner.join(parts)


def _conditions(fw: Framework) -> list[str]:
    return [
        f"Tier {t.level} {t.name}: entered when {describe(t.when)} for {format_duration(t.for_)}; "
        f"cleared when {describe(t.clear)} for {format_duration(t.clear_for)}."
        for t in fw.tiers
    ]


def _when(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _timeline(run: Run, lc: LineConfig, tz: ZoneInfo) -> list[tuple[str, str]]:
    fw = lc.framework
    out: list[tuple[float, int, str, str]] = []
    for e in run.result.events:
        if e.line != lc.id:
            continue
        if isinstance(e, TierChanged):
            what = (
                f"Tier {e.from_tier} {fw.tier_name(e.from_tier)} → {e.to_tier} "
                f"{fw.tier_name(e.to_tier)} ({e.reason})"
            )
        else:
            what = e.kind.replace("_", " ")
        out.append((e.at.timestamp(), 0, _when(e.at, tz), what))
    for o in run.result.orders:
        if o.line == lc.id:
            verb = "would undo" if o.action is Action.UNDO else "would run"
            out.append((o.at.timestamp(), 1, _when(o.at, tz), f"{verb} {o.response}"))
    out.sort(key=lambda x: (x[0], x[1]))
    return [(when, what) for _, _, when, what in out]


def _summary(lc: LineConfig, series: LineSeries, changes: list[TierChanged], tz: ZoneInfo) -> str:
    if not series.times:
        return f"{lc.name}: no rows in the file, so nothing to chart."
    start = datetime.fromtimestamp(series.times[0], tz)
    end = datetime.fromtimestamp(series.times[-1], tz)
    parts = [
        f"{lc.name}: {len(series):,} rows from {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} {end:%Z}"
    ]
    waits = [(w, i) for i, w in enumerate(series.avg_wait) if not math.isnan(w)]
    if waits:
        peak, i = max(waits)
        at = datetime.fromtimestamp(series.times[i], tz)
        parts.append(
            f"average wait peaked at {peak / 60:.1f} minutes at {at:%Y-%m-%d %H:%M} "
            f"(target {lc.target_wait / 60:.1f} minutes)"
        )
    rates = [r for r in series.abandon_rate if not math.isnan(r)]
    if rates:
        parts.append(f"abandonment peaked at {max(rates) * 100:.1f}%")
    top = max((e.to_tier for e in changes), default=0)
    parts.append(f"{len(changes)} tier change(s), highest tier {top} {lc.framework.tier_name(top)}")
    return "; ".join(parts) + "."
