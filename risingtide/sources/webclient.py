"""One HTTP behaviour for every platform source: auth, retries, and classified errors.

A platform source builds a ``PlatformClient`` and calls ``request``/``json``; the client
does the rest the same way for every vendor:

- every request is bounded by what is left of the poll's time budget (``deadline``);
- network errors, timeouts and 5xx are retried with exponential back-off and jitter while
  the budget allows;
- 429 (and 503 with ``Retry-After``) waits for ``Retry-After`` (seconds or an HTTP date)
  when the budget allows it, else fails as retryable, carrying the wait as the error's
  ``retry_after`` so that the poller holds the source's next polls until then;
- 401 invalidates the credentials (an OAuth token is fetched anew) and retries once;
- any other 4xx fails at once, not retryable, with the start of the body.

Errors leave as ``SourceError`` with a short ``reason`` for
``risingtide_poll_errors_total{source,reason}``::

    SourceError
    ├── reason "timeout"       no answer within the budget          retryable
    ├── reason "network"       connection refused, reset, DNS       retryable
    ├── reason "http_429"      rate limited past the budget          retryable
    ├── reason "http_5xx"      the platform failed                   retryable
    ├── reason "http_401"      credentials refused twice             not retryable
    ├── reason "auth"          the token endpoint refused us         not retryable
    ├── reason "http_4xx"      the request was refused (400, 403, 404…) not retryable
    └── reason "parse"         malformed JSON, or a field missing or of the wrong type

``field`` reads a value out of a decoded payload and names the exact path when it is
missing or malformed, so "the platform changed shape" is a one-line diagnosis.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from risingtide.clock import Clock
from risingtide.ports import SourceError, http_reason

Sleep = Callable[[float], Awaitable[None]]

#: A JSON body at least this long is decoded in a worker thread (``PlatformClient.json``).
DECODE_IN_THREAD_FROM = 1_000_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a poll retries within its budget: up to ``attempts`` tries in all."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        raw = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return float(raw * (1 + self.jitter * (2 * rng.random() - 1)))


class Auth(Protocol):
    """Adds credentials to a request; forgets them when the platform says 401."""

    async def headers(self, client: httpx.AsyncClient, deadline: float) -> Mapping[str, str]:
        """The headers that authenticate a request (may fetch a token)."""
        ...

    def invalidate(self) -> None:
        """The platform refused the credentials: fetch anew next time."""
        ...


class BasicAuth:
    """HTTP Basic: ``Authorization: Basic base64(user:password)``."""

    def __init__(self, user: str, password: str) -> None:
        """Authenticate every request as ``user``."""
        self._header = basic_header(user, password)

    async def headers(self, client: httpx.AsyncClient, deadline: float) -> Mapping[str, str]:
        """The Basic header."""
        return {"Authorization": self._header}

    def invalidate(self) -> None:
        """Static credentials: nothing to refresh."""


class BearerAuth:
    """A static bearer token: ``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        """Send ``token`` with every request."""
        self._header = f"Bearer {token}"

    async def headers(self, client: httpx.AsyncClient, deadline: float) -> Mapping[str, str]:
        """The bearer header."""
        return {"Authorization": self._header}

    def invalidate(self) -> None:
        """A static token cannot be refreshed; a second 401 fails."""


class OAuthClientCredentials:
    """OAuth 2 client-credentials grant with a cached token.

    The token is fetched with HTTP Basic (client id and secret) and the form
    ``grant_type=client_credentials`` (RFC 6749 §4.4), cached, fetched again ``margin``
    before it expires or at once after a 401. ``expires_in`` may be a number or a string
    (8x8 sends ``"1799"``).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Clock,
        margin: timedelta = timedelta(seconds=60),
        extra_form: Mapping[str, str] | None = None,
    ) -> None:
        """Fetch tokens from ``token_url``."""
        self.token_url = token_url
        self._basic = basic_header(client_id, client_secret)
        self._clock = clock
        self._margin = margin
        self._form = {"grant_type": "client_credentials", **(extra_form or {})}
        self._token: str | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def headers(self, client: httpx.AsyncClient, deadline: float) -> Mapping[str, str]:
        """``Authorization: Bearer <token>``, fetching a token when there is none fresh."""
        async with self._lock:
            now = self._clock.now()
            if self._token is None or self._expires is None or now >= self._expires:
                await self._fetch(client, deadline)
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """Forget the token."""
        self._token = None

    async def _fetch(self, client: httpx.AsyncClient, deadline: float) -> None:
        self.fetches += 1
        try:
            resp = await client.post(
                self.token_url,
                data=self._form,
                headers={"Authorization": self._basic, "Accept": "application/json"},
                timeout=remaining(deadline),
            )
        except httpx.TimeoutException as exc:
            raise SourceError(
                f"token request timed out: {self.token_url}", reason="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise SourceError(f"token request failed: {exc}", reason="network") from exc
        if resp.status_code in (400, 401, 403):
            raise SourceError(
                f"the token endpoint refused the client credentials ({resp.status_code}): "
                f"{body_snippet(resp)}",
                reason="auth",
                retryable=False,
            )
        if resp.status_code >= 400:
            raise SourceError(
                f"token endpoint answered {resp.status_code}: {body_snippet(resp)}",
                reason="http_5xx" if resp.status_code >= 500 else "http_4xx",
                retryable=resp.status_code >= 500 or resp.status_code == 429,
            )
        body = _decode(resp)
        token = field(body, "access_token", kind=str)
        expires_in = field(body, "expires_in", kind=float, default=3600.0)
        self._token = token
        self._expires = self._clock.now() + timedelta(seconds=expires_in) - self._margin


class PlatformClient:
    """An ``httpx.AsyncClient`` that behaves the same for every platform (see module doc)."""

    def __init__(
        self,
        source: str,
        *,
        base_url: str = "",
        auth: Auth | None = None,
        policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """A client for source ``source`` (named in every error)."""
        self.source = source
        self._auth = auth
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Accept": "application/json", **(headers or {})},
            transport=transport,
            follow_redirects=False,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client (for a signer that needs to build requests itself)."""
        return self._client

    async def request(
        self,
        method: str,
        url: str,
        *,
        budget: float,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        sign: Callable[[httpx.Request], httpx.Request] | None = None,
    ) -> httpx.Response:
        """Send one logical request within ``budget`` seconds, retrying as the module says.

        ``sign`` rewrites the built request before each try (e.g. an AWS SigV4 signer).
        Returns a 2xx/3xx response or raises ``SourceError``.
        """
        deadline = time.monotonic() + budget
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                response = await self._send(
                    method, url, deadline, params, json, data, headers, sign
                )
            except SourceError as exc:
                if not exc.retryable:
                    raise
                failure = exc
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 401 and self._auth is not None and not reauthenticated:
                    self._auth.invalidate()
                    reauthenticated = True
                    attempt -= 1  # a fresh token is not a retry of a failure
                    continue
                failure = _classify(response, url)
                if not failure.retryable:
                    raise failure
                if status in (429, 503):
                    # The platform's word beats our back-off (None: it gave none).
                    wait = failure.retry_after
            if attempt >= self._policy.attempts:
                raise failure
            if wait is None:
                wait = self._policy.delay(attempt, self._rng)
            if wait >= remaining(deadline):
                raise failure
            await self._sleep(wait)

    async def json(self, method: str, url: str, *, budget: float, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (a malformed body is a ``parse`` error).

        A body over ``DECODE_IN_THREAD_FROM`` bytes is decoded in a worker thread: a feed of
        50,000 queues takes a third of a second to decode, and the event loop must go on
        answering ``/healthz`` and other sources meanwhile."""
        response = await self.request(method, url, budget=budget, **kwargs)
        if len(response.content) >= DECODE_IN_THREAD_FROM:
            return await asyncio.to_thread(_decode, response)
        return _decode(response)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        deadline: float,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        sign: Callable[[httpx.Request], httpx.Request] | None,
    ) -> httpx.Response:
        if remaining(deadline) <= 0:
            raise SourceError(f"no time left to call {url}", reason="timeout")
        all_headers = dict(headers or {})
        if self._auth is not None:
            all_headers.update(await self._auth.headers(self._client, deadline))
        request = self._client.build_request(
            method, url, params=params, json=json, data=data, headers=all_headers,
            timeout=remaining(deadline),
        )  # fmt: skip
        if sign is not None:
            request = sign(request)
        try:
            return await self._client.send(request)
        except httpx.TimeoutException as exc:
            raise SourceError(f"{method} {url} timed out", reason="timeout") from exc
        except httpx.TransportError as exc:
            raise SourceError(f"{method} {url} failed: {exc}", reason="network") from exc


# --------------------------------------------------------------------------- payloads


class _Missing:
    pass


_MISSING: Any = _Missing()


def field(
    payload: Any,
    *path: str | int,
    kind: type[Any] = float,
    default: Any = _MISSING,
) -> Any:
    """The value at ``path`` in a decoded JSON payload, as ``kind``.

    A missing key (without ``default``), a wrong shape or a value that is not a ``kind`` is
    a ``SourceError(reason="parse")`` naming the path, e.g. ``results[0].data``. ``null``
    counts as missing. Numbers given as strings ("1799") are accepted for int and float.
    """
    node = payload
    walked = ""
    for step in path:
        walked = f"{walked}[{step}]" if isinstance(step, int) else (
            f"{walked}.{step}" if walked else str(step)
        )
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
        if node is None:
            if default is not _MISSING:
                return default
            raise SourceError(f"the payload has no {walked}", reason="parse", retryable=False)
    return _as(node, kind, walked)


def _as(value: Any, kind: type[Any], where: str) -> Any:
    if kind in (int, float):
        if isinstance(value, bool):
            raise _bad(where, value, kind)
        if isinstance(value, int | float):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(float(value)) if kind is int else float(value)
            except ValueError:
                raise _bad(where, value, kind) from None
        raise _bad(where, value, kind)
    if not isinstance(value, kind):
        raise _bad(where, value, kind)
    return value


def _bad(where: str, value: Any, kind: type[Any]) -> SourceError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return SourceError(
        f"{where} is {shown}, not {kind.__name__}", reason="parse", retryable=False
    )


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise SourceError(
            f"malformed JSON from {response.request.url}: {exc}; "
            f"body starts {body_snippet(response)}",
            reason="parse",
            retryable=False,
        ) from exc


# --------------------------------------------------------------------------- helpers


def basic_header(user: str, password: str) -> str:
    """The value of an HTTP Basic ``Authorization`` header (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _classify(response: httpx.Response, url: str) -> SourceError:
    status = response.status_code
    text = f"{response.request.method} {url} answered {status}: {body_snippet(response)}"
    after = None
    if status in (429, 503):
        after = retry_after_seconds(response.headers.get("Retry-After"))
    return SourceError(
        text, reason=http_reason(status), retryable=status == 429 or status >= 500,
        retry_after=after,
    )  # fmt: skip


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3).

    None when absent or unreadable. ``now`` is for the date form (default: the wall clock).
    Used by the sources here and by the responders.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value), never below 0."""
    return max(0.0, deadline - time.monotonic())


def body_snippet(response: httpx.Response, limit: int = 200) -> str:
    """The start of a response's body, quoted, for an error message (sources and switches)."""
    text = response.text.strip().replace("\n", " ")
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
