"""Replay in parallel processes: lines are independent, so each process walks a share.

The rows are read once in the parent; the workers are forked (copy-on-write), so no row is
copied into a worker. Each worker returns its lines' ``LineTimeline`` (events, orders and
summary: small next to the rows), which the parent merges in time order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from risingtide.config.model import Config
    from risingtide.replay import LineRows, LineTimeline

# What the forked workers read: set in the parent just before the pool starts.
_SHARED: dict[str, object] = {}


def walk_in_processes(
    config: Config,
    lines: Mapping[str, LineRows],
    known: Sequence[str],
    end_us: int,
    jobs: int,
) -> list[LineTimeline]:
    """Walk the ``known`` lines over ``jobs`` forked processes; results in ``known`` order."""
    _SHARED.update(config=config, lines=lines, end_us=end_us)
    shares = [list(known[i::jobs]) for i in range(jobs) if known[i::jobs]]
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
            walked = [w for part in pool.map(_walk_share, shares) for w in part]
    finally:
        _SHARED.clear()
    order = {line: i for i, line in enumerate(known)}
    return sorted(walked, key=lambda w: order[w.summary.line])


def _walk_share(share: list[str]) -> list[LineTimeline]:
    from risingtide.replay import walk_line

    config: Config = _SHARED["config"]  # type: ignore[assignment]
    lines: Mapping[str, LineRows] = _SHARED["lines"]  # type: ignore[assignment]
    end_us: int = _SHARED["end_us"]  # type: ignore[assignment]
    return [walk_line(config, config.lines[lid], lines[lid], end_us) for lid in share]
