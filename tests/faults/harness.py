"""What the fault tests share: a platform on loopback and ``risingtide run`` as a process.

``Platform`` is one threaded HTTP server on 127.0.0.1 standing in for everything the daemon
talks to: the wallboard it polls (``GET /stats``, figures the test sets per queue), the
switches it applies and undoes (``PUT``/``DELETE /flags/NAME``, kept in ``flags``), and the
webhook it notifies (``POST /hook``). Every request's ``Idempotency-Key`` is counted, so a
test can check that no key was delivered more than twice (at-least-once, one crash's worth
of duplicate at most per kill).

``Daemon`` runs ``python -m risingtide run`` on a config the test writes, logging to a file,
and reads its API. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

#: Three lines on one wallboard: their queue ids there.
QUEUES = {"council_tax": "CT", "waste": "WR", "revenues": "RB"}

CONFIG = """
server:
  state_file: {state}
  evaluate_every: 1s
  log_format: json
sources:
  board:
    type: http_json
    interval: 1s
    timeout: 3s
    request_budget: 2s
    url: {url}/stats
    lines_at: queues
    key: id
    map: {{ avg_wait: wait, calls_waiting: waiting }}
lines:
{lines}
frameworks:
  surge:
    stale_after: 1m
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: 100s }} }}
        for: 1s
        clear: {{ avg_wait: {{ below: 50s }} }}
        clear_for: 2s
        responses: [hook, ivr]
        repeat: {{ every: 2s, responses: [hook] }}
      - level: 2
        name: high
        when: {{ avg_wait: {{ above: 300s }} }}
        for: 2s
        clear: {{ avg_wait: {{ below: 250s }} }}
        clear_for: 2s
        responses: [hook, deflect]
responses:
  hook: {{ type: webhook, url: "{url}/hook", group_wait: 0s }}
  ivr:
    type: http_action
    apply: {{ method: PUT, url: "{url}/flags/{{{{ line }}}}-ivr", body: {{ "on": true }} }}
    undo: {{ method: DELETE, url: "{url}/flags/{{{{ line }}}}-ivr" }}
  deflect:
    type: http_action
    apply: {{ method: PUT, url: "{url}/flags/{{{{ line }}}}-deflect", body: {{ "on": true }} }}
    undo: {{ method: DELETE, url: "{url}/flags/{{{{ line }}}}-deflect" }}
"""


def write_config(path: Path, url: str, state: Path, lines: list[str] | None = None) -> Path:
    """The surge config for ``lines`` (default: every line of ``QUEUES``) at ``path``."""
    chosen = list(QUEUES) if lines is None else lines
    block = "\n".join(
        f"  {line}: {{ name: {line}, framework: surge, source: {{ use: board, queue: "
        f"{QUEUES[line]} }} }}"
        for line in chosen
    )
    path.write_text(CONFIG.format(state=state, url=url, lines=block))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Platform:
    """The wallboard, the switches and the webhook, on one loopback port (see module doc)."""

    def __init__(self) -> None:
        self.waits: dict[str, float] = dict.fromkeys(QUEUES.values(), 10.0)
        self.flags: dict[str, Any] = {}
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Platform:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def surge(self, wait: float, lines: list[str] | None = None) -> None:
        """Set the average wait the wallboard shows for ``lines`` (default: all)."""
        with self.lock:
            for line in lines or list(QUEUES):
                self.waits[QUEUES[line]] = wait

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return None

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _count(self) -> None:
                key = self.headers.get("Idempotency-Key")
                if key:
                    with platform.lock:
                        platform.keys[key] += 1

            def do_GET(self) -> None:
                with platform.lock:
                    queues = [
                        {"id": q, "wait": w, "waiting": int(w // 20)}
                        for q, w in platform.waits.items()
                    ]
                self._answer(200, {"queues": queues})

            def do_PUT(self) -> None:
                self._body()
                self._count()
                with platform.lock:
                    platform.flags[self.path.removeprefix("/flags/")] = True
                self._answer(200, {"ok": True})

            def do_DELETE(self) -> None:
                self._count()
                with platform.lock:
                    platform.flags.pop(self.path.removeprefix("/flags/"), None)
                self._answer(200, {"ok": True})

            def do_POST(self) -> None:
                self._body()
                self._count()
                self._answer(200, {"ok": True})

        return Handler


class Daemon:
    """One ``risingtide run`` process on ``config``, logging to ``log``."""

    def __init__(
        self, config: Path, log: Path, cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        """Start it; ``env`` adds to (or replaces) the test's environment."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "risingtide", "run", "-c", str(config),
                 "--listen", f"127.0.0.1:{self.port}"],
                cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            )  # fmt: skip

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=5).json()

    def tiers(self) -> dict[str, int]:
        return {line["line"]: line["tier"] for line in self.get("/api/v1/lines")["lines"]}

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                result = check()
            except (httpx.HTTPError, KeyError, ValueError):
                result = None
            if result:
                return result
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}:\n{self.tail()}")

    def ready(self) -> None:
        self.wait_until("readiness", lambda: httpx.get(self.url + "/readyz", timeout=2).is_success)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
                return -9
        return self.proc.returncode

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def metric(self, name: str) -> float | None:
        for row in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if row.startswith(name + " "):
                return float(row.split()[1])
        return None
