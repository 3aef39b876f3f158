"""Is the daemon alive? The record behind ``/healthz``, kept apart from the loop it watches.

The evaluation loop reports each pass: ``succeeded(now)`` or ``failed(now, store=…)``. The
daemon is unhealthy when no pass has succeeded within the grace — counted from start when
none ever has (a store that never worked, a loop that never ran), else from the last
success (the loop stalled, or every attempt fails). Restarting is then the cure a liveness
probe applies.

It also remembers whether the store is failing, so that the first store failure is logged
with its traceback and the recovery once, with only a count in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Health"]


@dataclass(slots=True)
class Health:
    """When the daemon started, and when evaluation passes last succeeded and were tried."""

    started_at: datetime | None = None
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    #: Failed passes since the last success.
    failures: int = 0
    #: Failed passes since the store started failing (0: it is not failing).
    store_failures: int = 0

    def started(self, now: datetime) -> None:
        """The daemon starts now: the grace for a first success begins."""
        self.started_at = now

    def succeeded(self, now: datetime) -> int:
        """A pass succeeded at ``now``; returns how many store failures it recovers from."""
        self.last_success = self.last_attempt = now
        self.failures = 0
        recovered, self.store_failures = self.store_failures, 0
        return recovered

    def failed(self, now: datetime, *, store: bool) -> bool:
        """A pass failed at ``now``; True when it is the first of a spell of store failures."""
        self.last_attempt = now
        self.failures += 1
        if not store:
            return False
        self.store_failures += 1
        return self.store_failures == 1

    def problem(self, now: datetime, grace: timedelta) -> str | None:
        """Why the daemon is unhealthy at ``now``, or None when it is healthy."""
        since = self.last_success or self.started_at
        if since is None or now - since < grace:
            return None
        if self.last_success is None:
            return f"no evaluation has succeeded since start ({self.failures} failed)"
        if self.last_attempt is not None and self.last_attempt > self.last_success:
            return f"every evaluation has failed since {self.last_success.isoformat()}"
        return f"the evaluation loop has stalled since {self.last_success.isoformat()}"
