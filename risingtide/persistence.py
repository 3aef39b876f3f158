"""Which line states the store writes: changes, not observations.

Every poll moves each line's ``last_stats_at``; writing every line after every poll was
most of the daemon's CPU at 50,000 lines. A state is written when its durable part changed
(tier, timers, episode, acknowledgement, silence, declaration, live switches, stale flags)
and otherwise only when its ``last_stats_at`` has moved ``STATS_KEPT_EVERY`` past what the
store holds. A clean shutdown writes the rest; after a crash, ``restored`` keeps the lag
from starting a stale spell (and a false "stats stale" alert) before the daemon stopped.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from datetime import datetime, timedelta
from operator import attrgetter

from risingtide.domain.model import Framework, LineState

#: How far a line's ``last_stats_at`` may run ahead of the stored one with nothing else
#: changing before it is written anyway: this, plus up to as much again by line (a spread
#: fixed by the line's name), so lines polled together are not all written at one poll.
STATS_KEPT_EVERY = timedelta(minutes=5)

#: How often, at most, a pass notes the time it saw the lines (``Store.note_observed``).
MARK_EVERY = timedelta(seconds=15)

#: Every field but ``last_stats_at``, read as one tuple (``attrgetter`` does it in C: this
#: runs for every line after every poll).
_durable = attrgetter(*(f.name for f in fields(LineState) if f.name != "last_stats_at"))
#: The same less the stale flags (``_only_marked_stale``).
_unstaled = attrgetter(
    *(f.name for f in fields(LineState) if f.name not in ("last_stats_at", "stale", "stale_since"))
)


def _only_marked_stale(before: LineState, after: LineState) -> bool:
    """True when ``after`` is ``before`` newly stale, and nothing else has changed."""
    if before.stale or not after.stale or before.last_stats_at != after.last_stats_at:
        return False
    return bool(_unstaled(before) == _unstaled(after))


def durably_changed(before: LineState, after: LineState) -> bool:
    """True when ``after`` differs from ``before`` in more than ``last_stats_at``."""
    if after is before:
        return False
    return bool(_durable(before) != _durable(after))


class Persistence:
    """What the store holds of each line's ``last_stats_at``, and when to write again."""

    def __init__(self) -> None:
        """Start knowing nothing stored (every state is then written once)."""
        self._stored: dict[str, datetime | None] = {}
        self._every: dict[str, timedelta] = {}
        self._marked_at: datetime | None = None

    def written(self, states: Iterable[LineState]) -> None:
        """Note that ``states`` are now what the store holds."""
        stored = self._stored
        for state in states:
            stored[state.line] = state.last_stats_at

    def forget(self, line: str) -> None:
        """A retired line: nothing of it is stored any more."""
        self._stored.pop(line, None)

    def wants(self, before: LineState, after: LineState) -> bool:
        """True when the move from ``before`` to ``after`` must be written now.

        A line the store has never held that has only been marked stale (a first start,
        no figures yet) is written with its first figures, a moment later, rather than
        twice over (10,000 rows each at 10,000 lines); a clean stop writes it meanwhile
        (``behind``).
        """
        if after.line not in self._stored and _only_marked_stale(before, after):
            return False
        if durably_changed(before, after):
            return True
        new = after.last_stats_at
        if new is None:
            return False
        if after.line not in self._stored:
            return True
        old = self._stored[after.line]
        return old is None or new - old >= self._kept_every(after.line)

    def _kept_every(self, line: str) -> timedelta:
        every = self._every.get(line)
        if every is None:
            spread = zlib.crc32(line.encode()) % int(STATS_KEPT_EVERY.total_seconds())
            every = self._every[line] = STATS_KEPT_EVERY + timedelta(seconds=spread)
        return every

    def behind(self, states: Mapping[str, LineState]) -> list[LineState]:
        """The states the store does not hold yet, or whose ``last_stats_at`` it does not
        hold yet (for a shutdown)."""
        stored = self._stored
        return [
            s for lid, s in states.items() if lid not in stored or stored[lid] != s.last_stats_at
        ]

    def mark_due(self, now: datetime) -> bool:
        """True (and noted) when a pass should note ``now`` as when the lines were seen."""
        if self._marked_at is not None and now - self._marked_at < MARK_EVERY:
            return False
        self._marked_at = now
        return True


def restored(
    framework: Framework, state: LineState, observed_at: datetime | None, now: datetime
) -> LineState:
    """A stored state fit for a restart at ``now`` with no figures yet.

    The daemon has no figures until its first poll, so the line starts stale, as the
    engine would date it (``last_stats_at + stale_after``, or now if sooner). A line stored
    fresh may have had figures up to when the lines were last seen (``observed_at``, noted
    every ``MARK_EVERY``) that the store did not keep: date the spell from the later of the
    two, so a lagging stored time never brings a "stats stale" alert forward (at worst it
    comes ``stale_after`` and ``MARK_EVERY`` late, and only after a crash: a clean stop
    writes the exact times).
    """
    if not state.open or state.stale or state.last_stats_at is None or observed_at is None:
        return state
    # Figures may have come in passes after the last note, at most MARK_EVERY later.
    since = max(state.last_stats_at, observed_at + MARK_EVERY) + framework.stale_after
    return replace(state, stale=True, stale_alerted=False, stale_since=min(since, now))
