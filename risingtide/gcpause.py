"""The cyclic garbage collector, held off while start-up builds many long-lived objects.

Loading a config of 10,000 lines builds a few hundred thousand objects (YAML nodes, dicts,
validated blocks) that all live on; the collector, run every 700 allocations, walks them
again and again and took half of the load's time. None of it is a reference cycle that
needs collecting soon, so the load runs with the collector paused; afterwards what start-up
built is frozen (``gc.freeze``: moved out of the collector's reach, never freed by it,
since it lives as long as the daemon) so later collections walk only what is new.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
