"""The ``genesys_cloud`` source: live queue observations and windowed aggregates.

Each poll asks Genesys Cloud two questions, each **once for all configured queues** (in
chunks of ``CHUNK`` queue ids, see below):

1. ``POST /api/v2/analytics/queues/observations/query`` — what is true *now*::

       {"filter": {"type": "and",
                   "clauses": [{"type": "or", "predicates": [
                       {"dimension": "queueId", "value": "<id>"}, ...]}],
                   "predicates": [{"dimension": "mediaType", "value": "voice"}]},
        "metrics": ["oWaiting", "oOnQueueUsers", "oLongestWaiting"],
        "detailMetrics": ["oWaiting"]}

   The queue ids are OR-ed in a clause and AND-ed with the media type, as the filter model
   documents (``type`` + ``clauses`` + ``predicates``, two levels of nesting).

2. ``POST /api/v2/analytics/conversations/aggregates/query`` over the trailing ``window``
   (``interval: "<start>/<end>"``, ISO 8601, UTC), ``groupBy: ["queueId"]``, the same
   filter, metrics ``nOffered``, ``tAnswered``, ``tAbandon``, ``tHandle``.

   *Why not* ``/api/v2/analytics/queues/aggregates/query``: the platform SDKs' AnalyticsApi
   documents no such operation; queue figures over an interval are conversation aggregates
   grouped by ``queueId`` (``ConversationAggregationQuery``, whose metric enum lists
   ``nOffered``, ``tAnswered``, ``tAbandon``, ``tWait``, ``tHandle``…).

Field mapping (times in the aggregates are milliseconds; ``stats`` is the documented
``StatisticalSummary`` with ``count`` and ``sum``)::

    calls_waiting     oWaiting stats.count (summed over the results for the queue)
    longest_wait      now − the oldest oWaiting observations[].observationDate
                      (0 when nothing waits; else oLongestWaiting, read as below)
    agents_available  oOnQueueUsers with qualifier IDLE
    agents_staffed    oOnQueueUsers: the unqualified count if given, else the sum over
                      its qualifiers (IDLE, INTERACTING, NOT_RESPONDING, COMMUNICATING…)
    offered           nOffered stats.count
    answered          tAnswered stats.count
    abandoned         tAbandon stats.count
    avg_wait          tAnswered stats.sum / stats.count / 1000 (average speed of answer)
    avg_handle_time   tHandle stats.sum / stats.count / 1000
    window            the ``window`` setting, in seconds

``avg_wait`` follows the project's rule (``docs/decisions.md``): with no call answered in
the window it is 0 on a quiet line (nothing waiting, nothing abandoned) and unknown
otherwise, so a stuck queue never looks calm.

Failures:

- the token or the observations query fails → the whole poll raises ``SourceError``
  (classified by ``PlatformClient``: ``timeout``, ``http_5xx``, ``http_429``, ``auth``…);
- the aggregates query fails → the live figures are returned with the window figures
  unknown (nothing is logged here: the board shows the unknown figures);
- a queue absent from the observations → that line alone gets
  ``SourceError(reason="parse")`` naming the queue id; a queue absent from the aggregates
  had no conversations in the window (Genesys omits empty groups), so its counts are 0;
- a documented field missing or malformed (e.g. ``results[0].data[0].stats.count``) →
  ``SourceError(reason="parse")`` naming the path, for that queue when the result can be
  attributed to one, else for the whole poll.

Points PLATFORM_APIS.md marks UNCONFIRMED, and how each is tolerated:

- *``oOnQueueUsers`` qualifier IDLE ≈ available*: qualifiers are read case-insensitively;
  IDLE counts as available, every qualifier counts as staffed; when Genesys sends no
  qualifiers at all, agents available is unknown rather than guessed.
- *``oLongestWaiting`` may be an epoch timestamp, not a duration*: the source does not
  depend on it — it asks for ``detailMetrics: ["oWaiting"]`` and takes now − the oldest
  ``observationDate`` (the list is sorted ascending and, when truncated, keeps the oldest
  half, so the minimum is still right). Only when no detail is given does it fall back to
  ``oLongestWaiting`` (``stats.calculatedMetricValue``, else ``stats.max``), read as an ISO
  timestamp if it is text, an epoch in milliseconds if ≥ 1e11, an epoch in seconds if
  ≥ 1e9, else a duration in milliseconds (a wait of 1e9 ms would be 11 days).
- *How many queue predicates one query takes* is not documented: the source sends at most
  ``CHUNK`` (100) queue ids per query and makes one more pair of requests per further 100.

Doc pages followed: MyPureCloud/platform-client-sdk-python ``build/docs/AnalyticsApi.md``
(``post_analytics_queues_observations_query``, ``post_analytics_conversations_aggregates_query``),
``QueueObservationQuery.md``, ``QueueObservationQueryFilter.md``,
``QueueObservationQueryClause.md``, ``QueueObservationQueryPredicate.md``,
``QueueObservationQueryResponse.md``, ``QueueObservationDataContainer.md``,
``ObservationMetricData.md``, ``ObservationValue.md``, ``StatisticalSummary.md``,
``ConversationAggregateQueryFilter.md``, ``ConversationAggregateDataContainer.md``,
``StatisticalResponse.md``, ``AggregateMetricData.md``; platform-client-sdk-java
``build/docs/QueueObservationQuery.md`` (metric enums) and
``ConversationAggregationQuery.md``; help.mypurecloud.com "Metric definitions"; the
token exchange is RFC 6749 §4.4 at ``https://login.{environment}/oauth/token``.

Settings are documented for users in ``docs/sources/genesys_cloud.md``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator

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
from risingtide.sources.webclient import (
    OAuthClientCredentials,
    PlatformClient,
    RetryPolicy,
    field,
    remaining,
)

OBSERVATIONS_PATH: Final = "/api/v2/analytics/queues/observations/query"
AGGREGATES_PATH: Final = "/api/v2/analytics/conversations/aggregates/query"
TOKEN_PATH: Final = "/oauth/token"

#: Queue ids per query: the platform's own limit is not documented, so stay modest.
CHUNK: Final = 100

OBSERVATION_METRICS: Final = ("oWaiting", "oOnQueueUsers", "oLongestWaiting")
AGGREGATE_METRICS: Final = ("nOffered", "tAnswered", "tAbandon", "tHandle")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HOST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")

#: A pydantic field type for a duration written as the rest of the config writes them.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

# --------------------------------------------------------------------------- settings


def _base_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{show(value)} is not a URL (write e.g. https://api.euw2.pure.cloud)")
    return value.rstrip("/")


class GenesysCloudSettings(BaseModel):
    """The ``genesys_cloud`` source's block under ``sources:``.

    ``environment``: the region's domain, e.g. ``euw2.pure.cloud`` (London) or
    ``mypurecloud.ie``; tokens come from ``https://login.{environment}`` and the API is
    ``https://api.{environment}`` unless ``login_url`` / ``api_url`` say otherwise.
    ``client_id``/``client_secret``: an OAuth client-credentials client (write them as
    ``${GENESYS_CLIENT_ID}``). ``media_type``: which interactions count (default voice).
    ``window``: the trailing window for offered/answered/abandoned and the averages.
    ``request_budget``: the time one poll may spend, retries included; keep it below the
    source's ``timeout``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str | None = None
    client_id: str
    client_secret: str
    login_url: str | None = None
    api_url: str | None = None
    media_type: Literal["voice", "callback", "chat", "email", "message"] = "voice"
    window: Duration = timedelta(minutes=15)
    request_budget: Duration = timedelta(seconds=8)

    @field_validator("client_id", "client_secret")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("environment")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.fullmatch(value):
            raise ValueError(
                f"{show(value)} is not a Genesys Cloud environment (write the domain only, "
                "e.g. euw2.pure.cloud)"
            )
        return value

    @field_validator("login_url", "api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _base_url(value)

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("window must be at least 1m")
        return value

    @field_validator("request_budget")
    @classmethod
    def _budget(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("request_budget must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _where(self) -> GenesysCloudSettings:
        if self.environment is None and (self.login_url is None or self.api_url is None):
            raise ValueError(
                "set environment (e.g. euw2.pure.cloud), or both login_url and api_url"
            )
        return self

    @property
    def token_url(self) -> str:
        """Where client-credentials tokens are fetched."""
        return (self.login_url or f"https://login.{self.environment}") + TOKEN_PATH

    @property
    def api_base(self) -> str:
        """The API's base URL."""
        return self.api_url or f"https://api.{self.environment}"


class GenesysCloudLine(BaseModel):
    """A line's ``source:`` block (minus ``use``): the Genesys queue id (a UUID)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_id: str

    @field_validator("queue_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not _UUID.fullmatch(value):
            raise ValueError(
                f"{show(value)} is not a Genesys queue id (a UUID such as "
                "6c1e0b2a-1f3d-4c5e-9a7b-2d4f6e8a0c1b; queue names are not accepted)"
            )
        return value.lower()


# --------------------------------------------------------------------------- parsing


@dataclass(slots=True)
class _Live:
    """What the observations say about one queue now."""

    calls_waiting: int | None = None
    oldest_waiting: datetime | None = None
    longest_reported: list[float | str] = dataclass_field(default_factory=list)
    agents_total: int | None = None
    agents_by_status: dict[str, int] = dataclass_field(default_factory=dict)

    def longest_wait(self, now: datetime) -> float | None:
        """Seconds the oldest waiting call has waited (see the module docstring)."""
        if self.calls_waiting == 0:
            return 0.0
        if self.oldest_waiting is not None:
            return max(0.0, (now - self.oldest_waiting).total_seconds())
        ages = [_age_from_longest(v, now) for v in self.longest_reported]
        known = [a for a in ages if a is not None]
        return max(known) if known else None

    def agents(self) -> tuple[int | None, int | None]:
        """(available, staffed)."""
        by_status = self.agents_by_status
        available = by_status.get("IDLE", 0) if by_status else None
        staffed = self.agents_total
        if staffed is None and by_status:
            staffed = sum(by_status.values())
        return available, staffed


@dataclass(slots=True)
class _Window:
    """What the aggregates say about one queue over the window (counts; sums in ms)."""

    offered: int = 0
    answered: int = 0
    answered_ms: float = 0.0
    abandoned: int = 0
    handled: int = 0
    handle_ms: float = 0.0


def _timestamp(text: str, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SourceError(
            f"{where} is {text!r}, not an ISO 8601 time", reason="parse", retryable=False
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _age_from_longest(value: float | str, now: datetime) -> float | None:
    """Seconds waited, from an ``oLongestWaiting`` value read either way (UNCONFIRMED)."""
    if isinstance(value, str):
        text = value
        try:
            value = float(text)
        except ValueError:
            try:
                return max(0.0, (now - _timestamp(text, "oLongestWaiting")).total_seconds())
            except SourceError:
                return None
    if value >= 1e11:  # an epoch in milliseconds (1e11 ms is 1973)
        return max(0.0, now.timestamp() - value / 1000)
    if value >= 1e9:  # an epoch in seconds: as a duration in ms it would be 11+ days
        return max(0.0, now.timestamp() - value)
    return max(0.0, value / 1000)  # a duration in milliseconds


def _in(err: SourceError, what: str) -> SourceError:
    """``err`` with the query it came from in front, keeping its classification."""
    return SourceError(f"{what}: {err}", reason=err.reason, retryable=err.retryable)


def parse_observations(
    body: Any, queue_ids: Sequence[str], media_type: str
) -> dict[str, _Live | SourceError]:
    """Per queue id: its live figures, or why not (absent, or a malformed result).

    Raises ``SourceError`` when the response cannot be read at all.
    """
    wanted = set(queue_ids)
    out: dict[str, _Live | SourceError] = {}
    results = field(body, "results", kind=list, default=[])
    for i in range(len(results)):
        queue = field(body, "results", i, "group", "queueId", kind=str).lower()
        if queue not in wanted:
            continue
        media = field(body, "results", i, "group", "mediaType", kind=str, default=None)
        if media is not None and media != media_type:
            continue
        live = out.setdefault(queue, _Live())
        if isinstance(live, SourceError):
            continue
        try:
            _read_observation(body, i, live)
        except SourceError as exc:
            out[queue] = _in(exc, f"queue {queue}")
    for queue in wanted - out.keys():
        out[queue] = SourceError(
            f"queue {queue} is not in the observations response (is the queue id right, "
            "and can the OAuth client's role see its division?)",
            reason="parse",
            retryable=False,
        )
    return out


def _read_observation(body: Any, i: int, live: _Live) -> None:
    data = field(body, "results", i, "data", kind=list, default=[])
    for j in range(len(data)):
        at: tuple[str | int, ...] = ("results", i, "data", j)
        metric = field(body, *at, "metric", kind=str)
        if metric == "oWaiting":
            count = field(body, *at, "stats", "count", kind=int)
            live.calls_waiting = (live.calls_waiting or 0) + count
            observations = field(body, *at, "observations", kind=list, default=[])
            for k in range(len(observations)):
                text = field(body, *at, "observations", k, "observationDate", kind=str)
                where = f"results[{i}].data[{j}].observations[{k}].observationDate"
                when = _timestamp(text, where)
                if live.oldest_waiting is None or when < live.oldest_waiting:
                    live.oldest_waiting = when
        elif metric == "oLongestWaiting":
            stats = field(body, *at, "stats", kind=dict, default={})
            value = stats.get("calculatedMetricValue", stats.get("max"))
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                live.longest_reported.append(value)
        elif metric == "oOnQueueUsers":
            count = field(body, *at, "stats", "count", kind=int)
            qualifier = field(body, *at, "qualifier", kind=str, default=None)
            if qualifier is None:
                live.agents_total = (live.agents_total or 0) + count
            else:
                key = qualifier.upper()
                live.agents_by_status[key] = live.agents_by_status.get(key, 0) + count


def parse_aggregates(body: Any, queue_ids: Sequence[str], media_type: str) -> dict[str, _Window]:
    """Per queue id: its counts over the window (a queue Genesys left out had none).

    Raises ``SourceError`` when the response or one of its figures cannot be read.
    """
    out = {queue: _Window() for queue in queue_ids}
    results = field(body, "results", kind=list, default=[])
    for i in range(len(results)):
        queue = field(body, "results", i, "group", "queueId", kind=str).lower()
        media = field(body, "results", i, "group", "mediaType", kind=str, default=None)
        if queue not in out or (media is not None and media != media_type):
            continue
        window = out[queue]
        buckets = field(body, "results", i, "data", kind=list, default=[])
        for k in range(len(buckets)):
            metrics = field(body, "results", i, "data", k, "metrics", kind=list, default=[])
            for m in range(len(metrics)):
                at = ("results", i, "data", k, "metrics", m)
                metric = field(body, *at, "metric", kind=str)
                if metric not in AGGREGATE_METRICS:
                    continue
                count = field(body, *at, "stats", "count", kind=int)
                if metric == "nOffered":
                    window.offered += count
                elif metric == "tAnswered":
                    window.answered += count
                    window.answered_ms += field(body, *at, "stats", "sum", kind=float)
                elif metric == "tAbandon":
                    window.abandoned += count
                else:  # tHandle
                    window.handled += count
                    window.handle_ms += field(body, *at, "stats", "sum", kind=float)
    return out


# --------------------------------------------------------------------------- the source


class GenesysCloudSource:
    """Queue figures for the lines bound to one Genesys Cloud organisation."""

    def __init__(
        self,
        name: str,
        settings: GenesysCloudSettings,
        queues: Mapping[str, str],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Serve ``queues`` (line id → queue id); ``policy``/``transport`` are for tests."""
        self.name = name
        self.settings = settings
        self._queues = dict(queues)
        self._clock = clock
        self.auth = OAuthClientCredentials(
            settings.token_url, settings.client_id, settings.client_secret, clock=clock
        )
        self._client = PlatformClient(
            name, base_url=settings.api_base, auth=self.auth, policy=policy, transport=transport
        )

    async def poll(self) -> PollResult:
        """One observations query and one aggregates query per ``CHUNK`` queues."""
        now = self._clock.now()
        deadline = time.monotonic() + self.settings.request_budget.total_seconds()
        ids = sorted(set(self._queues.values()))
        chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
        live: dict[str, _Live | SourceError] = {}
        failures: list[SourceError] = []
        for chunk in chunks:
            try:
                live.update(await self._observe(chunk, deadline))
            except SourceError as exc:
                failures.append(exc)
                live.update(dict.fromkeys(chunk, exc))
        if len(failures) == len(chunks):
            raise failures[0]  # nothing came back: the whole poll failed
        windows: dict[str, _Window | None] = {}
        for chunk in chunks:
            try:
                windows.update(await self._aggregate(chunk, now, deadline))
            except SourceError:
                # Live figures are worth more than nothing: window figures stay unknown.
                windows.update(dict.fromkeys(chunk))
        result: dict[str, QueueStats | SourceError] = {}
        for line, queue in self._queues.items():
            figures = live[queue]
            if isinstance(figures, SourceError):
                result[line] = figures
            else:
                result[line] = self._stats(line, now, figures, windows.get(queue))
        return result

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    def _filter(self, chunk: Sequence[str]) -> dict[str, Any]:
        return {
            "type": "and",
            "clauses": [
                {"type": "or",
                 "predicates": [{"dimension": "queueId", "value": q} for q in chunk]},
            ],
            "predicates": [{"dimension": "mediaType", "value": self.settings.media_type}],
        }  # fmt: skip

    async def _observe(
        self, chunk: Sequence[str], deadline: float
    ) -> dict[str, _Live | SourceError]:
        body = {
            "filter": self._filter(chunk),
            "metrics": list(OBSERVATION_METRICS),
            "detailMetrics": ["oWaiting"],
        }
        try:
            payload = await self._client.json(
                "POST", OBSERVATIONS_PATH, json=body, budget=remaining(deadline)
            )
            return parse_observations(payload, chunk, self.settings.media_type)
        except SourceError as exc:
            raise _in(exc, "observations query") from exc

    async def _aggregate(
        self, chunk: Sequence[str], now: datetime, deadline: float
    ) -> dict[str, _Window]:
        start = now - self.settings.window
        body = {
            "interval": f"{_iso(start)}/{_iso(now)}",
            "groupBy": ["queueId"],
            "filter": self._filter(chunk),
            "metrics": list(AGGREGATE_METRICS),
        }
        payload = await self._client.json(
            "POST", AGGREGATES_PATH, json=body, budget=remaining(deadline)
        )
        return parse_aggregates(payload, chunk, self.settings.media_type)

    def _stats(self, line: str, now: datetime, live: _Live, window: _Window | None) -> QueueStats:
        available, staffed = live.agents()
        if window is None:
            return QueueStats(
                line=line, at=now, calls_waiting=live.calls_waiting,
                longest_wait=live.longest_wait(now), agents_available=available,
                agents_staffed=staffed,
            )  # fmt: skip
        avg_wait: float | None
        if window.answered:
            avg_wait = window.answered_ms / window.answered / 1000
        elif live.calls_waiting == 0 and window.abandoned == 0:
            avg_wait = 0.0  # a quiet line
        else:
            avg_wait = None  # nobody answered while callers wait: not "0 s"
        return QueueStats(
            line=line,
            at=now,
            calls_waiting=live.calls_waiting,
            avg_wait=avg_wait,
            longest_wait=live.longest_wait(now),
            agents_available=available,
            agents_staffed=staffed,
            offered=window.offered,
            answered=window.answered,
            abandoned=window.abandoned,
            window=self.settings.window.total_seconds(),
            avg_handle_time=window.handle_ms / window.handled / 1000 if window.handled else None,
        )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(GenesysCloudSettings, settings, f"genesys_cloud {name!r}")
    queues = {
        line_id: params.queue_id
        for line_id, params in lines_as(GenesysCloudLine, lines, f"genesys_cloud {name!r}").items()
    }
    return GenesysCloudSource(name, settings, queues, ctx.clock)


PLUGIN = SourcePlugin(
    type="genesys_cloud",
    settings_model=GenesysCloudSettings,
    line_model=GenesysCloudLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Genesys Cloud queue observations (live) and conversation aggregates "
    "(over a trailing window), one query each for all queues.",
)
