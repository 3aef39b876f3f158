"""Persist changes, not observations: what the store writes after a poll, and a restart.

A real store on a FakeClock (a SQLite file, or PostgreSQL where the test takes
``store_target``), the shipped ``scripted`` source, driven by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.persistence import STATS_KEPT_EVERY
from risingtide.runtime import Runtime
from risingtide.store import Store
from tests.adapters.test_runtime import T0, raise_revenues, scripted, write_config


def config_for(tmp_path: Path, store_target: Path | str) -> Path:
    """The runtime tests' config, its store ``store_target`` (the state file it names
    already, or a PostgreSQL database)."""
    path = write_config(tmp_path)
    if isinstance(store_target, str):
        text = path.read_text().replace("server:\n", f"server:\n  database: {store_target}\n")
        path.write_text(text)
    return path


async def poll_both(rt: Runtime, clock: FakeClock, *, revenues: float = 400) -> None:
    """One poll of each source with figures stamped now, then the due evaluations."""
    assert rt.poller is not None
    now = clock.now()
    scripted(rt, "fast").push(QueueStats(line="revenues", at=now, avg_wait=revenues))
    scripted(rt, "slow").push(QueueStats(line="waste", at=now, avg_wait=100))
    await rt.poller.poll("fast")
    await rt.poller.poll("slow")
    rt.run_due(now)


def count_state_writes(store: Store) -> list[int]:
    """Wrap ``store.commit`` so each call appends how many line states it wrote."""
    written: list[int] = []
    commit = store.commit

    def counting(states: Sequence[Any], *args: Any, **kwargs: Any) -> None:
        written.append(len(states))
        commit(states, *args, **kwargs)

    store.commit = counting  # type: ignore[method-assign]
    return written


async def test_a_poll_that_changes_nothing_durable_writes_no_line_state(
    tmp_path: Path, store_target: Path | str
) -> None:
    """Polls moving only the figures' time write no state rows until five minutes (and the
    line's spread) have run."""
    clock = FakeClock(T0)
    rt = Runtime(load_config(config_for(tmp_path, store_target)), clock=clock)
    await rt.start(serve_http=False, schedule=False)
    try:
        await raise_revenues(rt)
        await poll_both(rt, clock)
        assert rt.store is not None
        written = count_state_writes(rt.store)
        for _ in range(8):  # two minutes of polls: the tier holds, the figures stay fresh
            clock.advance(15)
            await poll_both(rt, clock)
        assert sum(written) == 0, written
        assert rt.states["revenues"].last_stats_at == clock.now()
        assert rt.states["revenues"].tier == 1
        every = [rt.persistence._kept_every(line) for line in ("revenues", "waste")]
        assert all(STATS_KEPT_EVERY <= e < 2 * STATS_KEPT_EVERY for e in every)
        polls = int(max(every) / timedelta(seconds=15)) + 1 - 8
        assert (polls + 8) * timedelta(seconds=15) < 2 * min(every)  # so one write a line
        for _ in range(polls):  # past each line's spread: its figures' time is written once
            clock.advance(15)
            await poll_both(rt, clock)
        assert sum(written) == 2, written
    finally:
        await rt.shutdown()
    with Store(store_target, clock) as store:  # a clean stop keeps the exact time
        assert store.load_states()["revenues"].last_stats_at == clock.now()


async def test_a_restart_after_a_crash_raises_no_false_stale_alert_and_keeps_tiers(
    tmp_path: Path, store_target: Path | str
) -> None:
    """With the stored figures' time minutes behind, a restart keeps the tier and dates the
    stale spell from the last poll, so "stats stale" comes a full stale_alert_after later."""
    clock = FakeClock(T0)
    config = load_config(config_for(tmp_path, store_target))
    rt = Runtime(config, clock=clock)
    await rt.start(serve_http=False, schedule=False)
    await raise_revenues(rt)
    for _ in range(18):
        clock.advance(15)
        await poll_both(rt, clock)
    assert rt.store is not None
    lag = clock.now() - (rt.store.load_states()["revenues"].last_stats_at or T0)
    assert lag >= timedelta(minutes=2)  # the scenario: the store is well behind memory
    rt._keep_last_figures = lambda: None  # type: ignore[method-assign]  # a crash: no flush
    await rt.shutdown()
    last_poll = clock.now()

    clock.advance(30)
    again = Runtime(load_config(config_for(tmp_path, store_target)), clock=clock)
    await again.start(serve_http=False, schedule=False)
    try:
        assert again.store is not None
        again.evaluate_all(clock.now())
        assert again.states["revenues"].tier == 1
        restart = clock.now()  # within stale_after of the last poll: stale from now
        clock.advance(timedelta(minutes=4, seconds=50))
        again.evaluate_all(clock.now())
        assert again.store.history(kinds=["stats_stale"]) == []
        clock.advance(11)
        again.evaluate_all(clock.now())
        stale = again.store.history(kinds=["stats_stale"])
        assert {e.line for e in stale} == {"revenues", "waste"}
        assert {again.states[e.line].stale_since for e in stale} == {restart}
        assert restart == last_poll + timedelta(seconds=30)
        assert again.states["revenues"].tier == 1
    finally:
        await again.shutdown()


async def test_a_hanging_source_delays_no_other_sources_evaluation(tmp_path: Path) -> None:
    """With the real scheduler and one source stuck, the other's lines are still evaluated
    as their figures arrive: their state takes each poll's time and the passes go on."""
    rt = Runtime(load_config(write_config(tmp_path)))
    hung = asyncio.Event()

    async def hang() -> dict[str, QueueStats]:
        hung.set()
        await asyncio.sleep(3600)
        return {}

    await rt.start(serve_http=False)
    try:
        scripted_slow = scripted(rt, "slow")
        scripted_slow.poll = hang  # type: ignore[method-assign]
        await asyncio.wait_for(hung.wait(), 5)
        seen = rt.states["revenues"].last_stats_at
        passes = rt.registry.get_sample_value("risingtide_evaluations_total") or 0
        await asyncio.sleep(2.5)
        later = rt.states["revenues"].last_stats_at
        assert seen is not None and later is not None and later > seen
        assert (rt.registry.get_sample_value("risingtide_evaluations_total") or 0) >= passes + 2
        assert not rt.states["revenues"].stale
    finally:
        await rt.shutdown()
