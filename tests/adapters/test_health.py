"""``/healthz`` tells a liveness probe the truth: 503 when no evaluation has succeeded within
the grace, and a failing store is logged when it starts and stops failing, counted between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from risingtide.api.app import create_app
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.runtime import Runtime
from risingtide.store import StoreError
from tests.adapters.test_runtime import write_config

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(load_config(write_config(tmp_path)), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    yield rt
    await rt.shutdown()


async def healthz(rt: Runtime) -> int:
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://rt") as http:
        return (await http.get("/healthz")).status_code


def advance(rt: Runtime, seconds: float) -> None:
    clock = rt.clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds)


def break_store(rt: Runtime) -> Any:
    """Make every use of the store fail as a full disk or a bad page does; return the real
    transaction to put back."""
    assert rt.store is not None
    real = rt.store._transaction

    def failing(*_: Any, **__: Any) -> Any:
        raise StoreError("state store state.sqlite: database or disk is full")

    rt.store._transaction = failing  # type: ignore[method-assign]
    return real


def mend_store(rt: Runtime, real: Any) -> None:
    assert rt.store is not None
    rt.store._transaction = real  # type: ignore[method-assign]


async def test_healthz_is_503_when_no_evaluation_ever_succeeded(runtime: Runtime) -> None:
    """Within the grace after start it is 200; past it, with no evaluation yet, 503."""
    assert await healthz(runtime) == 200
    advance(runtime, 29)
    assert await healthz(runtime) == 200
    advance(runtime, 2)  # grace: max(30 s, 6 × 5 s)
    assert not runtime.healthy
    assert await healthz(runtime) == 503
    await runtime.tick()
    assert await healthz(runtime) == 200


async def test_healthz_is_503_when_every_attempt_fails_past_the_grace(runtime: Runtime) -> None:
    """Attempts going on but all failing (the store refuses) is unhealthy once past the grace."""
    await runtime.tick()
    real = break_store(runtime)
    for _ in range(7):
        advance(runtime, 5)
        await runtime.tick()
    assert await healthz(runtime) == 503
    mend_store(runtime, real)
    advance(runtime, 5)
    await runtime.tick()
    assert await healthz(runtime) == 200


async def test_a_failing_store_is_logged_once_counted_and_its_recovery_logged_once(
    runtime: Runtime,
) -> None:
    """Ten failed ticks: one error with the traceback, ten counted; then one "store recovered"."""
    await runtime.tick()
    real = break_store(runtime)
    with capture_logs() as logs:
        for _ in range(10):
            advance(runtime, 5)
            await runtime.tick()
        mend_store(runtime, real)
        for _ in range(3):
            advance(runtime, 5)
            await runtime.tick()
    errors = [e for e in logs if e["log_level"] in ("error", "critical")]
    assert len(errors) == 1
    assert errors[0].get("exc_info"), "the first failure must carry its traceback"
    assert "disk is full" in str(errors[0]["exc_info"])
    recovered = [e for e in logs if e["event"] == "store recovered"]
    assert len(recovered) == 1
    assert recovered[0]["failures"] == 10
    assert runtime.registry.get_sample_value("risingtide_store_errors_total") == 10
