"""What the replicas' tests share: several ``risingtide run`` processes on one PostgreSQL.

``Platform`` is the fault tests' loopback wallboard, switches and webhook
(``tests.faults.harness``), here also noting **which replica** made each request: every
replica runs the same config, whose URLs carry ``?by=${RT_NAME}`` (the config's own
environment substitution), and each process gets its own ``RT_NAME``. So a test can say
not only that no key went out more than twice, but that a paused leader sent nothing after
it resumed.

``Replica`` is one daemon process (``RISINGTIDE_REPLICA`` names it); ``leads`` reads its
``risingtide_leader`` gauge. Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.faults.harness import CONFIG as FAULTS_CONFIG
from tests.faults.harness import QUEUES, Daemon
from tests.faults.harness import Platform as _Platform

#: A short lease, so takeovers happen within a test's patience; renewed every second.
LEASE = 3.0
EVALUATE_EVERY = 1.0

#: The duty manager's API token (its hash is in the config), for commands on any replica.
TOKEN = "rt_replicas-test-token-0123456789abcdef"

AUTH = {"Authorization": f"Bearer {TOKEN}"}

#: The fault tests' surge config on a shared database, every URL saying which replica
#: asks (``?by=${RT_NAME}``, substituted per process by the config's own ``${…}``).
_BY = "?by=${{RT_NAME}}"
CONFIG = (
    FAULTS_CONFIG.replace(
        "server:\n  state_file: {state}\n",
        "server:\n  database: {database}\n  partitions: {partitions}\n  lease: {lease}s\n"
        "  secret_key: replicas-test-secret-key-0123456789abcdef\n",
    )
    .replace("url: {url}/stats\n", f"url: {{url}}/stats{_BY}\n")
    .replace('/hook"', f'/hook{_BY}"')
    .replace('-ivr"', f'-ivr{_BY}"')
    .replace('-deflect"', f'-deflect{_BY}"')
    .replace(
        "sources:\n",
        "users:\n  duty:\n    name: Duty Manager\n    role: duty_manager\n"
        '    tokens: ["sha256:{token_hash}"]\nsources:\n',
    )
)
assert CONFIG.count("?by=") == 6 and "{database}" in CONFIG, "the fault config changed shape"


def write_config(
    path: Path, url: str, database: str, *, partitions: int = 1, lease: float = LEASE
) -> Path:
    """The surge config of ``tests.faults.harness`` on a shared ``database``."""
    block = "\n".join(
        f"  {line}: {{ name: {line}, framework: surge, source: {{ use: board, queue: {q} }} }}"
        for line, q in QUEUES.items()
    )
    path.write_text(
        CONFIG.format(
            database=database,
            url=url,
            lines=block,
            partitions=partitions,
            lease=lease,
            token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(),
        )
    )
    return path


@dataclass(frozen=True)
class Request:
    """One request the platform took: when (monotonic), from which replica, what."""

    at: float
    replica: str
    method: str
    path: str
    key: str | None


class Platform(_Platform):
    """The fault tests' platform, noting which replica made each request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def effects_by(self, replica: str, after: float = 0.0) -> list[Request]:
        """Requests that change something (not polls) ``replica`` made after ``after``."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.replica == replica and r.method != "GET" and r.at > after
            ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self
        base = super()._handler()

        class Handler(base):  # type: ignore[valid-type, misc]
            def _note(self) -> None:
                split = urlsplit(self.path)
                by = parse_qs(split.query).get("by", ["?"])[0]
                with platform.lock:
                    platform.requests.append(
                        Request(
                            time.monotonic(),
                            by,
                            self.command,
                            split.path,
                            self.headers.get("Idempotency-Key"),
                        )
                    )
                self.path = split.path

            def do_GET(self) -> None:  # noqa: N802
                self._note()
                super().do_GET()

            def do_PUT(self) -> None:  # noqa: N802
                self._note()
                super().do_PUT()

            def do_DELETE(self) -> None:  # noqa: N802
                self._note()
                super().do_DELETE()

            def do_POST(self) -> None:  # noqa: N802
                self._note()
                super().do_POST()

        return Handler


_LEADER = re.compile(r'^risingtide_leader\{partition="(\d+)"\} (\S+)$', re.MULTILINE)


class Replica(Daemon):
    """One ``risingtide run`` process named ``name`` on ``config``, logging to ``log``."""

    def __init__(self, name: str, config: Path, log: Path, cwd: Path) -> None:
        super().__init__(config, log, cwd, env={"RISINGTIDE_REPLICA": name, "RT_NAME": name})
        self.name, self.config, self.cwd = name, config, cwd

    def again(self) -> Replica:
        """A new process with the same name, config and log (a restart)."""
        return Replica(self.name, self.config, self.log, self.cwd)

    def get(self, path: str) -> Any:
        """A read of the API, as the duty manager (the config has users)."""
        answer = httpx.get(self.url + path, timeout=5, headers=AUTH)
        answer.raise_for_status()
        return answer.json()

    def leads(self) -> set[int]:
        """The partitions this replica says it leads (its ``risingtide_leader`` gauge)."""
        answer = httpx.get(self.url + "/metrics", timeout=5, headers=AUTH)
        answer.raise_for_status()
        return {int(p) for p, v in _LEADER.findall(answer.text) if float(v) == 1.0}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_until(what, check, [self], timeout)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> int:
        """SIGTERM (resumed first if paused); its exit code, -9 when it had to be killed."""
        if self.alive():
            self.resume()
        return super().stop()


def wait_until(
    what: str, check: Callable[[], Any], replicas: Iterable[Replica], timeout: float = 30
) -> Any:
    """Poll ``check`` until it is truthy; fail naming ``what`` with the replicas' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, KeyError, ValueError):
            result = None
        if result:
            return result
        time.sleep(0.1)
    logs = "\n".join(f"--- {r.name}:\n{r.tail()}" for r in replicas)
    pytest.fail(f"timed out waiting for {what}:\n{logs}")


def leaders(replicas: Iterable[Replica], partition: int = 0) -> list[Replica]:
    """The live replicas that say they lead ``partition``."""
    found = []
    for replica in replicas:
        if replica.alive():
            try:
                if partition in replica.leads():
                    found.append(replica)
            except httpx.HTTPError:
                continue
    return found


def switches_applied_again(platform: Platform) -> dict[str, int]:
    """Switch applies (PUT) whose idempotency key reached the platform more than once."""
    with platform.lock:
        puts = [r.key for r in platform.requests if r.method == "PUT" and r.key]
    return {key: puts.count(key) for key in set(puts) if puts.count(key) > 1}


def keys_over_twice(platform: Platform) -> dict[str, int]:
    """Idempotency keys the platform took more than twice (none, when all is well)."""
    return {k: n for k, n in platform.keys.items() if n > 2}
