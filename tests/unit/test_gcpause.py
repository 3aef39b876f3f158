"""The collector is paused for a block, or from start until ready, and restored after."""

from __future__ import annotations

import asyncio
import gc

import pytest

from risingtide.gcpause import StartupPause, collector_paused, freeze_what_lives


def test_the_collector_is_off_inside_and_back_after_even_on_error() -> None:
    """Inside the block the collector is off; after it (even after an error) it is on."""
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    """Pausing inside code that turned the collector off leaves it off."""
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_freezing_moves_what_lives_out_of_the_collectors_walks() -> None:
    """After a freeze the permanent generation holds the objects alive then."""
    try:
        freeze_what_lives()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_the_startup_pause_ends_once_the_daemon_is_ready() -> None:
    """Off from creation; back on (what lives frozen) as soon as ``ready()`` says so."""
    flags = {"ready": False}
    try:
        pause = StartupPause()
        assert not gc.isenabled()
        waiting = asyncio.create_task(pause.end_when(lambda: flags["ready"], most=10.0))
        await asyncio.sleep(0.12)
        assert not gc.isenabled() and not waiting.done()
        flags["ready"] = True
        await asyncio.wait_for(waiting, 5.0)
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()


async def test_the_startup_pause_ends_after_its_longest_wait_or_when_cancelled() -> None:
    """A daemon never ready turns the collector back on after ``most``; so does a stop."""
    try:
        pause = StartupPause()
        await asyncio.wait_for(pause.end_when(lambda: False, most=0.1), 5.0)
        assert gc.isenabled()
        pause.end()  # a second end changes nothing
        assert gc.isenabled()
        stopped = StartupPause()
        waiting = asyncio.create_task(stopped.end_when(lambda: False, most=10.0))
        await asyncio.sleep(0.06)
        assert not gc.isenabled()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
