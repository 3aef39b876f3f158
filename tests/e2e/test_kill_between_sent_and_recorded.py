"""kill -9 between "sent" and "recorded": at most one duplicate, with the same idempotency key.

For every notification channel, a real ``risingtide run`` process raises tier 1 on a line
fed fixed figures, and that tier's one response goes to a receiver on 127.0.0.1 that
stands in for the channel (an HTTP endpoint, or an SMTP relay for email). The receiver
takes the first request in full (the message has been *sent*) and does not answer, so the
daemon is left waiting between sending and *recording* the outcome; the test kills it with
SIGKILL right then, starts it again on the same state file, and the receiver answers
normally from then on.

Delivery is at-least-once, so the restarted daemon must send the order once more (the
outbox entry was never recorded done), and only once, with the same idempotency key as the
first time, as the channel carries it:

- ``webhook``: the ``Idempotency-Key`` header;
- ``govuk_notify`` (sms): the ``reference`` field of the body;
- ``teams``: the card's footer text ``Rising Tide · {line} · {key}``;
- ``slack``: the context block ``Rising Tide · {line} · {key}``;
- ``email``: the ``X-Rising-Tide-Key`` header (and the same ``Message-ID``, derived from it).

The key must also be the one the daemon's history records for the response, and the
outbox entry with that key must be ``done`` after the restart.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LINE = "council_tax"
RESPONSE = "under_test"
#: How long the receiver holds the first request unanswered, at most.
HOLD = 30.0
#: How long to wait for the daemon to send the first time, and to send again after restart.
FIRST_SEND_WITHIN = 20.0
RESEND_WITHIN = 20.0
#: How long to watch for a third request after the second.
QUIET_FOR = 2.0

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
NOTIFY_SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
NOTIFY_KEY = f"rising_tide-test-{SERVICE_ID}-{NOTIFY_SECRET}"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
MAIL_FROM = "Rising Tide <rising-tide@council.example.gov.uk>"

CONFIG = """
server:
  state_file: state/rising-tide.sqlite
  evaluate_every: 1s
  log_format: json
sources:
  fixed: {{ type: scripted, interval: 1s }}
lines:
  {line}:
    name: Council Tax
    framework: one_tier
    source: {{ use: fixed, avg_wait: 400, longest_wait: 700, calls_waiting: 12 }}
{more_lines}frameworks:
  one_tier:
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
        clear_for: 1h
        responses: [{response}]
responses:
  {response}: {settings}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the receiver


@dataclass
class Delivery:
    """One request as the receiver saw it: the key as the channel carries it, and extras."""

    key: str | None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """Records every delivery; holds the first unanswered until ``release`` (or ``HOLD``)."""

    deliveries: list[Delivery] = field(default_factory=list)
    first_arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arrive(self, delivery: Delivery) -> bool:
        """Record ``delivery``; True when it is the first (to be held, not answered)."""
        with self._lock:
            self.deliveries.append(delivery)
            first = len(self.deliveries) == 1
        if first:
            self.first_arrived.set()
        return first

    def count(self) -> int:
        with self._lock:
            return len(self.deliveries)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)


# ----------------------------------------------------------------- HTTP channels (4 of 5)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _footer_key(texts: list[str]) -> str | None:
    """The key in a ``Rising Tide · {line} · {key}`` footer among ``texts``."""
    prefix = f"Rising Tide · {LINE} · "
    keys = [t.removeprefix(prefix) for t in texts if t.startswith(prefix)]
    return keys[0] if len(keys) == 1 else None


def webhook_key(headers: dict[str, str], body: bytes) -> str | None:
    return headers.get("idempotency-key")


def notify_key(headers: dict[str, str], body: bytes) -> str | None:
    data = _json(body)
    if not isinstance(data, dict) or not headers.get("authorization", "").startswith("Bearer "):
        return None
    reference = data.get("reference")
    return reference if isinstance(reference, str) else None


def teams_key(headers: dict[str, str], body: bytes) -> str | None:
    data = _json(body)
    try:
        blocks = data["attachments"][0]["content"]["body"]
    except (TypeError, KeyError, IndexError):
        return None
    return _footer_key([b.get("text", "") for b in blocks if b.get("type") == "TextBlock"])


def slack_key(headers: dict[str, str], body: bytes) -> str | None:
    data = _json(body)
    try:
        blocks = data["blocks"]
    except (TypeError, KeyError):
        return None
    texts = [e.get("text", "") for b in blocks if b.get("type") == "context" for e in b["elements"]]
    # Slack mrkdwn escapes &, < and >.
    unescaped = [t.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for t in texts]
    return _footer_key(unescaped)


@dataclass(frozen=True)
class HttpChannel:
    """How an HTTP channel carries the key, what it answers, and its response settings."""

    path: str
    key_of: Callable[[dict[str, str], bytes], str | None]
    status: int
    answer: bytes
    settings: Callable[[str], dict[str, Any]]  # base URL -> the response's settings


HTTP_CHANNELS: dict[str, HttpChannel] = {
    "webhook": HttpChannel(
        "/hooks/rising-tide", webhook_key, 200, b'{"ok": true}',
        lambda url: {"type": "webhook", "url": url + "/hooks/rising-tide"},
    ),
    "govuk_notify": HttpChannel(
        "/v2/notifications/sms", notify_key, 201,
        json.dumps({"id": "740e5834-3a29-46b4-9a6f-000000000001",
                    "content": {"body": "…", "from_number": "COUNCIL"},
                    "template": {"id": TEMPLATE_ID, "version": 1}}).encode(),
        lambda url: {"type": "govuk_notify", "api_key": "${RT_NOTIFY_API_KEY}",
                     "base_url": url, "kind": "sms", "template_id": TEMPLATE_ID,
                     "to": ["07700 900123"]},
    ),
    "teams": HttpChannel(
        "/workflows/csc/invoke", teams_key, 202, b"",
        lambda url: {"type": "teams", "url": "${RT_HOOK_URL}"},
    ),
    "slack": HttpChannel(
        "/services/T000/B000/XXXX", slack_key, 200, b"ok",
        lambda url: {"type": "slack", "url": "${RT_HOOK_URL}"},
    ),
}  # fmt: skip


@contextmanager
def http_receiver(channel: HttpChannel, receiver: Receiver) -> Iterator[str]:
    """Serve ``channel``'s endpoint on 127.0.0.1 in a thread; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            key = channel.key_of(headers, body) if self.path == channel.path else None
            extra = {"path": self.path, "body": body.decode("utf-8", "replace")}
            if receiver.arrive(Delivery(key, extra)):
                # Sent, not answered: the daemon now waits to record it. Close unanswered.
                receiver.release.wait(HOLD)
                self.close_connection = True
                return
            self.send_response(channel.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(channel.answer)))
            self.end_headers()
            self.wfile.write(channel.answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


# --------------------------------------------------------------------------- email (SMTP)


@dataclass
class Relay:
    """An aiosmtpd handler: records each message's key; holds the first DATA unanswered."""

    receiver: Receiver

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        key = msg.get("X-Rising-Tide-Key")
        extra = {"message_id": str(msg.get("Message-ID", ""))}
        if self.receiver.arrive(Delivery(None if key is None else str(key), extra)):
            # The whole message is in; the relay does not say "250" until released.
            await asyncio.to_thread(self.receiver.release.wait, HOLD)
            return "451 4.3.0 not answered in time"
        return "250 Message accepted for delivery"


@contextmanager
def smtp_receiver(receiver: Receiver) -> Iterator[int]:
    """Run aiosmtpd on 127.0.0.1 (its own thread) for the block; yield the port."""
    controller = Controller(Relay(receiver), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        receiver.release.set()
        controller.stop()


@contextmanager
def channel_receiver(
    channel: str, receiver: Receiver
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """The receiver for ``channel``, running; yield the response's settings and its env."""
    if channel == "email":
        with smtp_receiver(receiver) as port:
            settings = {"type": "email", "host": "127.0.0.1", "port": port,
                        "security": "none", "from": MAIL_FROM,
                        "to": ["csc.duty@council.example.gov.uk"]}  # fmt: skip
            yield settings, {}
        return
    spec = HTTP_CHANNELS[channel]
    with http_receiver(spec, receiver) as url:
        env = {"RT_NOTIFY_API_KEY": NOTIFY_KEY, "RT_HOOK_URL": url + spec.path}
        yield spec.settings(url), env


# --------------------------------------------------------------------------- the daemon


class Daemon:
    """One ``risingtide run`` process in ``cwd``, logging to ``{name}.log``."""

    def __init__(self, cwd: Path, config: Path, name: str, env: dict[str, str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "risingtide", "run", "-c", str(config),
                 "--listen", f"127.0.0.1:{port}"],
                cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
            )  # fmt: skip

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"daemon exited ({self.proc.returncode}):\n{self.tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 15 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def events(self) -> list[dict[str, Any]]:
        answer = httpx.get(self.url + "/api/v1/events?kind=response&limit=1000", timeout=5)
        answer.raise_for_status()
        return list(answer.json()["events"])


def wait_for(what: str, check: Callable[[], bool], timeout: float, daemon: Daemon) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        daemon.alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}:\n{daemon.tail()}")
        time.sleep(0.05)


@contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        daemon.stop()


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("channel", ["webhook", "govuk_notify", "teams", "slack", "email"])
def test_kill_9_between_sent_and_recorded_repeats_once_with_the_same_key(
    tmp_path: Path, channel: str
) -> None:
    """The order is sent exactly twice, both times with the key the history records."""
    receiver = Receiver()
    with channel_receiver(channel, receiver) as (settings, env):
        config = tmp_path / "kill.yaml"
        # group_wait 0s: the daemon sends at once rather than waiting to batch other lines.
        settings = {**settings, "group_wait": "0s"}
        config.write_text(
            CONFIG.format(
                line=LINE, more_lines="", response=RESPONSE, settings=json.dumps(settings)
            )
        )

        # 1. The first daemon raises tier 1 and sends; the receiver takes it and holds.
        with running(Daemon(tmp_path, config, "first", env)) as first:
            wait_for("the first send", receiver.first_arrived.is_set, FIRST_SEND_WITHIN, first)
            # 2. Sent, not recorded: kill -9 now.
            first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        assert receiver.count() == 1, "the daemon sent again before it was killed"
        receiver.release.set()  # from now on every request is answered

        # 3. Restart on the same state file: the order is sent once more, and only once.
        with running(Daemon(tmp_path, config, "second", env)) as second:
            wait_for("the repeat after restart", lambda: receiver.count() >= 2,
                     RESEND_WITHIN, second)  # fmt: skip
            time.sleep(QUIET_FOR)  # room for a third, which must not come
            second.alive()
            history = [e for e in second.events() if e["data"].get("response") == RESPONSE]
        log = second.tail()

    deliveries = receiver.snapshot()
    keys = [d.key for d in deliveries]
    assert len(deliveries) == 2, f"expected the order exactly twice, got {deliveries}\n{log}"
    assert keys[0] is not None, f"the {channel} request carried no idempotency key: {deliveries}"
    assert keys[0] == keys[1], f"the repeat used another idempotency key: {keys}"
    key = keys[0]
    if channel == "email":
        message_ids = [d.extra["message_id"] for d in deliveries]
        assert message_ids[0] == message_ids[1], message_ids
        assert hashlib.sha256(key.encode()).hexdigest()[:32] in message_ids[0], message_ids

    # The history: one run of the response, ok, under the key the channel carried.
    runs = [(e["line"], e["data"]["action"], e["data"]["key"], e["data"]["outcome"])
            for e in history]  # fmt: skip
    assert runs == [(LINE, "apply", key, "ok")], history

    # The outbox entry with that key is done (read after the daemon has stopped).
    state = tmp_path / "state" / "rising-tide.sqlite"
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT status FROM outbox WHERE key = ?", (key,)).fetchall()
    finally:
        db.close()
    assert rows == [("done",)], rows


#: A second line on the same source, rising in the same evaluation as the first.
REVENUES = """\
  revenues:
    name: Revenues & Benefits
    framework: one_tier
    source: {use: fixed, avg_wait: 500, calls_waiting: 20}
"""


def test_kill_9_mid_batch_resends_the_same_batch_under_its_key(tmp_path: Path) -> None:
    """Two lines rising together go out as one message; killed before it is recorded, the
    restarted daemon sends that same message (both lines, the batch's key) once more."""
    receiver = Receiver()
    channel = HTTP_CHANNELS["webhook"]
    with http_receiver(channel, receiver) as base:
        settings = {**channel.settings(base), "group_wait": "2s"}
        config = tmp_path / "batch.yaml"
        config.write_text(
            CONFIG.format(
                line=LINE, more_lines=REVENUES, response=RESPONSE, settings=json.dumps(settings)
            )
        )
        with running(Daemon(tmp_path, config, "first", {})) as first:
            wait_for("the first send", receiver.first_arrived.is_set, FIRST_SEND_WITHIN, first)
            first.kill()
        receiver.release.set()
        with running(Daemon(tmp_path, config, "second", {})) as second:
            wait_for("the repeat after restart", lambda: receiver.count() >= 2,
                     RESEND_WITHIN, second)  # fmt: skip
            time.sleep(QUIET_FOR)
            second.alive()
            log = second.tail()

    deliveries = receiver.snapshot()
    assert len(deliveries) == 2, f"expected the batch exactly twice, got {deliveries}\n{log}"
    keys = [d.key for d in deliveries]
    assert keys[0] == keys[1] and keys[0] is not None and "/batch/" in keys[0], keys
    bodies = [json.loads(d.extra["body"]) for d in deliveries]
    assert [b["event"] for b in bodies] == ["digest", "digest"]
    assert [sorted(line["line"] for line in b["lines"]) for b in bodies] == [
        ["council_tax", "revenues"]
    ] * 2
    state = tmp_path / "state" / "rising-tide.sqlite"
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT line, status, batch FROM outbox ORDER BY line").fetchall()
    finally:
        db.close()
    assert rows == [("council_tax", "done", keys[0]), ("revenues", "done", keys[0])], rows
