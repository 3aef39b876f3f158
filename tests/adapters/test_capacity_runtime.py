"""The capacity model in the daemon: figures arriving from a scripted source on a fake clock
carry agents needed and the gap into the view, the API, the board, ``/metrics``, a tier's
condition and a real webhook message (#11)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from risingtide.api.app import create_app
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.capacity import agents_needed
from risingtide.domain.model import QueueStats
from risingtide.replay import rows_by_line
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from tests.adapters.loopback import Loopback

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CONFIG = """
server: {{ state_file: {state} }}
sources:
  feed: {{ type: scripted }}
lines:
  council_tax: {{ name: Council Tax, source: feed, framework: watch, handle_time: 5m }}
frameworks:
  watch:
    tiers:
      - level: 1
        name: short-staffed
        when: {{ capacity_gap: {{ above: 3 }} }}
        for: 0s
        responses: [tell_duty_manager]
responses:
  tell_duty_manager: {{ type: webhook, url: "{hook}" }}
"""


@pytest.fixture
async def received() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        bodies.append(await request.json())
        return Response(status_code=204)

    async with Loopback(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield f"{base}/hook", bodies


async def test_the_gap_reaches_view_api_board_metrics_condition_and_message(
    tmp_path: Path, received: tuple[str, list[dict[str, Any]]]
) -> None:
    """60 calls in 5 minutes at the configured 5 m handle time against 50 staffed: the
    tier on ``capacity_gap`` rises and every reader shows the same gap."""
    url, bodies = received
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s.sqlite", hook=url))
    rt = Runtime(load_config(path), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    try:
        src = rt.sources["feed"]
        assert isinstance(src, ScriptedSource) and rt.poller and rt.dispatcher
        src.push(
            QueueStats(
                line="council_tax", at=T0, avg_wait=200.0, offered=60, window=300, agents_staffed=50
            )
        )  # fmt: skip — no handle time from the platform
        await rt.poller.poll("feed")
        needed = agents_needed(720, 300, 180)
        gap = needed - 50
        assert gap > 3
        view = rt.view("council_tax")
        assert (view.agents_needed, view.capacity_gap) == (needed, gap)
        assert view.state.tier == 1
        transport = httpx.ASGITransport(app=create_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://rt") as api:
            line = (await api.get("/api/v1/lines/council_tax")).json()
            board = (await api.get("/api/v1/board")).json()
            metrics = (await api.get("/metrics")).text
        assert (line["agents_needed"], line["capacity_gap"]) == (needed, gap)
        assert line["capacity_gap_ratio"] == gap / needed
        assert line["stats"]["handle_time"] == 300.0
        brief = board["lines"][0]["briefing"]
        assert (
            brief["agents_gap"] == gap
            and brief["agents_gap_percent"] == f"{round(gap / needed * 100)}%"
        )
        assert brief["capacity_text"].startswith(f"Needs {gap} more agents to get back under 3m")
        assert f'risingtide_line_capacity_gap{{line="council_tax"}} {gap}.0' in metrics
        assert f'risingtide_line_agents_needed{{line="council_tax"}} {needed}.0' in metrics
        for _ in range(20):
            await rt.dispatcher.run_due()
            if bodies:
                break
            await asyncio.sleep(0.05)
        assert bodies, "the webhook was never called"
        text = bodies[0]["message"]["text"]
        assert f"Needs {gap} more agents to get back under 3m ({needed} needed, 50 staffed" in text
        events = rt.store.history(kinds=["tier_changed"], limit=5) if rt.store else []
        assert any(f"capacity_gap {gap} > 3" in str(e.data) for e in events)
    finally:
        await rt.shutdown()


async def test_the_daemon_and_replay_enrich_the_same_stream_alike(
    tmp_path: Path, received: tuple[str, list[dict[str, Any]]]
) -> None:
    """Irregular polls, a repeated instant, a gap and a missing handle time: the figures the
    daemon keeps after each poll are exactly replay's rows for the same stream."""
    url, _ = received
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s.sqlite", hook=url))
    config = load_config(path)
    rng = random.Random(5)
    rows: list[QueueStats] = []
    at = T0
    for i in range(60):
        at += timedelta(seconds=rng.choice([0, 15, 30, 45, 600]))
        handle = None if i % 7 == 0 else rng.uniform(200, 400)
        rows.append(QueueStats(line="council_tax", at=at, avg_wait=100.0, window=300,
                               offered=rng.randint(0, 40), agents_staffed=rng.randint(5, 40),
                               avg_handle_time=handle))  # fmt: skip
    rt = Runtime(config, clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    kept: list[QueueStats] = []
    try:
        src = rt.sources["feed"]
        assert isinstance(src, ScriptedSource) and rt.poller
        for row in rows:
            src.push(row)
            await rt.poller.poll("feed")
            kept.append(rt.latest["council_tax"])
    finally:
        await rt.shutdown()
    replayed, _ = rows_by_line(rows, config)
    walked = replayed["council_tax"]
    assert kept == [walked.stats(i) for i in range(len(walked))]
    assert any(k.capacity_gap is not None for k in kept)
