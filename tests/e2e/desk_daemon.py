"""A ``risingtide run`` process with users and tokens, for the CLI and API-fuzzing tests.

Lines read fixed figures from a ``scripted`` source: Council Tax waits 400 s on average,
so it is at tier 2 from the first evaluation; Waste and Highways are calm. The secret key
comes from the environment, as in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from risingtide.api.auth import hash_token

SECRET = "e2e-secret-Zq8LmW3nXv7RtY2pKs9HdF4jBc6"
TOKENS = {
    "vera": "rt_e2e-vera-0123456789abcdefghijklmnopqrstuvwxyz",
    "priya": "rt_e2e-priya-0123456789abcdefghijklmnopqrstuvwxyz",
    "ada": "rt_e2e-ada-0123456789abcdefghijklmnopqrstuvwxyz",
}
PASSWORD = "a long enough password"
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

CONFIG = """
server:
  state_file: state/rising-tide.sqlite
  evaluate_every: 1s
  log_format: json
  secret_key: "${{RISINGTIDE_SECRET_KEY}}"
sources:
  fixed: {{ type: scripted, interval: 1s }}
lines:
  council_tax: {{ name: Council Tax, source: {{ use: fixed, avg_wait: 400 }} }}
  waste: {{ name: Waste & Recycling, source: {{ use: fixed, avg_wait: 100 }} }}
  highways: {{ name: Highways, source: {{ use: fixed, avg_wait: 100 }} }}
defaults:
  framework: standard
frameworks:
  standard:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }}, responses: [notify] }}
      - {{ level: 2, name: high, when: {{ avg_wait: {{ above: 300s }} }}, responses: [notify] }}
responses:
  notify: {{ type: log, message: "Duty manager: a line has risen", page: [duty_managers] }}
people:
  asha: {{ name: Asha Patel, email: asha.patel@example.gov.uk }}
  ben: {{ name: Ben Okafor, mobile: "07700 900456" }}
groups:
  duty_managers:
    rota:
      - {{ days: mon-fri, hours: "08:00-17:00", on_duty: asha }}
      - {{ days: mon-fri, hours: "17:00-08:00", on_duty: ben }}
users:
  vera: {{ name: Vera Viewer, role: viewer, tokens: ["{vera}"] }}
  priya: {{ name: Priya Shah, role: duty_manager, password_hash: "{hash}", tokens: ["{priya}"] }}
  ada: {{ name: Ada Admin, role: admin, tokens: ["{ada}"] }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    """A running daemon: its URL, config file and log."""

    url: str
    config: Path
    log: Path
    proc: subprocess.Popen[bytes]


@contextmanager
def desk_daemon(cwd: Path) -> Iterator[Daemon]:
    """Start the daemon in ``cwd`` and wait until it is ready; stop it with SIGTERM after."""
    config = cwd / "desk.yaml"
    config.write_text(
        CONFIG.format(hash=_CHEAP.hash(PASSWORD), **{k: hash_token(v) for k, v in TOKENS.items()})
    )
    port = free_port()
    log = cwd / "daemon.log"
    env = {**os.environ, "RISINGTIDE_SECRET_KEY": SECRET}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "risingtide", "run", "-c", str(config),
             "--listen", f"127.0.0.1:{port}"],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    daemon = Daemon(url=f"http://127.0.0.1:{port}", config=config, log=log, proc=proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"daemon exited ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(daemon.url + "/readyz", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"daemon not ready:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        yield daemon
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung shutdown
            proc.kill()
            proc.wait(5)
