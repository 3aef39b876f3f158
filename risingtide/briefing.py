"""What the duty manager asks first about a raised line, answered in words.

Why it rose (the tier's condition, with today's figures), since when (UK clock time), what
comes next and to whom (the next reminder or escalation step, people by the rota), who has
been told so far this episode, how many agents it needs against how many are staffed, and
what is switched on, by the responses' titles. Built from the config, the line's view and
its history records; no I/O of its own, so the board and tests read the same sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from risingtide.capacity_text import capacity_line, gap_percent, predicted_wait_text
from risingtide.config.model import Config, LineConfig, humanise
from risingtide.domain.escalation import timers_blocked
from risingtide.domain.model import (
    MEASURE_UNITS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    LineState,
    Measure,
    Not,
    Op,
    QueueStats,
)
from risingtide.message_wording import format_duration
from risingtide.view import LineView

__all__ = [
    "UK",
    "NextStep",
    "briefing",
    "cause_in_words",
    "clock_text",
    "next_step",
    "notified",
    "ordered",
    "switched_on",
]

#: Staff read times as the UK's wall clock, summer and winter.
UK = ZoneInfo("Europe/London")

_MEASURE_WORDS: dict[Measure, str] = {
    "avg_wait": "average wait",
    "longest_wait": "longest wait",
    "calls_waiting": "calls waiting",
    "agents_available": "agents free",
    "abandon_rate": "abandonment",
    "answered_rate": "answered",
    "offered": "calls offered",
    "agents_needed": "agents needed",
    "capacity_gap": "agents short",
    "capacity_gap_ratio": "capacity gap",
    "predicted_wait": "predicted wait",
    "forecast_wait": "forecast wait",
}
_OP_WORDS = {Op.ABOVE: "over", Op.BELOW: "under", Op.AT_LEAST: "at least", Op.AT_MOST: "at most"}
#: How many notifications the board lists for one line (newest first).
MOST_NOTIFIED = 8


# ---------------------------------------------------------------------- words


def duration_text(seconds: float) -> str:
    """``45s``, ``5m``, ``5m 20s``, ``1h 5m``: as the messages say it."""
    return format_duration(seconds)


def clock_text(t: datetime, now: datetime) -> str:
    """``14:05`` in UK time, with the day when it is not today's (``Tue 6 Jan 14:05``)."""
    local, today = t.astimezone(UK), now.astimezone(UK)
    if local.date() == today.date():
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _value(measure: Measure, value: float) -> str:
    unit = MEASURE_UNITS[measure]
    if unit == "seconds":
        return duration_text(value)
    if unit == "ratio":
        return f"{value * 100:.0f} %"
    return f"{value:.0f}"


def _compare(c: Compare, stats: QueueStats, offered_known: bool) -> str:
    words, op = _MEASURE_WORDS[c.measure], _OP_WORDS[c.op]
    limit = _value(c.measure, c.threshold)
    value = stats.measure(c.measure)
    if value is None:
        return f"{words} not known (raises {op} {limit})"
    text = f"{words} {_value(c.measure, value)} {op} {limit}"
    if c.measure == "abandon_rate" and offered_known and stats.offered is not None:
        text += f" with {stats.offered} offered"
    return text


def cause_in_words(condition: Condition, stats: QueueStats) -> str:
    """The condition as people say it: ``abandonment 20 % over 10 % with 67 offered``.

    Of an "any" condition only the parts that hold are told (all of them when none does);
    a minimum of calls offered beside an abandonment rate is folded into "with N offered".
    """
    if isinstance(condition, Compare):
        return _compare(condition, stats, offered_known=True)
    if isinstance(condition, AnyOf):
        held = [p for p in condition.parts if p.holds(stats)] or list(condition.parts)
        return " or ".join(cause_in_words(p, stats) for p in held)
    if isinstance(condition, AllOf):
        rates = any(isinstance(p, Compare) and p.measure == "abandon_rate" for p in condition.parts)
        parts = [
            p
            for p in condition.parts
            if not (rates and isinstance(p, Compare) and p.measure == "offered")
        ]
        return " and ".join(cause_in_words(p, stats) for p in parts)
    if isinstance(condition, Not):
        return f"not ({cause_in_words(condition.part, stats)})"
    return str(condition)  # pragma: no cover - Condition is a closed union


def cause(line: LineConfig, state: LineState, stats: QueueStats | None, now: datetime) -> str:
    """Why the line is at its tier now, in one phrase."""
    tier = line.framework.tier(state.tier)
    if tier is None:
        return ""
    declaration = state.declaration
    if declaration is not None and declaration.until > now and declaration.level >= state.tier:
        said = f": {declaration.reason}" if declaration.reason else ""
        return f"declared by {declaration.by} until {clock_text(declaration.until, now)}{said}"
    if stats is None:
        return "no figures yet"
    words = cause_in_words(tier.when, stats)
    return words if tier.when.holds(stats) else f"raised when {words}; it no longer holds"


# ---------------------------------------------------------------------- what comes next


@dataclass(frozen=True, slots=True)
class NextStep:
    """The next reminder or escalation step of a raised, unacknowledged tier."""

    what: str  # "reminder 2" or "escalation step 1"
    at: datetime
    responses: tuple[str, ...]
    to: tuple[str, ...]  # people's names by the rota at ``at``; else the responses' titles


def _reach(config: Config, responses: Iterable[str], at: datetime) -> tuple[str, ...]:
    pages: list[str] = []
    unpaged: list[str] = []
    for rid in responses:
        rc = config.responses.get(rid)
        if rc is not None and rc.page:
            pages.extend(rc.page)
        else:
            unpaged.append(rc.label if rc is not None else humanise(rid))
    names = [p.name for p in config.directory.resolve(pages, at)]
    return tuple(dict.fromkeys([*names, *unpaged]))


def next_step(config: Config, line: LineConfig, state: LineState) -> NextStep | None:
    """The reminder or escalation step due next, and who it reaches; None when blocked
    (acknowledged, declared, silenced, calm, closed) or when nothing more is set up."""
    tier = line.framework.tier(state.tier)
    entered = state.entered_at
    if tier is None or entered is None or timers_blocked(state):
        return None
    found: list[tuple[datetime, str, tuple[str, ...]]] = []
    every = tier.repeat_every
    if every is not None and every > timedelta(0) and tier.repeat_responses:
        due = (state.last_reminder_at or entered) + every
        found.append((due, f"reminder {state.reminders_sent + 1}", tier.repeat_responses))
    done = state.escalation_steps_done
    if done < len(tier.escalation):
        step = tier.escalation[done]
        found.append((entered + step.after, f"escalation step {done + 1}", step.responses))
    if not found:
        return None
    at = min(f[0] for f in found)
    first = [f for f in found if f[0] == at]  # a reminder and a step due together: both told
    what = " and ".join(f[1] for f in first)
    responses = tuple(dict.fromkeys(r for f in first for r in f[2]))
    return NextStep(what=what, at=at, responses=responses, to=_reach(config, responses, at))


# ---------------------------------------------------------------------- who has been told


def notified(
    config: Config, line: str, episode: int, records: Sequence[Any], now: datetime
) -> list[dict[str, Any]]:
    """The notifications of this episode (newest first), from the history's ``response``
    records: which, when, to whom (by the rota at that time), and whether it went out.

    ``records`` are history entries (``at``, ``kind``, ``data``) for the line, newest first;
    each order's latest outcome is kept.
    """
    prefix = f"{line}/{episode}/"
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for r in records:
        data = r.data
        key = str(data.get("key", ""))
        if r.kind != "response" or not key.startswith(prefix) or key in seen:
            continue
        rc = config.responses.get(str(data.get("response", "")))
        if data.get("action") != "apply" or rc is None or rc.undoable:
            continue
        seen.add(key)
        out.append(
            {
                "response": rc.id,
                "title": rc.label,
                "at": r.at.isoformat(),
                "at_text": clock_text(r.at, now),
                "outcome": data.get("outcome"),
                "to": list(_reach(config, (rc.id,), r.at)),
            }
        )
        if len(out) >= MOST_NOTIFIED:
            break
    return out


# ---------------------------------------------------------------------- the whole answer


def switched_on(config: Config, view: LineView) -> list[dict[str, str]]:
    """The switches on now, as ``{"id", "title"}`` (titles from the config)."""
    out = []
    for rid in sorted(view.live_switches):
        rc = config.responses.get(rid)
        out.append({"id": rid, "title": rc.label if rc is not None else humanise(rid)})
    return out


def capacity(view: LineView) -> dict[str, Any]:
    """Agents needed, staffed, the gap (and as a % of needed), the predicted wait, and the
    sentence the messages use ("Needs 4 more agents to get back under 3m …")."""
    staffed = view.stats.agents_staffed if view.stats is not None else None
    needed = view.agents_needed
    gap = needed - staffed if needed is not None and staffed is not None else None
    return {
        "agents_needed": needed,
        "agents_staffed": staffed,
        "agents_gap": gap,
        "agents_gap_percent": gap_percent(gap / needed) if gap is not None and needed else None,
        "predicted_wait": view.predicted_wait,
        "predicted_wait_text": predicted_wait_text(view.predicted_wait),
        "capacity_text": capacity_line(needed, gap, view.target_wait, view.predicted_wait),
    }


def briefing(config: Config, view: LineView, records: Sequence[Any] = ()) -> dict[str, Any]:
    """The line's answers for the board (see the module docstring), JSON-able."""
    line = config.lines[view.id]
    state, now = view.state, view.now
    out: dict[str, Any] = {"switched_on": switched_on(config, view), **capacity(view)}
    if state.tier <= 0:
        return out
    ack = state.ack if state.acknowledged else None
    step = next_step(config, line, state)
    out.update(
        cause=cause(line, state, view.stats, now),
        since=state.entered_at.isoformat() if state.entered_at else None,
        since_text=clock_text(state.entered_at, now) if state.entered_at else "",
        ack_expires_text=clock_text(ack.expires, now) if ack and ack.expires else "",
        next=None
        if step is None
        else {
            "what": step.what,
            "at": step.at.isoformat(),
            "at_text": clock_text(step.at, now),
            "overdue": step.at <= now,
            "to": list(step.to),
        },
        notified=notified(config, view.id, state.episode, records, now),
    )
    return out


def ordered(views: Iterable[LineView]) -> list[LineView]:
    """Raised lines first, highest tier first, longest raised first; then calm lines in the
    config's order."""
    listed = list(views)
    far = datetime.max.replace(tzinfo=UK)

    def key(item: tuple[int, LineView]) -> tuple[int, int, datetime, int]:
        i, v = item
        st = v.state
        if st.tier <= 0:
            return (1, 0, far, i)
        return (0, -st.tier, st.entered_at or far, i)

    return [v for _, v in sorted(enumerate(listed), key=key)]
