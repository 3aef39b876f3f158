"""Retiring a line the config no longer has: undo its live switches, close its episode.

A line can leave the config by a reload (SIGHUP, ``POST /-/reload``) or while the daemon was
stopped. Its switches are still on at the platform (the IVR still deflecting callers), so
they are undone like the planner's own undo on the way to calm: an UNDO order per live
switch through the outbox, retried for as long as any UNDO. The line's stored state is then
dropped with a ``line_removed`` history record, so a line added back later starts calm, in a
new episode, with nothing live.

Keys follow the planner's scheme (``domain.responses``):
``{line}/{episode}/line_removed/0/{time}/{response}/undo``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from risingtide.domain.model import Action, LineState, ResponseOrder

__all__ = ["TRIGGER", "removal_orders", "removal_record"]

#: The trigger of the UNDO orders, and the kind of the history record.
TRIGGER = "line_removed"


def removal_orders(state: LineState, now: datetime, why: str) -> tuple[ResponseOrder, ...]:
    """One UNDO per live switch of the removed line, sorted so the same input gives the
    same orders (and keys)."""
    n = now.isoformat()
    return tuple(
        ResponseOrder(
            key=f"{state.line}/{state.episode}/{TRIGGER}/0/{n}/{response}/{Action.UNDO.value}",
            line=state.line,
            response=response,
            action=Action.UNDO,
            tier=0,
            episode=state.episode,
            trigger=TRIGGER,
            at=now,
            reason=f"line removed from the config ({why})",
        )
        for response in sorted(state.live)
    )


def removal_record(state: LineState, why: str, by: str | None) -> dict[str, Any]:
    """The ``line_removed`` history record's data: what the line was at, and what was undone."""
    record: dict[str, Any] = {
        "tier": state.tier,
        "episode": state.episode,
        "undone": sorted(state.live),
        "why": why,
    }
    if by is not None:
        record["by"] = by
    return record
