"""Which lines this daemon leads: all of them alone, or its share among replicas.

A daemon on a SQLite file is the only one (the file's lock sees to that) and leads every
line: ``SoleLeadership``. Replicas sharing PostgreSQL (``server.database``) spread the lines
over ``server.partitions`` partitions and lead a partition while they hold its lease
(``risingtide.store.leases``): ``SharedLeadership``. Each round (every third of a lease) a
replica says it is alive, renews what it holds, gives back what is beyond its fair share
(the partitions over the replicas alive, rounded up) and takes free or run-out partitions
up to it.

A replica stops leading a partition the moment its own monotonic clock says the lease may
have run out, before the database could hand it on, so a replica that was paused or cut
off sends nothing once it resumes; the database's fencing token refuses what it would
still write. ``leads`` is asked before every evaluation and every send.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from risingtide.store.leases import Holding, Leases, partition_of

__all__ = ["Change", "SharedLeadership", "SoleLeadership", "replica_name"]

log = structlog.get_logger(__name__)


def replica_name() -> str:
    """This replica's name: ``RISINGTIDE_REPLICA`` (a pod's name), else ``host:pid``."""
    return os.environ.get("RISINGTIDE_REPLICA") or f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Change:
    """What a round changed: partitions this replica now leads, and those it stopped."""

    gained: frozenset[int] = frozenset()
    lost: frozenset[int] = frozenset()


class SoleLeadership:
    """The only daemon on its store: it leads every line, always."""

    shared = False
    partitions = 1

    def __init__(self) -> None:
        """Named like a replica, for ``/api/v1/replicas``."""
        self.replica = replica_name()

    def leads(self, line: str) -> bool:
        """Every line is ours."""
        return True

    def leads_partition(self, partition: int) -> bool:
        """Every partition (there is one) is ours."""
        return True

    def led(self) -> frozenset[int]:
        """The one partition."""
        return frozenset({0})

    def tokens(self) -> dict[int, int]:
        """No fencing token: nothing else could write."""
        return {0: 0}

    def alive(self) -> int:
        """One replica: this one."""
        return 1

    async def start(self) -> Change:
        """Lead everything from the start."""
        return Change(gained=frozenset({0}))

    async def step(self) -> Change:
        """Nothing ever changes hands."""
        return Change()

    def lost(self, partitions: frozenset[int]) -> None:
        """Never refused: there is no fence."""

    def settle(self) -> Change:
        """Nothing changes hands."""
        return Change()

    async def release_all(self) -> None:
        """Nothing to give back."""

    async def holdings(self) -> list[Holding]:
        """The one partition, held by this daemon for good."""
        return [Holding(0, self.replica, 0, None)]


@dataclass
class SharedLeadership:
    """This replica's leases among replicas sharing one PostgreSQL database."""

    leases: Leases
    monotonic: Callable[[], float] = time.monotonic
    shared: bool = field(default=True, init=False)
    _held: dict[int, int] = field(default_factory=dict, init=False)
    _valid_until: dict[int, float] = field(default_factory=dict, init=False)
    _leading: frozenset[int] = field(default_factory=frozenset, init=False)
    _alive: int = field(default=1, init=False)

    @property
    def replica(self) -> str:
        """This replica's name."""
        return self.leases.replica

    @property
    def partitions(self) -> int:
        """How many partitions the lines are spread over."""
        return self.leases.partitions

    def leads(self, line: str) -> bool:
        """True while this replica holds the lease of ``line``'s partition, by its own clock."""
        return self.leads_partition(partition_of(line, self.partitions))

    def leads_partition(self, partition: int) -> bool:
        """True while this replica holds ``partition``'s lease, by its own clock."""
        until = self._valid_until.get(partition)
        return until is not None and self.monotonic() < until

    def led(self) -> frozenset[int]:
        """The partitions this replica leads now."""
        return frozenset(p for p in self._held if self.leads_partition(p))

    def tokens(self) -> dict[int, int]:
        """Partition → fencing token, of the leases this replica holds (for the fence)."""
        return dict(self._held)

    def alive(self) -> int:
        """Replicas alive at the last round, this one included."""
        return self._alive

    @property
    def _margin(self) -> float:
        # Stop a little before the database could hand a lease on: clocks run at slightly
        # different rates, and the renewal's answer takes time to arrive.
        return max(0.5, self.leases.lease.total_seconds() / 10)

    async def start(self) -> Change:
        """Make sure the lease rows exist, then take a first share."""
        await asyncio.to_thread(self.leases.prepare)
        return await self.step()

    async def step(self) -> Change:
        """One round: heartbeat, renew, give back beyond the fair share, take up to it.

        Never raises: with the database unreachable the leases simply run out by this
        replica's clock (``leads`` turns False), and a later round takes them up again.
        """
        try:
            await asyncio.to_thread(self._round)
        except Exception as exc:
            log.warning("could not renew the leases; leading only until they run out",
                        error=str(exc), held=sorted(self._held))  # fmt: skip
        return self._changes()

    def _round(self) -> None:
        lease = self.leases.lease.total_seconds()
        began = self.monotonic()
        self._alive = self.leases.heartbeat()
        kept = self.leases.renew(self._held)
        for partition in sorted(set(self._held) - set(kept)):
            log.warning("lead lost", partition=partition, token=self._held[partition])
            self._valid_until.pop(partition, None)
        self._held = kept
        for partition in kept:
            self._valid_until[partition] = began + lease - self._margin
        share = math.ceil(self.partitions / self._alive)
        extra = sorted(self._held)[share:]
        if extra:
            # One at a time, so a replica that starts and dies at once moves little.
            self._give_back(extra[-1:])
        began = self.monotonic()
        taken = self.leases.acquire(share - len(self._held))
        for partition, token in taken.items():
            log.info("lead taken", partition=partition, token=token, replica=self.replica)
            self._held[partition] = token
            self._valid_until[partition] = began + lease - self._margin

    def _give_back(self, partitions: list[int], *, leaving: bool = False) -> None:
        self.leases.release(partitions, leaving=leaving)
        for partition in partitions:
            log.info("lead released", partition=partition, token=self._held.pop(partition),
                     replica=self.replica)  # fmt: skip
            self._valid_until.pop(partition, None)

    def _changes(self) -> Change:
        now_leading = self.led()
        change = Change(gained=now_leading - self._leading, lost=self._leading - now_leading)
        self._leading = now_leading
        return change

    def lost(self, partitions: frozenset[int]) -> None:
        """The database refused a write for ``partitions`` (``Fenced``): stop leading them
        now; the next round finds out who holds them."""
        for partition in partitions:
            self._held.pop(partition, None)
            self._valid_until.pop(partition, None)

    def settle(self) -> Change:
        """Partitions that stopped (or started) being led since the last look, by the
        clock alone (a lease run out between rounds, or ``lost``)."""
        return self._changes()

    async def release_all(self) -> None:
        """Give back every lease (a clean stop), so another replica takes over at once."""
        held = sorted(self._held)
        try:
            await asyncio.to_thread(self._give_back, held, leaving=True)
        except Exception as exc:
            log.warning("could not give the leases back; they run out by themselves",
                        error=str(exc))  # fmt: skip

    async def holdings(self) -> list[Holding]:
        """Every partition's lease as the database has it."""
        return await asyncio.to_thread(self.leases.holdings)
