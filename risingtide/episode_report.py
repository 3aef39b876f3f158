"""Episodes written out: JSON for the API, one flat row each for CSV, Markdown and HTML.

Times are written as the centre's staff read them, in UK time (``Europe/London``), except
in JSON, which gives ISO-8601 UTC for programs. The CSV is one row per episode for the
council's BI tools; a cell that a spreadsheet would take for a formula (starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``.

``risingtide report`` (``cli.py``) writes these from the store; the API and the pages
(``risingtide.api.episodes``) use the same functions, so every form tells the same story.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from risingtide.episodes import Episode, Note

__all__ = [
    "CSV_COLUMNS",
    "UK",
    "chart_data",
    "duration",
    "episode_json",
    "render",
    "safe_cell",
    "summary_row",
    "uk_time",
]

UK = ZoneInfo("Europe/London")
Format = Literal["html", "markdown", "csv"]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_STATIC = Path(__file__).parent / "api" / "static"

CSV_COLUMNS = (
    "id", "line", "name", "episode", "started", "ended", "minutes", "peak_tier",
    "minutes_tier_1", "minutes_tier_2", "minutes_tier_3", "minutes_tier_4",
    "first_acknowledged", "minutes_to_first_ack", "acknowledged_by", "peak_avg_wait_s",
    "peak_longest_wait_s", "peak_abandon_rate", "offered", "answered", "abandoned",
    "peak_capacity_gap", "notifications", "notifications_failed", "switches", "lessons",
)  # fmt: skip


def uk_time(t: datetime | None, *, seconds: bool = False) -> str:
    """``Mon 5 Jan 2026 09:14`` in UK time (empty for None)."""
    if t is None:
        return ""
    local = t.astimezone(UK)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %Y} {clock}"


def uk_clock(t: datetime) -> str:
    """``09:14:05`` in UK time."""
    return f"{t.astimezone(UK):%H:%M:%S}"


def duration(seconds: float | None) -> str:
    """``4 min 10 s``, ``1 h 5 min``, ``not known`` for None."""
    if seconds is None:
        return "not known"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{m} min {s} s" if s else f"{m} min"


def percent(ratio: float | None) -> str:
    """``12.5 %`` or ``not known``."""
    return "not known" if ratio is None else f"{ratio * 100:.1f} %"


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _note_json(n: Note) -> dict[str, Any]:
    return {"at": n.at.isoformat(), "kind": n.kind, "tier": n.tier, "by": n.by, "text": n.text}


def episode_json(ep: Episode) -> dict[str, Any]:
    """The whole episode as the API returns it (times ISO-8601 UTC, waits in seconds)."""
    ref = ep.ref
    return {
        **summary_json(ep),
        "timeline": [
            {
                "at": s.at.isoformat(),
                "from_tier": s.from_tier,
                "to_tier": s.to_tier,
                "cause": s.cause,
                "reason": s.reason,
            }
            for s in ref.steps
        ],
        "notes": [_note_json(n) for n in ep.notes],
        "notifications": [
            {
                "at": n.at.isoformat(),
                "response": n.response,
                "channel": n.channel,
                "tier": n.tier,
                "trigger": n.trigger,
                "outcome": n.outcome,
                "detail": n.detail,
                "attempts": n.attempts,
                "finished_at": n.finished_at.isoformat(),
            }
            for n in ep.notifications
        ],
        "switches": [
            {
                "response": s.response,
                "channel": s.channel,
                "applied_at": s.applied_at.isoformat(),
                "undone_at": _iso(s.undone_at),
                "avg_wait_15m_before": s.wait_before,
                "avg_wait_15m_after": s.wait_after,
            }
            for s in ep.switches
        ],
        "lessons": [_note_json(n) for n in ep.lessons],
        "thresholds": {str(k): v for k, v in ep.thresholds.items()},
        "samples": [s.to_json() for s in ep.samples],
    }


def summary_json(ep: Episode) -> dict[str, Any]:
    """The episode's headline figures (JSON types; see ``episode_json`` for the rest)."""
    ref, ack = ep.ref, ep.first_ack
    end = ref.ended_at
    return {
        "id": ep.id, "line": ref.line, "name": ep.name, "episode": ref.number,
        "started_at": ref.started_at.isoformat(), "ended_at": _iso(end), "ongoing": end is None,
        "minutes": round(((end or ep.now) - ref.started_at).total_seconds() / 60, 1),
        "peak_tier": ref.peak_tier,
        "minutes_in_tiers": {str(k): round(v, 1) for k, v in ref.minutes_in_tiers(ep.now).items()},
        "first_acknowledged_at": None if ack is None else ack.at.isoformat(),
        "acknowledged_by": None if ack is None else ack.by,
        "seconds_to_first_ack": ep.time_to_first_ack,
        "peak_avg_wait": ep.peak("avg_wait"), "peak_longest_wait": ep.peak("longest_wait"),
        "peak_abandon_rate": ep.peak("abandon_rate"),
        "calls": {m: ep.calls(m) for m in ("offered", "answered", "abandoned")},
        "peak_capacity_gap": max((g for _, g in ep.capacity_gap), default=None),
        "target_wait": ep.target_wait,
    }  # fmt: skip


def summary_row(ep: Episode) -> dict[str, Any]:
    """One flat row for CSV and Markdown: UK times, minutes, counts."""
    j = summary_json(ep)
    ack = ep.first_ack
    tiers = ep.ref.minutes_in_tiers(ep.now)
    failed = sum(1 for n in ep.notifications if n.outcome != "ok")
    return {
        "id": ep.id, "line": ep.ref.line, "name": ep.name, "episode": ep.ref.number,
        "started": uk_time(ep.ref.started_at), "ended": uk_time(ep.ref.ended_at) or "ongoing",
        "minutes": j["minutes"], "peak_tier": ep.ref.peak_tier,
        **{f"minutes_tier_{k}": round(tiers.get(k, 0.0), 1) for k in (1, 2, 3, 4)},
        "first_acknowledged": uk_time(ack.at) if ack else "",
        "minutes_to_first_ack": None if ep.time_to_first_ack is None
        else round(ep.time_to_first_ack / 60, 1),
        "acknowledged_by": ack.by if ack else "",
        "peak_avg_wait_s": _round(j["peak_avg_wait"]),
        "peak_longest_wait_s": _round(j["peak_longest_wait"]),
        "peak_abandon_rate": None if j["peak_abandon_rate"] is None
        else round(j["peak_abandon_rate"], 3),
        **j["calls"], "peak_capacity_gap": j["peak_capacity_gap"],
        "notifications": len(ep.notifications), "notifications_failed": failed,
        "switches": "; ".join(s.response for s in ep.switches),
        "lessons": " / ".join(n.text for n in ep.lessons),
    }  # fmt: skip


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def chart_data(ep: Episode) -> dict[str, Any]:
    """What the page's script draws: times (Unix seconds), waits, thresholds, tier bands."""
    bands = []
    steps = ep.ref.steps
    for step, after in zip(steps, [*steps[1:], None], strict=True):
        if step.to_tier > 0:
            end = after.at if after is not None else ep.now
            bands.append([step.at.timestamp(), end.timestamp(), step.to_tier])
    return {
        "x": [s.at.timestamp() for s in ep.samples],
        "avg_wait": [s.avg_wait for s in ep.samples],
        "longest_wait": [s.longest_wait for s in ep.samples],
        # The tiers reached and the next one up: a flood's line would flatten a rising tier.
        "thresholds": [
            [k, v, ep.tier_label(k)]
            for k, v in sorted(ep.thresholds.items())
            if k <= ep.ref.peak_tier + 1
        ],
        "bands": bands,
    }


def chart_summary(ep: Episode) -> str:
    """The chart in one sentence, for people who cannot see it."""
    waits = [s.avg_wait for s in ep.samples if s.avg_wait is not None]
    if not waits:
        return "No figures were kept for this episode, so there is no chart."
    peak = ep.peak("avg_wait")
    first, last = ep.samples[0].at, ep.samples[-1].at
    marks = ", ".join(f"{ep.tier_label(k)} above {duration(v)}" for k, v in
                      sorted(ep.thresholds.items()))  # fmt: skip
    return (
        f"Average wait from {uk_clock(first)} to {uk_clock(last)} (UK time): it started at "
        f"{duration(waits[0])}, peaked at {duration(peak)} during the episode and ended at "
        f"{duration(waits[-1])}."
        + (f" Thresholds: {marks}." if marks else "")
        + " The table below gives every minute."
    )


def render(episodes: Sequence[Episode], fmt: Format, *, title: str, generated: datetime) -> str:
    """The episodes as one document in ``fmt``."""
    if fmt == "csv":
        return render_csv(episodes)
    if fmt == "markdown":
        return render_markdown(episodes, title=title, generated=generated)
    return render_html(episodes, title=title, generated=generated)


def render_csv(episodes: Sequence[Episode]) -> str:
    """One row per episode, formula cells neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for ep in episodes:
        row = summary_row(ep)
        writer.writerow([safe_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _md(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(episodes: Sequence[Episode], *, title: str, generated: datetime) -> str:
    """A summary table, then each episode's timeline, notifications and lessons."""
    out = [f"# {title}", "", f"Written {uk_time(generated)} (UK time). "
           f"{len(episodes)} episode{'' if len(episodes) == 1 else 's'}.", ""]  # fmt: skip
    if episodes:
        out += ["| Episode | Line | Began | Ended | Peak tier | Minutes | First ack after |",
                "|---|---|---|---|---|---|---|"]  # fmt: skip
        for ep in episodes:
            r = summary_row(ep)
            ack = duration(ep.time_to_first_ack) if ep.time_to_first_ack is not None else "none"
            out.append(f"| {r['id']} | {_md(ep.name)} | {r['started']} | {r['ended']} | "
                       f"{ep.ref.peak_tier} | {r['minutes']} | {ack} |")  # fmt: skip
    for ep in episodes:
        out += ["", f"## {_md(ep.name)}: episode {ep.ref.number}", ""]
        out += [f"- {uk_clock(s.at)} {ep.tier_label(s.from_tier)} → {ep.tier_label(s.to_tier)}"
                f": {_md(s.reason)}" for s in ep.ref.steps]  # fmt: skip
        calls = summary_json(ep)["calls"]
        out += ["", f"Peak average wait {duration(ep.peak('avg_wait'))}, peak abandonment "
                f"{percent(ep.peak('abandon_rate'))}; calls offered {calls['offered']}, answered "
                f"{calls['answered']}, abandoned {calls['abandoned']} (estimated)."]  # fmt: skip
        for n in ep.notifications:
            out.append(f"- {uk_clock(n.at)} {n.response} ({n.channel or 'response'}): "
                       f"{n.outcome} — {_md(n.detail)}")  # fmt: skip
        for s in ep.switches:
            out.append(f"- {s.response} on {uk_clock(s.applied_at)}, off "
                       f"{uk_clock(s.undone_at) if s.undone_at else 'still on'}; average wait "
                       f"{duration(s.wait_before)} in the 15 min before, {duration(s.wait_after)} "
                       "after")  # fmt: skip
        if ep.lessons:
            out += ["", "Lessons learned:", ""]
            out += [f"- {_md(n.text)} ({_md(n.by)}, {uk_time(n.at)})" for n in ep.lessons]
    return "\n".join(out) + "\n"


def render_html(episodes: Sequence[Episode], *, title: str, generated: datetime) -> str:
    """A self-contained page: each episode's story with its chart (uPlot inlined)."""
    from risingtide.api.pages import TEMPLATES  # the pages' one template environment

    return TEMPLATES.get_template("episode_report.html").render(
        title=title,
        errors=[],
        generated=uk_time(generated),
        stories=[story(ep) for ep in episodes],
        uplot_js=(_STATIC / "uPlot.iife.min.js").read_text(),
        uplot_css=(_STATIC / "uPlot.min.css").read_text(),
        chart_js=(_STATIC / "episode.js").read_text(),
    )


def story(ep: Episode) -> dict[str, Any]:
    """What the episode templates show, already in words and UK time."""
    calls = summary_json(ep)["calls"]
    tiers = ep.ref.minutes_in_tiers(ep.now)
    return {
        "ep": ep, "id": ep.id, "name": ep.name, "number": ep.ref.number,
        "started": uk_time(ep.ref.started_at, seconds=True),
        "ended": uk_time(ep.ref.ended_at, seconds=True),
        "length": duration(((ep.ref.ended_at or ep.now) - ep.ref.started_at).total_seconds()),
        "peak_tier": ep.tier_label(ep.ref.peak_tier),
        "tiers": [(ep.tier_label(k), duration(v * 60)) for k, v in tiers.items()],
        "ack": ep.first_ack, "ack_after": duration(ep.time_to_first_ack),
        "peak_wait": duration(ep.peak("avg_wait")),
        "peak_longest": duration(ep.peak("longest_wait")),
        "peak_abandon": percent(ep.peak("abandon_rate")),
        "calls": calls, "gap": max((g for _, g in ep.capacity_gap), default=None),
        "timeline": [(uk_clock(s.at), ep.tier_label(s.from_tier), ep.tier_label(s.to_tier),
                      s.reason) for s in ep.ref.steps],
        "notes": [(uk_time(n.at, seconds=True), n) for n in ep.notes],
        "notifications": [(uk_clock(n.at), n) for n in ep.notifications],
        "switches": [(s, uk_clock(s.applied_at), uk_clock(s.undone_at) if s.undone_at else "",
                      duration(s.wait_before), duration(s.wait_after)) for s in ep.switches],
        "lessons": [(uk_time(n.at), n) for n in ep.lessons],
        "minutes": [_minute_row(ep, s) for s in ep.samples],
        "chart": chart_data(ep), "chart_summary": chart_summary(ep),
    }  # fmt: skip


def _minute_row(ep: Episode, s: Any) -> list[str]:
    gap = (s.agents_needed - s.agents_staffed
           if s.agents_needed is not None and s.agents_staffed is not None else None)  # fmt: skip
    tier = 0
    for step in ep.ref.steps:
        if step.at <= s.at:
            tier = step.to_tier
    return [
        uk_clock(s.at), str(tier), duration(s.avg_wait), duration(s.longest_wait),
        percent(s.abandon_rate), _num(s.calls_waiting), _num(s.agents_staffed),
        _num(s.agents_needed), _num(gap),
    ]  # fmt: skip


def _num(value: int | None) -> str:
    return "not known" if value is None else str(value)


def when_arg(text: str, now: datetime) -> datetime:
    """``7d``/``24h`` (that long before ``now``) or an ISO time with an offset; ValueError."""
    from risingtide.config.durations import parse_duration

    text = text.strip()
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (7d, 24h) nor an ISO time (2026-11-23T00:00Z)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset (e.g. 2026-11-23T00:00+00:00 or …Z)")
    return when


def write_report(
    config_path: Path, *, since: str, until: str | None, line: str | None, fmt: Format,
    output: Path | None, now: datetime,
) -> int:  # fmt: skip
    """``risingtide report``: the episodes that began in the period, from the state file.

    Reads the store beside a running daemon (read-only, no lock). Returns the exit code;
    problems are printed to stderr.
    """
    import sys

    from risingtide.clock import SystemClock
    from risingtide.config import ConfigErrors, load_config
    from risingtide.episodes import build_episode, find_episodes
    from risingtide.store import Store, StoreError

    try:
        start = when_arg(since, now)
        end = when_arg(until, now) if until else now
    except ValueError as exc:
        print(f"risingtide report: {exc}", file=sys.stderr)
        return 2
    try:
        config = load_config(config_path)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=sys.stderr)
        return 1
    if line is not None and line not in config.lines:
        print(f"risingtide report: no line {line!r} in {config_path}", file=sys.stderr)
        return 1
    try:
        with Store.read_only(
            config.server.database or config.server.state_file, SystemClock()
        ) as store:
            refs = find_episodes(store, line=line, since=start, until=end, limit=100_000)
            episodes = [build_episode(store, r, now, config) for r in reversed(refs)]
    except StoreError as exc:
        print(f"risingtide report: {exc}", file=sys.stderr)
        return 1
    title = f"Episodes from {uk_time(start)} to {uk_time(end)}"
    text = render(episodes, fmt, title=title, generated=now)
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        print(f"risingtide report: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{len(episodes)} episode(s) written to {output}", file=sys.stderr)
    return 0
