"""The ``prometheus`` source: a centre that already exports its queue figures to Prometheus.

Each figure of a line is one PromQL *instant query*, sent to the documented HTTP API
(prometheus.io, "HTTP API", section "Instant queries": ``GET``/``POST /api/v1/query`` with
``query`` and ``time``; ``POST`` sends them form-encoded)::

    {"status": "success",
     "data": {"resultType": "vector",
              "result": [{"metric": {...}, "value": [<unix ts>, "<string value>"]}]}}

Queries are written per line, or once for the source as templates in which ``{queue}``
becomes the line's ``queue`` (escaped for a quoted label value); a line's own query for a
figure beats the template. All queries of one poll are evaluated at the same instant (the
poll's time, sent as ``time``), concurrently but at most ``concurrency`` at a time, and a
query shared by several lines is sent once.

Reading a result (decided here, documented in ``docs/sources/prometheus.md``):

- an empty vector is *unknown* (None) — the series is absent or stale in Prometheus;
- ``NaN`` and ``±Inf`` (sent as the strings ``"NaN"``, ``"+Inf"``, ``"-Inf"``) are unknown;
- more than one series is a ``SourceError(reason="parse")``: figures are never summed
  behind the user's back (summing averages or waits across instances is wrong); write
  ``sum(...)``, ``max(...)`` or narrower label matchers in the query;
- a ``scalar`` result is accepted; a range vector (``matrix``) or a string is an error;
- values are taken in the unit the figure is named in — seconds, counts, ratios 0–1 — so
  the PromQL must yield those; counts are rounded to whole numbers (``increase()``
  extrapolates).

Prometheus' own errors (``{"status": "error", "errorType": …, "error": …}`` with HTTP 400
or 422 for a bad or failing query, 503 for a timeout or abort) become classified
``SourceError``s carrying Prometheus' message: 400/422 ``http_4xx`` (not retryable), 503
``http_5xx`` (retried within the budget). Everything else HTTP — auth, retries, time
budget — is ``PlatformClient``'s (``risingtide.sources.webclient``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from risingtide.clock import Clock
from risingtide.config.errors import show
from risingtide.config.schema import PositiveDuration
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
from risingtide.sources.http_json import (
    RATE_FIELDS,
    AuthSettings,
    Method,
    build_auth,
    compose_stats,
    http_url,
)
from risingtide.sources.webclient import PlatformClient, RetryPolicy

#: The instant-query endpoint, relative to the Prometheus base URL.
QUERY_PATH = "api/v1/query"

Query = Annotated[str, Field(min_length=1)]


class QuerySet(BaseModel):
    """A PromQL instant query per figure (any may be left out: that figure is unknown).

    ``at`` is optional: a query giving the figures' Unix time (e.g.
    ``timestamp(queue_waiting{queue="{queue}"})``); without it, stats are stamped with the
    poll's time. Give ``abandoned`` or ``abandon_rate`` (and ``answered`` or
    ``answered_rate``), not both.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls_waiting: Query | None = None
    avg_wait: Query | None = None
    longest_wait: Query | None = None
    agents_available: Query | None = None
    agents_staffed: Query | None = None
    offered: Query | None = None
    answered: Query | None = None
    abandoned: Query | None = None
    abandon_rate: Query | None = None
    answered_rate: Query | None = None
    avg_handle_time: Query | None = None
    at: Query | None = None

    @model_validator(mode="after")
    def _one_of_each_pair(self) -> QuerySet:
        for rate, count in RATE_FIELDS.items():
            if getattr(self, rate) is not None and getattr(self, count) is not None:
                raise ValueError(
                    f"give {count} or {rate}, not both ({count} = round({rate} × offered))"
                )
        return self


class PrometheusSettings(BaseModel):
    """The ``prometheus`` source's own block under ``sources:``.

    ``url``: the Prometheus base URL (``http://prometheus:9090``, or with a path prefix).
    ``queries``: templates for every line, with ``{queue}``. ``window``: the window the
    offered/answered/abandoned queries count over (e.g. 15m for ``increase(…[15m])``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, Field(min_length=1)]
    auth: AuthSettings | None = None
    request_budget: PositiveDuration = timedelta(seconds=8)
    method: Method = "GET"
    queries: QuerySet = Field(default_factory=QuerySet)
    window: PositiveDuration | None = None
    concurrency: int = Field(default=8, ge=1, le=32)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        http_url(value)
        if "{queue}" in value:
            raise ValueError("{queue} belongs in the queries, not in the url")
        return value

    @model_validator(mode="after")
    def _rates(self) -> PrometheusSettings:
        for rate, count in RATE_FIELDS.items():
            if getattr(self.queries, rate) is not None and self.queries.offered is None:
                raise ValueError(
                    f"queries.{rate} needs queries.offered: {count} = round({rate} × offered)"
                )
        return self


class PrometheusLine(BaseModel):
    """A line's ``source:`` block for a ``prometheus`` source.

    ``queue``: what ``{queue}`` becomes in the templates (default: the line's id).
    ``queries``: this line's own queries, which beat the templates figure by figure (null
    drops a templated figure). ``window``: this line's window, if not the source's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    queue: Annotated[str, Field(min_length=1)] | None = None
    queries: QuerySet | None = None
    window: PositiveDuration | None = None


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class _Plan:
    line: str
    queries: tuple[tuple[str, str], ...]  # (figure, PromQL), "at" included
    window: float | None
    problem: str | None


def label_value(text: str) -> str:
    """``text`` escaped for use inside a double-quoted PromQL label value."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _plan(line: str, settings: PrometheusSettings, params: PrometheusLine) -> _Plan:
    queue = label_value(params.queue if params.queue is not None else line)
    merged: dict[str, str] = {
        k: v for k in QuerySet.model_fields if (v := getattr(settings.queries, k)) is not None
    }
    own = params.queries
    for name in own.model_fields_set if own is not None else ():
        for rate, count in RATE_FIELDS.items():
            if name in (rate, count):
                merged.pop(rate, None)
                merged.pop(count, None)
        value = getattr(own, name)
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    problem = None
    if not set(merged) - {"at"}:
        problem = "no queries: set queries under the source (templates) or under the line"
    for rate, count in RATE_FIELDS.items():
        if rate in merged and "offered" not in merged:
            problem = f"{rate} has a query but offered has none, so {count} cannot be worked out"
    window = params.window or settings.window
    return _Plan(
        line=line,
        queries=tuple((k, v.replace("{queue}", queue)) for k, v in merged.items()),
        window=window.total_seconds() if window is not None else None,
        problem=problem,
    )


# --------------------------------------------------------------------------- responses


class PrometheusErrors(httpx.AsyncBaseTransport):
    """Turns Prometheus' JSON error documents into classified ``SourceError``s.

    ``PlatformClient`` shows only the start of a refused body; Prometheus puts the useful
    part (``errorType``, ``error``) in JSON, so this transport reads it first. Raised inside
    the transport, a retryable error (503) is still retried by the client, and a
    non-retryable one (400, 422) fails at once.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        """Wrap ``inner`` (default: a plain HTTP transport)."""
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; raise ``SourceError`` for a Prometheus error document."""
        response = await self._inner.handle_async_request(request)
        if response.status_code in (400, 422, 503):
            body = await response.aread()
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("status") == "error":
                await response.aclose()
                status = response.status_code
                raise SourceError(
                    f"Prometheus answered {status} ({doc.get('errorType', 'error')}): "
                    f"{doc.get('error', 'no message')}",
                    reason="http_5xx" if status >= 500 else "http_4xx",
                    retryable=status >= 500,
                )
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def read_sample(payload: Any) -> float | None:
    """The one value of an instant query's response; None when unknown (see module doc).

    Raises ``SourceError(reason="parse")`` for several series, a range vector, or a body
    that is not a Prometheus response.
    """
    if not isinstance(payload, dict) or "status" not in payload:
        raise _parse("the response is not a Prometheus API response (no status)")
    if payload["status"] == "error":
        raise SourceError(
            f"Prometheus error ({payload.get('errorType', 'error')}): "
            f"{payload.get('error', 'no message')}",
            reason="http_4xx",
            retryable=False,
        )
    if payload["status"] != "success":
        raise _parse(f'status is {show(payload["status"])}, not "success"')
    data = payload.get("data")
    if not isinstance(data, dict):
        raise _parse("the response has no data")
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "vector":
        if not isinstance(result, list):
            raise _parse("data.result is not a list")
        if not result:
            return None
        if len(result) > 1:
            shown = ", ".join(_labels(r) for r in result[:3]) + (", …" if len(result) > 3 else "")
            raise _parse(
                f"the query returned {len(result)} series ({shown}); it must return one: "
                "aggregate it (sum, max, …) or narrow its label matchers"
            )
        item = result[0]
        if not isinstance(item, dict) or "value" not in item:
            if isinstance(item, dict) and "histogram" in item:
                raise _parse("the query returned a native histogram; query a number instead")
            raise _parse("data.result[0] has no value")
        value = item["value"]
    elif kind == "scalar":
        value = result
    else:
        raise _parse(
            f"the query returned a {kind}; an instant query for a figure must return an "
            "instant vector or a scalar (no [range] at the end)"
        )
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
        raise _parse(f'the sample {_short(value)} is not [<time>, "<value>"]')
    try:
        number = float(value[1])
    except ValueError:
        raise _parse(f"the sample value {show(value[1])} is not a number") from None
    return number if math.isfinite(number) else None


def _labels(item: Any) -> str:
    metric = item.get("metric") if isinstance(item, dict) else None
    if not isinstance(metric, dict):
        return "{}"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse(message: str) -> SourceError:
    return SourceError(message, reason="parse", retryable=False)


# --------------------------------------------------------------------------- the source


class PrometheusSource:
    """Runs each line's instant queries against Prometheus and assembles ``QueueStats``."""

    def __init__(
        self,
        name: str,
        settings: PrometheusSettings,
        lines: Mapping[str, PrometheusLine],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Serve ``lines``; ``policy`` replaces the default retries (tests make them quick)."""
        self.name = name
        self.settings = settings
        self._clock = clock
        self._plans = [_plan(line, settings, params) for line, params in lines.items()]
        self._client = PlatformClient(
            name,
            base_url=settings.url,
            auth=build_auth(settings.auth, clock),
            transport=PrometheusErrors(),
            policy=policy,
        )
        self.requests = 0

    async def poll(self) -> PollResult:
        """Evaluate every line's queries at the poll's time and assemble each line's stats."""
        now = self._clock.now()
        queries = {q for plan in self._plans if plan.problem is None for _, q in plan.queries}
        results = await self._run_all(sorted(queries), now)
        failed = [r for r in results.values() if isinstance(r, SourceError)]
        # Every query failing (not for its own content) is Prometheus down: say so once.
        if failed and len(failed) == len(results) and all(f.reason != "parse" for f in failed):
            raise failed[0]
        return {plan.line: self._line(plan, results, now) for plan in self._plans}

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def _run_all(
        self, queries: list[str], now: datetime
    ) -> dict[str, float | SourceError | None]:
        deadline = time.monotonic() + self.settings.request_budget.total_seconds()
        gate = asyncio.Semaphore(self.settings.concurrency)
        at = f"{now.timestamp():.3f}"

        async def run(query: str) -> float | SourceError | None:
            form = {"query": query, "time": at}
            try:
                async with gate:
                    self.requests += 1
                    budget = max(0.0, deadline - time.monotonic())
                    if self.settings.method == "POST":
                        payload = await self._client.json(
                            "POST", QUERY_PATH, budget=budget, data=form
                        )
                    else:
                        payload = await self._client.json(
                            "GET", QUERY_PATH, budget=budget, params=form
                        )
                return read_sample(payload)
            except SourceError as exc:
                return exc

        values = await asyncio.gather(*(run(q) for q in queries))
        return dict(zip(queries, values, strict=True))

    def _line(
        self, plan: _Plan, results: Mapping[str, float | SourceError | None], now: datetime
    ) -> QueueStats | SourceError:
        if plan.problem is not None:
            return SourceError(
                f'line "{plan.line}": {plan.problem}', reason="config", retryable=False
            )
        values: dict[str, float | None] = {}
        at = now
        for name, query in plan.queries:
            value = results[query]
            if isinstance(value, SourceError):
                return SourceError(
                    f'line "{plan.line}": {name} query {query}: {value}',
                    reason=value.reason,
                    retryable=value.retryable,
                )
            if name != "at":
                values[name] = value
            elif value is not None:
                try:
                    at = datetime.fromtimestamp(value, UTC)
                except (OverflowError, OSError, ValueError):
                    return _parse(
                        f'line "{plan.line}": at query {query}: {value:g} is not a Unix time'
                    )
        try:
            return compose_stats(plan.line, at, values, plan.window, round_counts=True)
        except ValueError as exc:
            return _parse(f'line "{plan.line}": {exc}')


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(PrometheusSettings, settings, f"prometheus {name!r}")
    own = lines_as(PrometheusLine, lines, f"prometheus {name!r}")
    return PrometheusSource(name, settings, own, ctx.clock)


PLUGIN = SourcePlugin(
    type="prometheus",
    settings_model=PrometheusSettings,
    line_model=PrometheusLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Queue figures already in Prometheus, one PromQL instant query per figure.",
)
