"""``risingtide_leader`` and ``risingtide_replicas`` on ``/metrics``.

Every replica exposes, for each partition of the lines, 1 when it leads it and 0 when it
does not, so ``sum by (partition) (risingtide_leader)`` is 1 for every partition when all
is well: 0 means nobody leads it (nothing is evaluated or sent for its lines), 2 means two
replicas believe they do (the fencing token keeps the second from writing anything; it
lasts until its lease runs out by its own clock). A daemon alone on its SQLite file leads
its one partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from risingtide.leadership import SharedLeadership, SoleLeadership

__all__ = ["LeaderCollector"]


class LeaderCollector(Collector):
    """Reads the runtime's leadership at each scrape."""

    def __init__(self, leadership: Callable[[], SoleLeadership | SharedLeadership]) -> None:
        """``leadership``: the runtime's current one (it is replaced when the store opens)."""
        self._leadership = leadership

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One ``risingtide_leader`` sample per partition, and the replicas alive."""
        leadership = self._leadership()
        led = leadership.led()
        leader = GaugeMetricFamily(
            "risingtide_leader",
            "1 when this replica leads the partition of the lines, else 0.",
            labels=["partition"],
        )
        for partition in range(leadership.partitions):
            leader.add_metric([str(partition)], 1.0 if partition in led else 0.0)
        yield leader
        yield GaugeMetricFamily(
            "risingtide_replicas",
            "Replicas alive at this replica's last round, itself included.",
            value=float(leadership.alive()),
        )
