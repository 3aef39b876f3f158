"""A fake 8x8 for adapter tests: the OAuth token endpoint and real-time queue metrics.

It checks what the adapter sends, as 8x8's "CC Realtime Statistics" and "OAuth
Authentication for 8x8 XCaaS APIs" pages describe:

- ``POST /oauth/v2/token``: ``Authorization: Basic base64(key:secret)``, a form body with
  ``grant_type=client_credentials``; answers the documented shape with ``expires_in`` as a
  string (``"1799"``) and ``token_type: "BearerToken"``.
- ``GET /{region}/analytics/cc/v5/realtime-metrics/queues`` (no region part for the US):
  ``Authorization: Bearer <a token it issued, not expired by the test's FakeClock nor
  revoked>``, ``X-Tenant-Info`` when the fake is multi-tenant, ``queue-ids`` and
  ``metrics`` repeated or comma-separated, ``page`` (from 0) and ``size`` (≤1000). An
  unknown queue id fails the request with 400, a page past the end too (both documented).

Answers are ``[{id, name, metrics: [{key, value}]}]`` with the paging headers ``X-Page-Size``,
``X-Page``, ``X-Total-Pages`` and ``X-Total-Elements``. Queue figures live in
``Fake8x8.queues`` (metric key → value as sent, so a test can send numbers, numeric strings
or nulls); misbehaviour is scripted with ``faults`` (one answer per request, by endpoint
``"token"`` or ``"queues"``), ``mangle`` (edits the JSON about to be sent) and ``hidden``
(valid queues left out of the answer).
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock

TOKEN_LIFETIME = 1799


@dataclass
class Fault:
    """An answer given instead of the real one: a status, a raw body, headers, a delay."""

    status: int = 500
    body: str = '{"message":"Internal Server Error"}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class EightQueue:
    """One queue: its name and its metrics by key (``name.period``), as 8x8 would send them."""

    name: str
    metrics: dict[str, Any] = field(default_factory=dict)


class Fake8x8:
    """The fake platform; ``app()`` is the Starlette app to serve with ``Loopback``."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        api_key: str = "key-1",
        api_secret: str = "secret-1",
        region: str = "eu",
        tenant: str | None = None,
    ) -> None:
        self.clock = clock
        self.api_key = api_key
        self.api_secret = api_secret
        self.region = region
        self.tenant = tenant
        self.queues: dict[str, EightQueue] = {}
        self.hidden: set[str] = set()
        self.faults: dict[str, list[Fault]] = {"token": [], "queues": []}
        self.mangle: dict[str, Callable[[list[Any]], Any]] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, list[str]]] = []  # the query of each queues request
        self.auth_seen: list[str] = []
        self.tokens: dict[str, datetime] = {}  # token → when it expires
        self._issued = 0

    def revoke_tokens(self) -> None:
        """Forget every token issued so far (the next call with one gets 401)."""
        self.tokens.clear()

    def app(self) -> Starlette:
        """The Starlette app: the token endpoint and the queues endpoint."""
        prefix = "" if self.region == "us" else f"/{self.region}"
        return Starlette(
            routes=[
                Route("/oauth/v2/token", self._token, methods=["POST"]),
                Route(f"{prefix}/analytics/cc/v5/realtime-metrics/queues", self._queues),
            ]
        )

    async def _fault(self, kind: str) -> Response | None:
        if not self.faults[kind]:
            return None
        fault = self.faults[kind].pop(0)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return Response(
            fault.body, status_code=fault.status, headers=fault.headers,
            media_type="application/json",
        )  # fmt: skip

    async def _token(self, request: Request) -> Response:
        self.calls["token"] += 1
        fault = await self._fault("token")
        if fault is not None:
            return fault
        basic = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"ErrorCode": "invalid_client",
                                 "Error": "ClientId is Invalid"}, status_code=401)  # fmt: skip
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return JSONResponse({"message": "form body expected"}, status_code=400)
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"ErrorCode": "invalid_request",
                                 "Error": "Unsupported grant type"}, status_code=400)  # fmt: skip
        self._issued += 1
        token = f"tok-{self._issued}"
        self.tokens[token] = self.clock.now() + timedelta(seconds=TOKEN_LIFETIME)
        return JSONResponse({
            "access_token": token,
            "token_type": "BearerToken",
            "api_product_list": "[analytics realtime-api]",
            "status": "approved",
            "scope": "",
            "refresh_token_expires_in": "0",
            "expires_in": str(TOKEN_LIFETIME),
            "refresh_count": "0",
            "issued_at": str(int(self.clock.now().timestamp() * 1000)),
            "api_product_list_json": ["analytics realtime-api"],
        })  # fmt: skip

    async def _queues(self, request: Request) -> Response:
        self.calls["queues"] += 1
        authorization = request.headers.get("authorization", "")
        self.auth_seen.append(authorization)
        token = authorization.removeprefix("Bearer ")
        expires = self.tokens.get(token) if authorization.startswith("Bearer ") else None
        if expires is None or self.clock.now() >= expires:
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        if self.tenant is not None and request.headers.get("x-tenant-info") != self.tenant:
            message = "Bad request: X-Tenant-Info header is missing."
            return JSONResponse({"message": message}, status_code=400)
        fault = await self._fault("queues")
        if fault is not None:
            return fault
        query = {key: _values(request, key) for key in request.query_params}
        self.requests.append(query)
        ids = query.get("queue-ids") or list(self.queues)
        unknown = [q for q in ids if q not in self.queues]
        if unknown:
            message = f"Bad request: invalid queue-ids {','.join(unknown)}"
            return JSONResponse({"message": message}, status_code=400)
        size = int(query.get("size", ["100"])[0])
        page = int(query.get("page", ["0"])[0])
        if size > 1000:
            message = "Bad request: Field 'size' must be less than or equal to 1000"
            return JSONResponse({"message": message}, status_code=400)
        shown = [q for q in ids if q not in self.hidden]
        pages = -(-len(shown) // size)
        if page < 0 or (pages and page >= pages):
            message = (
                "Bad request: Field 'page' must be greater than or equal to 0 and less than "
                f"the total number of pages, which is {pages} for this request"
            )
            return JSONResponse({"message": message}, status_code=400)
        keys = query.get("metrics")
        body: Any = []
        for queue in shown[page * size : (page + 1) * size]:
            figures = self.queues[queue]
            wanted = keys if keys is not None else list(figures.metrics)
            body.append({
                "id": queue,
                "name": figures.name,
                "metrics": [{"key": k, "value": figures.metrics.get(k)} for k in wanted],
            })  # fmt: skip
        if "queues" in self.mangle:
            body = self.mangle["queues"](body)
        headers = {
            "X-Page-Size": str(size),
            "X-Page": str(page),
            "X-Total-Pages": str(pages),
            "X-Total-Elements": str(len(shown)),
        }
        return JSONResponse(body, headers=headers)


def _values(request: Request, key: str) -> list[str]:
    """A parameter's values, repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    return [part for value in request.query_params.getlist(key) for part in value.split(",")]
