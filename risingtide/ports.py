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
from datetime import timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from risingtide.clock import Clock
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.domain.people import Person

#: The group wait of a channel people read: long enough for lines changing in the same
#: moment (one poll) to arrive, short enough not to matter to the reader.
DEFAULT_GROUP_WAIT = timedelta(seconds=5)


class AdapterError(Exception):
    """A classified failure at an adapter boundary."""

    def __init__(self, message: str, *, reason: str = "error", retryable: bool = True) -> None:
        """``reason`` labels the failure in metrics (``timeout``, ``http_5xx``, ``parse``…)."""
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


def http_reason(status: int) -> str:
    """The reason label for an HTTP status, the same at every adapter.

    ``http_401`` (credentials refused) and ``http_429`` (slow down) on their own, since
    they call for different actions; the rest by class: ``http_3xx``, ``http_4xx``,
    ``http_5xx``. Classes, not codes, keep metric labels few.
    """
    if status in (401, 429):
        return f"http_{status}"
    return f"http_{status // 100}xx"


class SourceError(AdapterError):
    """A source could not produce stats.

    ``retry_after``: seconds the platform asked us to wait (``Retry-After`` on a 429 or
    503); the poller holds the source's next polls until then.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "error",
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        """See ``AdapterError``; ``retry_after`` is the platform's requested wait, if any."""
        super().__init__(message, reason=reason, retryable=retryable)
        self.retry_after = retry_after


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
class Notice:
    """One notification to send: about one line, or about several lines at once.

    The dispatcher gathers the orders of one notification response that fall due within
    its ``group_wait`` into one notice, so a citywide surge is one message per person,
    not one per line. ``items`` pairs each order with its context, one per line; ``key``
    is the idempotency key to send with (the order's own key for a single order, the
    batch's key for several, kept in the store so a retry or a restart sends the same
    key). ``people`` are those the response pages who are on duty now.
    """

    key: str
    items: tuple[tuple[ResponseOrder, ResponseContext], ...]
    people: tuple[Person, ...] = ()

    def __post_init__(self) -> None:
        """Refuse an empty notice: there would be nothing to say."""
        if not self.items:
            raise ValueError("a notice needs at least one order")

    @classmethod
    def of(
        cls, order: ResponseOrder, context: ResponseContext, people: tuple[Person, ...] = ()
    ) -> Notice:
        """The notice for one order, keyed by the order's own key."""
        return cls(order.key, ((order, context),), people)

    @property
    def orders(self) -> tuple[ResponseOrder, ...]:
        """The orders, in the order given."""
        return tuple(order for order, _ in self.items)

    @property
    def applies(self) -> tuple[tuple[ResponseOrder, ResponseContext], ...]:
        """The items that say something (an UNDO of a notification takes nothing back)."""
        return tuple(item for item in self.items if item[0].action is Action.APPLY)


@runtime_checkable
class Notifier(Responder, Protocol):
    """A responder that tells people: it takes a ``Notice`` about one line or several.

    The dispatcher calls ``notify`` (never ``run``) for a notifier; ``run(order, context)``
    remains for callers with a single order and means ``notify(Notice.of(order, context))``.
    """

    async def notify(self, notice: Notice) -> str:
        """Send ``notice``; return a short outcome detail.

        Raise ``ResponseError`` on failure. Must be safe to call twice with the same
        ``notice.key`` (a retry after a lost answer, or a restart).
        """
        ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a plugin may use while it is being built."""

    clock: Clock
    #: Sources already built, by id: lets a simulator responder find its simulator.
    sources: Mapping[str, StatsSource] = field(default_factory=dict)
    #: The measures each line's framework reads, by line id: a source may fail a line only
    #: for a figure it needs (a line not listed: assume it needs every measure).
    needs: Mapping[str, frozenset[str]] = field(default_factory=dict)


M = TypeVar("M", bound=BaseModel)


def settings_as(model: builtins.type[M], settings: BaseModel, owner: str) -> M:
    """A plugin's own ``settings`` as its ``model``, which the loader validated them with.

    Anything else is a wiring bug, not a config mistake: ``TypeError`` naming ``owner``
    (e.g. ``response 'teams_csc'``).
    """
    if not isinstance(settings, model):
        raise TypeError(f"{owner}: settings are {type(settings).__name__}, not {model.__name__}")
    return settings


def lines_as(model: builtins.type[M], lines: Mapping[str, BaseModel], owner: str) -> dict[str, M]:
    """A source's per-line parameters as its ``line_model``, by line id (see ``settings_as``)."""
    return {
        line: settings_as(model, params, f"{owner}, line {line!r}")
        for line, params in lines.items()
    }


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
    whether the response is a switch that must be undone on the way down. A notifier's
    settings may have ``to`` (addresses of its own, beside the people a response pages).
    """

    type: str
    settings_model: builtins.type[BaseModel]
    build: Callable[[str, BaseModel, BuildContext], Responder]
    undoable: Callable[[BaseModel], bool]
    description: str = ""
    #: Which of a paged person's addresses the channel sends to, for given settings
    #: (``"mobile"``, ``"email"``), or None when it needs none (it mentions them, or
    #: posts to a channel). ``check`` refuses paging someone without that address.
    address: Callable[[BaseModel], str | None] = lambda _settings: None
    #: How long a notification waits for other lines' orders unless the response says
    #: (``group_wait``): a few seconds for channels people read, 0 for machines.
    default_group_wait: timedelta = DEFAULT_GROUP_WAIT
    #: ``(count, period)``: the most runs the service documents it takes, unless the
    #: response sets ``rate_limit`` (None: no limit of the channel's own).
    default_rate_limit: tuple[int, timedelta] | None = None
