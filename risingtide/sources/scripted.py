"""A scripted source: stats you hand it, served back on each poll.

Shipped in the package (not only in tests) so that users' own tests and demos can drive
lines through the tiers without a platform::

    source.push(QueueStats(line="revenues", at=clock.now(), avg_wait=400))
    source.fail("revenues", SourceError("platform down", reason="http_5xx"))

In a config file a ``scripted`` source takes per-line ``stats:`` (fixed figures), which is
handy for trying a framework by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from risingtide.clock import Clock
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.ports import BuildContext, PollResult, SourceError, SourcePlugin, StatsSource


class ScriptedSettings(BaseModel):
    """A scripted source has no settings of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptedLine(BaseModel):
    """Fixed figures for one line (any ``QueueStats`` field but ``line`` and ``at``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls_waiting: int | None = None
    avg_wait: float | None = None
    longest_wait: float | None = None
    agents_available: int | None = None
    agents_staffed: int | None = None
    offered: int | None = None
    answered: int | None = None
    abandoned: int | None = None
    window: float | None = None
    avg_handle_time: float | None = None


class ScriptedSource:
    """Serves the last stats pushed (or the fixed figures) for each line, stamped now."""

    def __init__(self, name: str, clock: Clock, lines: Mapping[str, ScriptedLine]) -> None:
        """Serve ``lines`` with their fixed figures until something else is pushed."""
        self.name = name
        self._clock = clock
        self._fixed = dict(lines)
        self._pushed: dict[str, QueueStats] = {}
        self._failures: dict[str, SourceError] = {}
        self._down: SourceError | None = None
        self.polls = 0

    def push(self, stats: QueueStats) -> None:
        """Serve ``stats`` for its line from now on (clears a failure of that line)."""
        self._pushed[stats.line] = stats
        self._failures.pop(stats.line, None)

    def fail(self, line: str, error: SourceError) -> None:
        """Make ``line`` fail with ``error`` until stats are pushed for it again."""
        self._failures[line] = error

    def go_down(self, error: SourceError | None) -> None:
        """Make every poll fail with ``error`` (None brings the source back)."""
        self._down = error

    async def poll(self) -> PollResult:
        """The pushed stats, the fixed figures stamped now, or the scripted failures."""
        self.polls += 1
        if self._down is not None:
            raise self._down
        now = self._clock.now()
        result: dict[str, QueueStats | SourceError] = {}
        for line, fixed in self._fixed.items():
            if line in self._failures:
                result[line] = self._failures[line]
            elif line in self._pushed:
                result[line] = self._pushed[line]
            else:
                result[line] = QueueStats(line=line, at=now, **fixed.model_dump())
        for line, stats in self._pushed.items():
            result.setdefault(line, self._failures.get(line, stats))
        return result

    async def aclose(self) -> None:
        """Nothing to release."""


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    return ScriptedSource(
        name, ctx.clock, {k: v for k, v in lines.items() if isinstance(v, ScriptedLine)}
    )


PLUGIN = SourcePlugin(
    type="scripted",
    settings_model=ScriptedSettings,
    line_model=ScriptedLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Fixed or pushed figures, for trying a framework and for tests.",
)
