"""One replica among several: taking up a share of the lines, handing it on, and showing
the rest as their leaders left them.

``run_replica`` is the runtime's task when replicas share PostgreSQL (``server.database``):
every third of a lease a round of ``risingtide.leadership`` renews and rebalances the
leases. A partition gained is **taken up**: its lines' states are read from the store as
the last leader committed them (tiers, timers, episodes, acknowledgements, live switches),
fitted to this config, and its lines evaluated at once; the outbox carries on as the last
leader left it (entries done are never run again, pending ones run under their own keys),
and live switches are not applied again (the platform did not restart; only the leader
changed). A partition lost is **handed on**:
its lines' deadlines are dropped and nothing of theirs is evaluated or sent here any more.
The lines this replica does not lead are read back from the store every round, and the
commands relayed to what it leads are run every ``relay.LOOK_EVERY``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from risingtide.config.model import ServerConfig
from risingtide.leadership import Change, SharedLeadership, SoleLeadership, replica_name
from risingtide.relay import LOOK_EVERY, run_waiting
from risingtide.store import Store
from risingtide.store.leases import LeaseFence, Leases, partition_of
from risingtide.store.relay import RelayTable
from risingtide.store.standby import StandbyReader, read_states

if TYPE_CHECKING:
    from risingtide.runtime import Runtime

__all__ = ["hand_over", "leadership_for", "lines_of", "run_replica", "take_up"]

log = structlog.get_logger(__name__)

#: How far back a standby reads states again, beyond its last look: the leader stamps them
#: by its own clock, which may run a little behind this replica's.
_SKEW = timedelta(seconds=60)


def leadership_for(server: ServerConfig, store: Store) -> SoleLeadership | SharedLeadership:
    """Lead alone on a store of one's own; share leases on a shared one (and fence the
    store's writes with them)."""
    if not store.shared:
        return SoleLeadership()
    leases = Leases(store.transaction, replica_name(), server.partitions, server.lease)
    leadership = SharedLeadership(leases)
    store.fence = LeaseFence(leadership.tokens, server.partitions)
    return leadership


def lines_of(runtime: Runtime, partitions: Iterable[int]) -> list[str]:
    """The config's lines in ``partitions``, in config order."""
    wanted = set(partitions)
    n = runtime.leadership.partitions
    return [line for line in runtime.config.lines if partition_of(line, n) in wanted]


async def run_replica(runtime: Runtime, stop: asyncio.Event) -> None:
    """Keep this replica's leases and its view of the other lines; never raises."""
    leadership = runtime.leadership
    every = runtime.config.server.lease.total_seconds() / 3
    since = runtime.clock.now()
    assert runtime.store is not None
    reader = StandbyReader(runtime.store.transaction)
    next_round = 0.0
    failing = 0  # rounds failed in a row: the first is logged, then the recovery
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        whole = False  # a whole round (leases and read-back), not only the relayed commands
        try:
            if loop.time() >= next_round:
                whole = True
                next_round = loop.time() + every
                changed = await leadership.step()
                looked = runtime.clock.now()
                apply(runtime, changed)
                await refresh(runtime, reader, since - _SKEW)
                since = looked
            else:
                apply(runtime, leadership.settle())
            await _run_relayed(runtime)
        except Exception:
            failing += 1
            if failing == 1:  # once a spell: the database away would log it 4 times a second
                log.exception("the replica's round failed; trying again")
        else:
            if failing and whole:
                log.info("the replica's rounds work again", failures=failing)
                failing = 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LOOK_EVERY)


def apply(runtime: Runtime, change: Change) -> None:
    """Hand on what was lost, then take up what was gained."""
    if change.lost:
        hand_over(runtime, change.lost)
    if change.gained:
        take_up(runtime, change.gained)


def take_up(runtime: Runtime, partitions: frozenset[int]) -> None:
    """Lead ``partitions`` from their lines' stored states; evaluate them now."""
    store = runtime.store
    assert store is not None
    n = runtime.leadership.partitions
    stored = {
        line: state
        for line, state in read_states(store.transaction).items()
        if partition_of(line, n) in partitions
    }
    lines = lines_of(runtime, partitions)
    runtime.persistence.written(stored.values())
    runtime.restore_lines(stored, lines)
    runtime._retire_lines(
        {line: state for line, state in stored.items() if line not in runtime.config.lines},
        why="not in the config when this replica took the lead",
    )
    # No re-assert of live switches: the platform did not restart, only the leader
    # changed; what the old leader left pending in the outbox is run as it stands.
    runtime._evaluate_safely(lines, runtime.clock.now())
    log.info("lines taken up", partitions=sorted(partitions), lines=len(lines),
             replica=runtime.leadership.replica)  # fmt: skip


def hand_over(runtime: Runtime, partitions: frozenset[int]) -> None:
    """Stop evaluating ``partitions``' lines here: another replica leads them now."""
    lines = lines_of(runtime, partitions)
    runtime.forget_deadlines(lines)
    log.warning("lines handed on", partitions=sorted(partitions), lines=len(lines),
                replica=runtime.leadership.replica)  # fmt: skip


async def refresh(runtime: Runtime, reader: StandbyReader, since: datetime | None) -> int:
    """Read back the states of lines this replica does not lead, written since ``since``
    (all when None); how many changed here."""
    leadership = runtime.leadership
    if len(leadership.led()) == leadership.partitions:
        return 0  # it leads every line: nothing of anyone else's to show
    wanted = lambda line: not leadership.leads(line)  # noqa: E731
    states = await asyncio.to_thread(reader.changed_since, since, wanted)
    return runtime.show_stored(states)


async def refresh_line(runtime: Runtime, line: str) -> None:
    """Read back one line's state at once (after a command its leader ran)."""
    store = runtime.store
    if store is not None:
        runtime.show_stored(await asyncio.to_thread(read_states, store.transaction, lines=[line]))


async def _run_relayed(runtime: Runtime) -> None:
    store = runtime.store
    led = runtime.leadership.led()
    if store is None or not led:
        return
    table = RelayTable(store.transaction)
    waiting = await asyncio.to_thread(table.waiting, led)
    if waiting:
        # The commands change this replica's memory: run them here, on the event loop.
        run_waiting(table, waiting, runtime.run_named, runtime.clock.now())
