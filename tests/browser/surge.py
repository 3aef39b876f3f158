"""The shipped demo in its Council Tax surge, served on loopback for the browser tests and
for ``scripts/board_screenshots.py``.

The runtime runs ``config/rising-tide.yaml`` on a FakeClock from Monday 23 November 2026,
10:00 in London (Asha Patel is the duty manager until 14:00); it is driven second by second
(polls, evaluations, the dispatcher) by ``tests.e2e.demo_harness.step`` until Council Tax
has risen, then serves HTTP while the clock stands still.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.runtime import Runtime
from tests.adapters.desk import free_port
from tests.e2e.demo_harness import MONDAY_10AM, step, with_state_file

DEMO = Path(__file__).resolve().parents[2] / "config" / "rising-tide.yaml"


@asynccontextmanager
async def surge_daemon(tmp_path: Path, seconds: int = 240) -> AsyncIterator[tuple[str, Runtime]]:
    """The demo ``seconds`` into its surge, serving HTTP on a free loopback port."""
    config = with_state_file(load_config(DEMO), tmp_path / "state.sqlite")
    clock = FakeClock(MONDAY_10AM)
    port = free_port()
    runtime = Runtime(config, clock=clock, port=port)
    await runtime.start(schedule=False)
    try:
        await step(runtime, clock, seconds)
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        await runtime.shutdown()
