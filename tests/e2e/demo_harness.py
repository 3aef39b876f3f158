"""Drive a whole Runtime on a FakeClock: polls, evaluation ticks and the dispatcher by hand.

Used by the end-to-end tests of the shipped demo config, and handy for tuning it::

    .venv/bin/python -m tests.e2e.demo_harness config/rising-tide.yaml 20
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.config.model import Config
from risingtide.runtime import Runtime

#: A Monday morning in office hours (10:00 in London, GMT).
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def with_state_file(config: Config, path: Path) -> Config:
    """The config with its state file moved (tests keep state in tmp_path)."""
    return dataclasses.replace(
        config, server=dataclasses.replace(config.server, state_file=path)
    )


async def start(config: Config, clock: FakeClock) -> Runtime:
    """A started runtime with no scheduler and no HTTP: the caller drives time."""
    runtime = Runtime(config, clock=clock)
    await runtime.start(serve_http=False, schedule=False)
    return runtime


async def step(runtime: Runtime, clock: FakeClock, seconds: int) -> None:
    """Advance ``seconds`` second by second, polling and evaluating on the config's cadence."""
    assert runtime.poller is not None and runtime.dispatcher is not None
    evaluate_every = int(runtime.config.server.evaluate_every.total_seconds())
    for _ in range(seconds):
        clock.advance(1)
        elapsed = int((clock.now() - MONDAY_10AM).total_seconds())
        for sid, sc in runtime.config.sources.items():
            if elapsed % int(sc.interval.total_seconds()) == 0:
                await runtime.poller.poll(sid)
        if elapsed % evaluate_every == 0:
            runtime.evaluate_all(clock.now())
            await runtime.dispatcher.run_due()


async def _main(path: str, minutes: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        config = with_state_file(load_config(path), Path(tmp) / "state.sqlite")
        clock = FakeClock(MONDAY_10AM)
        runtime = await start(config, clock)
        for minute in range(minutes * 2):
            await step(runtime, clock, 30)
            cells = []
            for v in runtime.views():
                s = v.stats
                if s is None:
                    continue
                rate = s.abandon_rate
                live = ",".join(sorted(v.state.live))[:14]
                cells.append(
                    f"{v.id[:6]}:T{v.state.tier} {s.avg_wait or 0:4.0f}/{s.longest_wait or 0:4.0f}"
                    f" q{s.calls_waiting} ab{(rate or 0) * 100:3.0f}% {live}"
                )
            print(f"{(minute + 1) / 2:5.1f}m", " | ".join(cells))
        await runtime.shutdown()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20))
