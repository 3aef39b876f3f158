"""A line removed from the config (by reload, or while the daemon was stopped) gets its live
switches undone at the platform and its episode closed, against a real switch on loopback."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from risingtide.store import StoreError
from tests.adapters.loopback import Loopback
from tests.adapters.test_http_action import Platform

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CONFIG = """
server:
  state_file: {state}
  evaluate_every: 5s
sources:
  fast: {{ type: scripted }}
lines:
{lines}
defaults:
  framework: standard
frameworks:
  standard:
    stale_after: 10m
    tiers:
      - level: 1
        name: high
        when: {{ avg_wait: {{ above: 300s }} }}
        for: 10s
        clear: {{ avg_wait: {{ below: 100s }} }}
        clear_for: 10s
        responses: [ivr]
responses:
  ivr:
    type: http_action
    apply: {{ method: PUT, url: "{url}/flags/{{{{ line }}}}", body: {{ "on": true }} }}
    undo: {{ method: DELETE, url: "{url}/flags/{{{{ line }}}}" }}
"""

REVENUES = "  revenues: { name: Revenues, source: { use: fast, avg_wait: 50 } }"
WASTE = "  waste: { name: Waste, source: { use: fast, avg_wait: 50 } }"


def write(tmp_path: Path, url: str, *lines: str) -> Path:
    path = tmp_path / "rising-tide.yaml"
    text = CONFIG.format(state=tmp_path / "state.sqlite", url=url, lines="\n".join(lines))
    path.write_text(text)
    return path


async def start(path: Path, clock: FakeClock) -> Runtime:
    rt = Runtime(load_config(path), clock=clock)
    await rt.start(serve_http=False, schedule=False)
    return rt


async def raise_waste(rt: Runtime, clock: FakeClock) -> None:
    """Hold a long wait on waste past the tier's 10 s and run the switch's APPLY."""
    source = rt.sources["fast"]
    assert isinstance(source, ScriptedSource) and rt.poller is not None
    for _ in range(4):
        source.push(QueueStats(line="waste", at=clock.now(), avg_wait=400))
        await rt.poller.poll("fast")
        rt.evaluate_all(clock.now())
        clock.advance(5)
    assert rt.states["waste"].tier == 1 and "ivr" in rt.states["waste"].live


async def settle(rt: Runtime, done: Callable[[], bool], rounds: int = 200) -> bool:
    """Run the outbox until ``done()`` (the dispatcher's own loop may hold a lane a moment)."""
    assert rt.dispatcher is not None
    for _ in range(rounds):
        await rt.dispatcher.run_due()
        if done():
            return True
        await asyncio.sleep(0.01)
    return done()


def stored(path: Path) -> tuple[set[str], list[str]]:
    """The lines with a stored state, and the kinds of waste's history, oldest first (read
    with sqlite3: the running daemon holds the store's lock)."""
    with closing(sqlite3.connect(path)) as db:
        lines = {row[0] for row in db.execute("SELECT line FROM line_state")}
        kinds = [
            r[0] for r in db.execute("SELECT kind FROM history WHERE line = 'waste' ORDER BY id")
        ]
    return lines, kinds


async def test_a_line_removed_by_reload_has_its_switch_undone_and_its_episode_closed(
    tmp_path: Path,
) -> None:
    """Reload without a line at tier 1: its switch is undone at the platform, its state is
    dropped with a line_removed record, and added back it starts calm with nothing live."""
    platform = Platform()
    clock = FakeClock(T0)
    async with Loopback(platform.app()) as url:
        config = write(tmp_path, url, REVENUES, WASTE)
        rt = await start(config, clock)
        try:
            await raise_waste(rt, clock)
            assert await settle(rt, lambda: platform.flags == {"waste": {"on": True}})

            write(tmp_path, url, REVENUES)
            assert await rt.reload() == []
            undone = await settle(rt, lambda: platform.flags == {})
            assert undone, "the removed line's switch was left on"
            assert [c.method for c in platform.calls] == ["PUT", "DELETE"]
            lines, kinds = stored(tmp_path / "state.sqlite")
            assert lines == {"revenues"}
            assert "line_removed" in kinds

            write(tmp_path, url, REVENUES, WASTE)
            assert await rt.reload() == []
            back = rt.states["waste"]
            assert (back.tier, back.live) == (0, frozenset())
            rt.evaluate_all(clock.now())
            await settle(rt, lambda: False, rounds=20)  # give a wrong APPLY every chance to go out
            assert platform.flags == {}
        finally:
            await rt.shutdown()


async def test_a_line_removed_while_the_daemon_was_stopped_is_undone_at_start(
    tmp_path: Path,
) -> None:
    """A line in the state file but not in the config at start: its switch is undone and its
    stored state retired."""
    platform = Platform()
    clock = FakeClock(T0)
    async with Loopback(platform.app()) as url:
        config = write(tmp_path, url, REVENUES, WASTE)
        rt = await start(config, clock)
        try:
            await raise_waste(rt, clock)
            assert await settle(rt, lambda: platform.flags == {"waste": {"on": True}})
        finally:
            await rt.shutdown()

        write(tmp_path, url, REVENUES)
        rt = await start(config, clock)
        try:
            undone = await settle(rt, lambda: platform.flags == {})
            assert undone, "the switch of a line removed while stopped stayed on"
            assert "waste" not in rt.states
        finally:
            await rt.shutdown()
        lines, kinds = stored(tmp_path / "state.sqlite")
        assert lines == {"revenues"}
        assert "line_removed" in kinds


async def test_a_removal_the_store_refuses_is_tried_again_at_the_next_reload(
    tmp_path: Path,
) -> None:
    """A store failure while retiring a line does not break the reload; the next reload
    retires it and undoes its switch."""
    platform = Platform()
    clock = FakeClock(T0)
    async with Loopback(platform.app()) as url:
        write(tmp_path, url, REVENUES, WASTE)
        rt = await start(tmp_path / "rising-tide.yaml", clock)
        try:
            await raise_waste(rt, clock)
            assert await settle(rt, lambda: platform.flags == {"waste": {"on": True}})
            assert rt.store is not None
            real = rt.store.retire_line

            def full(*_: object, **__: object) -> None:
                raise StoreError("state store state.sqlite: database or disk is full")

            rt.store.retire_line = full  # type: ignore[method-assign]
            write(tmp_path, url, REVENUES)
            assert await rt.reload() == []
            assert rt.view("waste") is None
            rt.store.retire_line = real  # type: ignore[method-assign]
            assert await rt.reload() == []
            assert await settle(rt, lambda: platform.flags == {})
        finally:
            await rt.shutdown()
