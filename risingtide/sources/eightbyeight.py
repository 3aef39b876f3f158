"""The ``eightbyeight`` source: queue statistics from 8x8 Contact Center's real-time API.

One call per poll (per 100 queues, per page), through the shared ``PlatformClient``
(``risingtide.sources.webclient``) with an OAuth client-credentials token:

- token: ``POST https://api.8x8.com/oauth/v2/token`` with HTTP Basic ``api_key:api_secret``
  and the form ``grant_type=client_credentials``; the answer's ``expires_in`` is a string
  (``"1799"``). The token is cached and fetched again a minute before it expires, or at
  once after a 401 (``OAuthClientCredentials``).
- figures: ``GET https://api.8x8.com/{region}/analytics/cc/v5/realtime-metrics/queues``
  with ``queue-ids`` and ``metrics`` repeated once per value, ``page`` (from 0) and
  ``size``; the answer is ``[{id, name, metrics: [{key, value}]}]`` and the headers
  ``X-Page`` and ``X-Total-Pages`` (a count: pages run 0 … X-Total-Pages − 1). The US
  region has no path part (``https://api.8x8.com/analytics/…``). A multi-tenant customer
  sets ``tenant_id``, sent as ``X-Tenant-Info``.

Metric keys are ``name.period``: ``.rt`` is now; the window figures read ``period``
(``int-15m`` by default, or ``int-30m``)::

    calls_waiting     interactionsWaitInQueue.rt
    longest_wait      interactionsLongestWaitInQueue.rt        (time_unit)
    agents_available  availableIdle.rt
    agents_staffed    enabled.rt          (logged in, assigned and enabled for the queue)
    offered           entered.{period}
    answered          accepted.{period}
    abandoned         abandoned.{period}  (8x8 leaves out "short" abandons, under 5 s)
    avg_wait          interactionsAvgWaitTime.{period}         (time_unit)
    avg_handle_time   avgHandlingTime.{period}                 (time_unit)
    window            900 s for int-15m, 1800 s for int-30m
    at                our clock (8x8 gives no timestamp; its data refreshes every 5 s)

8x8's ``interactionsAvgWaitTime`` averages every interaction that left the queue (answered,
abandoned or diverted), where Connect and Twilio average answered calls only; it is the
closest 8x8 figure to the council's "average wait" and is used as is.

How the UNCONFIRMED points of PLATFORM_APIS.md are handled:

- **Time units.** The queue glossary gives no unit for times; the agent glossary says
  ``timeOnStatus.rt`` is in milliseconds and the documented examples (e.g.
  ``interactionsAvgWaitTime.today`` = 29947.4) read naturally as milliseconds. So times are
  read as milliseconds, set by ``time_unit: ms`` (the default) and switchable to ``s`` —
  an explicit setting rather than a guess from the size of a number, because no threshold
  separates "30,000 ms" from "30,000 s" reliably.
- **Percentages** (0–1 or 0–100): not read at all. Abandonment and answered rates are
  computed from the counts (``abandoned.*``, ``accepted.*``, ``entered.*``), which have no
  unit question.
- **What ``.int-15m`` spans** (a rolling 15 minutes or the current quarter hour): the
  glossary says "the most recent 15 minute interval"; the window is reported as 900 s
  either way.

Other rules:

- ``null`` is unknown (``None``), except ``interactionsLongestWaitInQueue.rt``, which is 0
  when nobody waits, and ``avg_wait``, which is 0 when null and nobody waits (a quiet line;
  docs/decisions.md gives the same rule for the simulator). Values may be numbers or numeric
  strings (the documented examples show both).
- A requested metric missing from a queue's answer is a ``parse`` error for that line,
  naming it, only when the line's tiers read a measure made from it (``abandon_rate``
  from ``abandoned`` and ``entered``, say); otherwise just the figures made from it are
  unknown and the rest are kept. A queue missing from the answer gives its line
  ``SourceError(reason="missing")``; the other lines are unaffected.
- The documentation says passing an unknown queue id fails the whole request (400). So that
  one deleted queue does not blind every line, a refused request is asked again for all
  queues (no ``queue-ids``); the lines whose queues are still there get their figures, and
  the others get ``reason="missing"`` with 8x8's refusal in the message. If that fails too,
  the poll fails with the original refusal.

``request_budget`` bounds the whole poll's HTTP work (token, pages, retries); keep it below
the source's ``timeout``.

Documentation followed (re-checked for this module):

- developer.8x8.com/analytics/docs/cc-realtime-statistics ("CC Realtime Statistics":
  base URLs per region, parameters, pagination headers, queue metrics glossary), as
  published in 8x8Cloud/public-developer-docs ``docs/analytics/docs/cc-realtime-statistics.md``
- developer.8x8.com/analytics/docs/oauth-authentication-for-8x8-xcaas-apis (token request
  and answer), ``docs/analytics/docs/oauth-authentication-for-8x8-xcaas-apis.md``
- developer.8x8.com/analytics/reference/cc-real-time-get-queues-metrics (``GET /queues``)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from risingtide.clock import Clock
from risingtide.config.durations import parse_duration
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.ports import (
    BuildContext,
    PollResult,
    SourceError,
    SourcePlugin,
    StatsSource,
    settings_as,
)
from risingtide.sources.webclient import (
    OAuthClientCredentials,
    PlatformClient,
    RetryPolicy,
    Sleep,
    field,
)

DEFAULT_BASE_URL: Final = "https://api.8x8.com"
TOKEN_PATH: Final = "/oauth/v2/token"
API_VERSION: Final = "v5"
#: Keeps the query string short; the documentation gives no limit on ``queue-ids``.
MAX_QUEUES_PER_REQUEST: Final = 100
#: A guard against a platform that keeps announcing more pages.
MAX_PAGES: Final = 50
#: Seconds covered by each window period.
PERIOD_SECONDS: Final = {"int-15m": 900.0, "int-30m": 1800.0}

# --------------------------------------------------------------------------- settings


#: A duration as the rest of the config writes them (``8s``, ``15m``).
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _text(value: object) -> object:
    """YAML reads ``queue_id: 103`` as a number; 8x8 ids are text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class EightByEightSettings(BaseModel):
    """The ``eightbyeight`` source's own block under ``sources:``.

    ``api_key`` and ``api_secret``: the key and secret from 8x8 Admin Console (write them as
    ``${…}``). ``region``: where the Contact Center tenant lives (``eu``, ``us``, ``au``,
    ``ca``). ``base_url`` replaces ``https://api.8x8.com`` (tests). ``period``: which window
    the window figures read (``int-15m`` or ``int-30m``). ``time_unit``: how 8x8 writes times
    (``ms`` or ``s``). ``page_size``: queues per page (1–1000). ``tenant_id``: for
    multi-tenant customers (``X-Tenant-Info``). ``request_budget``: the time one poll's HTTP
    calls may take, retries included; below the source's ``timeout``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = Field(min_length=1)
    api_secret: SecretStr
    region: Literal["eu", "us", "au", "ca"] = "eu"
    base_url: str = DEFAULT_BASE_URL
    period: Literal["int-15m", "int-30m"] = "int-15m"
    time_unit: Literal["ms", "s"] = "ms"
    page_size: int = Field(default=100, ge=1, le=1000)
    tenant_id: Annotated[str | None, BeforeValidator(_text)] = None
    request_budget: Duration = timedelta(seconds=8)

    @field_validator("api_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+/?", value):
            raise ValueError(f"{value!r} is not an http(s) URL with no path")
        return value.rstrip("/")

    @field_validator("request_budget")
    @classmethod
    def _budget(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        if value > timedelta(seconds=60):
            raise ValueError("must be at most 60s (and below the source's timeout)")
        return value


class EightByEightLine(BaseModel):
    """A line's ``source:`` block for 8x8: ``queue_id`` (e.g. ``103``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_id: Annotated[str, BeforeValidator(_text)]

    @field_validator("queue_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError(f"{value!r} is not an 8x8 queue id")
        return value


# --------------------------------------------------------------------------- the source


class EightByEightSource:
    """Polls 8x8's real-time queue metrics for the queues of its lines (see the module doc)."""

    def __init__(
        self,
        name: str,
        settings: EightByEightSettings,
        lines: Mapping[str, EightByEightLine],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        needs: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Serve ``lines``; ``needs`` is the measures each line's framework reads (a line
        not in it needs every measure); ``policy``, ``transport`` and ``sleep`` are for
        tests."""
        self.name = name
        self._settings = settings
        self._lines = dict(lines)
        self._needs = dict(needs or {})
        self._clock = clock
        self.auth = OAuthClientCredentials(
            settings.base_url + TOKEN_PATH,
            settings.api_key,
            settings.api_secret.get_secret_value(),
            clock=clock,
        )
        region = "" if settings.region == "us" else f"/{settings.region}"
        self.path = f"{region}/analytics/cc/{API_VERSION}/realtime-metrics/queues"
        headers = {} if settings.tenant_id is None else {"X-Tenant-Info": settings.tenant_id}
        self._client = PlatformClient(
            name,
            base_url=settings.base_url,
            auth=self.auth,
            policy=policy,
            headers=headers,
            transport=transport,
            sleep=sleep,
        )
        period = settings.period
        self._keys = {
            "calls_waiting": "interactionsWaitInQueue.rt",
            "longest_wait": "interactionsLongestWaitInQueue.rt",
            "agents_available": "availableIdle.rt",
            "agents_staffed": "enabled.rt",
            "offered": f"entered.{period}",
            "answered": f"accepted.{period}",
            "abandoned": f"abandoned.{period}",
            "avg_wait": f"interactionsAvgWaitTime.{period}",
            "avg_handle_time": f"avgHandlingTime.{period}",
        }

    async def poll(self) -> PollResult:
        """Figures for every line, or why not (see the module doc)."""
        now = self._clock.now()
        deadline = time.monotonic() + self._settings.request_budget.total_seconds()
        queues = list(dict.fromkeys(line.queue_id for line in self._lines.values()))
        found: dict[str, dict[str, float | None]] = {}
        missing_because = ""
        for start in range(0, len(queues), MAX_QUEUES_PER_REQUEST):
            chunk = queues[start : start + MAX_QUEUES_PER_REQUEST]
            try:
                found.update(await self._fetch(chunk, deadline))
            except SourceError as refused:
                if refused.reason != "http_4xx":
                    raise
                # One unknown queue id fails the whole request (documented): ask for every
                # queue so the lines whose queues still exist keep their figures.
                try:
                    found.update(await self._fetch(None, deadline))
                except SourceError:
                    raise refused from None
                missing_because = f"; 8x8 refused the queue list: {refused}"
                break  # every queue there is has been fetched
        result: dict[str, QueueStats | SourceError] = {}
        for line_id, line in self._lines.items():
            metrics = found.get(line.queue_id)
            if metrics is None:
                result[line_id] = SourceError(
                    f"queue {line.queue_id} is not in 8x8's answer{missing_because}",
                    reason="missing",
                )
            else:
                result[line_id] = self._stats(line_id, line.queue_id, now, metrics)
        return result

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    # ------------------------------------------------------------------ fetching

    async def _fetch(
        self, queues: Sequence[str] | None, deadline: float
    ) -> dict[str, dict[str, float | None]]:
        """``{queue id: {metric key: value}}`` over every page; ``None`` asks for all queues."""
        out: dict[str, dict[str, float | None]] = {}
        page = 0
        while True:
            # A list value repeats the parameter (queue-ids=101&queue-ids=107), as documented.
            params: dict[str, Any] = {
                "metrics": list(self._keys.values()),
                "page": page,
                "size": self._settings.page_size,
            }
            if queues is not None:
                params["queue-ids"] = list(queues)
            try:
                response = await self._client.request(
                    "GET", self.path, budget=deadline - time.monotonic(), params=params
                )
            except SourceError as exc:
                raise SourceError(
                    f"{self.name}: {exc}", reason=exc.reason, retryable=exc.retryable
                ) from exc
            try:
                payload = response.json()
            except ValueError as exc:
                raise SourceError(
                    f"{self.name}: malformed JSON from {response.request.url}: {exc}",
                    reason="parse",
                    retryable=False,
                ) from exc
            out.update(_read_page(payload, page))
            pages = _header_int(response, "X-Total-Pages", default=1)
            page += 1
            if page >= pages:
                return out
            if page >= MAX_PAGES:
                raise SourceError(
                    f"{self.name}: 8x8 announced {pages} pages; giving up after {MAX_PAGES}",
                    reason="parse",
                    retryable=False,
                )

    # ------------------------------------------------------------------ reading

    def _figures_of(self, measure: str) -> tuple[str, ...]:
        """The 8x8 metric keys a measure is made from (a rate: its two counts)."""
        parts = _MEASURE_PARTS.get(measure, (measure,))
        return tuple(self._keys[p] for p in parts if p in self._keys)

    def _stats(
        self, line: str, queue: str, now: datetime, metrics: Mapping[str, float | None]
    ) -> QueueStats | SourceError:
        # Only the figures the line's tiers read are required; any other metric missing
        # from the answer leaves just the figures made from it unknown.
        needed = self._needs.get(line, MEASURES)
        required = {key for m in needed for key in self._figures_of(m)}
        absent = [key for key in self._keys.values() if key in required and key not in metrics]
        if absent:
            return SourceError(
                f"queue {queue}: 8x8's answer has no {', '.join(absent)}, which the line's "
                "tiers read",
                reason="parse",
                retryable=False,
            )
        scale = 0.001 if self._settings.time_unit == "ms" else 1.0

        def count(measure: str) -> int | None:
            value = metrics.get(self._keys[measure])
            return None if value is None else round(value)

        def seconds(measure: str) -> float | None:
            value = metrics.get(self._keys[measure])
            return None if value is None else value * scale

        waiting = count("calls_waiting")
        longest = seconds("longest_wait")
        if longest is None and waiting == 0:
            longest = 0.0  # nobody waiting: nobody has waited long
        avg_wait = seconds("avg_wait")
        if avg_wait is None and waiting == 0:
            avg_wait = 0.0  # nothing left the queue and nobody waiting: a quiet line
        return QueueStats(
            line=line,
            at=now,
            calls_waiting=waiting,
            avg_wait=avg_wait,
            longest_wait=longest,
            agents_available=count("agents_available"),
            agents_staffed=count("agents_staffed"),
            offered=count("offered"),
            answered=count("answered"),
            abandoned=count("abandoned"),
            window=PERIOD_SECONDS[self._settings.period],
            avg_handle_time=seconds("avg_handle_time"),
        )


# --------------------------------------------------------------------------- helpers

#: The figures a measure is computed from, where it is not a figure itself.
_MEASURE_PARTS: Final[Mapping[str, tuple[str, ...]]] = {
    "abandon_rate": ("abandoned", "offered"),
    "answered_rate": ("answered", "offered"),
}


def _read_page(payload: Any, page: int) -> dict[str, dict[str, float | None]]:
    """``{queue id: {key: value}}`` from one page; errors name the path within the page."""
    if not isinstance(payload, list):
        raise SourceError(
            f"page {page} of 8x8's answer is {type(payload).__name__}, not a list of queues",
            reason="parse",
            retryable=False,
        )
    out: dict[str, dict[str, float | None]] = {}
    try:
        for index in range(len(payload)):
            queue = field(payload, index, "id", kind=object)
            if isinstance(queue, bool) or not isinstance(queue, str | int):
                field(payload, index, "id", kind=str)  # raises, naming the path
            values: dict[str, float | None] = {}
            metrics = field(payload, index, "metrics", kind=object)
            if isinstance(metrics, dict):  # the shape some other 8x8 endpoints use
                for key in metrics:
                    values[str(key)] = field(
                        payload, index, "metrics", key, kind=float, default=None
                    )
            else:
                for item in range(len(field(payload, index, "metrics", kind=list))):
                    key = field(payload, index, "metrics", item, "key", kind=str)
                    values[key] = field(
                        payload, index, "metrics", item, "value", kind=float, default=None
                    )
            out[str(queue)] = values
    except SourceError as exc:
        raise SourceError(f"page {page}: {exc}", reason="parse", retryable=False) from exc
    return out


def _header_int(response: httpx.Response, name: str, *, default: int) -> int:
    raw = response.headers.get(name)
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise SourceError(
            f"8x8 sent {name}: {raw!r}, not a number", reason="parse", retryable=False
        ) from None


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(EightByEightSettings, settings, f"eightbyeight {name!r}")
    return EightByEightSource(
        name,
        settings,
        {k: v for k, v in lines.items() if isinstance(v, EightByEightLine)},
        ctx.clock,
        needs=ctx.needs,
    )


PLUGIN = SourcePlugin(
    type="eightbyeight",
    settings_model=EightByEightSettings,
    line_model=EightByEightLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="8x8 Contact Center: real-time queue metrics (analytics cc v5).",
)
