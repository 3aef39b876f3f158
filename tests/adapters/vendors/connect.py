"""A fake Amazon Connect for adapter tests: GetCurrentMetricData and GetMetricDataV2.

It checks what the adapter sends the way AWS would:

- **SigV4.** The ``Authorization`` header must read ``AWS4-HMAC-SHA256 Credential=<key>/
  <yyyymmdd>/<region>/connect/aws4_request, SignedHeaders=…, Signature=<64 hex>``, with
  ``X-Amz-Date`` (within 5 minutes of the test's ``FakeClock``, as AWS allows) and, for
  temporary credentials, a signed ``X-Amz-Security-Token``. The signature is then
  *recomputed* with botocore over what actually arrived (method, URL, body, the signed
  headers) and compared. Failures answer 403 with AWS's error types.
- **Request shapes.** Bodies are validated against botocore's own service model for the
  operation (``ParamValidator``, plus the enums, which botocore leaves unchecked) and the
  documented rules: ≤100 queues, ``EndTime`` not in the future, ``ResourceArn`` the instance
  ARN, a ``NextToken`` reused only with the same parameters.

Answers use the documented shapes (validated against the model's output shapes before they
are sent): ``MetricResults[{Dimensions{Queue{Id,Arn},Channel}, Collections[{Metric{Name,
Unit}, Value}]}]``, ``DataSnapshotTime`` as epoch seconds, ``NextToken`` paging, and for V2
``Dimensions`` as a string map with ``MetricInterval``.

Queue figures live in ``FakeConnect.queues``; misbehaviour is scripted with ``faults`` (one
answer per request, by operation ``"live"`` or ``"data"``), ``mangle`` (edits the JSON about
to be sent) and a few switches (``oldest_unit``, ``nulls``, ``omit_live``, ``refuse_live_with``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock

_MODEL = botocore.session.get_session().get_service_model("connect")
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>[0-9]{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_BAD_TOKEN = "The security token included in the request is invalid."
_BAD_SIGNATURE = "The request signature we calculated does not match the signature you provided."
#: Names GetMetricDataV2 accepts that this fake knows how to answer (a part of the list).
V2_METRICS = {
    "ABANDONMENT_RATE", "AVG_HANDLE_TIME", "AVG_QUEUE_ANSWER_TIME", "CONTACTS_ABANDONED",
    "CONTACTS_HANDLED", "CONTACTS_QUEUED", "MAX_QUEUED_TIME", "SERVICE_LEVEL",
}  # fmt: skip


@dataclass
class Fault:
    """An answer given instead of the real one: a status, a raw body, headers, a delay."""

    status: int = 500
    body: str = '{"Message":"Internal service error"}'
    headers: dict[str, str] = field(
        default_factory=lambda: {"x-amzn-ErrorType": "InternalServiceException"}
    )
    delay: float = 0.0


@dataclass
class ConnectQueue:
    """One queue: live figures as Connect reports them, and the window's (None is null)."""

    in_queue: float | None = 0
    oldest_age: float | None = 0  # as sent, in whatever unit the test means
    available: float | None = 1
    staffed: float | None = 4
    avg_answer: float | None = 30.0
    queued: float | None = 10
    handled: float | None = 9
    abandoned: float | None = 1
    avg_handle: float | None = 240.0
    in_window: bool = True  # False: absent from GetMetricDataV2's results (no contacts)

    def live(self, name: str) -> float | None:
        """The value of a current metric."""
        return {
            "CONTACTS_IN_QUEUE": self.in_queue,
            "OLDEST_CONTACT_AGE": self.oldest_age,
            "AGENTS_AVAILABLE": self.available,
            "AGENTS_STAFFED": self.staffed,
            "AGENTS_ONLINE": self.staffed,
        }[name]

    def window(self, name: str) -> float | None:
        """The value of a historical metric over the requested window."""
        return {
            "AVG_QUEUE_ANSWER_TIME": self.avg_answer,
            "CONTACTS_QUEUED": self.queued,
            "CONTACTS_HANDLED": self.handled,
            "CONTACTS_ABANDONED": self.abandoned,
            "AVG_HANDLE_TIME": self.avg_handle,
        }.get(name)


class FakeConnect:
    """The fake platform; ``app()`` is the Starlette app to serve with ``Loopback``."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        access_key: str = "AKID",
        secret_key: str = "s3cr3t",
        session_token: str | None = None,
        region: str = "eu-west-2",
        account: str = "123456789012",
        instance: str = "inst-1",
    ) -> None:
        self.clock = clock
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token
        self.region = region
        self.account = account
        self.instance = instance
        self.instance_arn = f"arn:aws:connect:{region}:{account}:instance/{instance}"
        self.queues: dict[str, ConnectQueue] = {}
        self.page_size = 100
        self.oldest_unit: str | None = "SECONDS"  # Metric.Unit sent back; None leaves it out
        self.nulls: Literal["omit", "null"] = "null"  # how a null Value is written
        self.v2_dimension: Literal["id", "arn"] = "id"
        self.omit_live: set[str] = set()
        self.refuse_live_with: set[str] = set()  # a live request naming one of these: 500
        self.faults: dict[str, list[Fault]] = {"live": [], "data": []}
        self.mangle: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.calls: Counter[str] = Counter()
        self.bodies: dict[str, list[dict[str, Any]]] = {"live": [], "data": []}
        self.authorizations: list[str] = []
        self.verified = 0
        self.rejections: list[str] = []
        self._tokens: dict[str, tuple[str, int]] = {}

    def queue_arn(self, queue: str) -> str:
        """The ARN of one of the instance's queues."""
        return f"{self.instance_arn}/queue/{queue}"

    def app(self) -> Starlette:
        """The Starlette app: ``POST /metrics/current/{InstanceId}`` and ``/metrics/data``."""

        async def current(request: Request) -> Response:
            return await self._handle(request, "live", "GetCurrentMetricData", self._live)

        async def data(request: Request) -> Response:
            return await self._handle(request, "data", "GetMetricDataV2", self._data)

        return Starlette(
            routes=[
                Route("/metrics/current/{instance}", current, methods=["POST"]),
                Route("/metrics/data", data, methods=["POST"]),
            ]
        )

    # ------------------------------------------------------------------ one request

    async def _handle(
        self,
        request: Request,
        kind: str,
        operation: str,
        answer: Callable[[Request, dict[str, Any]], dict[str, Any] | Response],
    ) -> Response:
        self.calls[kind] += 1
        raw = await request.body()
        refused = self._verify(request, raw)
        if refused is not None:
            return refused
        if self.faults[kind]:
            fault = self.faults[kind].pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return Response(fault.body, status_code=fault.status, headers=fault.headers,
                            media_type="application/json")  # fmt: skip
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "SerializationException", "the body is not JSON")
        self.bodies[kind].append(body)
        params = dict(body)
        if kind == "live":
            params["InstanceId"] = request.path_params["instance"]
        problem = _validate(params, _MODEL.operation_model(operation).input_shape)
        if problem:
            self.rejections.append(problem)
            return _error(400, "InvalidParameterException", problem)
        out = answer(request, body)
        if isinstance(out, Response):
            return out
        # MILLISECONDS is the unit the reference's prose mentions for OLDEST_CONTACT_AGE but
        # the model's Unit enum lacks; a test may send it on purpose.
        output = _MODEL.operation_model(operation).output_shape
        problem = _validate(_without_nulls(out), output, tolerated={"MILLISECONDS"})
        assert not problem, f"the fake's own answer breaks the documented shape: {problem}"
        if kind in self.mangle:
            out = self.mangle[kind](out)
        return JSONResponse(out)

    def _verify(self, request: Request, body: bytes) -> Response | None:
        """Check SigV4 as AWS does; None when the signature is right."""
        header = request.headers.get("authorization", "")
        self.authorizations.append(header)
        match = _AUTH.fullmatch(header)
        if match is None:
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication")
        stamp = request.headers.get("x-amz-date", "")
        if not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", stamp):
            return _error(403, "IncompleteSignatureException", "X-Amz-Date is malformed")
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs(when - self.clock.now()) > timedelta(minutes=5):
            return _error(403, "InvalidSignatureException", "Signature expired")
        if match["key"] != self.access_key:
            return _error(403, "UnrecognizedClientException", _BAD_TOKEN)
        scope = (match["date"], match["region"], match["service"])
        if scope != (stamp[:8], self.region, "connect"):
            return _error(403, "InvalidSignatureException", f"Credential scope {scope} is wrong")
        signed = match["signed"].split(";")
        required = {"host", "x-amz-date"}
        if self.session_token:
            required.add("x-amz-security-token")
            if request.headers.get("x-amz-security-token") != self.session_token:
                return _error(403, "UnrecognizedClientException", _BAD_TOKEN)
        if not required <= set(signed):
            return _error(403, "InvalidSignatureException", f"must sign {sorted(required)}")
        aws = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=body,
            headers={name: request.headers.get(name, "") for name in signed},
        )
        aws.context["timestamp"] = stamp
        credentials = Credentials(self.access_key, self.secret_key, self.session_token)
        auth = SigV4Auth(credentials, "connect", self.region)
        expected = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, match["signature"]):
            return _error(403, "InvalidSignatureException", _BAD_SIGNATURE)
        self.verified += 1
        return None

    # ------------------------------------------------------------------ answers

    def _live(self, request: Request, body: dict[str, Any]) -> dict[str, Any] | Response:
        if request.path_params["instance"] != self.instance:
            return _error(404, "ResourceNotFoundException", "Instance not found")
        filters = body["Filters"]
        queues = filters.get("Queues", [])
        if len(queues) > 100 or body.get("Groupings") != ["QUEUE", "CHANNEL"]:
            return _error(400, "InvalidParameterException", "unexpected filters/groupings")
        if filters.get("Channels") != ["VOICE"]:
            return _error(400, "InvalidParameterException", "Channels must be [VOICE] here")
        if self.refuse_live_with & set(queues):
            return _error(500, "InternalServiceException", "Internal service error")
        results = []
        for queue in queues:
            if queue not in self.queues or queue in self.omit_live:
                continue
            collections = []
            for metric in body["CurrentMetrics"]:
                name = metric["Name"]
                described: dict[str, Any] = {"Name": name}
                unit = self.oldest_unit if name == "OLDEST_CONTACT_AGE" else metric.get("Unit")
                if unit is not None:
                    described["Unit"] = unit
                collections.append(self._datum(described, self.queues[queue].live(name)))
            results.append({
                "Dimensions": {"Queue": {"Id": queue, "Arn": self.queue_arn(queue)},
                               "Channel": "VOICE"},
                "Collections": collections,
            })  # fmt: skip
        out = self._page("live", body, results)
        if isinstance(out, Response):
            return out
        out["DataSnapshotTime"] = self.clock.now().timestamp()
        out["ApproximateTotalCount"] = len(results)
        return out

    def _data(self, request: Request, body: dict[str, Any]) -> dict[str, Any] | Response:
        if body["ResourceArn"] != self.instance_arn:
            return _error(404, "ResourceNotFoundException", f"no instance {body['ResourceArn']}")
        start, end = body["StartTime"], body["EndTime"]
        if not start < end:
            return _error(400, "InvalidParameterException", "StartTime must be before EndTime")
        if end > self.clock.now().timestamp():
            return _error(400, "InvalidParameterException", "EndTime cannot be in the future")
        filters = {f["FilterKey"]: f.get("FilterValues", []) for f in body["Filters"]}
        counted = sum(len(v) for k, v in filters.items() if k != "CHANNEL")
        if "QUEUE" not in filters or counted > 100:
            return _error(400, "InvalidParameterException", "QUEUE filter of ≤100 values")
        unknown = {m["Name"] for m in body["Metrics"]} - V2_METRICS
        if unknown:
            return _error(400, "InvalidParameterException", f"unknown metrics {sorted(unknown)}")
        results = []
        for queue in filters["QUEUE"]:
            figures = self.queues.get(queue)
            if figures is None or not figures.in_window:
                continue
            dimension = queue if self.v2_dimension == "id" else self.queue_arn(queue)
            results.append({
                "Dimensions": {"QUEUE": dimension},
                "MetricInterval": {"Interval": "TOTAL", "StartTime": start, "EndTime": end},
                "Collections": [
                    self._datum({"Name": m["Name"]}, figures.window(m["Name"]))
                    for m in body["Metrics"]
                ],
            })  # fmt: skip
        return self._page("data", body, results)

    def _datum(self, metric: dict[str, Any], value: float | None) -> dict[str, Any]:
        if value is None and self.nulls == "omit":
            return {"Metric": metric}
        return {"Metric": metric, "Value": value}

    def _page(
        self, kind: str, body: dict[str, Any], results: list[Any]
    ) -> dict[str, Any] | Response:
        """One page of ``results``; a NextToken is valid only with the same parameters."""
        params = {k: v for k, v in body.items() if k != "NextToken"}
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        offset = 0
        token = body.get("NextToken")
        if token is not None:
            issued = self._tokens.get(token)
            if issued is None or issued[0] != digest:
                return _error(400, "InvalidParameterException", "NextToken is invalid for "
                              "these parameters")  # fmt: skip
            offset = issued[1]
        size = min(self.page_size, body.get("MaxResults", 100))
        out: dict[str, Any] = {"MetricResults": results[offset : offset + size]}
        if offset + size < len(results):
            following = base64.b64encode(f"{kind}:{digest}:{offset + size}".encode()).decode()
            self._tokens[following] = (digest, offset + size)
            out["NextToken"] = following
        return out


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"Message": message}, status_code=status,
                        headers={"x-amzn-ErrorType": kind})  # fmt: skip


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _validate(params: Any, shape: Any, tolerated: frozenset[str] | set[str] = frozenset()) -> str:
    """botocore's own validation of ``params`` against ``shape``, plus its enums."""
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    _enums(params, shape, shape.name, problems, tolerated)
    return "; ".join(problems)


def _enums(
    value: Any, shape: Any, where: str, problems: list[str], tolerated: frozenset[str] | set[str]
) -> None:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _enums(value[name], member, f"{where}.{name}", problems, tolerated)
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            _enums(item, shape.member, f"{where}[{index}]", problems, tolerated)
    elif kind == "string" and shape.enum and value not in shape.enum and value not in tolerated:
        problems.append(f"{where}: {value!r} is not one of {shape.enum}")
