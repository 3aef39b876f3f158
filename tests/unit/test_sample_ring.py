"""The samples ring: an hour of a line's figures, packed, read back exactly."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from risingtide.domain.model import QueueStats
from risingtide.samples import _Ring

T0 = datetime(2026, 1, 5, 9, 0, 7, 250_000, tzinfo=UTC)


def figures(at: datetime, wait: float) -> QueueStats:
    return QueueStats(
        line="revenues", at=at, calls_waiting=12, avg_wait=wait, longest_wait=None,
        agents_available=0, agents_staffed=9, offered=140, answered=120, abandoned=7,
        window=900.0, avg_handle_time=None,
    )  # fmt: skip


def test_a_slot_reads_back_the_figures_it_was_given() -> None:
    """Ints stay ints, unknowns stay None, times keep their microseconds, target kept."""
    ring = _Ring("revenues")
    ring.add(figures(T0, 181.5), 180.0)
    [slot] = list(ring)
    assert slot.stats == figures(T0, 181.5)
    assert isinstance(slot.stats.calls_waiting, int)
    assert slot.target_wait == 180.0
    assert slot.minute == T0.replace(second=0, microsecond=0)


def test_the_ring_keeps_an_hour_the_last_figures_of_each_minute_and_ignores_late_ones() -> None:
    """Two polls in a minute keep the later; older figures are dropped; 61 minutes at most."""
    ring = _Ring("revenues")
    for minute in range(90):
        at = T0 + timedelta(minutes=minute)
        ring.add(figures(at, 100 + minute), 180.0)
        ring.add(figures(at + timedelta(seconds=15), 200 + minute), 180.0)
    ring.add(figures(T0, 999), 180.0)  # a late source: older than the newest minute
    slots = list(ring)
    assert len(slots) == 61
    assert [s.stats.avg_wait for s in slots] == [200 + m for m in range(29, 90)]
    assert ring.oldest_at() == T0 + timedelta(minutes=29, seconds=15)
    assert ring.newest_at() == T0 + timedelta(minutes=89, seconds=15)
    assert sys.getsizeof(ring._data) < 8_000  # an hour in one array, not 61 objects
