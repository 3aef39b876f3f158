"""A first start writes each line once, with its first figures, not once before them too.

A real SQLite store on a FakeClock, the shipped ``scripted`` source, driven by hand.
"""

from __future__ import annotations

from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.runtime import Runtime
from risingtide.store import Store
from tests.adapters.test_persistence import count_state_writes
from tests.adapters.test_runtime import T0, scripted, write_config


async def test_the_start_pass_writes_no_new_line_until_its_first_figures(tmp_path: Path) -> None:
    """The start pass marks new lines stale in memory only; the first poll writes each once."""
    clock = FakeClock(T0)
    rt = Runtime(load_config(write_config(tmp_path)), clock=clock)
    await rt.start(serve_http=False, schedule=False)
    try:
        assert rt.store is not None and rt.poller is not None
        written = count_state_writes(rt.store)
        await rt.tick()  # what ``start`` runs first when it schedules polls
        assert rt.states["revenues"].stale
        assert rt.store.load_states() == {}
        clock.advance(5)
        scripted(rt, "fast").push(QueueStats(line="revenues", at=clock.now(), avg_wait=100))
        await rt.poller.poll("fast")
        stored = rt.store.load_states()
        assert set(stored) == {"revenues"}
        assert stored["revenues"] == rt.states["revenues"]
        assert not stored["revenues"].stale
        assert written == [1]  # the start pass committed nothing; the poll wrote one state
    finally:
        await rt.shutdown()


async def test_a_clean_stop_before_any_figures_keeps_when_the_lines_went_stale(
    tmp_path: Path,
) -> None:
    """Stopped before its first figures, the store still holds each line stale since start."""
    clock = FakeClock(T0)
    path = write_config(tmp_path)
    rt = Runtime(load_config(path), clock=clock)
    await rt.start(serve_http=False, schedule=False)
    await rt.tick()
    clock.advance(30)
    await rt.shutdown()
    store = Store(tmp_path / "state.sqlite", clock)
    try:
        stored = store.load_states()
    finally:
        store.close()
    assert set(stored) == {"revenues", "waste"}
    assert all(s.stale and s.stale_since == T0 for s in stored.values())
