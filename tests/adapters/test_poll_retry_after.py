"""A source's ``Retry-After`` (429 or 503) holds its next polls until the wait is over, against
a real HTTP server on loopback that counts the requests it gets."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.config.model import SourceConfig
from risingtide.metrics import Metrics
from risingtide.polling import Poller
from risingtide.ports import SourceError
from tests.adapters.loopback import Loopback
from tests.adapters.test_http_json import LINES, shared, source


class Limited:
    """A wallboard that answers every request ``status`` with ``Retry-After: 5``."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests = 0

    def app(self) -> Starlette:
        async def wallboard(_: Request) -> Response:
            self.requests += 1
            return JSONResponse(
                {"message": "slow down"}, status_code=self.status, headers={"Retry-After": "5"}
            )

        return Starlette(routes=[Route("/api/wallboard", wallboard)])


class Monotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def poller(src: Any, now: Monotonic) -> tuple[Poller, list[dict[str, SourceError]]]:
    errors: list[dict[str, SourceError]] = []
    config = SourceConfig(
        id="wallboard", type="http_json", interval=timedelta(seconds=1),
        timeout=timedelta(seconds=5), jitter=timedelta(0), settings=None,  # type: ignore[arg-type]
    )  # fmt: skip
    metrics = Metrics(CollectorRegistry(), list)
    p = Poller(AsyncIOScheduler(), metrics, lambda _, __, e: errors.append(dict(e)), monotonic=now)
    p._sources = {"wallboard": (config, src)}
    return p, errors


async def hold_is_kept(status: int) -> None:
    limited = Limited(status)
    now = Monotonic()
    async with Loopback(limited.app()) as url:
        src = source(shared(url, request_budget="2s"), LINES)
        p, errors = poller(src, now)
        try:
            for _ in range(20):  # a poll a quarter second for 4.75 s of the 5 s asked for
                await p.poll("wallboard")
                now.t += 0.25
                await asyncio.sleep(0)
            assert limited.requests <= 1, f"{limited.requests} requests inside Retry-After: 5"
            assert errors and errors[0]["*"].retry_after == 5.0
            now.t += 0.5  # past the 5 s
            await p.poll("wallboard")
            assert limited.requests == 2, "polling must resume once the wait is over"
        finally:
            await src.aclose()


async def test_a_429_with_retry_after_holds_the_sources_polls() -> None:
    """429 with Retry-After: 5: at most one request in the next 5 s, then polls resume."""
    await hold_is_kept(429)


async def test_a_503_with_retry_after_holds_the_sources_polls() -> None:
    """503 with Retry-After: 5 is honoured the same way."""
    await hold_is_kept(503)
