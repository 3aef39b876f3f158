"""``GET /api/v1/lines`` pages and filters, over the real ASGI app of a running runtime.

Twelve scripted lines, three of them raised; requests go through httpx's ASGI transport to
the same app the daemon serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from risingtide.api.app import create_app
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LINES = [f"line{i:02d}" for i in range(12)]
RAISED = {"line02": 400.0, "line05": 250.0, "line11": 400.0}

CONFIG = """
server: {{ state_file: {state} }}
sources:
  feed: {{ type: scripted }}
lines:
{lines}
defaults: {{ framework: f, source: feed }}
frameworks:
  f:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }}, for: 0s }}
      - {{ level: 2, name: high, when: {{ avg_wait: {{ above: 300s }} }}, for: 0s }}
"""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    lines = "\n".join(f"  {lid}: {{ name: Line {lid}, source: {{ use: feed }} }}" for lid in LINES)
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s.sqlite", lines=lines))
    rt = Runtime(load_config(path), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    src = rt.sources["feed"]
    assert isinstance(src, ScriptedSource) and rt.poller is not None
    for lid in LINES:
        src.push(QueueStats(line=lid, at=T0, avg_wait=RAISED.get(lid, 60.0)))
    await rt.poller.poll("feed")
    rt.evaluate_all(T0)
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://rt") as client:
        yield client
    await rt.shutdown()


async def _walk(api: httpx.AsyncClient, path: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Every line id following ``next`` from ``path``, and each page's answer."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    next_path: str | None = path
    while next_path is not None and len(pages) < 50:
        answer = await api.get(next_path)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append(page)
        ids.extend(line["line"] for line in page["lines"])
        next_path = page["next"]
    return ids, pages


async def test_without_parameters_every_line_comes_on_one_page(api: httpx.AsyncClient) -> None:
    """Fewer lines than the default limit: all of them, in config order, and no next page."""
    page = (await api.get("/api/v1/lines")).json()
    assert [line["line"] for line in page["lines"]] == LINES
    assert page["next"] is None and page["total"] == len(LINES)


async def test_pages_follow_next_to_every_line_once(api: httpx.AsyncClient) -> None:
    """With limit=5 the walk takes three pages and lists every line once, in order."""
    ids, pages = await _walk(api, "/api/v1/lines?limit=5")
    assert ids == LINES
    assert [len(p["lines"]) for p in pages] == [5, 5, 2]
    assert pages[0]["next"] == "/api/v1/lines?after=line04&limit=5"
    assert {p["total"] for p in pages} == {12}


async def test_tier_at_least_keeps_the_raised_lines_across_pages(api: httpx.AsyncClient) -> None:
    """tier_at_least=1 lists only raised lines, and its next pages keep the filter."""
    ids, pages = await _walk(api, "/api/v1/lines?tier_at_least=1&limit=2")
    assert ids == sorted(RAISED)
    assert "tier_at_least=1" in (pages[0]["next"] or "")
    assert pages[0]["total"] == 3
    high, _ = await _walk(api, "/api/v1/lines?tier_at_least=2")
    assert high == ["line02", "line11"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=0", "limit must be a whole number from 1 to 5000"),
        ("limit=5001", "limit must be a whole number from 1 to 5000"),
        ("limit=ten", "limit must be a whole number from 1 to 5000"),
        ("limit=-3", "limit must be a whole number from 1 to 5000"),
        ("tier_at_least=-1", "tier_at_least must be a whole number, 0 or more"),
        ("tier_at_least=high", "tier_at_least must be a whole number, 0 or more"),
        ("after=nope", "no line 'nope' in the config"),
    ],
)
async def test_a_bad_parameter_is_a_400_with_a_reason(
    api: httpx.AsyncClient, query: str, reason: str
) -> None:
    """A bad limit, tier_at_least or cursor is refused with the reason, not ignored."""
    answer = await api.get(f"/api/v1/lines?{query}")
    assert answer.status_code == 400
    assert reason in answer.json()["error"]


async def test_status_follows_the_pages_to_every_line(tmp_path: Path) -> None:
    """``risingtide status``'s reader walks every page of a real daemon's list."""
    from risingtide.cli import _every_line
    from risingtide.remote import Remote
    from tests.adapters.loopback import free_port

    lines = "\n".join(f"  {lid}: {{ name: Line {lid}, source: {{ use: feed }} }}" for lid in LINES)
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s.sqlite", lines=lines))
    rt = Runtime(load_config(path), clock=FakeClock(T0), port=free_port())
    await rt.start(schedule=False)
    try:
        remote = Remote(f"http://127.0.0.1:{rt.port}")
        got = await asyncio.to_thread(_every_line, remote, 5)
    finally:
        await rt.shutdown()
    assert [line["line"] for line in got] == LINES
