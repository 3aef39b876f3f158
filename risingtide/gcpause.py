"""The cyclic garbage collector, held off while start-up builds many long-lived objects.

Loading a config of 10,000 lines builds a few hundred thousand objects (YAML nodes, dicts,
validated blocks) that all live on; the collector, run every 700 allocations, walks them
again and again and took half of the load's time. None of it is a reference cycle that
needs collecting soon, so the load runs with the collector paused. The daemon keeps it
paused until it is ready (its first polls evaluated, or ``READY_WAIT`` at most), then
freezes what lives (``gc.freeze``: moved out of the collector's reach, never freed by it,
since it lives as long as the daemon) so later collections walk only what is new.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The longest the daemon runs with the collector paused waiting to be ready (a source
#: that never answers must not hold it off for good).
READY_WAIT = 30.0
_LOOK_EVERY = 0.05  # seconds between looks at the daemon's readiness


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; it is back as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_what_lives() -> None:
    """Move every object alive now out of the collector's walks (``gc.freeze``).

    For the daemon after start-up: its modules, config and states live as long as it does.
    No collection first: objects freed by their reference counts go as ever, and start-up
    leaves little cyclic garbage to freeze (20 objects at 10,000 lines) where a full
    collection would hold up the first poll by 90 ms.
    """
    gc.freeze()


class StartupPause:
    """The collector off from the daemon's start until it is ready; then frozen and on."""

    def __init__(self) -> None:
        """Turn the collector off now (it is turned back on only if it was on)."""
        self._was_enabled = gc.isenabled()
        self._ended = False
        gc.disable()

    def end(self) -> None:
        """Freeze what lives and turn the collector back on (once; later calls do nothing)."""
        if self._ended:
            return
        self._ended = True
        freeze_what_lives()
        if self._was_enabled:
            gc.enable()

    async def end_when(self, ready: Callable[[], bool], most: float = READY_WAIT) -> None:
        """Wait until ``ready()`` (or ``most`` seconds), then ``end``."""
        import asyncio  # here, not at the top: ``check`` imports this module, not the loop

        try:
            for _ in range(max(1, round(most / _LOOK_EVERY))):  # bounded: READY_WAIT at most
                if ready():
                    break
                await asyncio.sleep(_LOOK_EVERY)
        finally:
            self.end()
