"""The ``twilio_taskrouter`` source: TaskQueue real-time and cumulative statistics.

Each poll makes, with HTTP Basic ``AccountSid:AuthToken`` (an API key ``SK…:secret`` works
too), at most ``MAX_CONCURRENT`` requests at a time:

1. **Live figures, up to 50 queues per request**:
   ``POST /v1/Workspaces/{WS}/TaskQueues/RealTimeStatistics`` with the JSON body
   ``{"queueSids": ["WQ…", …]}`` → ``task_queue_data[]``. More than 50 queues are sent
   in chunks of 50 (the documented limit; 0 or 51+ SIDs are a 400).
2. **Window figures, one request per queue** (no bulk form exists), only for queues whose
   live figures came back:
   ``GET /v1/Workspaces/{WS}/TaskQueues/{WQ}/CumulativeStatistics?Minutes=…&TaskChannel=…``.

Field mapping::

    calls_waiting     tasks_by_status.pending + tasks_by_status.reserved
                      (a reserved task is ringing an agent; the caller still waits)
    longest_wait      longest_task_waiting_age (seconds; see UNCONFIRMED below)
    agents_available  total_available_workers
    agents_staffed    total_eligible_workers
    offered           tasks_entered
    answered          reservations_accepted (an agent took the call; tasks_completed would
                      miss calls still in progress and count calls answered earlier)
    abandoned         tasks_canceled (the caller hung up, or the task timed out, in queue)
    avg_wait          avg_task_acceptance_time ("average time in seconds between Task
                      creation and acceptance"), else wait_duration_until_accepted.avg
    window            cumulative_minutes × 60

``avg_wait`` follows the project's rule (``docs/decisions.md``): with no reservation
accepted in the window it is 0 on a quiet line (nothing waiting, nothing canceled) and
unknown otherwise — TaskRouter reports 0 there, which would make a stuck queue look calm.
Counts given as numeric strings (the spec's ``{"pending": "1"}`` example) are accepted.

Failures:

- every live request fails → the whole poll raises ``SourceError`` (classified by
  ``PlatformClient``: ``http_401``, ``http_429``, ``http_5xx``, ``timeout``…); a failed
  chunk of 50 fails only its own lines;
- a queue's cumulative request fails → its live figures are returned with the window
  figures unknown (nothing is logged here: the board shows the unknown figures);
- a queue absent from ``task_queue_data`` → that line alone gets
  ``SourceError(reason="parse")`` naming the SID;
- a documented field missing or malformed → ``SourceError(reason="parse")`` naming the
  path, e.g. ``task_queue_data[1].total_available_workers``.

Points checked against the vendor's own material, and the UNCONFIRMED ones tolerated:

- *``QueueSids``: a repeated form field or comma-separated?* Neither: the OpenAPI spec
  gives the bulk operation an ``application/json`` request body, and the docs' example
  sends ``{"queueSids": [...]}`` (the docs' parameter table spells it ``QueueSids``, "a
  string array"). The source sends the JSON body of the example.
- *Paging*: the spec declares no pagination for the bulk operation (it answers with
  ``task_queue_response_count``) and the other two are single resources, so there is no
  ``meta.next_page_url`` to follow; chunking by 50 is the only split.
- *The bulk endpoint takes no ``TaskChannel``*: its live figures cover every channel of the
  queue. Bind voice queues (the usual set-up for a council's call lines); ``task_channel``
  applies to the cumulative figures.
- *``longest_task_waiting_age`` in seconds* (UNCONFIRMED): with ``longest_wait_unit: auto``
  (the default) the source reads seconds, as every other TaskRouter age and time is given,
  but checks itself: when the same task (``longest_task_waiting_sid``) is the longest
  waiting on two polls, its age must have grown as fast as the clock; if it grew ~1000×
  faster the unit is milliseconds, and the source reads milliseconds from then on. A
  value above a day (TaskRouter's default task timeout) can only be milliseconds. Set
  ``seconds`` or ``milliseconds`` to pin the unit.

Doc pages followed: twilio.com/docs/taskrouter/api/taskqueue-statistics ("TaskQueue
RealTime Statistics", "Bulk retrieval of TaskQueue RealTime Statistics", "TaskQueue
Cumulative Statistics", with their JSON schemas and examples); twilio/twilio-oai
``spec/json/twilio_taskrouter_v1.json`` (``CreateTaskQueueBulkRealTimeStatistics``,
``taskrouter.v1.workspace.task_queue.task_queue_bulk_real_time_statistics``,
``…task_queue_cumulative_statistics``, ``…task_queue_real_time_statistics``).

Settings are documented for users in ``docs/sources/twilio_taskrouter.md``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from risingtide.clock import Clock
from risingtide.config.durations import parse_duration
from risingtide.config.errors import show
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.ports import (
    BuildContext,
    PollResult,
    SourceError,
    SourcePlugin,
    StatsSource,
    lines_as,
    settings_as,
)
from risingtide.sources.webclient import BasicAuth, PlatformClient, RetryPolicy, field, remaining

#: The bulk endpoint's documented limit of queue SIDs per request.
BULK_LIMIT: Final = 50
#: Requests in flight at once (the bulk endpoint allows 5 requests per second).
MAX_CONCURRENT: Final = 5
#: A day: no voice call waits this long, so a larger age can only be milliseconds.
DAY: Final = 86_400.0

_WS = re.compile(r"WS[0-9a-fA-F]{32}")
_WQ = re.compile(r"WQ[0-9a-fA-F]{32}")

#: A pydantic field type for a duration written as the rest of the config writes them.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

# --------------------------------------------------------------------------- settings


class TwilioTaskRouterSettings(BaseModel):
    """The ``twilio_taskrouter`` source's block under ``sources:``.

    ``account_sid``/``auth_token``: HTTP Basic credentials (write them as
    ``${TWILIO_ACCOUNT_SID}``; an API key SID and secret work too). ``workspace_sid``: the
    TaskRouter workspace (``WS…``). ``base_url``: the TaskRouter API. ``task_channel``: the
    channel the cumulative figures count (``voice``). ``cumulative_minutes``: the window.
    ``longest_wait_unit``: ``auto``, ``seconds`` or ``milliseconds``. ``request_budget``:
    the time one poll may spend, retries included; keep it below the source's ``timeout``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str
    auth_token: str
    workspace_sid: str
    base_url: str = "https://taskrouter.twilio.com"
    task_channel: str = "voice"
    cumulative_minutes: int = Field(default=15, ge=1, le=43_200)  # the API keeps 30 days
    longest_wait_unit: Literal["auto", "seconds", "milliseconds"] = "auto"
    request_budget: Duration = timedelta(seconds=8)

    @field_validator("account_sid", "auth_token", "task_channel")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("workspace_sid")
    @classmethod
    def _workspace(cls, value: str) -> str:
        if not _WS.fullmatch(value):
            raise ValueError(f"{show(value)} is not a workspace SID (WS followed by 32 hex digits)")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(
                f"{show(value)} is not a URL (write e.g. https://taskrouter.twilio.com)"
            )
        return value.rstrip("/")

    @field_validator("request_budget")
    @classmethod
    def _budget(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("request_budget must be longer than 0s")
        return value


class TwilioTaskRouterLine(BaseModel):
    """A line's ``source:`` block (minus ``use``): the TaskQueue SID (``WQ…``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_queue_sid: str

    @field_validator("task_queue_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not _WQ.fullmatch(value):
            raise ValueError(f"{show(value)} is not a TaskQueue SID (WQ followed by 32 hex digits)")
        return value


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Live:
    calls_waiting: int
    longest_age: float  # as the platform gave it: seconds or milliseconds
    longest_task: str | None
    agents_available: int
    agents_staffed: int


@dataclass(frozen=True, slots=True)
class _Window:
    offered: int
    answered: int
    abandoned: int
    avg_acceptance: float | None


def parse_realtime(body: Any, sids: Sequence[str]) -> dict[str, _Live | SourceError]:
    """Per queue SID: its live figures, or why not. Raises when nothing can be read."""
    wanted = set(sids)
    out: dict[str, _Live | SourceError] = {}
    data = field(body, "task_queue_data", kind=list)
    for i in range(len(data)):
        sid = field(body, "task_queue_data", i, "task_queue_sid", kind=str)
        if sid not in wanted:
            continue
        try:
            out[sid] = _read_live(body, i)
        except SourceError as exc:
            out[sid] = SourceError(
                f"queue {sid}: {exc}", reason=exc.reason, retryable=exc.retryable
            )
    for sid in wanted - out.keys():
        out[sid] = SourceError(
            f"queue {sid} is not in the RealTimeStatistics response (is the SID right, and "
            "in this workspace?)",
            reason="parse",
            retryable=False,
        )
    return out


def _read_live(body: Any, i: int) -> _Live:
    at = ("task_queue_data", i)
    pending = field(body, *at, "tasks_by_status", "pending", kind=int)
    reserved = field(body, *at, "tasks_by_status", "reserved", kind=int, default=0)
    return _Live(
        calls_waiting=pending + reserved,
        longest_age=field(body, *at, "longest_task_waiting_age", kind=float),
        longest_task=field(body, *at, "longest_task_waiting_sid", kind=str, default=None),
        agents_available=field(body, *at, "total_available_workers", kind=int),
        agents_staffed=field(body, *at, "total_eligible_workers", kind=int),
    )


def parse_cumulative(body: Any) -> _Window:
    """One queue's cumulative statistics. Raises ``SourceError`` naming a missing field."""
    avg = field(body, "avg_task_acceptance_time", kind=float, default=None)
    if avg is None:
        avg = field(body, "wait_duration_until_accepted", "avg", kind=float, default=None)
    return _Window(
        offered=field(body, "tasks_entered", kind=int),
        answered=field(body, "reservations_accepted", kind=int),
        abandoned=field(body, "tasks_canceled", kind=int),
        avg_acceptance=avg,
    )


class AgeUnit:
    """Reads ``longest_task_waiting_age`` as seconds or milliseconds (UNCONFIRMED).

    Pinned by the setting, or, for ``auto``, seconds until the platform shows otherwise: a
    value above a day, or the same task's age growing ~1000× faster than the clock between
    two polls, means milliseconds from then on.
    """

    def __init__(self, setting: Literal["auto", "seconds", "milliseconds"]) -> None:
        """Start from the configured unit."""
        self.auto = setting == "auto"
        self.scale = 0.001 if setting == "milliseconds" else 1.0
        self._last: dict[str, tuple[str, float, datetime]] = {}

    def seconds(self, queue: str, task: str | None, age: float, now: datetime) -> float:
        """The age in seconds; learns the unit from what it sees when ``auto``."""
        if self.auto:
            self._learn(queue, task, age, now)
        return age * self.scale

    def _learn(self, queue: str, task: str | None, age: float, now: datetime) -> None:
        if age > DAY:
            self.scale, self.auto = 0.001, False
            return
        previous = self._last.get(queue)
        if task is None:
            self._last.pop(queue, None)
            return
        self._last[queue] = (task, age, now)
        if previous is None or previous[0] != task:
            return
        elapsed = (now - previous[2]).total_seconds()
        grown = age - previous[1]
        if elapsed < 1 or grown <= 0:
            return
        rate = grown / elapsed
        if rate > 100:
            self.scale, self.auto = 0.001, False
        elif 0.2 < rate < 5:
            self.scale, self.auto = 1.0, False


# --------------------------------------------------------------------------- the source


class TwilioTaskRouterSource:
    """Queue figures for the lines bound to one TaskRouter workspace."""

    def __init__(
        self,
        name: str,
        settings: TwilioTaskRouterSettings,
        queues: Mapping[str, str],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Serve ``queues`` (line id → TaskQueue SID); ``policy``/``transport`` are for tests."""
        self.name = name
        self.settings = settings
        self._queues = dict(queues)
        self._clock = clock
        self.age_unit = AgeUnit(settings.longest_wait_unit)
        self._client = PlatformClient(
            name,
            base_url=f"{settings.base_url}/v1/Workspaces/{settings.workspace_sid}",
            auth=BasicAuth(settings.account_sid, settings.auth_token),
            policy=policy,
            transport=transport,
        )

    async def poll(self) -> PollResult:
        """Bulk live figures per 50 queues, then cumulative figures per queue."""
        now = self._clock.now()
        deadline = time.monotonic() + self.settings.request_budget.total_seconds()
        gate = asyncio.Semaphore(MAX_CONCURRENT)
        sids = sorted(set(self._queues.values()))
        chunks = [sids[i : i + BULK_LIMIT] for i in range(0, len(sids), BULK_LIMIT)]
        outcomes = await asyncio.gather(
            *(self._realtime(chunk, gate, deadline) for chunk in chunks),
            return_exceptions=True,
        )
        live: dict[str, _Live | SourceError] = {}
        failures: list[SourceError] = []
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, SourceError):
                failures.append(outcome)
                live.update(dict.fromkeys(chunk, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                live.update(outcome)
        if len(failures) == len(chunks):
            raise failures[0]  # nothing came back: the whole poll failed
        good = {sid: f for sid, f in live.items() if isinstance(f, _Live)}
        windows = await asyncio.gather(
            *(self._cumulative(sid, gate, deadline) for sid in good), return_exceptions=True
        )
        window_of: dict[str, _Window | None] = {}
        for sid, window in zip(good, windows, strict=True):
            if isinstance(window, BaseException) and not isinstance(window, SourceError):
                raise window
            # A failed window leaves live figures, which are worth more than nothing.
            window_of[sid] = window if isinstance(window, _Window) else None
        longest = {
            sid: self.age_unit.seconds(sid, f.longest_task, f.longest_age, now)
            for sid, f in good.items()
        }
        result: dict[str, QueueStats | SourceError] = {}
        for line, sid in self._queues.items():
            figures = live[sid]
            if isinstance(figures, SourceError):
                result[line] = figures
            else:
                result[line] = self._stats(line, now, figures, longest[sid], window_of.get(sid))
        return result

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def _realtime(
        self, chunk: Sequence[str], gate: asyncio.Semaphore, deadline: float
    ) -> dict[str, _Live | SourceError]:
        async with gate:
            try:
                payload = await self._client.json(
                    "POST", "/TaskQueues/RealTimeStatistics",
                    json={"queueSids": list(chunk)}, budget=remaining(deadline),
                )  # fmt: skip
                return parse_realtime(payload, chunk)
            except SourceError as exc:
                raise SourceError(
                    f"RealTimeStatistics: {exc}", reason=exc.reason, retryable=exc.retryable
                ) from exc

    async def _cumulative(self, sid: str, gate: asyncio.Semaphore, deadline: float) -> _Window:
        async with gate:
            payload = await self._client.json(
                "GET",
                f"/TaskQueues/{sid}/CumulativeStatistics",
                params={
                    "Minutes": self.settings.cumulative_minutes,
                    "TaskChannel": self.settings.task_channel,
                },
                budget=remaining(deadline),
            )
            return parse_cumulative(payload)

    def _stats(
        self, line: str, now: datetime, live: _Live, longest: float, window: _Window | None
    ) -> QueueStats:
        stats = QueueStats(
            line=line,
            at=now,
            calls_waiting=live.calls_waiting,
            longest_wait=0.0 if live.calls_waiting == 0 else longest,
            agents_available=live.agents_available,
            agents_staffed=live.agents_staffed,
        )
        if window is None:
            return stats
        avg_wait: float | None
        if window.answered and window.avg_acceptance is not None:
            avg_wait = window.avg_acceptance
        elif not window.answered and live.calls_waiting == 0 and window.abandoned == 0:
            avg_wait = 0.0  # a quiet line
        else:
            avg_wait = None  # nobody answered while callers wait: not "0 s"
        return replace(
            stats,
            avg_wait=avg_wait,
            offered=window.offered,
            answered=window.answered,
            abandoned=window.abandoned,
            window=self.settings.cumulative_minutes * 60.0,
        )


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(TwilioTaskRouterSettings, settings, f"twilio_taskrouter {name!r}")
    queues = {
        line_id: params.task_queue_sid
        for line_id, params in lines_as(
            TwilioTaskRouterLine, lines, f"twilio_taskrouter {name!r}"
        ).items()
    }
    return TwilioTaskRouterSource(name, settings, queues, ctx.clock)


PLUGIN = SourcePlugin(
    type="twilio_taskrouter",
    settings_model=TwilioTaskRouterSettings,
    line_model=TwilioTaskRouterLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Twilio TaskRouter TaskQueue statistics: bulk real-time (50 queues a "
    "request) and cumulative over a window.",
)
