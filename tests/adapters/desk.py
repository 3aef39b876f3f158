"""A running daemon with users, for the duty manager's desk tests: real HTTP on loopback.

Three users — ``vera`` (viewer), ``priya`` (duty_manager), ``ada`` (admin) — each with a
password and an API token. Password hashes use tiny argon2 costs so sign-in tests are
quick (verification reads the costs from the hash); the daemon's own hashing is untouched.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from risingtide.api.auth import hash_token
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = "test-secret-Zq8LmW3nXv7RtY2pKs9HdF4jBc6"
ENV = {"RISINGTIDE_SECRET_KEY": SECRET}
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

PASSWORDS = {
    "vera": "vera's long password",
    "priya": "priya's long password",
    "ada": "ada's long password",
}
TOKENS = {
    "vera": "rt_vera-token-0123456789abcdefghijklmnopqrstuvwxyz",
    "priya": "rt_priya-token-0123456789abcdefghijklmnopqrstuvwxyz",
    "ada": "rt_ada-token-0123456789abcdefghijklmnopqrstuvwxyz",
}
NAMES = {"vera": "Vera Viewer", "priya": "Priya Shah", "ada": "Ada Admin"}
ROLES = {"vera": "viewer", "priya": "duty_manager", "ada": "admin"}

CONFIG = """
server:
  state_file: {state}
  evaluate_every: 5s
{server_extra}
sources:
  fixed: {{ type: scripted, interval: 1s, timeout: 1s }}
lines:
  revenues: {{ name: Revenues & Benefits, source: {{ use: fixed, avg_wait: 100 }} }}
  waste: {{ name: Waste & Recycling, source: {{ use: fixed, avg_wait: 100 }} }}
defaults:
  framework: standard
frameworks:
  standard:
    stale_after: 10m
    stale_alert_after: 20m
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
        for: 10s
        clear: {{ avg_wait: {{ below: 0.8 * target }} }}
        clear_for: 10s
        responses: [notify]
      - level: 2
        name: high
        when: {{ avg_wait: {{ above: 300s }} }}
        for: 10s
        clear: {{ avg_wait: {{ below: 240s }} }}
        clear_for: 10s
        responses: [notify]
responses:
  notify: {{ type: log, message: duty manager please look }}
{users}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def users_yaml() -> str:
    rows = ["users:"]
    for uid in ("vera", "priya", "ada"):
        password_hash = CHEAP.hash(PASSWORDS[uid])
        rows.append(
            f"  {uid}: {{ name: {NAMES[uid]}, role: {ROLES[uid]}, "
            f'password_hash: "{password_hash}", tokens: ["{hash_token(TOKENS[uid])}"] }}'
        )
    return "\n".join(rows)


def write_config(
    tmp_path: Path,
    *,
    users: bool = True,
    secret: bool = True,
    server_extra: str = "",
    tweak: Callable[[str], str] | None = None,
) -> Path:
    """The desk's config file; ``tweak`` may rewrite its YAML text (e.g. add ``people:``)."""
    extra = ['  secret_key: "${RISINGTIDE_SECRET_KEY}"'] if secret else []
    if server_extra:
        extra.append(server_extra)
    path = tmp_path / "rising-tide.yaml"
    text = CONFIG.format(
        state=tmp_path / "state.sqlite",
        server_extra="\n".join(extra),
        users=users_yaml() if users else "",
    )
    path.write_text(tweak(text) if tweak is not None else text)
    return path


def bearer(uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[uid]}"}


@dataclass
class Desk:
    """A started runtime serving HTTP on ``url``, its FakeClock, and a client for it."""

    rt: Runtime
    clock: FakeClock
    http: httpx.AsyncClient
    url: str

    async def raise_line(self, line: str = "revenues", avg_wait: float = 400) -> None:
        """Push ``avg_wait`` for ``line`` and evaluate until the tiers' 10 s have held."""
        src = self.rt.sources["fixed"]
        assert isinstance(src, ScriptedSource) and self.rt.poller is not None
        for _ in range(3):
            src.push(QueueStats(line=line, at=self.clock.now(), avg_wait=avg_wait))
            await self.rt.poller.poll("fixed")
            self.rt.evaluate_all(self.clock.now())
            self.clock.advance(5)

    async def sign_in(
        self, uid: str, password: str | None = None, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        """Fetch the sign-in form and post it, as a browser would (cookies kept)."""
        client = client or self.http
        form = await client.get("/login")
        csrf = re.search(
            r'action="/login"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)"',
            form.text,
        )
        assert csrf is not None, form.text
        return await client.post(
            "/login",
            data={
                "username": uid,
                "password": PASSWORDS[uid] if password is None else password,
                "csrf_token": csrf.group(1),
            },
        )


@asynccontextmanager
async def running_desk(
    tmp_path: Path,
    *,
    users: bool = True,
    secret: bool = True,
    server_extra: str = "",
    tweak: Callable[[str], str] | None = None,
) -> AsyncIterator[Desk]:
    """A daemon with (or without) users on a free loopback port, on a FakeClock at T0.

    The secret is in the environment while it runs, as reloads read it from there.
    """
    saved = os.environ.get("RISINGTIDE_SECRET_KEY")
    os.environ["RISINGTIDE_SECRET_KEY"] = SECRET
    port = free_port()
    path = write_config(
        tmp_path, users=users, secret=secret, server_extra=server_extra, tweak=tweak
    )
    config = load_config(path, ENV)
    clock = FakeClock(T0)
    rt = Runtime(config, clock=clock, port=port)
    await rt.start(schedule=False)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Desk(rt=rt, clock=clock, http=http, url=url)
    finally:
        await rt.shutdown()
        if saved is None:
            del os.environ["RISINGTIDE_SECRET_KEY"]
        else:
            os.environ["RISINGTIDE_SECRET_KEY"] = saved
