"""Episodes: a line's story from its first rise to calm, read back from the history.

An episode is a view of the history, not a second store (DESIGN.md). It begins with the
``tier_changed`` that lifts a line from calm (tier 0 to anything higher; the event carries
the episode's number) and ends with the ``tier_changed`` that brings it back to 0. Its id is
``<line>-<number>`` (``council_tax-3``): line ids are ``[a-z0-9_-]``, so the id is URL-safe
and its number is after the last ``-``.

What is in it, and where each part comes from:

* the timeline, minutes in each tier and the peak tier — the episode's tier changes;
* acknowledgements, reminders, escalations — the events that carry its number;
* silences, declarations, stale figures — the line's events between its first rise and calm;
* notifications and switches — the ``response`` records whose idempotency key
  (``{line}/{episode}/…``) names the episode, with their outcomes (whether they arrived);
* figures over time — the ``samples`` kept around episodes (``risingtide.samples``): peak
  wait and abandonment, the capacity gap, the chart, the average wait in the 15 minutes
  before and after each switch, and the calls offered, answered and abandoned (below);
* lessons learned — ``lessons_learned`` records a duty manager adds afterwards.

Calls during an episode: a source counts offered, answered and abandoned over a rolling
window (``window`` seconds ending at the sample). ``count / window`` is the rate at that
moment; the episode's count is that rate integrated over the episode, sample to sample
(each sample's rate held until the next, at most 5 minutes), rounded. It is an estimate:
a rolling window lags, so it leans on calls from just before the rise and misses some at
the end. It is None when the source gives no window or no counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from risingtide.config.model import Config, LineConfig
from risingtide.domain.model import AllOf, AnyOf, Compare, Condition, Op
from risingtide.samples import AROUND, Sample
from risingtide.store import HistoryEntry, Store

__all__ = [
    "LESSONS_KIND",
    "Episode",
    "EpisodeRef",
    "Note",
    "Notification",
    "SwitchRun",
    "TierStep",
    "build_episode",
    "episode_id",
    "find_episode",
    "find_episodes",
    "lessons_record",
    "parse_episode_id",
    "wait_thresholds",
]

#: The history kind of a duty manager's lessons learned.
LESSONS_KIND = "lessons_learned"
#: How many history rows one question may read.
MAX_ROWS = 100_000
#: A sample's rate is held at most this long when counting calls.
_HOLD = timedelta(minutes=5)
_ID = re.compile(r"([a-z0-9_-]+)-([0-9]{1,9})")
_SIDE_KINDS = frozenset(
    {"silenced", "silence_ended", "declared", "declaration_ended", "stats_stale", "stats_fresh"}
)
_NUMBERED_KINDS = frozenset({"acknowledged", "reminder", "escalated"})


def episode_id(line: str, number: int) -> str:
    """``<line>-<number>``."""
    return f"{line}-{number}"


def parse_episode_id(text: str) -> tuple[str, int] | None:
    """``(line, number)`` from an episode id, or None when it is not one."""
    match = _ID.fullmatch(text)
    if match is None or int(match.group(2)) < 1:
        return None
    return match.group(1), int(match.group(2))


@dataclass(frozen=True, slots=True)
class TierStep:
    """One tier change of the episode, with the engine's reason."""

    at: datetime
    from_tier: int
    to_tier: int
    cause: str
    reason: str


@dataclass(frozen=True, slots=True)
class EpisodeRef:
    """An episode as its tier changes tell it: enough to list it."""

    line: str
    number: int
    steps: tuple[TierStep, ...]

    @property
    def id(self) -> str:
        """``<line>-<number>``."""
        return episode_id(self.line, self.number)

    @property
    def started_at(self) -> datetime:
        """The first rise."""
        return self.steps[0].at

    @property
    def ended_at(self) -> datetime | None:
        """Calm again, or None while the episode goes on."""
        last = self.steps[-1]
        return last.at if last.to_tier == 0 else None

    @property
    def peak_tier(self) -> int:
        """The highest tier reached."""
        return max(s.to_tier for s in self.steps)

    def minutes_in_tiers(self, now: datetime) -> dict[int, float]:
        """Minutes spent in each tier above 0 (until ``now`` while it goes on)."""
        spent: dict[int, float] = {}
        for step, after in zip(self.steps, [*self.steps[1:], None], strict=True):
            if step.to_tier == 0:
                continue
            end = after.at if after is not None else now
            spent[step.to_tier] = (
                spent.get(step.to_tier, 0.0) + (end - step.at).total_seconds() / 60
            )
        return dict(sorted(spent.items()))


@dataclass(frozen=True, slots=True)
class Note:
    """Something a person or a timer did during the episode (ack, silence, reminder, lesson…)."""

    at: datetime
    kind: str
    tier: int | None
    by: str
    text: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification or once-off action of the episode and how its delivery ended."""

    at: datetime
    response: str
    channel: str
    tier: int | None
    trigger: str
    outcome: str  # ok (arrived), retry (still trying), dead (given up)
    detail: str
    attempts: int
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class SwitchRun:
    """A switch applied and (maybe) undone, with the average wait either side of it."""

    response: str
    channel: str
    applied_at: datetime
    undone_at: datetime | None
    wait_before: float | None
    wait_after: float | None


@dataclass(frozen=True, slots=True)
class Episode:
    """An episode's whole story (see the module docstring for where each part comes from)."""

    ref: EpisodeRef
    name: str
    target_wait: float | None
    now: datetime
    notes: tuple[Note, ...]
    notifications: tuple[Notification, ...]
    switches: tuple[SwitchRun, ...]
    samples: tuple[Sample, ...]
    lessons: tuple[Note, ...]
    thresholds: Mapping[int, float] = field(default_factory=dict)
    tier_names: Mapping[int, str] = field(default_factory=dict)

    def tier_label(self, level: int) -> str:
        """``Tier 2 (high)``, or ``Tier 2`` when the config no longer has the line."""
        name = self.tier_names.get(level)
        return f"Tier {level} ({name})" if name else f"Tier {level}"

    @property
    def id(self) -> str:
        """``<line>-<number>``."""
        return self.ref.id

    @property
    def first_ack(self) -> Note | None:
        """The first acknowledgement, if any."""
        return next((n for n in self.notes if n.kind == "acknowledged"), None)

    @property
    def time_to_first_ack(self) -> float | None:
        """Seconds from the first rise to the first acknowledgement."""
        ack = self.first_ack
        return None if ack is None else (ack.at - self.ref.started_at).total_seconds()

    @property
    def during(self) -> list[Sample]:
        """The samples between the first rise and calm (or now)."""
        end = self.ref.ended_at or self.now
        return [s for s in self.samples if self.ref.started_at <= s.at <= end]

    def peak(self, measure: str) -> float | None:
        """The highest value of ``measure`` during the episode, when known."""
        values = [v for s in self.during if (v := getattr(s, measure)) is not None]
        return max(values) if values else None

    @property
    def capacity_gap(self) -> list[tuple[datetime, int]]:
        """Agents needed less agents staffed, sample by sample, where both are known."""
        return [
            (s.at, s.agents_needed - s.agents_staffed)
            for s in self.samples
            if s.agents_needed is not None and s.agents_staffed is not None
        ]

    def calls(self, measure: str) -> int | None:
        """Calls ``offered``, ``answered`` or ``abandoned`` during the episode (an estimate)."""
        start, end = self.ref.started_at, self.ref.ended_at or self.now
        usable = [s for s in self.samples if getattr(s, measure) is not None and s.window]
        if not usable:
            return None
        total = 0.0
        for s, after in zip(usable, [*usable[1:], None], strict=True):
            held_until = min(after.at if after is not None else end, s.at + _HOLD, end)
            seconds = (held_until - max(s.at, start)).total_seconds()
            if seconds > 0 and s.window:
                total += getattr(s, measure) / s.window * seconds
        return round(total)


def _step(e: HistoryEntry) -> TierStep:
    d = e.data
    return TierStep(
        at=e.at,
        from_tier=int(d.get("from_tier", 0)),
        to_tier=int(d.get("to_tier", 0)),
        cause=str(d.get("cause", "")),
        reason=str(d.get("reason", "")),
    )


def _refs(entries: Iterable[HistoryEntry]) -> list[EpisodeRef]:
    """Episodes from ``tier_changed`` entries (any order); only those whose rise is there."""
    by_episode: dict[tuple[str, int], list[HistoryEntry]] = {}
    for e in entries:
        number = e.data.get("episode")
        if e.kind == "tier_changed" and isinstance(number, int) and number > 0:
            by_episode.setdefault((e.line, number), []).append(e)
    refs = []
    for (line, number), rows in by_episode.items():
        rows.sort(key=lambda r: r.id)
        steps = [_step(r) for r in rows]
        if steps[0].from_tier != 0:
            continue  # its rise is outside what was read
        refs.append(EpisodeRef(line, number, tuple(steps)))
    return refs


def find_episodes(
    store: Store,
    *,
    line: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[EpisodeRef]:
    """Episodes whose first rise is in ``[since, until)``, newest first, at most ``limit``.

    Reads tier changes from ``since`` on (an episode that began in the range may end after
    it), at most ``MAX_ROWS`` of them.
    """
    entries = store.history(line=line, kinds={"tier_changed"}, since=since, limit=MAX_ROWS)
    refs = [r for r in _refs(entries) if until is None or r.started_at < until]
    refs.sort(key=lambda r: (r.started_at, r.line), reverse=True)
    return refs[:limit]


def find_episode(store: Store, line: str, number: int) -> EpisodeRef | None:
    """The episode ``number`` of ``line``, or None when the history has no rise for it."""
    entries = store.history(line=line, kinds={"tier_changed"}, limit=MAX_ROWS)
    return next((r for r in _refs(entries) if r.number == number), None)


def _key_episode(key: object) -> int | None:
    """The episode number in an order's key ``{line}/{episode}/{trigger}/…``."""
    if not isinstance(key, str):
        return None
    parts = key.rsplit("/", 6)
    return int(parts[1]) if len(parts) == 7 and parts[1].isdigit() else None


def _note(e: HistoryEntry) -> Note:
    d = e.data
    kind = e.kind
    if kind == "acknowledged":
        text = str(d.get("note", ""))
    elif kind in ("silenced", "declared"):
        level = f"tier {d.get('level')} " if kind == "declared" else ""
        text = f"{level}until {d.get('until', '')}: {d.get('reason', '')}"
    elif kind == "reminder":
        text = f"reminder {d.get('number', '')}"
    elif kind == "escalated":
        text = f"step {d.get('step', '')}: {', '.join(d.get('responses', []))}"
    elif kind == "stats_stale":
        text = str(d.get("reason", ""))
    else:
        text = str(d.get("text", ""))
    return Note(at=e.at, kind=kind, tier=e.tier, by=str(d.get("by", "")), text=text)


def build_episode(
    store: Store, ref: EpisodeRef, now: datetime, config: Config | None = None
) -> Episode:
    """The whole story of ``ref`` from the history and the kept samples."""
    lc: LineConfig | None = config.lines.get(ref.line) if config is not None else None
    end = ref.ended_at
    rows = store.history(
        line=ref.line, since=ref.started_at,
        until=None if end is None else end + AROUND, limit=MAX_ROWS,
    )  # fmt: skip
    rows.reverse()
    notes: list[Note] = []
    responses: list[HistoryEntry] = []
    for e in rows:
        numbered = e.kind in _NUMBERED_KINDS and e.data.get("episode") == ref.number
        inside = e.kind in _SIDE_KINDS and (end is None or e.at <= end)
        if numbered or inside:
            notes.append(_note(e))
        elif e.kind == "response" and _key_episode(e.data.get("key")) == ref.number:
            responses.append(e)
    kept = store.samples(
        ref.line, since=ref.started_at - AROUND, until=None if end is None else end + AROUND
    )
    samples = tuple(Sample.from_figures(at, f) for at, f in kept)
    lessons = [
        _note(e)
        for e in reversed(store.history(line=ref.line, kinds={LESSONS_KIND}, limit=MAX_ROWS))
        if e.data.get("episode") == ref.number
    ]
    switches, notifications = _responses(responses, config, samples)
    return Episode(
        ref=ref,
        name=lc.name if lc is not None else ref.line,
        target_wait=lc.target_wait if lc is not None else None,
        now=now,
        notes=tuple(notes),
        notifications=tuple(notifications),
        switches=tuple(switches),
        samples=samples,
        lessons=tuple(lessons),
        thresholds=wait_thresholds(lc) if lc is not None else {},
        tier_names=_tier_names(lc),
    )


def _responses(
    rows: Sequence[HistoryEntry], config: Config | None, samples: Sequence[Sample]
) -> tuple[list[SwitchRun], list[Notification]]:
    """Switches (responses that have an undo) and notifications, from response records."""
    configured = config.responses if config is not None else {}
    undone = {str(e.data.get("response")) for e in rows if e.data.get("action") == "undo"}

    def channel(name: str) -> str:
        rc = configured.get(name)
        return rc.type if rc is not None else ""

    def is_switch(name: str) -> bool:
        rc = configured.get(name)
        return rc.undoable if rc is not None else name in undone

    switches: list[SwitchRun] = []
    open_at: dict[str, datetime] = {}
    by_key: dict[str, list[HistoryEntry]] = {}
    for e in rows:
        name, action = str(e.data.get("response")), e.data.get("action")
        if not is_switch(name):
            by_key.setdefault(str(e.data.get("key")), []).append(e)
        elif e.data.get("outcome") == "ok" and action == "apply" and name not in open_at:
            open_at[name] = e.at
        elif e.data.get("outcome") == "ok" and action == "undo" and name in open_at:
            switches.append(_switch(name, channel(name), open_at.pop(name), e.at, samples))
    switches += [_switch(n, channel(n), at, None, samples) for n, at in open_at.items()]
    switches.sort(key=lambda s: s.applied_at)
    notifications = []
    for tries in by_key.values():
        first, last = tries[0], tries[-1]
        notifications.append(
            Notification(
                at=first.at,
                response=str(first.data.get("response")),
                channel=channel(str(first.data.get("response"))),
                tier=first.tier,
                trigger=str(first.data.get("trigger", "")),
                outcome=str(last.data.get("outcome", "")),
                detail=str(last.data.get("detail", "")),
                attempts=int(last.data.get("attempts", len(tries))),
                finished_at=last.at,
            )
        )
    notifications.sort(key=lambda n: n.at)
    return switches, notifications


def _switch(
    name: str, channel: str, applied: datetime, undone: datetime | None, samples: Sequence[Sample]
) -> SwitchRun:
    return SwitchRun(
        response=name,
        channel=channel,
        applied_at=applied,
        undone_at=undone,
        wait_before=_mean_wait(samples, applied - AROUND, applied),
        wait_after=_mean_wait(samples, applied, applied + AROUND),
    )


def _mean_wait(samples: Sequence[Sample], start: datetime, end: datetime) -> float | None:
    """The mean of the samples' average wait in ``[start, end)``."""
    values = [s.avg_wait for s in samples if start <= s.at < end and s.avg_wait is not None]
    return sum(values) / len(values) if values else None


def _tier_names(lc: LineConfig | None) -> dict[int, str]:
    if lc is None:
        return {}
    return {0: lc.framework.calm_name} | {t.level: t.name for t in lc.framework.tiers}


def wait_thresholds(lc: LineConfig) -> dict[int, float]:
    """Per tier, the average wait above which it is entered, where its rule says so."""
    found: dict[int, float] = {}
    for tier in lc.framework.tiers:
        limits = [c.threshold for c in _compares(tier.when) if c.measure == "avg_wait"
                  and c.op in (Op.ABOVE, Op.AT_LEAST)]  # fmt: skip
        if limits:
            found[tier.level] = min(limits)
    return found


def _compares(condition: Condition) -> list[Compare]:
    if isinstance(condition, Compare):
        return [condition]
    if isinstance(condition, AllOf | AnyOf):
        return [c for part in condition.parts for c in _compares(part)]
    return []  # a Not: its threshold bounds from the other side


def lessons_record(ref: EpisodeRef, by: str, text: str) -> dict[str, Any]:
    """The history data of a lessons-learned record for ``ref``."""
    return {"episode": ref.number, "by": by, "text": text, "episode_id": ref.id}
