"""A duty manager's command works on any replica: run here, or relayed to the leader.

The replica that leads a line runs its commands itself. Any other replica (a standby, or one
leading other partitions) puts the command in the store's ``command`` table
(``risingtide.store.relay``) and waits, up to ``WAIT``, for the leader of the line's
partition to run it (``run_waiting``, every ``LOOK_EVERY``) and write back its answer: the
reason, or why it was refused. The duty manager gets the same answer either way. A command
nobody answered in time is withdrawn, so it can never run later by surprise, and the
caller is told to try again (``NoLeader``: no replica leads the line at the moment).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import structlog

from risingtide.clock import Clock
from risingtide.domain.commands import CommandRejected
from risingtide.domain.model import Decision
from risingtide.store.relay import Outcome, Relayed, RelayTable

__all__ = ["COMMANDS", "LOOK_EVERY", "WAIT", "NoLeader", "relay", "run_waiting"]

log = structlog.get_logger(__name__)

#: The commands a replica may relay (methods of the runtime, each taking the line first).
COMMANDS = frozenset({"acknowledge", "silence", "lift_silence", "declare", "clear_declaration"})
#: How long the replica that took a command waits for the leader's answer.
WAIT = 10.0
#: How often a leader looks for commands relayed to it (seconds).
LOOK_EVERY = 0.25
_TIME = "$time"


class NoLeader(RuntimeError):  # noqa: N818 - says what happened, like KeyError
    """No replica ran the command in time: none leads the line just now."""


def encode_args(args: dict[str, Any]) -> dict[str, Any]:
    """A command's arguments as JSON (times as ``{"$time": iso}``)."""
    return {k: {_TIME: v.isoformat()} if isinstance(v, datetime) else v for k, v in args.items()}


def decode_args(args: dict[str, Any]) -> dict[str, Any]:
    """``encode_args`` undone."""
    return {
        k: datetime.fromisoformat(v[_TIME]) if isinstance(v, dict) and _TIME in v else v
        for k, v in args.items()
    }


async def relay(
    table: RelayTable, clock: Clock, line: str, partition: int, name: str, args: dict[str, Any]
) -> str:
    """Have the leader of ``partition`` run command ``name`` on ``line``; its reason.

    Raises what the command would have raised on the leader: ``CommandRejected``,
    ``KeyError`` (no such line there), or ``NoLeader`` when nobody answered in time.
    """
    if name not in COMMANDS:
        raise ValueError(f"{name!r} is not a command that can be relayed")
    command_id = await asyncio.to_thread(
        table.put, line, partition, name, encode_args(args), clock.now()
    )
    log.info("command relayed to the line's leader", line=line, command=name, id=command_id)
    give_up = time.monotonic() + WAIT
    while time.monotonic() < give_up:
        await asyncio.sleep(LOOK_EVERY / 2)
        answer = await asyncio.to_thread(table.answer, command_id)
        if answer is not None:
            return _answered(line, *answer)
    why = f"no replica leading {line} answered within {WAIT:g} s"
    if await asyncio.to_thread(table.withdraw, command_id, clock.now(), why):
        raise NoLeader(why)
    answer = await asyncio.to_thread(table.answer, command_id)  # run as we gave up
    assert answer is not None
    return _answered(line, *answer)


def _answered(line: str, status: str, result: Any) -> str:
    if status == "done":
        return str(result["reason"])
    if status == "rejected":
        raise CommandRejected(str(result["reason"]))
    if result.get("unknown_line"):
        raise KeyError(line)
    raise NoLeader(str(result.get("error", "the command failed on the leader")))


def run_waiting(
    table: RelayTable,
    waiting: Sequence[Relayed],
    run: Callable[[str, str, dict[str, Any]], Decision],
    now: datetime,
) -> int:
    """Run ``waiting`` (``RelayTable.waiting`` for the partitions this replica leads) with
    ``run`` (line, name, args → the command's decision); how many were answered.

    A command whose run fails in the store (this replica lost the lead: ``Fenced``) is left
    waiting for the next leader; one withdrawn meanwhile is not run."""
    answered = 0
    for one in waiting:
        if table.run(one, lambda w: _run_one(w, run), now):
            answered += 1
    return answered


def _run_one(
    waiting: Relayed, run: Callable[[str, str, dict[str, Any]], Decision]
) -> tuple[Outcome, Any]:
    if waiting.name not in COMMANDS:
        return "failed", {"error": f"unknown command {waiting.name!r}"}
    try:
        decision = run(waiting.line, waiting.name, decode_args(waiting.args))
    except CommandRejected as exc:
        return "rejected", {"reason": exc.reason}
    except KeyError:
        return "failed", {"error": f"no line {waiting.line!r} in the config", "unknown_line": True}
    log.info("relayed command run", line=waiting.line, command=waiting.name, id=waiting.id,
             reason=decision.reason)  # fmt: skip
    return "done", {"reason": decision.reason}
