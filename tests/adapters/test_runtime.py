"""The runtime's wiring: polling isolation, evaluation, logging, reload and the HTTP port.

Uses the shipped ``scripted`` source and ``log`` responder, a FakeClock where time matters,
and the real ASGI server on loopback for HTTP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.commands import CommandRejected
from risingtide.domain.model import QueueStats
from risingtide.ports import SourceError
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from tests.adapters.loopback import Loopback

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CONFIG = """
server:
  state_file: {state}
  evaluate_every: 5s
sources:
  fast: {{ type: scripted, interval: 1s, timeout: 1s }}
  slow: {{ type: scripted, interval: 1s, timeout: 1s }}
lines:
  revenues: {{ name: Revenues & Benefits, source: {{ use: fast, avg_wait: 100 }} }}
  waste: {{ name: Waste & Recycling, source: {{ use: slow, avg_wait: 100 }} }}
defaults:
  framework: standard
frameworks:
  standard:
    stale_after: 1m
    stale_alert_after: 5m
    tiers:
      - level: 1
        name: {tier_name}
        when: {{ avg_wait: {{ above: target }} }}
        for: 10s
        clear: {{ avg_wait: {{ below: 0.8 * target }} }}
        clear_for: 10s
        responses: [notify]
responses:
  notify: {{ type: log, message: duty manager please look }}
"""


def write_config(tmp_path: Path, tier_name: str = "rising") -> Path:
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.sqlite", tier_name=tier_name))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(load_config(write_config(tmp_path)), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    yield rt
    await rt.shutdown()


def scripted(rt: Runtime, source: str) -> ScriptedSource:
    src = rt.sources[source]
    assert isinstance(src, ScriptedSource)
    return src


async def raise_revenues(rt: Runtime) -> None:
    """Push a long wait on revenues and hold it past the tier's 10 s."""
    clock = rt.clock
    assert isinstance(clock, FakeClock) and rt.poller is not None
    for _ in range(3):
        scripted(rt, "fast").push(QueueStats(line="revenues", at=clock.now(), avg_wait=400))
        await rt.poller.poll("fast")
        rt.evaluate_all(clock.now())
        clock.advance(5)


async def test_a_hanging_source_times_out_and_never_holds_up_another(tmp_path: Path) -> None:
    """With the real scheduler, a source stuck past its timeout leaves the other polling."""
    rt = Runtime(load_config(write_config(tmp_path)))
    hung = asyncio.Event()

    async def hang() -> dict[str, QueueStats]:
        hung.set()
        await asyncio.sleep(3600)
        return {}

    await rt.start(serve_http=False)
    try:
        scripted(rt, "slow").poll = hang  # type: ignore[method-assign]
        fast = scripted(rt, "fast")
        polls_before = fast.polls
        await asyncio.wait_for(hung.wait(), 5)
        await asyncio.sleep(2.5)
        assert fast.polls >= polls_before + 2
        timeouts = rt.registry.get_sample_value(
            "risingtide_poll_errors_total", {"source": "slow", "reason": "timeout"}
        )
        assert timeouts is not None and timeouts >= 1
        assert rt.latest["revenues"].avg_wait == 100
        assert "waste" in rt.last_error
    finally:
        await rt.shutdown()


async def test_a_tier_change_is_one_log_line_with_line_tiers_and_reason(runtime: Runtime) -> None:
    """The tier change is logged once with line, from_tier, to_tier, tier and reason."""
    with capture_logs() as logs:
        await raise_revenues(runtime)
    changes = [e for e in logs if e["event"] == "tier changed"]
    assert len(changes) == 1
    change = changes[0]
    assert (change["line"], change["from_tier"], change["to_tier"], change["tier"]) == (
        "revenues", 0, 1, 1,
    )  # fmt: skip
    assert "avg_wait 400s > 180s" in change["reason"]
    assert runtime.registry.get_sample_value(
        "risingtide_tier_transitions_total", {"from_tier": "0", "to_tier": "1"}
    ) == 1


async def test_the_outbox_runs_the_tier_response_and_counts_it(runtime: Runtime) -> None:
    """The tier's notification runs through the dispatcher and lands in the counters."""
    await raise_revenues(runtime)
    assert runtime.dispatcher is not None
    await runtime.dispatcher.run_due()
    labels = {"response": "notify", "action": "apply", "outcome": "ok", "reason": ""}
    assert runtime.registry.get_sample_value("risingtide_response_runs_total", labels) == 1
    assert runtime.registry.get_sample_value(
        "risingtide_notifications_total", {"channel": "log", "outcome": "ok"}
    ) == 1
    assert runtime.registry.get_sample_value("risingtide_outbox_pending", {}) == 0


async def test_a_failing_source_holds_the_tier_and_marks_the_line_stale(runtime: Runtime) -> None:
    """When the platform goes down the line keeps its tier, is marked stale, and says why."""
    await raise_revenues(runtime)
    clock = runtime.clock
    assert isinstance(clock, FakeClock) and runtime.poller is not None
    scripted(runtime, "fast").go_down(SourceError("platform down", reason="http_5xx"))
    for _ in range(30):
        clock.advance(5)
        await runtime.poller.poll("fast")
        runtime.evaluate_all(clock.now())
    view = runtime.view("revenues")
    assert view is not None
    assert view.state.tier == 1
    assert view.state.stale
    assert view.last_error == "platform down"
    assert runtime.registry.get_sample_value("risingtide_line_stale", {"line": "revenues"}) == 1
    assert runtime.registry.get_sample_value(
        "risingtide_poll_errors_total", {"source": "fast", "reason": "http_5xx"}
    ) == 30


async def test_reload_keeps_line_state_and_a_bad_reload_keeps_the_old_config(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A good reload swaps the config keeping the tier; a bad one changes nothing but says so."""
    await raise_revenues(runtime)
    write_config(tmp_path, tier_name="busy")
    assert await runtime.reload() == []
    assert runtime.states["revenues"].tier == 1
    assert runtime.config.lines["revenues"].framework.tier_name(1) == "busy"
    assert runtime.registry.get_sample_value("risingtide_config_last_reload_successful") == 1

    (tmp_path / "rising-tide.yaml").write_text("lines: [not, a, mapping\n")
    errors = await runtime.reload()
    assert errors and errors[0].startswith(str(tmp_path / "rising-tide.yaml") + ":")
    assert runtime.config.lines["revenues"].framework.tier_name(1) == "busy"
    assert runtime.registry.get_sample_value("risingtide_config_last_reload_successful") == 0
    assert runtime.states["revenues"].tier == 1


async def test_http_port_serves_api_metrics_and_health(tmp_path: Path) -> None:
    """Over real HTTP: lines, one line, 404 and 400 with reasons, events, metrics, health."""
    port = free_port()
    clock = FakeClock(T0)
    rt = Runtime(load_config(write_config(tmp_path)), clock=clock, port=port)
    await rt.start(schedule=False)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/readyz")).status_code == 503
            await raise_revenues(rt)
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/healthz")).json()["status"] == "ok"

            lines = (await http.get("/api/v1/lines")).json()["lines"]
            assert [line["line"] for line in lines] == ["revenues", "waste"]
            one = (await http.get("/api/v1/lines/revenues")).json()
            assert (one["tier"], one["tier_name"], one["stats"]["avg_wait"]) == (1, "rising", 400)

            missing = await http.get("/api/v1/lines/nope")
            assert missing.status_code == 404
            assert "nope" in missing.json()["error"]
            for bad in ("limit=0", "limit=x", "since=yesterday", "since=2026-01-05T09:00:00"):
                resp = await http.get(f"/api/v1/events?{bad}")
                assert resp.status_code == 400, bad
                assert resp.json()["error"]

            events = (await http.get("/api/v1/events?line=revenues&kind=tier_changed")).json()
            assert [e["data"]["to_tier"] for e in events["events"]] == [1]

            metrics = (await http.get("/metrics")).text
            assert 'risingtide_line_tier{line="revenues"} 1.0' in metrics
            assert 'risingtide_build_info{version=' in metrics
            board = await http.get("/")
            assert board.status_code == 200 and "duty board" in board.text
    finally:
        await rt.shutdown()


async def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    """Starting on a port already taken fails with a message naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rt = Runtime(load_config(write_config(tmp_path)), clock=FakeClock(T0), port=port)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            await rt.start(schedule=False)
        await rt.shutdown()


async def test_duty_manager_commands_are_stored_like_evaluations(runtime: Runtime) -> None:
    """Ack, silence and declare change the state, land in the history, and reject nonsense."""
    with pytest.raises(CommandRejected):
        runtime.acknowledge("revenues", by="Priya")  # calm: nothing to acknowledge
    with pytest.raises(KeyError):
        runtime.acknowledge("nope", by="Priya")
    await raise_revenues(runtime)
    runtime.acknowledge("revenues", by="Priya", note="on it")
    assert runtime.states["revenues"].acknowledged
    assert runtime.registry.get_sample_value(
        "risingtide_line_tier_acknowledged", {"line": "revenues"}
    ) == 1
    until = runtime.clock.now() + timedelta(hours=1)
    runtime.silence("waste", until=until, by="Priya", reason="phone system upgrade")
    runtime.declare("waste", level=1, until=until, by="Priya", reason="bin day change")
    assert runtime.states["waste"].tier == 1
    assert runtime.store is not None
    kinds = [e.kind for e in reversed(runtime.store.history(limit=50))]
    assert kinds[-4:] == ["acknowledged", "silenced", "declared", "tier_changed"], kinds
    ack = runtime.store.history(kinds=["acknowledged"])[0]
    assert (ack.line, ack.data["by"], ack.data["note"]) == ("revenues", "Priya", "on it")
    # a silenced line's declared tier sends nothing
    assert [o for o in runtime.store.pending() if o.order.line == "waste"] == []


async def test_a_source_that_cannot_be_built_fails_its_polls_not_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build error (e.g. a missing optional package) is a poll error; the others run."""
    import dataclasses

    from risingtide import runtime as runtime_module
    from risingtide.sources import SOURCE_TYPES

    def refuse(*_: object) -> None:
        raise SourceError("pip install 'risingtide[aws]'", reason="dependency", retryable=False)

    broken = dataclasses.replace(SOURCE_TYPES["scripted"], build=refuse)
    monkeypatch.setattr(runtime_module, "SOURCE_TYPES", {"scripted": broken})
    rt = Runtime(load_config(write_config(tmp_path)), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    try:
        assert rt.poller is not None
        await rt.poller.poll("fast")
        assert rt.last_error["revenues"] == "pip install 'risingtide[aws]'"
        assert rt.registry.get_sample_value(
            "risingtide_poll_errors_total", {"source": "fast", "reason": "dependency"}
        ) == 1
        rt.evaluate_all(rt.clock.now())
        assert rt.ready
    finally:
        await rt.shutdown()


async def test_a_switch_is_shown_live_until_its_undo_succeeds(runtime: Runtime) -> None:
    """An UNDO still in the outbox keeps its switch in the line's live switches and metric."""
    from risingtide.domain.model import Action, ResponseOrder

    assert runtime.store is not None
    undo = ResponseOrder("k-undo", "revenues", "ivr_deflection", Action.UNDO, 0, 1,
                         "tier_changed", runtime.clock.now(), "calm again")  # fmt: skip
    runtime.store.commit([], [], [undo])
    view = runtime.view("revenues")
    assert view is not None
    assert view.live_switches == frozenset({"ivr_deflection"})
    assert view.to_json()["undo_pending"] == ["ivr_deflection"]
    assert runtime.registry.get_sample_value(
        "risingtide_switches_live", {"response": "ivr_deflection"}
    ) == 1
    runtime.store.record_success("k-undo", "off", runtime.clock.now())
    view = runtime.view("revenues")
    assert view is not None and view.live_switches == frozenset()


async def test_counters_exist_at_zero_before_anything_happens(runtime: Runtime) -> None:
    """Every counter the config can move is exported at 0 from the start, so rate() sees
    the first event."""
    get = runtime.registry.get_sample_value
    assert get("risingtide_tier_transitions_total", {"from_tier": "0", "to_tier": "1"}) == 0
    ok = {"response": "notify", "action": "apply", "outcome": "ok", "reason": ""}
    assert get("risingtide_response_runs_total", ok) == 0
    assert get("risingtide_notifications_total", {"channel": "log", "outcome": "ok"}) == 0


async def test_a_notification_is_told_what_it_needs_to_say(runtime: Runtime) -> None:
    """The context for a tier's notification carries its entry time, tier names and switches,
    and the message reads from them."""
    from risingtide.messages import facts_from

    await raise_revenues(runtime)
    assert runtime.store is not None
    (entry,) = [e for e in runtime.store.pending() if e.order.line == "revenues"]
    context = runtime._context_for(entry.order)
    assert context.extra["framework_tiers"] == ["rising"]
    assert context.extra["entered_at"] == runtime.states["revenues"].entered_at
    assert context.extra["live_switches"] == []
    facts = facts_from(entry.order, context)
    assert facts.line_name == "Revenues & Benefits"
    assert facts.entered_at == runtime.states["revenues"].entered_at


async def test_history_page_and_csv_export(tmp_path: Path) -> None:
    """The history page lists events with filters; the CSV export carries the same rows."""
    import csv
    import io

    port = free_port()
    rt = Runtime(load_config(write_config(tmp_path)), clock=FakeClock(T0), port=port)
    await rt.start(schedule=False)
    try:
        await raise_revenues(rt)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/history")
            assert page.status_code == 200
            assert "Tier 0 → 1: rising to tier 1 rising: avg_wait 400s &gt; 180s" in page.text
            assert 'href="/api/v1/events.csv"' in page.text
            only_waste = await http.get("/history", params={"line": "waste"})
            assert "No events match these filters." in only_waste.text
            assert 'href="/api/v1/events.csv?line=waste"' in only_waste.text
            bad = await http.get("/history", params={"since": "last tuesday"})
            assert bad.status_code == 400 and "bad query parameter" in bad.text

            exported = await http.get("/api/v1/events.csv", params={"kind": "tier_changed"})
            assert exported.status_code == 200
            assert exported.headers["content-type"].startswith("text/csv")
            rows = list(csv.reader(io.StringIO(exported.text)))
            assert rows[0] == ["id", "at", "line", "kind", "tier", "by", "reason", "data"]
            assert [(r[2], r[3], r[4]) for r in rows[1:]] == [("revenues", "tier_changed", "1")]
            assert rows[1][6].startswith("rising to tier 1 rising")
            assert (await http.get("/api/v1/events.csv?limit=0")).status_code == 400
    finally:
        await rt.shutdown()


FALLBACK_CONFIG = """
server: {{ state_file: {state} }}
sources:
  fast: {{ type: scripted }}
lines:
  revenues: {{ name: Revenues, source: {{ use: fast, avg_wait: 100 }}, framework: f }}
frameworks:
  f:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }}, for: 10s,
          responses: [text_duty_manager] }}
responses:
  text_duty_manager:
    type: webhook
    url: http://127.0.0.1:{port}/never
    fallback: email_duty_managers
  email_duty_managers: {{ type: log, message: the SMS could not be sent }}
"""


async def test_a_dead_letter_runs_its_fallback_once(tmp_path: Path) -> None:
    """When a response is given up on, its fallback runs, once, for the same line and tier."""
    from risingtide.dispatch import RetryPolicy

    path = tmp_path / "c.yaml"
    path.write_text(FALLBACK_CONFIG.format(state=tmp_path / "s.sqlite", port=free_port()))
    rt = Runtime(load_config(path), clock=FakeClock(T0))
    await rt.start(serve_http=False, schedule=False)
    try:
        assert rt.dispatcher is not None and rt.store is not None
        rt.dispatcher._policy = RetryPolicy(max_attempts=1)
        await raise_revenues(rt)
        await rt.dispatcher.run_due()  # the webhook fails (nothing listens): dead at once
        await rt.dispatcher.run_due()  # ...and its fallback runs
        runs = [
            (e.data["response"], e.data["outcome"])
            for e in reversed(rt.store.history(kinds=["response"], limit=20))
        ]
        assert runs == [("text_duty_manager", "dead"), ("email_duty_managers", "ok")]
        await rt.dispatcher.run_due()
        assert rt.store.pending_count() == 0
    finally:
        await rt.shutdown()


def test_fallback_mistakes_are_config_errors(tmp_path: Path) -> None:
    """An unknown fallback, a response that is its own fallback, and a chain are refused."""
    from risingtide.config import check_config

    text = FALLBACK_CONFIG.format(state=tmp_path / "s.sqlite", port=9)
    cases = {
        "fallback: email_duty_managers": ("fallback: emial", 'unknown response "emial"'),
        "fallback: email_duty_managers\n": (
            "fallback: text_duty_manager\n", "a response cannot be its own fallback"),
    }  # fmt: skip
    for old, (new, message) in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text.replace(old, new, 1))
        _, errors, _ = check_config(path)
        assert any(message in str(e) and ":" in str(e) for e in errors), errors
    chained = text.replace(
        "email_duty_managers: { type: log, message: the SMS could not be sent }",
        "email_duty_managers: { type: log, fallback: text_duty_manager }",
    )
    path = tmp_path / "c.yaml"
    path.write_text(chained)
    _, errors, _ = check_config(path)
    assert any("has a fallback of its own" in str(e) for e in errors), errors


ROTATING_CONFIG = """
server: {{ state_file: {state} }}
sources:
  fast: {{ type: scripted }}
lines:
  revenues: {{ name: Revenues, source: {{ use: fast, avg_wait: 100 }}, framework: f }}
frameworks:
  f:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }}, for: 10s,
          clear: {{ avg_wait: {{ below: 0.8 * target }} }}, responses: [tell_intranet] }}
responses:
  tell_intranet:
    type: webhook
    url: "${{file:{secret}}}"
"""


async def test_a_reload_picks_up_a_rotated_secret_file(tmp_path: Path) -> None:
    """A webhook URL read from ``${file:…}``: rotate the file, reload (no restart), and the
    next post goes to the new URL; the old one hears no more."""
    heard: list[str] = []

    async def hook(request: Request) -> Response:
        heard.append(request.url.path)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{token}", hook, methods=["POST"])])
    secret = tmp_path / "intranet_hook"
    path = tmp_path / "c.yaml"
    path.write_text(ROTATING_CONFIG.format(state=tmp_path / "s.sqlite", secret=secret))
    async with Loopback(app) as base:
        secret.write_text(f"{base}/old-token\n")
        rt = Runtime(load_config(path), clock=FakeClock(T0))
        await rt.start(serve_http=False, schedule=False)
        try:
            assert rt.dispatcher is not None and isinstance(rt.clock, FakeClock)
            await raise_revenues(rt)
            await rt.dispatcher.run_due()
            assert heard == ["/old-token"]
            secret.write_text(f"{base}/new-token\n")
            assert await rt.reload() == []
            for _ in range(3):  # calm, then rise again: a second tier-1 post
                scripted(rt, "fast").push(
                    QueueStats(line="revenues", at=rt.clock.now(), avg_wait=10)
                )
                await rt.poller.poll("fast")  # type: ignore[union-attr]
                rt.evaluate_all(rt.clock.now())
                rt.clock.advance(5)
            assert rt.states["revenues"].tier == 0
            await raise_revenues(rt)
            await rt.dispatcher.run_due()
            assert heard == ["/old-token", "/new-token"]
        finally:
            await rt.shutdown()


async def test_a_big_poll_is_taken_in_chunks_with_the_loop_free_between(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll over ``POLL_CHUNK`` lines is evaluated a chunk at a time: another task runs
    between the chunks, and every line's figures arrive and are evaluated in the end."""
    import risingtide.runtime as runtime_module

    monkeypatch.setattr(runtime_module, "POLL_CHUNK", 1)
    clock = runtime.clock
    assert isinstance(clock, FakeClock)
    clock.advance(15)
    now = clock.now()
    seen: list[tuple[str, set[str]]] = []
    taken = runtime._take_poll

    def take(source_id: str, stats: object, errors: object, *, last: bool) -> None:
        taken(source_id, stats, errors, last=last)  # type: ignore[arg-type]
        seen.append(("chunk", set(runtime.latest) & {"revenues", "waste"}))

    monkeypatch.setattr(runtime, "_take_poll", take)

    async def between() -> None:
        seen.append(("other task", set(runtime.latest) & {"revenues", "waste"}))

    stats = {
        line: QueueStats(line=line, at=now, avg_wait=400) for line in ("revenues", "waste")
    }
    runtime._on_poll("fast", stats, {})
    other = asyncio.ensure_future(between())
    for _ in range(10):  # let the chunks and the other task run
        await asyncio.sleep(0)
    await other
    assert [kind for kind, _ in seen] == ["chunk", "other task", "chunk"]
    assert seen[0][1] == {"revenues"} and seen[-1][1] == {"revenues", "waste"}
    assert all(runtime.states[line].when_since[0] == now for line in stats)
