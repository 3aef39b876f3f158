"""Leases, fencing tokens and shares of the partitions, on a real PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from risingtide.leadership import SharedLeadership
from risingtide.store import Fenced, StoreError
from risingtide.store.leases import LeaseFence, Leases, partition_of
from risingtide.store.schema import metadata


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def transactions(engine: Engine):  # type: ignore[no-untyped-def]
    @contextlib.contextmanager
    def transaction(*, write: bool) -> Iterator[Connection]:
        with engine.begin() as conn:
            yield conn

    return transaction


def replica(engine: Engine, name: str, partitions: int, lease: float = 3) -> SharedLeadership:
    leases = Leases(transactions(engine), name, partitions, timedelta(seconds=lease))
    return SharedLeadership(leases, monotonic=Clock())


def run_out(engine: Engine) -> None:
    """Make every lease run out now, on the database's clock."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE lease SET expires_at = clock_timestamp() - interval '1 s'"))


def test_partition_of_is_stable_and_spreads_lines() -> None:
    """A line's partition is a stable hash: the same across calls and spread over all."""
    lines = [f"line-{i}" for i in range(400)]
    parts = [partition_of(line, 4) for line in lines]
    assert parts == [partition_of(line, 4) for line in lines]
    assert set(parts) == {0, 1, 2, 3}
    assert all(parts.count(p) > 60 for p in range(4))
    assert partition_of("anything", 1) == 0


async def test_one_partition_one_leader_and_a_takeover_raises_the_token(engine: Engine) -> None:
    """With one partition exactly one replica leads; when its lease runs out the other
    takes over with a higher token, and the old leader's writes are refused."""
    a, b = replica(engine, "a", 1), replica(engine, "b", 1)
    assert (await a.start()).gained == {0}
    assert a.alive() == 1
    assert (await b.start()).gained == frozenset()
    assert a.leads("council-tax") and not b.leads("council-tax")
    first = a.tokens()[0]
    fence_a = LeaseFence(a.tokens, 1)
    with engine.begin() as conn:
        fence_a.check(conn, ["council-tax"])  # the leader's write passes
    # a is paused: its lease runs out on the database's clock, and by its own.
    run_out(engine)
    assert isinstance(a.monotonic, Clock)
    a.monotonic.now += 10
    assert not a.leads("council-tax")
    assert (await b.step()).gained == {0}
    assert b.tokens()[0] == first + 1
    # a resumes, still believing its token: the database refuses its write.
    with engine.begin() as conn, pytest.raises(Fenced) as refused:
        fence_a.check(conn, ["council-tax"])
    assert refused.value.partitions == {0}
    change = await a.step()
    assert not a.leads("council-tax") and a.tokens() == {}
    assert change.gained == frozenset()


async def test_the_fence_refuses_a_partition_never_held(engine: Engine) -> None:
    """A write touching a line of a partition this replica does not hold is refused."""
    a = replica(engine, "a", 2)
    await a.start()
    mine = next(p for p in range(2) if a.leads_partition(p))
    assert a.led() == {0, 1} and mine == 0  # alone: it takes both
    a.lost(frozenset({1}))
    line = next(f"l{i}" for i in range(100) if partition_of(f"l{i}", 2) == 1)
    with engine.begin() as conn, pytest.raises(Fenced):
        LeaseFence(a.tokens, 2).check(conn, [line])


async def test_partitions_are_shared_and_a_dead_replicas_share_moves(engine: Engine) -> None:
    """Four partitions over two replicas: two each; when one stops renewing, the other
    takes its share once its leases run out."""
    a, b = replica(engine, "a", 4), replica(engine, "b", 4)
    await a.start()
    assert a.led() == {0, 1, 2, 3}
    await b.start()  # b is alive now, but a holds everything
    assert b.led() == frozenset()
    for _ in range(4):  # a gives back one a round, b takes it
        await a.step()
        await b.step()
    assert len(a.led()) == 2 and len(b.led()) == 2
    assert a.led() | b.led() == {0, 1, 2, 3}
    before = a.led()
    # b dies: its leases run out and it is no longer seen.
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE lease SET expires_at = clock_timestamp() - interval '1 s' "
                "WHERE holder = 'b'"
            )
        )
        conn.execute(
            text("UPDATE replica SET seen_at = clock_timestamp() - interval '1 h' WHERE name = 'b'")
        )
    change = await a.step()
    assert a.led() == {0, 1, 2, 3}
    assert change.gained == {0, 1, 2, 3} - before


async def test_a_clean_stop_hands_over_at_once(engine: Engine) -> None:
    """``release_all`` gives the leases back and leaves the replicas: the other takes all
    at its next round, without waiting for a lease to run out."""
    a, b = replica(engine, "a", 2), replica(engine, "b", 2)
    await a.start()
    await b.start()
    await a.release_all()
    await b.step()
    assert b.led() == {0, 1}
    assert b.alive() == 1


async def test_an_unreachable_database_stops_the_lead_by_the_clock(engine: Engine) -> None:
    """When a round cannot reach the database, the replica keeps leading only until its
    lease would have run out by its own clock; then it leads nothing."""
    a = replica(engine, "a", 1, lease=10)
    await a.start()
    engine.dispose()
    a.leases._transaction = _broken
    assert isinstance(a.monotonic, Clock)
    a.monotonic.now += 5
    await a.step()
    assert a.leads("x")
    a.monotonic.now += 5
    change = await a.step()
    assert not a.leads("x") and change.lost == {0}


def _broken(*, write: bool) -> contextlib.AbstractContextManager[Connection]:
    raise ConnectionError("the database is down")


async def test_a_replica_with_another_partition_count_is_refused_while_others_run(
    engine: Engine,
) -> None:
    """A replica started with another ``partitions`` than the running ones is refused (two
    could lead one line); once they have all stopped, the new count is taken."""
    a = replica(engine, "a", 4)
    await a.start()
    b = replica(engine, "b", 2)
    with pytest.raises(StoreError, match="stop every replica"):
        await b.start()
    await a.release_all()  # a stops cleanly
    await b.start()
    assert b.led() == {0, 1}
