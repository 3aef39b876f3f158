"""A fake Genesys Cloud for adapter tests: token endpoint and the two analytics queries.

It checks what the adapter sends — Basic client credentials and ``grant_type`` at
``/oauth/token``, then ``Authorization: Bearer <a token it issued and has not expired or
revoked>``, and the documented query bodies (``QueueObservationQuery``,
``ConversationAggregationQuery``: filter with clauses/predicates, metric names from the
SDK enums, an ISO ``start/end`` interval) — and answers with the documented response
shapes (``QueueObservationQueryResponse``, ``ConversationAggregateQueryResponse``,
``StatisticalSummary``; times in milliseconds), checked against those models' documented
keys (``conform``) before they are sent.

Queue figures live in ``FakeGenesys.queues``; misbehaviour is scripted per endpoint with
``faults`` (answered instead of the real thing, one per request) and ``mangle`` (edits the
JSON about to be sent). Token expiry follows the test's ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock

#: ``QueueObservationQuery`` metric and detail-metric enums (platform-client-sdk-java).
OBSERVATION_METRICS = {
    "oActiveUsers", "oAlerting", "oInteracting", "oLongestInteracting", "oLongestWaiting",
    "oMemberUsers", "oOffQueueUsers", "oOnQueueUsers", "oUserPresences",
    "oUserRoutingStatuses", "oWaiting",
}  # fmt: skip
DETAIL_METRICS = OBSERVATION_METRICS - {"oLongestInteracting", "oLongestWaiting"}
#: A part of ``ConversationAggregationQuery``'s metric enum.
AGGREGATE_METRICS = {
    "nBlindTransferred", "nConnected", "nConsult", "nError", "nOffered", "nOutbound",
    "nOverSla", "nTransferred", "oServiceLevel", "oServiceTarget", "tAbandon", "tAcd",
    "tAcw", "tAlert", "tAnswered", "tHandle", "tHeld", "tIvr", "tNotResponding",
    "tShortAbandon", "tTalk", "tWait",
}  # fmt: skip

LongestMode = Literal["detail", "epoch_ms", "duration_ms", "iso"]

_NUMBER = (int, float)
#: ``StatisticalSummary``. ``calculatedMetricValue`` is not in it: older SDK models
#: (``V2QueueObservationMetricCountData``) carry it, and the fake sends it on purpose for the
#: UNCONFIRMED ``oLongestWaiting`` readings.
_STATS: dict[str, Any] = {
    key: _NUMBER
    for key in ("max", "min", "count", "countNegative", "countPositive", "sum", "current",
                "ratio", "numerator", "denominator", "target", "p95", "p99")
} | {"calculatedMetricValue": object}  # fmt: skip
#: ``ObservationValue``.
_OBSERVATION = {
    key: object
    for key in ("observationDate", "conversationId", "sessionId", "requestedRoutingSkillIds",
                "requestedLanguageId", "routingPriority", "participantName", "userId",
                "direction", "convertedFrom", "convertedTo", "addressFrom", "addressTo", "ani",
                "dnis", "teamId", "requestedRoutings", "usedRouting", "scoredAgents")
} | {"observationDate": str}  # fmt: skip
#: ``QueueObservationQueryResponse`` → ``QueueObservationDataContainer`` →
#: ``ObservationMetricData``.
OBSERVATION_RESPONSE = {
    "systemToOrganizationMappings": dict,
    "results": [{
        "group": dict,
        "data": [{"metric": str, "qualifier": str, "stats": _STATS, "truncated": bool,
                  "observations": [_OBSERVATION]}],
    }],
}  # fmt: skip
#: ``ConversationAggregateQueryResponse`` → ``ConversationAggregateDataContainer`` →
#: ``StatisticalResponse`` → ``AggregateMetricData``.
AGGREGATE_RESPONSE = {
    "results": [{
        "group": dict,
        "data": [{"interval": str, "views": list,
                  "metrics": [{"metric": str, "qualifier": str, "stats": _STATS}]}],
    }],
}  # fmt: skip


def conform(value: Any, schema: Any, where: str) -> list[str]:
    """How ``value`` strays from ``schema`` (documented keys and types); [] when it does not.

    A schema is a dict of the documented keys, a one-item list for an array, a type, or
    ``object`` for anything; ``null`` is always allowed (every field is optional).
    """
    if value is None or schema is object:
        return []
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where} is not an object"]
        return [
            problem
            for key, item in value.items()
            for problem in (
                conform(item, schema[key], f"{where}.{key}") if key in schema
                else [f"{where}.{key} is not documented"]
            )
        ]  # fmt: skip
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where} is not a list"]
        return [p for i, v in enumerate(value) for p in conform(v, schema[0], f"{where}[{i}]")]
    if isinstance(value, bool) and schema is not bool:
        return [f"{where} is {value!r}, not {schema}"]
    return [] if isinstance(value, schema) else [f"{where} is {value!r}, not {schema}"]


@dataclass
class Fault:
    """An answer given instead of the real one: a status, a raw body, headers, a delay."""

    status: int = 500
    body: str = '{"message":"Internal Server Error","code":"internal.server.error","status":500}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class GenesysQueue:
    """One queue's state: calls waiting now (by enqueue time), agents, and the window."""

    waiting_since: list[datetime] = field(default_factory=list)
    interacting: int = 0
    agents: dict[str, int] = field(
        default_factory=lambda: {"IDLE": 2, "INTERACTING": 5, "NOT_RESPONDING": 1}
    )
    offered: int = 0
    answered_ms: list[int] = field(default_factory=list)  # one wait per answered call
    abandoned_ms: list[int] = field(default_factory=list)  # one wait per abandoned call
    handle_ms: list[int] = field(default_factory=list)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code, "status": status}, status_code=status)


def _stats(values: list[int]) -> dict[str, Any]:
    return {"max": max(values), "min": min(values), "count": len(values), "sum": sum(values)}


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeGenesys:
    """The fake platform; ``app()`` is its Starlette application."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        client_id: str = "rising-tide-client",
        client_secret: str = "s3cret",
        expires_in: int | str = 86399,
    ) -> None:
        """A platform that trusts ``client_id``/``client_secret`` and issues tokens."""
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.queues: dict[str, GenesysQueue] = {}
        self.calls: Counter[str] = Counter()
        self.bodies: dict[str, list[Any]] = {"observations": [], "aggregates": []}
        self.faults: dict[str, list[Fault]] = {"observations": [], "aggregates": []}
        self.mangle: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.longest: LongestMode = "detail"
        self.omit: set[str] = set()  # queue ids left out of the observations
        self.media_type = "voice"
        self._tokens: dict[str, datetime] = {}  # token → expiry
        self._issued = 0

    def revoke_tokens(self) -> None:
        """Forget every token issued (as when an admin rotates the client's secret)."""
        self._tokens.clear()

    # ------------------------------------------------------------------ the app

    def app(self) -> Starlette:
        """The Starlette app serving ``/oauth/token`` and the analytics queries."""
        return Starlette(routes=[
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/api/v2/analytics/queues/observations/query", self._observations,
                  methods=["POST"]),
            Route("/api/v2/analytics/conversations/aggregates/query", self._aggregates,
                  methods=["POST"]),
        ])  # fmt: skip

    async def _token(self, request: Request) -> Response:
        self.calls["token"] += 1
        expected = (
            "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        )
        if request.headers.get("authorization") != expected:
            return JSONResponse(
                {"error": "invalid_client", "description": "client not found"}, status_code=401
            )
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        self._issued += 1
        token = f"genesys-token-{self._issued}"
        self._tokens[token] = self.clock.now() + timedelta(seconds=float(self.expires_in))
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
        )

    async def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        expiry = self._tokens.get(token)
        return header.startswith("Bearer ") and expiry is not None and self.clock.now() < expiry

    async def _fault(self, name: str) -> Response | None:
        if not self.faults[name]:
            return None
        fault = self.faults[name].pop(0)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return Response(
            fault.body, status_code=fault.status, headers=fault.headers,
            media_type="application/json",
        )  # fmt: skip

    async def _common(self, request: Request, name: str) -> tuple[Response | None, Any]:
        self.calls[name] += 1
        if not await self._authorised(request):
            return _error(401, "bad.credentials", "Invalid login credentials."), None
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad.request", "The request could not be understood"), None
        self.bodies[name].append(body)
        fault = await self._fault(name)
        if fault is not None:
            return fault, None
        return None, body

    def _queue_ids(self, body: dict[str, Any]) -> list[str] | JSONResponse:
        """The queue ids of a documented filter: an "and" of an "or"-clause of queue ids and
        a mediaType predicate."""
        filt = body.get("filter")
        if not isinstance(filt, dict) or filt.get("type") not in ("and", "or"):
            return _error(400, "bad.request", "filter.type must be and/or")
        ids: list[str] = []
        media: list[str] = []
        predicates = list(filt.get("predicates") or [])
        for clause in filt.get("clauses") or []:
            if clause.get("type") not in ("and", "or") or not clause.get("predicates"):
                return _error(400, "bad.request", "a clause needs a type and predicates")
            predicates.extend(clause["predicates"])
        for p in predicates:
            if p.get("dimension") == "queueId":
                ids.append(p["value"])
            elif p.get("dimension") == "mediaType":
                media.append(p["value"])
            else:
                return _error(400, "bad.request", f"unknown dimension {p.get('dimension')}")
        if not ids:
            return _error(400, "bad.request", "no queueId predicate")
        if filt["type"] == "or" and media:
            return _error(400, "bad.request", "mediaType OR-ed with the queues selects all")
        if media != [self.media_type]:
            return _error(400, "bad.request", f"expected one mediaType {self.media_type}")
        return ids

    async def _observations(self, request: Request) -> Response:
        early, body = await self._common(request, "observations")
        if early is not None:
            return early
        ids = self._queue_ids(body)
        if isinstance(ids, Response):
            return ids
        metrics = body.get("metrics") or []
        details = body.get("detailMetrics") or []
        if not metrics or not set(metrics) <= OBSERVATION_METRICS:
            return _error(400, "bad.request", f"invalid metrics {metrics}")
        if not set(details) <= DETAIL_METRICS:
            return _error(400, "bad.request", f"invalid detailMetrics {details}")
        now = self.clock.now()
        results: list[dict[str, Any]] = []
        for qid in ids:
            queue = self.queues.get(qid)
            if queue is None or qid in self.omit:
                continue
            media_data: list[dict[str, Any]] = []
            if "oWaiting" in metrics:
                waiting: dict[str, Any] = {
                    "metric": "oWaiting", "stats": {"count": len(queue.waiting_since)},
                }  # fmt: skip
                if "oWaiting" in details and self.longest == "detail":
                    waiting["truncated"] = False
                    waiting["observations"] = [
                        {"observationDate": _iso(since), "conversationId": f"conv-{n}",
                         "sessionId": f"sess-{n}", "routingPriority": 0,
                         "direction": "inbound", "ani": "tel:+441632960000",
                         "requestedRoutings": ["Standard"]}
                        for n, since in enumerate(sorted(queue.waiting_since))
                    ]  # fmt: skip
                media_data.append(waiting)
            if "oInteracting" in metrics:
                media_data.append({"metric": "oInteracting", "stats": {"count": queue.interacting}})
            if "oLongestWaiting" in metrics and queue.waiting_since:
                oldest = min(queue.waiting_since)
                value: Any = {
                    "detail": int(oldest.timestamp() * 1000),
                    "epoch_ms": int(oldest.timestamp() * 1000),
                    "duration_ms": int((now - oldest).total_seconds() * 1000),
                    "iso": _iso(oldest),
                }[self.longest]
                media_data.append(
                    {"metric": "oLongestWaiting", "stats": {"calculatedMetricValue": value}}
                )
            results.append({"group": {"queueId": qid, "mediaType": self.media_type},
                            "data": media_data})  # fmt: skip
            if "oOnQueueUsers" in metrics:
                users = [
                    {"metric": "oOnQueueUsers", "qualifier": status, "stats": {"count": count}}
                    for status, count in queue.agents.items()
                ]
                results.append({"group": {"queueId": qid}, "data": users})
        payload: dict[str, Any] = {"results": results}
        problems = conform(payload, OBSERVATION_RESPONSE, "QueueObservationQueryResponse")
        assert not problems, f"the fake's own answer breaks the documented shape: {problems}"
        if "observations" in self.mangle:
            self.mangle["observations"](payload)
        return JSONResponse(payload)

    async def _aggregates(self, request: Request) -> Response:
        early, body = await self._common(request, "aggregates")
        if early is not None:
            return early
        ids = self._queue_ids(body)
        if isinstance(ids, Response):
            return ids
        interval = body.get("interval", "")
        try:
            start, end = (datetime.fromisoformat(p) for p in interval.split("/"))
        except ValueError:
            return _error(400, "bad.request", f"invalid interval {interval!r}")
        if not start < end:
            return _error(400, "bad.request", "interval must start before it ends")
        metrics = body.get("metrics") or []
        if not metrics or not set(metrics) <= AGGREGATE_METRICS:
            return _error(400, "bad.request", f"invalid metrics {metrics}")
        if "queueId" not in (body.get("groupBy") or []):
            return _error(400, "bad.request", "expected groupBy queueId")
        results: list[dict[str, Any]] = []
        for qid in ids:
            queue = self.queues.get(qid)
            if queue is None or not queue.offered:
                continue  # Genesys leaves out groups with no data
            figures: list[dict[str, Any]] = []
            for metric in metrics:
                if metric == "nOffered":
                    figures.append({"metric": metric, "stats": {"count": queue.offered}})
                series = {"tAnswered": queue.answered_ms, "tAbandon": queue.abandoned_ms,
                          "tHandle": queue.handle_ms}.get(metric)  # fmt: skip
                if series:
                    figures.append({"metric": metric, "stats": _stats(series)})
            results.append(
                {"group": {"queueId": qid}, "data": [{"interval": interval, "metrics": figures}]}
            )
        payload: dict[str, Any] = {"results": results}
        problems = conform(payload, AGGREGATE_RESPONSE, "ConversationAggregateQueryResponse")
        assert not problems, f"the fake's own answer breaks the documented shape: {problems}"
        if "aggregates" in self.mangle:
            self.mangle["aggregates"](payload)
        return JSONResponse(payload)
