"""The latency benchmark's two loopback servers: the flipping feed and the webhook receiver.

Both are stdlib ``ThreadingHTTPServer``\\s on 127.0.0.1 in daemon threads of the benchmark's
own process, so the flip instants and the arrival instants are read from one clock
(``time.time()``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from latency_report import Arrival

LINE = "council_tax"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> bool:
    """True when a GET of ``url`` answers 2xx within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):
        return False


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 with ``handler``, serving in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class Feed(_Server):
    """Serves one line's average wait as JSON (``/feed``) and as a gauge (``/metrics``)."""

    def __init__(self, avg_wait: float) -> None:
        self._lock = threading.Lock()
        self._value = avg_wait
        self._hits: Counter[str] = Counter()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                value = feed.read(self.path)
                if self.path == "/feed":
                    body = json.dumps({"queues": {LINE: {"avg_wait": value}}}).encode()
                    kind = "application/json"
                elif self.path == "/metrics":
                    body = (
                        "# HELP csc_avg_wait_seconds Average wait before answer.\n"
                        "# TYPE csc_avg_wait_seconds gauge\n"
                        f'csc_avg_wait_seconds{{line="{LINE}"}} {value}\n'
                    ).encode()
                    kind = "text/plain; version=0.0.4"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(Handler)

    def read(self, path: str) -> float:
        """The value now, counting one read of ``path``."""
        with self._lock:
            self._hits[path] += 1
            return self._value

    def set(self, avg_wait: float) -> float:
        """Flip to ``avg_wait``; the instant (``time.time()``) from which every read sees it."""
        with self._lock:
            self._value = avg_wait
            return time.time()

    def hits(self, path: str) -> int:
        """How many times ``path`` was read."""
        with self._lock:
            return self._hits[path]


class Receiver(_Server):
    """Records each webhook's kind and arrival instant (``time.time()``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()  # the request line and headers are in: it has arrived
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = _kind(self.path, body)
                if kind is not None:
                    receiver.add(Arrival(kind, at))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(Handler)

    def add(self, arrival: Arrival) -> None:
        """Record one webhook."""
        with self._lock:
            self._arrivals.append(arrival)

    def arrivals(self) -> list[Arrival]:
        """Every webhook so far, in arrival order."""
        with self._lock:
            return list(self._arrivals)


def _kind(path: str, body: bytes) -> str | None:
    """The webhook's kind from its path (and, for Alertmanager, its ``status``)."""
    if path == "/risingtide/apply":
        return "rt_apply"
    if path == "/risingtide/undo":
        return "rt_undo"
    if path == "/alertmanager":
        try:
            status = json.loads(body).get("status")
        except (ValueError, AttributeError):
            return None
        return {"firing": "am_firing", "resolved": "am_resolved"}.get(status)
    return None
