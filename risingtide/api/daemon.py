"""What the HTTP side needs from the running daemon (``risingtide.runtime.Runtime``).

Protocols, so the HTTP modules depend on the shape of the runtime and not on its module
(which imports the HTTP side to serve it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from risingtide.clock import Clock
from risingtide.config.model import Config
from risingtide.domain.demand_calendar import DemandEvent
from risingtide.domain.model import Decision, LineState
from risingtide.leadership import SharedLeadership, SoleLeadership
from risingtide.metrics import Metrics
from risingtide.store import OutboxEntry, Store
from risingtide.view import LineView


class DaemonView(Protocol):
    """What the read side of the HTTP port reads from the runtime."""

    registry: CollectorRegistry
    metrics: Metrics
    store: Store | None
    ready: bool

    @property
    def healthy(self) -> bool:
        """False when the evaluation loop has stopped."""
        ...

    def views(self) -> list[LineView]:
        """Every line now."""
        ...

    def view(self, line: str) -> LineView | None:
        """One line now."""
        ...

    def views_later(self) -> Callable[[], list[LineView]]:
        """A builder of every line's view as of now, safe to run in a thread."""
        ...

    def views_of(self, lines: Iterable[str]) -> list[LineView]:
        """The named lines now, in that order (ids not in the config are skipped)."""
        ...


class DaemonControl(DaemonView, Protocol):
    """The read side plus the config, the clock and the duty manager's commands.

    Each command raises ``KeyError`` for an unknown line and ``CommandRejected`` when it
    makes no sense for the line as it stands.
    """

    config: Config
    clock: Clock
    states: dict[str, LineState]
    #: The demand calendar in force (resolved, feeds read): what ``/api/v1/demand`` shows.
    demand_events: tuple[DemandEvent, ...]
    #: Which lines this daemon leads (``risingtide.leadership``).
    leadership: SoleLeadership | SharedLeadership

    @property
    def public_url(self) -> str:
        """The base of links in messages (``server.public_url`` or the listen address)."""
        ...

    def acknowledge(self, line: str, *, by: str, note: str = "") -> Decision:
        """Acknowledge the line's tier."""
        ...

    def silence(
        self, line: str, *, until: datetime, by: str, reason: str, undo: bool = False
    ) -> Decision:
        """Silence the line until ``until``."""
        ...

    def lift_silence(self, line: str, *, by: str) -> Decision:
        """End the line's silence early."""
        ...

    def declare(self, line: str, *, level: int, until: datetime, by: str, reason: str) -> Decision:
        """Declare tier ``level`` until ``until``."""
        ...

    def clear_declaration(self, line: str, *, by: str) -> Decision:
        """End the line's declared tier early."""
        ...

    async def command(self, line: str, name: str, **args: Any) -> str:
        """Run command ``name`` (a method above) on ``line``, here or on the line's leader
        among replicas; its reason (also ``NoLeader`` when no replica answered)."""
        ...

    async def reload(self, path: Path | None = None, *, by: str | None = None) -> list[str]:
        """Reload the config; return its errors (empty when it was loaded)."""
        ...

    def requeue(self, key: str, *, by: str, note: str = "") -> OutboxEntry:
        """Run the dead letter ``key`` again (``UnknownEntryError``, ``NotDeadError``,
        ``CommandRejected`` when it may not)."""
        ...

    def dismiss(self, key: str, *, by: str, note: str = "") -> OutboxEntry:
        """Dismiss the dead letter ``key`` (``UnknownEntryError``, ``NotDeadError``)."""
        ...
