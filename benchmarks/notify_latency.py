"""Benchmark notification latency: from the evaluation tick that raises a tier to the webhook.

A whole ``Runtime`` on a ``FakeClock`` with lines on the ``scripted`` source and one
``webhook`` response on tier 1, pointed at a receiver on 127.0.0.1 served by uvicorn in the
same event loop. Each surge pushes figures over the threshold for every line, polls, and
then times, with ``time.perf_counter``, from the start of the raising tick
(``runtime.evaluate_all(now)`` then ``dispatcher.run_due()``) to the moment the receiver
handles each line's webhook. The lines then calm and the next surge starts. Measured for
1 line and for 100 lines breaching at the same moment (per-line latency, and the time until
the last of the 100 arrived) with the webhook's default ``group_wait: 0s`` (one webhook per
line), and for 100 lines with ``group_wait: 5s`` (one digest webhook naming all 100): there
the clock is moved on by the group wait, and the time runs from the dispatcher pass that
sends the digest (``run_due``) to its arrival, i.e. the cost of the batch itself; a person
reading it waits the group wait on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.logs import configure_logging
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

SURGES_1 = 50  # surges of one line
SURGES_100 = 10  # surges of 100 lines at once (1,000 webhooks)
DIGEST_WAIT = 5  # seconds of group wait for the digest run (the channels' default)
ARRIVAL_TIMEOUT = 30.0  # seconds a surge may wait for its webhooks before the run fails
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SECRET = "notify-latency-benchmark-secret"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Receiver:
    """Records when each line's webhook arrived (``perf_counter``), and wakes the waiter."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.expected = 0
        self.posts = 0
        self.all_in = asyncio.Event()

    def expect(self, n: int) -> None:
        self.arrivals = {}
        self.posts = 0
        self.expected = n
        self.all_in.clear()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = json.loads(await request.body())
            now = time.perf_counter()
            # A digest names every line it carries; a single event names its one line.
            for line in [e["line"] for e in body["lines"]] if "lines" in body else [body["line"]]:
                self.arrivals.setdefault(line, now)
            self.posts += 1
            if len(self.arrivals) >= self.expected:
                self.all_in.set()
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def _config(lines: int, url: str, state_file: Path, group_wait: int = 0) -> dict[str, Any]:
    return {
        "server": {"state_file": str(state_file), "evaluate_every": "5s", "log_format": "json"},
        "defaults": {"target_wait": "180s", "framework": "bench", "source": "scripted",
                     "hours": "always"},
        "sources": {"scripted": {"type": "scripted", "interval": "5s"}},
        "lines": {f"line{i:03d}": {"name": f"Line {i}", "source": {"use": "scripted"}}
                  for i in range(lines)},
        "frameworks": {"bench": {"stale_after": "1h", "stale_alert_after": "2h", "tiers": [{
            "level": 1, "name": "rising",
            "when": {"avg_wait": {"above": "target"}}, "for": "5s",
            "clear": {"avg_wait": {"below": "0.8 * target"}}, "clear_for": "5s",
            "responses": ["tell_intranet"],
        }]}},
        "responses": {"tell_intranet": {"type": "webhook", "url": url, "secret": SECRET,
                                        "group_wait": f"{group_wait}s"}},
    }  # fmt: skip


async def _tick(runtime: Runtime, clock: FakeClock, source: ScriptedSource) -> None:
    """Five seconds on: poll, then evaluate and dispatch."""
    assert runtime.poller is not None
    assert runtime.dispatcher is not None
    clock.advance(5)
    await runtime.poller.poll(source.name)
    runtime.evaluate_all(clock.now())
    await runtime.dispatcher.run_due()


def _push(source: ScriptedSource, lines: list[str], now: datetime, avg_wait: float) -> None:
    for line in lines:
        source.push(QueueStats(line=line, at=now, avg_wait=avg_wait, calls_waiting=5))


async def _surges(
    n_lines: int, surges: int, receiver: Receiver, url: str, group_wait: int = 0
) -> list[list[float]]:
    """Per surge, every line's latency in seconds (from the sending pass, with a wait)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        config = _config(n_lines, url, Path(tmp) / "state.sqlite", group_wait)
        path.write_text(yaml.safe_dump(config))
        clock = FakeClock(T0)
        runtime = Runtime(load_config(path, env={}), clock=clock)
        await runtime.start(serve_http=False, schedule=False)
        try:
            assert runtime.poller is not None
            assert runtime.dispatcher is not None
            source = runtime.sources["scripted"]
            assert isinstance(source, ScriptedSource)
            lines = list(runtime.config.lines)
            _push(source, lines, clock.now(), 30.0)
            await _tick(runtime, clock, source)
            results: list[list[float]] = []
            for _ in range(surges):
                # Over threshold: the first tick starts the hold, the second raises the tier.
                _push(source, lines, clock.now(), 400.0)
                await _tick(runtime, clock, source)
                if any(runtime.states[line].tier for line in lines):
                    raise RuntimeError("a line rose before the timed tick")
                clock.advance(5)
                await runtime.poller.poll(source.name)
                receiver.expect(n_lines)
                started = time.perf_counter()
                runtime.evaluate_all(clock.now())
                await runtime.dispatcher.run_due()
                if group_wait:
                    if receiver.posts:
                        raise RuntimeError("a digest went before its group wait")
                    clock.advance(group_wait)
                    started = time.perf_counter()
                    await runtime.dispatcher.run_due()
                await asyncio.wait_for(receiver.all_in.wait(), ARRIVAL_TIMEOUT)
                if group_wait and receiver.posts != 1:
                    raise RuntimeError(f"expected one digest, got {receiver.posts} posts")
                if any(runtime.states[line].tier != 1 for line in lines):
                    raise RuntimeError("not every line rose to tier 1")
                results.append([at - started for at in receiver.arrivals.values()])
                # Calm again: under the clear threshold for clear_for.
                _push(source, lines, clock.now(), 30.0)
                for _ in range(3):  # bounded: clear_for is one tick
                    await _tick(runtime, clock, source)
                if any(runtime.states[line].tier for line in lines):
                    raise RuntimeError("the lines did not calm")
            return results
        finally:
            await runtime.shutdown()


def _pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100), in milliseconds."""
    ordered = sorted(values)
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(p) - 1] * 1000


async def _run() -> dict[str, float]:
    receiver = Receiver()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _Server(uvicorn.Config(receiver.app(), host="127.0.0.1", port=port, log_config=None,
                                    access_log=False, lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # bounded: a server that never starts ends the run
        if server.started:
            break
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError("the loopback receiver did not start")
    url = f"http://127.0.0.1:{port}/hook"
    try:
        one = await _surges(1, SURGES_1, receiver, url)
        hundred = await _surges(100, SURGES_100, receiver, url)
        digest = await _surges(100, SURGES_100, receiver, url, group_wait=DIGEST_WAIT)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    one_flat = [x for surge in one for x in surge]
    flat = [x for surge in hundred for x in surge]
    last = [max(surge) for surge in hundred]
    return {
        "lines_1_p50_ms": _pct(one_flat, 50),
        "lines_1_p99_ms": _pct(one_flat, 99),
        "lines_100_p50_ms": _pct(flat, 50),
        "lines_100_p99_ms": _pct(flat, 99),
        "lines_100_all_p50_ms": _pct(last, 50),
        "lines_100_all_max_ms": max(last) * 1000,
        "digest_100_p50_ms": _pct([max(surge) for surge in digest], 50),
        "digest_100_max_ms": max(max(surge) for surge in digest) * 1000,
    }


def run() -> dict[str, float]:
    """p50 and p99 latency (ms) for 1 line and for 100 lines breaching together."""
    # The runtime logs every tier change and response: keep that out of the timings' way.
    configure_logging("json", "warning", stream=io.StringIO())
    return asyncio.run(_run())


def main() -> None:
    """Run the benchmark, print the figures and update RESULTS.md."""
    f = run()
    print(
        f"notify latency: 1 line p50 {f['lines_1_p50_ms']:.1f} ms,"
        f" p99 {f['lines_1_p99_ms']:.1f} ms;"
        f" 100 lines p50 {f['lines_100_p50_ms']:.1f} ms, p99 {f['lines_100_p99_ms']:.1f} ms,"
        f" all 100 in {f['lines_100_all_p50_ms']:.1f} ms (p50), {f['lines_100_all_max_ms']:.1f} ms"
        " (max);"
        f" one digest of 100 lines p50 {f['digest_100_p50_ms']:.1f} ms,"
        f" max {f['digest_100_max_ms']:.1f} ms"
    )
    write_section(
        "Notification latency",
        f"{machine()}\n\n"
        "`benchmarks/notify_latency.py`: a whole `Runtime` on a fake clock, lines on the "
        "`scripted` source, one signed `webhook` response on tier 1 to a receiver on "
        "127.0.0.1 (uvicorn, same event loop). Wall-clock time (`time.perf_counter`) from the "
        "start of the tick that raises the tier (`evaluate_all` — engine, SQLite commit — "
        "then `dispatcher.run_due()`) to the receiver handling each line's webhook. "
        f"{SURGES_1} surges of 1 line; {SURGES_100} surges of 100 lines breaching at the same "
        f"moment ({SURGES_100 * 100} webhooks, latency per line).\n\n"
        "| lines breaching | p50 ms | p99 ms | all arrived, p50 ms | all arrived, max ms |\n"
        "|---:|---:|---:|---:|---:|\n"
        f"| 1 | {f['lines_1_p50_ms']:.1f} | {f['lines_1_p99_ms']:.1f} | | |\n"
        f"| 100 | {f['lines_100_p50_ms']:.1f} | {f['lines_100_p99_ms']:.1f} | "
        f"{f['lines_100_all_p50_ms']:.1f} | {f['lines_100_all_max_ms']:.1f} |\n\n"
        f"With `group_wait: {DIGEST_WAIT}s` the 100 lines go as **one** digest webhook; from "
        "the dispatcher pass that sends it (after the group wait) to its arrival: "
        f"p50 {f['digest_100_p50_ms']:.1f} ms, max {f['digest_100_max_ms']:.1f} ms "
        f"({SURGES_100} surges). A reader gets it {DIGEST_WAIT} s + that after the breach.\n\n"
        "Reproduce: `.venv/bin/python benchmarks/notify_latency.py`.",
    )


if __name__ == "__main__":
    main()
