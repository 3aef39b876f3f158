"""Benchmark one poll of 1,000 lines from an ``http_json`` feed on loopback.

A real HTTP server (uvicorn) on 127.0.0.1 serves a wallboard document with 1,000 queue
records; the ``http_json`` source maps each to a line's ``QueueStats``. Measured: one whole
poll (request, JSON decode, mapping), best of several, and the server's share of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from risingtide.clock import SystemClock
from risingtide.ports import BuildContext
from risingtide.sources import SOURCE_TYPES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, write_section

LINES = 1000
POLLS = 20


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _document() -> bytes:
    queues = [
        {"id": f"Q{i:04d}", "realtime": {"waiting": i % 17, "longestMs": 1000 * (i % 300),
                                         "free": i % 5},
         "interval": {"offered": 100 + i % 50, "answered": 90, "abandonedPct": 4.5,
                      "avgWaitSec": 30 + i % 200}}
        for i in range(LINES)
    ]  # fmt: skip
    return json.dumps({"updated": int(time.time() * 1000), "queues": queues}).encode()


async def _run() -> dict[str, float]:
    body = _document()

    async def wallboard(_: Request) -> Response:
        return Response(body, media_type="application/json")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _Server(uvicorn.Config(Starlette(routes=[Route("/wallboard", wallboard)]),
                                    host="127.0.0.1", port=port, log_config=None,
                                    access_log=False, lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # bounded: a server that never starts ends the run
        if server.started:
            break
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError("the loopback feed did not start")
    plugin = SOURCE_TYPES["http_json"]
    settings = plugin.settings_model.model_validate({
        "url": f"http://127.0.0.1:{port}/wallboard",
        "lines_at": "queues", "key": "id",
        "map": {"calls_waiting": "realtime.waiting",
                "longest_wait": {"path": "realtime.longestMs", "unit": "ms"},
                "agents_available": "realtime.free", "offered": "interval.offered",
                "answered": "interval.answered",
                "abandon_rate": {"path": "interval.abandonedPct", "unit": "percent"},
                "avg_wait": "interval.avgWaitSec"},
    })  # fmt: skip
    lines = {f"line{i}": plugin.line_model.model_validate({"queue": f"Q{i:04d}"})
             for i in range(LINES)}  # fmt: skip
    source = plugin.build("feed", settings, lines, BuildContext(clock=SystemClock()))
    times: list[float] = []
    try:
        for _ in range(POLLS):
            started = time.perf_counter()
            result = await source.poll()
            times.append(time.perf_counter() - started)
            failed = [line for line, v in result.items() if isinstance(v, Exception)]
            if len(result) != LINES or failed:
                raise RuntimeError(f"the poll did not map every line: {failed[:3]}")
    finally:
        await source.aclose()
        server.should_exit = True
        await task
    return {
        "best_ms": min(times) * 1000,
        "median_ms": statistics.median(times) * 1000,
        "document_kb": len(body) / 1024,
    }


def run() -> dict[str, float]:
    """One poll of 1,000 lines, best and median of ``POLLS``, in milliseconds."""
    return asyncio.run(_run())


def main() -> None:
    """Run the benchmark, print the figures and update RESULTS.md."""
    f = run()
    print(f"http_json: 1,000 lines in one poll — best {f['best_ms']:.1f} ms, "
          f"median {f['median_ms']:.1f} ms ({f['document_kb']:.0f} KiB)")  # fmt: skip
    write_section(
        "Feed poll",
        f"{machine()}\n\n"
        f"`benchmarks/feed.py`: one poll of an `http_json` source for {LINES:,} lines from a "
        f"wallboard document ({f['document_kb']:.0f} KiB) served by uvicorn on 127.0.0.1: "
        f"request, JSON decode and mapping of every figure. {POLLS} polls.\n\n"
        "| lines | best | median |\n|---:|---:|---:|\n"
        f"| {LINES:,} | {f['best_ms']:.1f} ms | {f['median_ms']:.1f} ms |\n\n"
        "Reproduce: `.venv/bin/python benchmarks/feed.py`.",
    )


if __name__ == "__main__":
    main()
