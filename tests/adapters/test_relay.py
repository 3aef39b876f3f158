"""Commands relayed between replicas through the store's ``command`` table (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from risingtide.clock import FakeClock
from risingtide.domain.commands import CommandRejected
from risingtide.domain.model import Decision, LineState
from risingtide.relay import NoLeader, decode_args, encode_args, relay, run_waiting
from risingtide.store import Store
from risingtide.store.relay import RelayTable

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def table(pg_url: str) -> Iterator[RelayTable]:
    with Store(pg_url, FakeClock(T0)) as store:
        yield RelayTable(store.transaction)


def test_arguments_keep_their_times() -> None:
    """A command's arguments go through JSON and come back equal, times included."""
    args = {"until": T0, "by": "Priya", "level": 2, "undo": True}
    assert decode_args(encode_args(args)) == args


async def test_nobody_answering_withdraws_the_command(
    table: RelayTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no leader, the caller is told so, and the command can never run later."""
    monkeypatch.setattr("risingtide.relay.WAIT", 0.3)
    with pytest.raises(NoLeader):
        await relay(table, FakeClock(T0), "waste", 0, "acknowledge", {"by": "Priya"})
    ran: list[str] = []

    def run(line: str, name: str, args: dict[str, Any]) -> Decision:
        ran.append(name)
        raise AssertionError("a withdrawn command ran")

    assert run_waiting(table, table.waiting(frozenset({0})), run, T0) == 0
    assert ran == []


async def test_the_leaders_answer_and_refusal_reach_the_caller(table: RelayTable) -> None:
    """The leader runs what waits for its partitions only; its reason, or its refusal, is
    what the replica that took the command answers."""

    def run(line: str, name: str, args: dict[str, Any]) -> Decision:
        if name == "silence":
            assert args["until"] == T0  # decoded back to a time
            raise CommandRejected("the line is calm")
        return Decision(LineState(line=line), (), f"{line} acknowledged by {args['by']}")

    async def leader(partitions: frozenset[int]) -> int:
        answered = 0
        for _ in range(40):
            answered += run_waiting(table, table.waiting(partitions), run, T0)
            await asyncio.sleep(0.05)
        return answered

    clock = FakeClock(T0)
    ack = asyncio.ensure_future(relay(table, clock, "waste", 0, "acknowledge", {"by": "Priya"}))
    silence = asyncio.ensure_future(
        relay(table, clock, "revenues", 1, "silence", {"until": T0, "by": "Sam"})
    )
    assert await leader(frozenset({0})) == 1  # partition 1 is not this leader's
    assert await ack == "waste acknowledged by Priya"
    assert not silence.done()
    assert await leader(frozenset({1})) == 1
    with pytest.raises(CommandRejected, match="calm"):
        await silence
