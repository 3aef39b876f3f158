"""The lean ``/metrics``: a budget of series per line, counters by response, no ``_created``.

A real runtime (scripted source, FakeClock) serves its port on loopback; a failing webhook
is a real HTTP server on loopback answering 500 and 400.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.dispatch import RetryPolicy
from risingtide.domain.capacity import agents_needed
from risingtide.domain.model import QueueStats
from risingtide.metrics import reason_label
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from tests.adapters.loopback import Loopback, free_port

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CONFIG = """
server: {{ state_file: {state}, per_line_counters: {per_line} }}
sources:
  feed: {{ type: scripted }}
lines:
  revenues: {{ name: Revenues & Benefits, source: {{ use: feed, avg_wait: 100 }} }}
  waste: {{ name: Waste & Recycling, source: {{ use: feed, avg_wait: 100 }} }}
  highways: {{ name: Highways, source: {{ use: feed, avg_wait: 100 }} }}
defaults: {{ framework: f }}
frameworks:
  f:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }}, for: 0s,
          responses: [notify, hook_500, hook_400] }}
      - {{ level: 2, name: high, when: {{ avg_wait: {{ above: 300s }} }}, for: 0s,
          responses: [notify] }}
responses:
  notify: {{ type: log, message: duty manager please look }}
  hook_500: {{ type: webhook, url: "{hook}/500" }}
  hook_400: {{ type: webhook, url: "{hook}/400" }}
"""

#: The per-line families and nothing else: the budget is 12 series a line.
PER_LINE = {
    "risingtide_line_tier",
    "risingtide_line_tier_acknowledged",
    "risingtide_line_silenced",
    "risingtide_line_stale",
    "risingtide_line_target_wait_seconds",
    "risingtide_line_avg_wait_seconds",
    "risingtide_line_longest_wait_seconds",
    "risingtide_line_calls_waiting",
    "risingtide_line_agents_available",
    "risingtide_line_abandon_ratio",
    "risingtide_line_agents_needed",
    "risingtide_line_capacity_gap",
}


async def _hook(request: Request) -> Response:
    status = int(request.path_params["status"])
    return PlainTextResponse("no", status_code=status)


@pytest.fixture
async def hook() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/{status}", _hook, methods=["POST"])])
    async with Loopback(app) as url:
        yield url


async def _runtime(tmp_path: Path, hook: str, *, per_line: bool = False) -> Runtime:
    path = tmp_path / "rising-tide.yaml"
    path.write_text(
        CONFIG.format(state=tmp_path / "s.sqlite", hook=hook, per_line=str(per_line).lower())
    )
    rt = Runtime(load_config(path), clock=FakeClock(T0), port=free_port())
    await rt.start(schedule=False)
    return rt


async def _feed(rt: Runtime, **avg_wait: float) -> None:
    """Every line gets full figures; ``avg_wait`` per line (default 100 s)."""
    src = rt.sources["feed"]
    assert isinstance(src, ScriptedSource) and rt.poller is not None
    now = rt.clock.now()
    for line in rt.config.lines:
        src.push(
            QueueStats(
                line=line, at=now, avg_wait=avg_wait.get(line, 100.0), longest_wait=200,
                calls_waiting=4, agents_available=2, agents_staffed=10, offered=90,
                answered=80, abandoned=5, window=900, avg_handle_time=300,
            )
        )  # fmt: skip
    await rt.poller.poll("feed")
    rt.evaluate_all(now)


async def _group_wait_passes(rt: Runtime) -> None:
    """Notifications wait ``group_wait`` (5 s) to batch: let it pass and run them."""
    clock = rt.clock
    assert isinstance(clock, FakeClock) and rt.dispatcher is not None
    clock.advance(6)
    await rt.dispatcher.run_due()


def _samples(text: str) -> list[tuple[str, str]]:
    """(metric name, labels) of every sample in a text exposition."""
    out = []
    for row in text.splitlines():
        if row and not row.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?", row)
            assert m is not None, row
            out.append((m.group(1), m.group(2) or ""))
    return out


async def test_a_scrape_has_at_most_twelve_series_a_line_and_no_created(
    tmp_path: Path, hook: str
) -> None:
    """Over real HTTP, each line has ≤ 12 series (every per-line family once, the capacity
    gap among them), the target series carries the display name, and no ``_created``."""
    rt = await _runtime(tmp_path, hook)
    try:
        await _feed(rt, revenues=400.0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}") as http:
            text = (await http.get("/metrics", timeout=10)).text
    finally:
        await rt.shutdown()
    samples = _samples(text)
    per_line = Counter(
        m.group(1) for _, labels in samples if (m := re.search(r'line="([^"]*)"', labels))
    )
    assert set(per_line) == {"revenues", "waste", "highways"}
    assert max(per_line.values()) <= 12
    names = {name for name, labels in samples if 'line="' in labels}
    assert names == PER_LINE
    assert (
        'risingtide_line_target_wait_seconds{line="revenues",name="Revenues & Benefits"} ' in text
    )
    assert not [name for name, _ in samples if name.endswith("_created")]
    assert 'risingtide_lines_at_tier{tier="2"} 1.0' in text
    assert 'risingtide_lines_at_tier{tier="0"} 2.0' in text


async def test_failed_runs_count_by_response_action_outcome_and_reason(
    tmp_path: Path, hook: str
) -> None:
    """A webhook answered 500 counts as retry/http_5xx, one answered 400 as dead/http_4xx,
    the log notification as ok with an empty reason; no line label by default."""
    rt = await _runtime(tmp_path, hook)
    try:
        assert rt.dispatcher is not None
        rt.dispatcher._policy = RetryPolicy(max_attempts=3)
        await _feed(rt, revenues=250.0)
        await rt.dispatcher.run_due()
        await _group_wait_passes(rt)
        get = rt.registry.get_sample_value
        runs = "risingtide_response_runs_total"
        assert rt.store is not None
        retries = [e for e in rt.store.history(kinds=["response"], limit=50)
                   if (e.data["response"], e.data["outcome"]) == ("hook_500", "retry")]  # fmt: skip
        assert retries
        assert get(runs, {"response": "hook_500", "action": "apply", "outcome": "retry",
                          "reason": "http_5xx"}) == len(retries)  # fmt: skip
        assert get(runs, {"response": "hook_400", "action": "apply", "outcome": "dead",
                          "reason": "http_4xx"}) == 1  # fmt: skip
        assert get(runs, {"response": "notify", "action": "apply", "outcome": "ok",
                          "reason": ""}) == 1  # fmt: skip
        assert get("risingtide_notifications_total", {"channel": "webhook", "outcome": "dead"}) == 1
        text = rt.metrics.render().decode()
    finally:
        await rt.shutdown()
    assert not [labels for name, labels in _samples(text) if name == runs and "line=" in labels]


async def test_per_line_counters_add_the_line_label(tmp_path: Path, hook: str) -> None:
    """With ``server.per_line_counters: true`` tier changes and runs are counted by line."""
    rt = await _runtime(tmp_path, hook, per_line=True)
    try:
        await _feed(rt, waste=400.0)
        await _group_wait_passes(rt)
        get = rt.registry.get_sample_value
        changes = "risingtide_tier_transitions_total"
        assert get(changes, {"line": "waste", "from_tier": "0", "to_tier": "2"}) == 1
        assert get(changes, {"line": "revenues", "from_tier": "0", "to_tier": "2"}) == 0
        assert get("risingtide_response_runs_total", {"line": "waste", "response": "notify",
                   "action": "apply", "outcome": "ok", "reason": ""}) == 1  # fmt: skip
    finally:
        await rt.shutdown()


async def test_per_line_counters_add_offered_and_answered_per_line(
    tmp_path: Path, hook: str
) -> None:
    """With ``per_line_counters`` a scrape carries each line's offered and answered calls
    over its window (issue 13 item 17); without it, neither (the 12-a-line budget)."""
    for per_line, expected in ((True, (90.0, 80.0)), (False, (None, None))):
        folder = tmp_path / str(per_line)
        folder.mkdir()
        rt = await _runtime(folder, hook, per_line=per_line)
        try:
            await _feed(rt)
            get = rt.registry.get_sample_value
            got = (
                get("risingtide_line_offered", {"line": "waste"}),
                get("risingtide_line_answered", {"line": "waste"}),
            )
            assert got == expected
            text = rt.metrics.render().decode()
            assert ('risingtide_line_offered{line="waste"} 90.0' in text) is per_line
        finally:
            await rt.shutdown()


def test_a_reason_label_is_a_short_class_never_free_text() -> None:
    """ok has no reason; a failure keeps its class; anything else a plugin says is "other"."""
    assert reason_label("ok", "sent to 3 people") == ""
    assert reason_label("retry", "http_5xx") == "http_5xx"
    assert reason_label("dead", "Connection refused by 10.0.0.1") == "other"


async def test_promtool_finds_nothing_wrong_with_the_exposition(tmp_path: Path, hook: str) -> None:
    """``promtool check metrics`` reports no problem with a scrape after runs and failures."""
    rt = await _runtime(tmp_path, hook)
    try:
        await _feed(rt, revenues=400.0)
        assert rt.dispatcher is not None
        await rt.dispatcher.run_due()
        text = rt.metrics.render()
    finally:
        await rt.shutdown()
    result = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


async def test_the_scrape_text_and_registry_reads_agree(tmp_path: Path, hook: str) -> None:
    """Every per-line sample a scrape writes as text is what a registry read returns."""
    rt = await _runtime(tmp_path, hook)
    try:
        await _feed(rt, revenues=400.0, waste=250.0)
        rt.acknowledge("revenues", by="Priya")
        text = rt.metrics.render().decode()
        rows = [r for r in text.splitlines() if 'line="' in r and not r.startswith("#")]
        assert len(rows) == 3 * 12
        for row in rows:
            m = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", row)
            assert m is not None, row
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            assert rt.registry.get_sample_value(m.group(1), labels) == float(m.group(3)), row
    finally:
        await rt.shutdown()
    assert 'risingtide_line_tier_acknowledged{line="revenues"} 1.0' in text
    assert 'risingtide_line_agents_needed{line="revenues"} ' in text
    # 90 calls in 15 min (360 an hour) at 300 s handle time, 10 agents staffed.
    gap = agents_needed(360, 300, rt.config.lines["revenues"].target_wait) - 10
    assert f'risingtide_line_capacity_gap{{line="revenues"}} {gap}.0' in text


def test_a_label_value_is_escaped_as_the_text_format_says() -> None:
    """Backslash, double quote and newline in a name are escaped, nothing else is touched."""
    from risingtide.line_metrics import _escape

    assert _escape('Highways "North" \\ South\nline') == r"Highways \"North\" \\ South\nline"
    assert _escape("Revenues & Benefits") == "Revenues & Benefits"


async def test_a_reload_turns_per_line_counters_on(tmp_path: Path, hook: str) -> None:
    """Reloading with ``per_line_counters: true`` relabels the counters by line (from 0)."""
    rt = await _runtime(tmp_path, hook)
    try:
        await _feed(rt, waste=400.0)
        get = rt.registry.get_sample_value
        changes = "risingtide_tier_transitions_total"
        assert get(changes, {"from_tier": "0", "to_tier": "2"}) == 1
        path = tmp_path / "rising-tide.yaml"
        path.write_text(
            path.read_text().replace("per_line_counters: false", "per_line_counters: true")
        )
        assert await rt.reload() == []
        assert get(changes, {"from_tier": "0", "to_tier": "2"}) is None
        assert get(changes, {"line": "waste", "from_tier": "2", "to_tier": "1"}) == 0
        await _feed(rt)  # every line back to 100 s: waste steps down to tier 1
        assert get(changes, {"line": "waste", "from_tier": "2", "to_tier": "1"}) == 1
    finally:
        await rt.shutdown()


def test_the_demo_primes_applies_and_undos_at_zero_and_no_line_label() -> None:
    """Loading the demo creates each response's ok series at 0, an undo only for a switch,
    and every tier change between the demo's tiers, none of them by line."""
    from prometheus_client import CollectorRegistry

    from risingtide.metrics import Metrics

    config = load_config(Path(__file__).parents[2] / "config" / "rising-tide.yaml")
    metrics = Metrics(CollectorRegistry(), lambda: [], lambda: config)
    metrics.prime(config)
    get = metrics.registry.get_sample_value
    runs = "risingtide_response_runs_total"
    ok = {"outcome": "ok", "reason": ""}
    assert get(runs, {"response": "callback_on", "action": "undo", **ok}) == 0
    assert get(runs, {"response": "callback_on", "action": "apply", **ok}) == 0
    assert get(runs, {"response": "notify_duty_manager", "action": "apply", **ok}) == 0
    assert get(runs, {"response": "notify_duty_manager", "action": "undo", **ok}) is None
    assert get("risingtide_tier_transitions_total", {"from_tier": "4", "to_tier": "0"}) == 0
    text = metrics.render([]).decode()
    assert "line=" not in text
