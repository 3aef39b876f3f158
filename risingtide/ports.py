"""The ports between the pure core and the adapters at the edge.

Sources turn a platform's figures into ``QueueStats``; responders carry out responses.
Each kind of source or responder is one module that exports a plugin object, listed once
in the wiring table of its package (``risingtide.sources.SOURCE_TYPES``,
``risingtide.responders.RESPONDER_TYPES``).

Errors cross the boundary already classified::

    AdapterError            (reason: short label for metrics, retryable: bool)
    ├── SourceError         a poll failed (for one line or the whole source)
    └── ResponseError       a response could not be carried out

so that the scheduler and dispatcher alone decide back-off and retries.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from risingtide.clock import Clock
from risingtide.domain.model import QueueStats, ResponseOrder


class AdapterError(Exception):
    """A classified failure at an adapter boundary."""

    def __init__(self, message: str, *, reason: str = "error", retryable: bool = True) -> None:
        """``reason`` labels the failure in metrics (``timeout``, ``http_500``, ``parse``…)."""
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


class SourceError(AdapterError):
    """A source could not produce stats."""


class ResponseError(AdapterError):
    """A responder could not carry out a response."""


#: What one poll returns: for every line the source serves, its stats or why not.
PollResult = Mapping[str, QueueStats | SourceError]


@runtime_checkable
class StatsSource(Protocol):
    """A platform's queue statistics for the lines bound to it.

    A source fetches all its lines in as few requests as the platform allows. It never
    decides a tier.
    """

    name: str

    async def poll(self) -> PollResult:
        """Fetch current stats for every bound line.

        Raise ``SourceError`` when the whole poll failed; put a ``SourceError`` in the result
        for a line that alone failed.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class ResponseContext:
    """What a responder may want to know beyond the order itself (for messages)."""

    line_name: str
    tier_name: str
    stats: QueueStats | None
    target_wait: float
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Responder(Protocol):
    """Carries out one kind of response (a notification, or a switch on a platform)."""

    name: str
    #: True when the response changes the world and must be undone when its tier is left.
    undoable: bool

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Carry out ``order`` (apply or undo); return a short outcome detail.

        Raise ``ResponseError`` (retryable or not) on failure. Must be safe to call twice
        with the same ``order.key``.
        """
        ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a plugin may use while it is being built."""

    clock: Clock
    #: Sources already built, by id: lets a simulator responder find its simulator.
    sources: Mapping[str, StatsSource] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourcePlugin:
    """The wiring-table entry for one kind of source.

    ``settings_model`` validates the source's own block under ``sources:`` (everything but the
    common keys ``type``, ``interval``, ``timeout``, ``jitter``); ``line_model`` validates the
    per-line ``source:`` block (everything but ``use``). Both must forbid unknown keys.
    ``provides`` lists the measures the source can ever provide, so ``check`` can warn
    when a framework reads one it never will.
    """

    type: str
    settings_model: builtins.type[BaseModel]
    line_model: builtins.type[BaseModel]
    build: Callable[[str, BaseModel, Mapping[str, BaseModel], BuildContext], StatsSource]
    provides: frozenset[str]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ResponderPlugin:
    """The wiring-table entry for one kind of responder.

    ``settings_model`` validates the response's block under ``responses:`` (everything but the
    common key ``type``) and must forbid unknown keys. ``undoable`` says, for given settings,
    whether the response is a switch that must be undone on the way down.
    """

    type: str
    settings_model: builtins.type[BaseModel]
    build: Callable[[str, BaseModel, BuildContext], Responder]
    undoable: Callable[[BaseModel], bool]
    description: str = ""
