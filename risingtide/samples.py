"""A line's figures over time: the last hour in memory, and the minutes around episodes kept.

The store does not keep each poll's figures (DESIGN.md: persist changes, not observations).
Two things still need figures over time: the board's trend (the last hour, present on
first load) and an episode's story (the wait against the thresholds, the capacity gap, the
average wait before and after each response). ``SampleRecorder`` serves both:

* **In memory**, per line, one sample a minute for the last hour (the last figures to
  arrive in each minute, stamped with their own time), fed by the runtime whenever a
  source's figures arrive. ``recent`` reads it; nothing here touches the disk.
* **Kept in the store** (table ``samples``), one sample a minute per line, but only while
  the line is in an episode, for the 15 minutes before its first rise (from the ring, so
  "before" exists) and for the 15 minutes after calm. Writes are batched: at most one
  transaction a minute, however many lines, made in a worker thread when an event loop
  runs (Erlang C for thousands of lines in flood takes most of a second, which the loop
  must not wait for).

A sample that cannot be written (the store failed) stays due and goes with the next
minute's batch; at shutdown up to a minute of samples may be lost, never a tier change.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from risingtide.clock import Clock
from risingtide.config.model import Config
from risingtide.domain.capacity import agents_needed_from_stats
from risingtide.domain.model import LineState, QueueStats
from risingtide.store import Store, StoreError

__all__ = ["AROUND", "KEEP", "Sample", "SampleRecorder", "SampleSource"]

log = structlog.get_logger(__name__)

#: How much the ring keeps.
KEEP = timedelta(hours=1)
#: Kept in the store before an episode's first rise and after its calm.
AROUND = timedelta(minutes=15)
#: The store is written at most this often.
FLUSH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Sample:
    """A line's figures at ``at``; a measure the source does not give is None.

    ``offered``, ``answered`` and ``abandoned`` count calls over the source's ``window``
    (seconds) ending at ``at``; ``agents_needed`` is Erlang C's answer for the target wait.
    """

    at: datetime
    avg_wait: float | None = None
    longest_wait: float | None = None
    abandon_rate: float | None = None
    calls_waiting: int | None = None
    offered: int | None = None
    answered: int | None = None
    abandoned: int | None = None
    agents_staffed: int | None = None
    agents_needed: int | None = None
    window: float | None = None

    @classmethod
    def from_stats(cls, stats: QueueStats, target_wait: float) -> Sample:
        """The sample for a poll's figures (Erlang C worked out here, once a sample)."""
        return cls(
            at=stats.at,
            avg_wait=stats.avg_wait,
            longest_wait=stats.longest_wait,
            abandon_rate=stats.abandon_rate,
            calls_waiting=stats.calls_waiting,
            offered=stats.offered,
            answered=stats.answered,
            abandoned=stats.abandoned,
            agents_staffed=stats.agents_staffed,
            agents_needed=(
                stats.agents_needed  # the capacity model's smoothed figure, where it has one
                if stats.agents_needed is not None
                else agents_needed_from_stats(stats, target_wait)
            ),
            window=stats.window,
        )

    def figures(self) -> dict[str, Any]:
        """The measures by name, as the store keeps them (``at`` is its own column)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "at"}

    @classmethod
    def from_figures(cls, at: datetime, figures: Mapping[str, Any]) -> Sample:
        """A kept sample back; names this version does not know are ignored."""
        known = {f.name for f in fields(cls)} - {"at"}
        return cls(at=at, **{k: v for k, v in figures.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        """The sample as the API returns it."""
        return {"at": self.at.isoformat(), **self.figures()}


class SampleSource(Protocol):
    """What the recorder reads from the runtime when figures arrive."""

    config: Config
    states: dict[str, LineState]
    store: Store | None
    clock: Clock


@dataclass(slots=True)
class _Slot:
    """One minute in the ring: the minute's last figures, turned into a Sample on demand."""

    minute: datetime
    stats: QueueStats
    target_wait: float

    def sample(self) -> Sample:
        return Sample.from_stats(self.stats, self.target_wait)


#: The figures a ring slot keeps, after ``at`` and before the target wait; ints come back
#: as ints, and NaN stands for None (unknown).
#: The capacity model's other figures are not kept: a sample needs only agents needed, and
#: the gap, its ratio and the waits follow from the rest (five doubles a slot saved).
_DERIVED = frozenset({"capacity_gap", "capacity_gap_ratio", "predicted_wait", "forecast_wait"})
_FIGURES = tuple(
    f.name for f in fields(QueueStats) if f.name not in ("line", "at") and f.name not in _DERIVED
)
_INTS = frozenset(f.name for f in fields(QueueStats) if "int" in str(f.type))
_WIDTH = len(_FIGURES) + 2  # at (epoch seconds), the figures, the target wait
_SLOTS = int(KEEP / timedelta(minutes=1)) + 1
_NAN = math.nan


class _Ring:
    """A line's last hour, one slot a minute, packed in one array of doubles.

    An hour of slots as objects (a QueueStats, its datetimes and floats) took about 30 kB a
    line — 300 MB at 10,000 lines; packed it is under 7 kB, and ``_Slot`` views are made
    only when read (the board's trend, an episode's minutes).
    """

    __slots__ = ("_data", "_line")

    def __init__(self, line: str) -> None:
        self._line = line
        self._data = array("d")

    def __len__(self) -> int:
        return len(self._data) // _WIDTH

    def add(self, stats: QueueStats, target_wait: float) -> None:
        """Keep ``stats`` as its minute's figures (the last to arrive in a minute wins)."""
        at = stats.at.timestamp()
        minute = at - at % 60
        data = self._data
        row = [at, *(_pack(getattr(stats, n)) for n in _FIGURES), target_wait]
        if data:
            last_at = data[-_WIDTH]
            last_minute = last_at - last_at % 60
            if last_minute == minute:
                data[-_WIDTH:] = array("d", row)
                return
            if last_minute > minute:
                return  # figures older than the newest minute add nothing to a trend
        data.extend(row)
        if len(data) > _SLOTS * _WIDTH:
            del data[:_WIDTH]

    def oldest_at(self) -> datetime:
        """The oldest slot's figures' time (the ring is not empty)."""
        return datetime.fromtimestamp(self._data[0], UTC)

    def newest_at(self) -> datetime:
        """The newest slot's figures' time (the ring is not empty)."""
        return datetime.fromtimestamp(self._data[-_WIDTH], UTC)

    def __iter__(self) -> Iterator[_Slot]:
        data = self._data
        for i in range(0, len(data), _WIDTH):
            yield self._slot(data[i : i + _WIDTH])

    def _slot(self, row: array[float]) -> _Slot:
        at = datetime.fromtimestamp(row[0], UTC)
        figures = {name: _unpack(row[k], name in _INTS) for k, name in enumerate(_FIGURES, start=1)}
        stats = QueueStats(line=self._line, at=at, **figures)
        return _Slot(at.replace(second=0, microsecond=0), stats, row[-1])


def _pack(value: float | None) -> float:
    return _NAN if value is None else float(value)


def _unpack(value: float, whole: bool) -> Any:
    if math.isnan(value):
        return None
    return int(value) if whole else value


@dataclass(slots=True)
class _Kept:
    """Per line, what has gone to the store: the episode followed and how far it got."""

    line: str
    episode: int
    since: datetime
    upto: datetime | None = None


class SampleRecorder:
    """The last hour of each line's figures, and the store's samples around episodes."""

    def __init__(self) -> None:
        """An empty recorder; ``observe`` fills it."""
        self._rings: dict[str, _Ring] = {}
        self._kept: dict[str, _Kept] = {}
        self._last_flush: datetime | None = None
        self._writing: asyncio.Future[int] | None = None

    def observe(self, daemon: SampleSource, stats: Mapping[str, QueueStats]) -> None:
        """Take a poll's figures; once a minute, keep what episodes need in the store.

        Under a running event loop the write (Erlang C for each sample, then one
        transaction) goes to a worker thread, so a minute with thousands of lines in
        flood never holds up the loop; ``drain`` waits for it.
        """
        lines = daemon.config.lines
        for line, s in stats.items():
            lc = lines.get(line)
            if lc is not None:
                self._add(line, s, lc.target_wait)
        now = daemon.clock.now()
        store = daemon.store
        if store is None or (self._last_flush is not None and now - self._last_flush < FLUSH_EVERY):
            return
        if self._writing is not None and not self._writing.done():
            return  # last minute's batch is still going in; its lines wait for the next
        self._last_flush = now
        batch = self._select(daemon.states)
        if not batch:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(store, batch)
            return
        self._writing = loop.run_in_executor(None, self._write, store, batch)

    async def drain(self) -> None:
        """Wait for a write in progress, if any."""
        if self._writing is not None:
            await asyncio.shield(self._writing)

    def _add(self, line: str, stats: QueueStats, target_wait: float) -> None:
        ring = self._rings.get(line)
        if ring is None:
            ring = self._rings[line] = _Ring(line)
        ring.add(stats, target_wait)

    def recent(self, line: str, now: datetime) -> list[Sample]:
        """The line's samples of the last hour before ``now``, oldest first."""
        return [s.sample() for s in self._rings.get(line, ()) if now - s.stats.at <= KEEP]

    def flush(self, store: Store, states: Mapping[str, LineState]) -> int:
        """Write every line's due samples in one transaction, here; how many were written."""
        return self._write(store, self._select(states))

    def _select(self, states: Mapping[str, LineState]) -> list[tuple[_Kept, _Slot]]:
        """Every line's due minutes, each with the record of what its line has kept."""
        due: list[tuple[_Kept, _Slot]] = []
        for line, ring in self._rings.items():
            state = states.get(line)
            if ring and state is not None and state.episode > 0:
                kept, slots = self._due(line, state, ring)
                due.extend((kept, slot) for slot in slots)
        return due

    def _write(self, store: Store, batch: Sequence[tuple[_Kept, _Slot]]) -> int:
        """Turn ``batch`` into samples and write them in one transaction (any thread)."""
        if not batch:
            return 0
        samples = [(kept, slot.sample()) for kept, slot in batch]
        try:
            store.write_samples([(k.line, s.at, s.figures()) for k, s in samples])
        except StoreError as exc:
            log.warning("samples not kept; trying again next minute", error=str(exc))
            return 0
        for kept, s in samples:
            kept.upto = s.at if kept.upto is None else max(kept.upto, s.at)
        return len(samples)

    def _due(self, line: str, state: LineState, ring: _Ring) -> tuple[_Kept, list[_Slot]]:
        """The ring's minutes of ``line`` the store should have and does not yet."""
        kept = self._kept.get(line)
        edge = state.entered_at or ring.newest_at()  # the ring is never empty here
        if kept is None or kept.episode != state.episode:
            # A new episode (or the first look since start): keep from 15 minutes before
            # it. While raised, ``entered_at`` is when the tier was entered — the first rise,
            # unless it rose again within the minute; once calm, it is when calm came.
            kept = self._kept[line] = _Kept(line, state.episode, edge - AROUND)
        until = None if state.tier > 0 else edge + AROUND
        if until is not None and (not ring or ring.oldest_at() >= until):
            return kept, []  # calm for long enough: nothing in the ring is wanted
        return kept, [
            slot
            for slot in ring
            if slot.stats.at >= kept.since
            and (kept.upto is None or slot.stats.at > kept.upto)
            and (until is None or slot.stats.at < until)
        ]
