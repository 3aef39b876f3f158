"""The ``amazon_connect`` source: queue statistics from Amazon Connect, signed with SigV4.

Two calls per poll (per 100 queues), made at the same time through the shared
``PlatformClient`` (``risingtide.sources.webclient``), each following ``NextToken``:

- **now** — ``GetCurrentMetricData``: ``POST /metrics/current/{InstanceId}`` with
  ``CurrentMetrics`` ``CONTACTS_IN_QUEUE``, ``OLDEST_CONTACT_AGE``, ``AGENTS_AVAILABLE``,
  ``AGENTS_STAFFED``, ``Filters {Queues: [≤100 ids], Channels: ["VOICE"]}`` and
  ``Groupings ["QUEUE", "CHANNEL"]``;
- **the window** — ``GetMetricDataV2``: ``POST /metrics/data`` with ``ResourceArn`` (the
  *instance* ARN, hence the ``account_id`` setting), ``StartTime``/``EndTime`` (epoch
  seconds; the window ends 5 s before now because ``EndTime`` "cannot be later than the
  current timestamp" and clocks drift), ``Interval {IntervalPeriod: "TOTAL"}``, ``Filters``
  ``QUEUE`` (≤100 values) and ``CHANNEL`` ``VOICE`` (which does not count towards the 100),
  ``Groupings ["QUEUE"]`` and ``Metrics`` ``AVG_QUEUE_ANSWER_TIME``, ``CONTACTS_QUEUED``,
  ``CONTACTS_HANDLED``, ``CONTACTS_ABANDONED``, ``AVG_HANDLE_TIME``.

Every request is signed with botocore's SigV4 (``SigV4Auth``, service ``connect``) through
``PlatformClient.request(sign=…)``, so each retry is signed afresh. botocore is imported
when the source is built, not when this module is imported: without it, building fails with
``SourceError(reason="dependency")`` saying ``pip install 'risingtide[aws]'``.

Figures, as ``QueueStats`` (seconds and counts)::

    calls_waiting     CONTACTS_IN_QUEUE          (now)
    longest_wait      OLDEST_CONTACT_AGE         (now; see units below)
    agents_available  AGENTS_AVAILABLE           (now)
    agents_staffed    AGENTS_STAFFED             (now)
    avg_wait          AVG_QUEUE_ANSWER_TIME      (window; seconds)
    offered           CONTACTS_QUEUED            (window)
    answered          CONTACTS_HANDLED           (window)
    abandoned         CONTACTS_ABANDONED         (window)
    avg_handle_time   AVG_HANDLE_TIME            (window; seconds)
    window            the ``window`` setting, in seconds
    at                DataSnapshotTime (never later than our clock), else our clock

Rules where the documentation is ambiguous or silent (PLATFORM_APIS.md's UNCONFIRMED points
and the brief's open choices):

- **OLDEST_CONTACT_AGE units.** The API reference says: with groupings, ``Unit`` says
  SECONDS and the value is seconds; without groupings, ``Unit`` still says SECONDS but the
  value is milliseconds. This source always groups, so by the documentation the value is
  seconds. With ``oldest_contact_age_unit: auto`` (the default) the returned
  ``Metric.Unit`` decides: ``MILLISECONDS`` is divided by 1,000; ``SECONDS`` **or no unit
  at all** is read as seconds (because we group); any other unit is a ``parse`` error for
  that line. ``seconds`` or ``milliseconds`` forces the reading whatever the unit says — the
  escape hatch should AWS change behaviour.
- **Null values.** The reference says a null ``Value`` means "the calculation cannot be
  performed due to divide by zero or insufficient data", so null is unknown (``None``),
  never 0 — with two exceptions that keep a quiet line from looking broken:
  ``OLDEST_CONTACT_AGE`` is 0 when ``CONTACTS_IN_QUEUE`` is 0 (nobody waits, so nobody has
  waited long), and ``avg_wait`` is 0 when ``AVG_QUEUE_ANSWER_TIME`` is null or absent and
  nobody waits now (the simulator's rule, docs/decisions.md: a stuck queue never looks
  calm, a quiet one does).
- **A queue missing from an answer.** The reference says an empty ``MetricResults`` means
  "the request cannot find any data". Missing from the *live* answer, the line gets
  ``SourceError(reason="missing")`` (its tier holds) and the others are unaffected. Missing
  from a successful *window* answer, it had no contacts in the window: offered, answered
  and abandoned are 0 (average handle time unknown).
- **A requested metric missing from a result** (the reference: "each item in MetricResult
  must include all requested metrics") is a ``parse`` error for that line, naming it.
- **The window call fails but the live one worked:** the lines get their live figures with
  the window figures unknown, and a warning is logged once (and "recovered" once).
- **More than 100 queues** are split into requests of at most 100; a chunk that fails
  fails only its own lines; if every chunk fails, the poll fails.
- **Signing time** comes from the source's clock (the wall clock in the daemon), so tests
  with a ``FakeClock`` sign deterministically.

``request_budget`` bounds the whole poll's HTTP work (both calls, retries and pages); keep it
below the source's ``timeout``.

Documentation followed (re-checked for this module):

- docs.aws.amazon.com/connect/latest/APIReference/API_GetCurrentMetricData.html
- docs.aws.amazon.com/connect/latest/APIReference/API_GetMetricDataV2.html
- docs.aws.amazon.com/connect/latest/APIReference/API_MetricResultV2.html (``Dimensions`` is
  a string-to-string map)
- botocore's service model ``botocore/data/connect/2017-08-08/service-2.json`` (paths,
  shapes, limits: ``Queues`` max 100, ``FilterValueList`` max 100, ``MaxResults`` max 100,
  timestamps as epoch seconds, signing name ``connect``)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import httpx
import structlog
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
from risingtide.sources.webclient import PlatformClient, RetryPolicy, Sleep, field

log = structlog.get_logger(__name__)

#: Both APIs take at most 100 queues a request (``Filters.Queues``; V2 filter values).
MAX_QUEUES_PER_REQUEST: Final = 100
#: A guard against a platform that keeps answering with a NextToken.
MAX_PAGES: Final = 50
#: ``EndTime`` "cannot be later than the current timestamp": leave room for clock drift.
CLOCK_SKEW: Final = timedelta(seconds=5)
SERVICE: Final = "connect"
INSTALL_HINT: Final = "pip install 'risingtide[aws]'"

#: (name, unit) of the live metrics, units as the API reference lists them.
LIVE_METRICS: Final = (
    ("CONTACTS_IN_QUEUE", "COUNT"),
    ("OLDEST_CONTACT_AGE", "SECONDS"),
    ("AGENTS_AVAILABLE", "COUNT"),
    ("AGENTS_STAFFED", "COUNT"),
)
WINDOW_METRICS: Final = (
    "AVG_QUEUE_ANSWER_TIME",
    "CONTACTS_QUEUED",
    "CONTACTS_HANDLED",
    "CONTACTS_ABANDONED",
    "AVG_HANDLE_TIME",
)

_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]+")
_RESOURCE_ID = re.compile(r"[A-Za-z0-9-]{1,100}")
_QUEUE_ARN = re.compile(r"arn:[a-z-]+:connect:[a-z0-9-]+:[0-9]{12}:instance/[^/]+/queue/([^/]+)")

# --------------------------------------------------------------------------- settings


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


#: A duration as the rest of the config writes them (``8s``, ``15m``).
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class ConnectSettings(BaseModel):
    """The ``amazon_connect`` source's own block under ``sources:``.

    ``region`` (``eu-west-2`` for London), ``instance_id`` and ``account_id`` (12 digits; the
    window call needs the instance ARN) locate the instance. ``access_key_id``,
    ``secret_access_key`` and, for temporary credentials, ``session_token`` sign requests
    (write them as ``${AWS_…}``). ``endpoint_url`` replaces
    ``https://connect.{region}.amazonaws.com`` (a VPC endpoint, or a test server).
    ``window``: the trailing window for offered/answered/abandoned and the averages.
    ``request_budget``: the time one poll's HTTP calls may take, retries included; below the
    source's ``timeout``. ``oldest_contact_age_unit``: see the module documentation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str
    instance_id: str
    account_id: str
    access_key_id: str = Field(min_length=1)
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    endpoint_url: str | None = None
    window: Duration = timedelta(minutes=15)
    request_budget: Duration = timedelta(seconds=8)
    oldest_contact_age_unit: Literal["auto", "seconds", "milliseconds"] = "auto"

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.fullmatch(value):
            raise ValueError(f"{value!r} is not an AWS region (e.g. eu-west-2)")
        return value

    @field_validator("instance_id")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not _RESOURCE_ID.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Connect instance id (the last part of the instance ARN)"
            )
        return value

    @field_validator("account_id", mode="before")
    @classmethod
    def _account(cls, value: object) -> object:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not re.fullmatch(r"[0-9]{12}", text):
            raise ValueError(f"{value!r} is not an AWS account id (12 digits)")
        return text

    @field_validator("secret_access_key")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("session_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        # ``${AWS_SESSION_TOKEN:-}`` is empty with long-term keys: that means no token.
        return None if value is None or not value.get_secret_value() else value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+/?", value):
            raise ValueError(f"{value!r} is not an http(s) URL with no path")
        return None if value is None else value.rstrip("/")

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        _positive(value)
        if value > timedelta(days=1):
            raise ValueError("must be at most 1d (a rolling window, not a report)")
        return value

    @field_validator("request_budget")
    @classmethod
    def _budget(cls, value: timedelta) -> timedelta:
        _positive(value)
        if value > timedelta(seconds=60):
            raise ValueError("must be at most 60s (and below the source's timeout)")
        return value


def _queue_id(value: object) -> object:
    """Accept a queue ARN where an id is expected: its last part is the id."""
    if isinstance(value, str):
        match = _QUEUE_ARN.fullmatch(value.strip())
        if match:
            return match.group(1)
    return value


class ConnectLine(BaseModel):
    """A line's ``source:`` block for Connect: ``queue_id`` (an id, or the queue's ARN)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_id: Annotated[str, BeforeValidator(_queue_id)]

    @field_validator("queue_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _RESOURCE_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a Connect queue id or queue ARN")
        return value


# --------------------------------------------------------------------------- signing


class SigV4Signer:
    """Signs an ``httpx.Request`` with botocore's SigV4 for service ``connect``.

    botocore computes everything (canonical request, string to sign, key derivation,
    signature); this class only carries the request across and reads the signing time from
    the source's clock. Signed headers: ``host``, ``content-type``, ``x-amz-date`` and, with
    temporary credentials, ``x-amz-security-token`` — the headers no proxy rewrites.
    """

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None,
        region: str,
        clock: Clock,
    ) -> None:
        """Sign as ``access_key_id`` in ``region``; raises ``SourceError`` without botocore."""
        try:
            from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
            from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
            from botocore.credentials import Credentials  # type: ignore[import-untyped]
        except ImportError as exc:
            raise SourceError(
                "the amazon_connect source signs its requests with botocore, which is not "
                f"installed: {INSTALL_HINT}",
                reason="dependency",
                retryable=False,
            ) from exc
        self._request_type: Any = AWSRequest
        self._auth: Any = SigV4Auth(
            Credentials(access_key_id, secret_access_key, session_token), SERVICE, region
        )
        self._token = session_token
        self._clock = clock

    def __call__(self, request: httpx.Request) -> httpx.Request:
        """Add ``Authorization``, ``X-Amz-Date`` (and the session token) to ``request``."""
        stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {"Host": request.headers["host"], "X-Amz-Date": stamp}
        if "content-type" in request.headers:
            headers["Content-Type"] = request.headers["content-type"]
        if self._token is not None:
            headers["X-Amz-Security-Token"] = self._token
        aws = self._request_type(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        aws.context["timestamp"] = stamp
        auth = self._auth
        signature = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
        signed = auth.signed_headers(auth.headers_to_sign(aws))
        request.headers["X-Amz-Date"] = stamp
        if self._token is not None:
            request.headers["X-Amz-Security-Token"] = self._token
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={auth.scope(aws)}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return request


# --------------------------------------------------------------------------- the source


@dataclass(frozen=True, slots=True)
class _Live:
    at: datetime | None
    calls_waiting: int | None
    longest_wait: float | None
    agents_available: int | None
    agents_staffed: int | None


@dataclass(frozen=True, slots=True)
class _Window:
    avg_wait: float | None
    offered: int | None
    answered: int | None
    abandoned: int | None
    avg_handle_time: float | None


_NO_CONTACTS = _Window(avg_wait=None, offered=0, answered=0, abandoned=0, avg_handle_time=None)


class AmazonConnectSource:
    """Polls one Connect instance for the queues of its lines (see the module doc)."""

    def __init__(
        self,
        name: str,
        settings: ConnectSettings,
        lines: Mapping[str, ConnectLine],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Serve ``lines``; ``policy``, ``transport`` and ``sleep`` are for tests."""
        self.name = name
        self._settings = settings
        self._lines = dict(lines)
        self._clock = clock
        self._sign = SigV4Signer(
            settings.access_key_id,
            settings.secret_access_key.get_secret_value(),
            None if settings.session_token is None else settings.session_token.get_secret_value(),
            settings.region,
            clock,
        )
        partition, suffix = _partition(settings.region)
        self.base_url = settings.endpoint_url or f"https://connect.{settings.region}.{suffix}"
        self.instance_arn = (
            f"arn:{partition}:connect:{settings.region}:{settings.account_id}"
            f":instance/{settings.instance_id}"
        )
        self._client = PlatformClient(
            name, base_url=self.base_url, policy=policy, transport=transport, sleep=sleep
        )
        self._window_failing = False

    async def poll(self) -> PollResult:
        """Live and window figures for every line; live figures alone if the window fails."""
        now = self._clock.now()
        deadline = time.monotonic() + self._settings.request_budget.total_seconds()
        queues = list(dict.fromkeys(line.queue_id for line in self._lines.values()))
        chunks = [
            queues[i : i + MAX_QUEUES_PER_REQUEST]
            for i in range(0, len(queues), MAX_QUEUES_PER_REQUEST)
        ]
        outcomes = await asyncio.gather(
            *(self._live(chunk, deadline) for chunk in chunks),
            *(self._window(chunk, now, deadline) for chunk in chunks),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, SourceError):
                raise outcome  # a bug, not a platform failure: let the poller report it
        live_parts, window_parts = outcomes[: len(chunks)], outcomes[len(chunks) :]
        live_errors = [part for part in live_parts if isinstance(part, SourceError)]
        if chunks and len(live_errors) == len(chunks):
            raise live_errors[0]
        self._note_window([part for part in window_parts if isinstance(part, SourceError)])

        live: dict[str, _Live | SourceError] = {}
        window: dict[str, _Window] = {}
        for chunk, live_part, window_part in zip(chunks, live_parts, window_parts, strict=True):
            for queue in chunk:
                if isinstance(live_part, SourceError):
                    live[queue] = live_part
                elif isinstance(live_part, dict):
                    live[queue] = live_part.get(queue) or SourceError(
                        f"queue {queue} is not in Connect's live answer (deleted, or not in "
                        f"instance {self._settings.instance_id}?)",
                        reason="missing",
                    )
                if isinstance(window_part, dict):
                    window[queue] = window_part.get(queue, _NO_CONTACTS)

        result: dict[str, QueueStats | SourceError] = {}
        for line_id, line in self._lines.items():
            figures = live[line.queue_id]
            if isinstance(figures, SourceError):
                result[line_id] = figures
            else:
                result[line_id] = self._stats(line_id, now, figures, window.get(line.queue_id))
        return result

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    # ------------------------------------------------------------------ the two calls

    async def _live(self, queues: Sequence[str], deadline: float) -> dict[str, _Live | SourceError]:
        body: dict[str, Any] = {
            "CurrentMetrics": [{"Name": n, "Unit": u} for n, u in LIVE_METRICS],
            "Filters": {"Queues": list(queues), "Channels": ["VOICE"]},
            "Groupings": ["QUEUE", "CHANNEL"],
            "MaxResults": MAX_QUEUES_PER_REQUEST,
        }
        url = f"/metrics/current/{self._settings.instance_id}"
        wanted = set(queues)
        out: dict[str, _Live | SourceError] = {}
        for payload in await self._pages(url, body, deadline):
            snapshot = _snapshot_time(payload)
            for index in range(len(field(payload, "MetricResults", kind=list))):
                at = ("MetricResults", index)
                channel = field(payload, *at, "Dimensions", "Channel", kind=str, default=None)
                if channel not in (None, "VOICE"):
                    continue
                queue = _dimension_queue(payload, index)
                if queue in wanted:
                    out[queue] = self._read_live(payload, index, snapshot)
        return out

    async def _window(
        self, queues: Sequence[str], now: datetime, deadline: float
    ) -> dict[str, _Window]:
        end = (now - CLOCK_SKEW).replace(microsecond=0)
        start = end - self._settings.window
        body: dict[str, Any] = {
            "ResourceArn": self.instance_arn,
            "StartTime": int(start.timestamp()),
            "EndTime": int(end.timestamp()),
            "Interval": {"IntervalPeriod": "TOTAL"},
            "Filters": [
                {"FilterKey": "QUEUE", "FilterValues": list(queues)},
                {"FilterKey": "CHANNEL", "FilterValues": ["VOICE"]},
            ],
            "Groupings": ["QUEUE"],
            "Metrics": [{"Name": n} for n in WINDOW_METRICS],
            "MaxResults": MAX_QUEUES_PER_REQUEST,
        }
        wanted = set(queues)
        out: dict[str, _Window] = {}
        for payload in await self._pages("/metrics/data", body, deadline):
            for index in range(len(field(payload, "MetricResults", kind=list))):
                raw = field(payload, "MetricResults", index, "Dimensions", "QUEUE", kind=str)
                queue = str(_queue_id(raw))
                if queue in wanted:
                    values = _collections(payload, index, WINDOW_METRICS)
                    out[queue] = _Window(
                        avg_wait=values["AVG_QUEUE_ANSWER_TIME"][0],
                        offered=_count(values["CONTACTS_QUEUED"][0]),
                        answered=_count(values["CONTACTS_HANDLED"][0]),
                        abandoned=_count(values["CONTACTS_ABANDONED"][0]),
                        avg_handle_time=values["AVG_HANDLE_TIME"][0],
                    )
        return out

    async def _pages(self, url: str, body: dict[str, Any], deadline: float) -> list[Any]:
        """Every page of one request, following ``NextToken`` with the same parameters."""
        pages: list[Any] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            request = body if token is None else {**body, "NextToken": token}
            try:
                payload = await self._client.json(
                    "POST", url, budget=deadline - time.monotonic(), json=request,
                    sign=self._sign,
                )  # fmt: skip
            except SourceError as exc:
                raise SourceError(
                    f"{self.name}: {exc}", reason=exc.reason, retryable=exc.retryable
                ) from exc
            if not isinstance(payload, dict):
                raise SourceError(
                    f"{self.name}: POST {url} answered {type(payload).__name__}, not an object",
                    reason="parse",
                    retryable=False,
                )
            pages.append(payload)
            token = field(payload, "NextToken", kind=str, default=None)
            if not token:
                return pages
            if token in seen or len(pages) >= MAX_PAGES:
                raise SourceError(
                    f"{self.name}: POST {url} kept paging ({len(pages)} pages); giving up",
                    reason="parse",
                    retryable=False,
                )
            seen.add(token)

    # ------------------------------------------------------------------ reading

    def _read_live(
        self, payload: Any, index: int, snapshot: datetime | None
    ) -> _Live | SourceError:
        try:
            values = _collections(payload, index, [n for n, _ in LIVE_METRICS])
            waiting = _count(values["CONTACTS_IN_QUEUE"][0])
            oldest, unit = values["OLDEST_CONTACT_AGE"]
            longest = self._oldest_age(oldest, unit, f"MetricResults[{index}]")
        except SourceError as exc:
            return exc  # this queue's answer is unusable; the others may be fine
        if longest is None and waiting == 0:
            longest = 0.0  # nobody waiting: nobody has waited long
        return _Live(
            at=snapshot,
            calls_waiting=waiting,
            longest_wait=longest,
            agents_available=_count(values["AGENTS_AVAILABLE"][0]),
            agents_staffed=_count(values["AGENTS_STAFFED"][0]),
        )

    def _oldest_age(self, value: float | None, unit: str | None, where: str) -> float | None:
        if value is None:
            return None
        reading = self._settings.oldest_contact_age_unit
        if reading == "auto":
            if unit in (None, "SECONDS"):
                reading = "seconds"  # grouped answers are in seconds (API reference)
            elif unit == "MILLISECONDS":
                reading = "milliseconds"
            else:
                raise SourceError(
                    f"{where}: OLDEST_CONTACT_AGE has unit {unit!r}, not SECONDS or MILLISECONDS",
                    reason="parse",
                    retryable=False,
                )
        return value / 1000.0 if reading == "milliseconds" else value

    def _stats(self, line: str, now: datetime, live: _Live, window: _Window | None) -> QueueStats:
        at = now if live.at is None else min(live.at, now)
        avg_wait = None if window is None else window.avg_wait
        if avg_wait is None and window is not None and live.calls_waiting == 0:
            avg_wait = 0.0  # nothing answered and nobody waiting: a quiet line
        return QueueStats(
            line=line,
            at=at,
            calls_waiting=live.calls_waiting,
            avg_wait=avg_wait,
            longest_wait=live.longest_wait,
            agents_available=live.agents_available,
            agents_staffed=live.agents_staffed,
            offered=None if window is None else window.offered,
            answered=None if window is None else window.answered,
            abandoned=None if window is None else window.abandoned,
            window=self._settings.window.total_seconds() if window is not None else None,
            avg_handle_time=None if window is None else window.avg_handle_time,
        )

    def _note_window(self, errors: list[SourceError]) -> None:
        """Log when the window call starts failing and when it recovers, not every time."""
        if errors and not self._window_failing:
            self._window_failing = True
            log.warning(
                "connect window figures failing; lines get live figures only",
                source=self.name, error=str(errors[0]), reason=errors[0].reason,
            )  # fmt: skip
        elif not errors and self._window_failing:
            self._window_failing = False
            log.info("connect window figures recovered", source=self.name)


# --------------------------------------------------------------------------- helpers


def _partition(region: str) -> tuple[str, str]:
    """The ARN partition and endpoint DNS suffix of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def _dimension_queue(payload: Any, index: int) -> str:
    """The queue id of a live result (``Dimensions.Queue.Id``, else from its ``Arn``)."""
    at = ("MetricResults", index, "Dimensions", "Queue")
    queue = field(payload, *at, "Id", kind=str, default=None)
    if queue is None:
        arn = field(payload, *at, "Arn", kind=str, default=None)
        if arn is None:
            raise SourceError(
                f"the payload has no MetricResults[{index}].Dimensions.Queue.Id",
                reason="parse",
                retryable=False,
            )
        queue = str(_queue_id(arn))
    return str(queue)


def _collections(
    payload: Any, index: int, names: Sequence[str]
) -> dict[str, tuple[float | None, str | None]]:
    """``{metric name: (value or None, unit or None)}`` for ``names``, each required.

    Paths in errors run from the payload's root, e.g. ``MetricResults[2].Collections[1].Value``.
    """
    at = ("MetricResults", index, "Collections")
    found: dict[str, tuple[float | None, str | None]] = {}
    for item in range(len(field(payload, *at, kind=list))):
        name = field(payload, *at, item, "Metric", "Name", kind=str)
        value = field(payload, *at, item, "Value", kind=float, default=None)
        unit = field(payload, *at, item, "Metric", "Unit", kind=str, default=None)
        found[name] = (value, unit)
    missing = [n for n in names if n not in found]
    if missing:
        raise SourceError(
            f"MetricResults[{index}].Collections has no {', '.join(missing)}",
            reason="parse",
            retryable=False,
        )
    return found


def _snapshot_time(payload: Any) -> datetime | None:
    """``DataSnapshotTime`` (epoch seconds, as rest-json sends timestamps; ISO 8601 too)."""
    raw = field(payload, "DataSnapshotTime", kind=object, default=None)
    if raw is None:
        return None
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw, UTC)
        if isinstance(raw, str):
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise SourceError(
        f"DataSnapshotTime is {raw!r}, not a timestamp", reason="parse", retryable=False
    )


def _count(value: float | None) -> int | None:
    return None if value is None else round(value)


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(ConnectSettings, settings, f"amazon_connect {name!r}")
    return AmazonConnectSource(
        name,
        settings,
        {k: v for k, v in lines.items() if isinstance(v, ConnectLine)},
        ctx.clock,
    )


PLUGIN = SourcePlugin(
    type="amazon_connect",
    settings_model=ConnectSettings,
    line_model=ConnectLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Amazon Connect: live queue metrics and a trailing window (GetMetricDataV2).",
)
