"""The collector is paused for a block and restored after it; freezing moves objects out."""

from __future__ import annotations

import gc

import pytest

from risingtide.gcpause import collector_paused, freeze_what_lives


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
