"""``risingtide outbox`` against a real daemon process: list, retry and dismiss dead letters.

The daemon is the desk daemon of ``tests.e2e.desk_daemon`` (Council Tax at tier 2 from
the first evaluation) with its notification sent to a webhook on a loopback receiver that
answers 400 until a test "fixes" it, so the notification is given up on at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from risingtide.api.auth import hash_token
from tests.e2e.desk_daemon import CONFIG, PASSWORD, SECRET, TOKENS, free_port

VERA = {"Authorization": f"Bearer {TOKENS['vera']}"}


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers ``status``; keeps (idempotency key, body)."""

    url: str
    status: int = 400
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Daemon:
    url: str
    receiver: Receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            r = box[0]
            r.got.append((self.headers.get("Idempotency-Key", ""), json.loads(body)))
            self.send_response(r.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": %s}' % (b"true" if r.status < 300 else b"false"))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Daemon]:
    """The desk daemon, with ``notify`` a webhook to ``receiver``."""
    cwd = tmp_path_factory.mktemp("cli-outbox")
    text = CONFIG.format(
        hash=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD),
        **{k: hash_token(v) for k, v in TOKENS.items()},
    )
    text, n = re.subn(r"(?m)^  notify: \{.*\}$", f"  notify: {{ type: webhook, url: "
                      f'"{receiver.url}" }}', text)  # fmt: skip
    assert n == 1
    config = cwd / "desk.yaml"
    config.write_text(text)
    port = free_port()
    log = cwd / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "risingtide", "run", "-c", str(config),
             "--listen", f"127.0.0.1:{port}"],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "RISINGTIDE_SECRET_KEY": SECRET},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url + "/readyz", timeout=2).is_success, "ready", proc, log)
        yield Daemon(url=url, receiver=receiver)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung shutdown
            proc.kill()
            proc.wait(5)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"daemon exited ({proc.returncode}):\n{log.read_text() if log else ''}")
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.1)


def risingtide(daemon: Daemon, *args: str, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RISINGTIDE_TOKEN"}
    if token is not None:
        env["RISINGTIDE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "risingtide", "outbox", *args, "--url", daemon.url],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def dead(daemon: Daemon) -> list[dict[str, Any]]:
    answer = httpx.get(f"{daemon.url}/api/v1/outbox?status=dead", headers=VERA, timeout=5)
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def gauge(daemon: Daemon, name: str) -> float:
    text = httpx.get(f"{daemon.url}/metrics", timeout=5).text
    match = re.search(rf"^risingtide_{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


def test_list_then_retry_a_dead_letter_after_the_receiver_is_fixed(daemon: Daemon) -> None:
    """``outbox --dead`` shows the dead notification with its key and error; a viewer may
    not retry it (exit 1); a duty manager's ``outbox retry KEY`` sends it again once the
    receiver is fixed, and the dead count goes back to 0."""
    wait_for(lambda: len(dead(daemon)) == 1, "the notification is dead")
    (entry,) = dead(daemon)
    key = entry["key"]
    assert key.startswith("council_tax/1/tier_changed/2/")

    listed = risingtide(daemon, "--dead", token=TOKENS["vera"])
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[:3] == ["1 dead letter, newest first:", "", key]
    assert re.fullmatch(
        r"  notify \(apply\) for council_tax, tier 2: gave up \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
        r"after 1 attempt",
        lines[3],
    ), lines[3]
    assert lines[4].startswith("  last error: response 'notify': webhook answered HTTP 400")
    everything = risingtide(daemon, token=TOKENS["vera"])
    assert everything.stdout.startswith("no responses waiting to run\n\n1 dead letter")
    assert gauge(daemon, "outbox_dead") == 1

    refused = risingtide(daemon, "retry", key, token=TOKENS["vera"])
    assert (refused.returncode, refused.stderr) == (
        1, "risingtide: Vera Viewer is a viewer; this needs a duty manager or above\n",
    )  # fmt: skip

    daemon.receiver.status = 200
    done = risingtide(daemon, "retry", key, "--note", "receiver fixed", token=TOKENS["priya"])
    assert (done.returncode, done.stdout) == (
        0, "notify (apply) for council_tax, tier 2, requeued to run now by Priya Shah\n",
    ), done.stderr  # fmt: skip
    wait_for(lambda: gauge(daemon, "outbox_pending") == 0, "the retry has run")
    assert daemon.receiver.got[-1][0] == key
    assert daemon.receiver.got[-1][1]["line"] == "council_tax"
    assert gauge(daemon, "outbox_dead") == 0
    assert risingtide(daemon, "--dead", token=TOKENS["vera"]).stdout == "no dead letters\n"

    again = risingtide(daemon, "retry", key, token=TOKENS["priya"])
    assert again.returncode == 1
    assert again.stderr == (
        f"risingtide: cannot requeue {key!r}: it is done (it ran successfully); only a dead "
        "letter can be requeued\n"
    )


def test_dismiss_a_dead_letter_with_a_note(daemon: Daemon) -> None:
    """A declared tier's notification dies; ``outbox dismiss KEY --note`` takes it off the
    dead count; dismissing it twice, or an unknown key, is exit 1."""
    daemon.receiver.status = 400
    declared = subprocess.run(
        [sys.executable, "-m", "risingtide", "declare", "waste", "--level", "1", "--for", "1h",
         "--reason", "bin day change", "--url", daemon.url, "--token", TOKENS["priya"]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert declared.returncode == 0, declared.stderr
    wait_for(lambda: any(e["line"] == "waste" for e in dead(daemon)), "it is dead")
    (key,) = [e["key"] for e in dead(daemon) if e["line"] == "waste"]
    before = gauge(daemon, "outbox_dead")
    done = risingtide(daemon, "dismiss", key, "--note", "told them by phone",
                      token=TOKENS["priya"])  # fmt: skip
    assert (done.returncode, done.stdout) == (
        0, "notify (apply) for waste, tier 1, dismissed by Priya Shah\n",
    ), done.stderr  # fmt: skip
    assert gauge(daemon, "outbox_dead") == before - 1
    twice = risingtide(daemon, "dismiss", key, token=TOKENS["priya"])
    assert twice.returncode == 1
    assert "it was dismissed; only a dead letter can be dismissed" in twice.stderr
    unknown = risingtide(daemon, "dismiss", "waste/nope", token=TOKENS["priya"])
    assert (unknown.returncode, unknown.stderr) == (
        1, "risingtide: no outbox entry has the key 'waste/nope'\n",
    )  # fmt: skip


def test_usage_mistakes_exit_2(daemon: Daemon) -> None:
    """No key, or a limit out of range: argparse's usage error, exit 2."""
    assert risingtide(daemon, "retry", token=TOKENS["priya"]).returncode == 2
    assert risingtide(daemon, "--limit", "0", token=TOKENS["vera"]).returncode == 2
