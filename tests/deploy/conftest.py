"""Shared pieces for the deploy tests: paths, tools, and real daemons and Prometheus on loopback.

Every process here listens on a free 127.0.0.1 port, works in a temp directory, is waited
for with a deadline, and is stopped (SIGTERM, then SIGKILL) when its test is done.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DEMO_CONFIG = REPO / "config" / "rising-tide.yaml"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool(name: str) -> str:
    """The path of a tool; a missing one fails (scripts/install-system-deps installs it)."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-system-deps (make test does)")
    return found


def run(args: list[str], *, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def wait_for(what: str, check: Callable[[], Any], *, timeout: float, proc: Process) -> Any:
    """Poll ``check`` until it returns something truthy, or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}:\n{proc.log_tail()}")


@dataclass
class Process:
    """A background process with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start_process(name: str, args: list[str], cwd: Path, url: str) -> Process:
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, popen, log, url)


def start_daemon(config: Path, cwd: Path, name: str = "rising-tide") -> Process:
    """``risingtide run`` on ``config`` in ``cwd``, ready (``/readyz`` is 200) or failed."""
    port = free_port()
    proc = start_process(
        name,
        [sys.executable, "-m", "risingtide", "run", "-c", str(config),
         "--listen", f"127.0.0.1:{port}"],
        cwd,
        f"http://127.0.0.1:{port}",
    )  # fmt: skip
    try:
        wait_for(
            "the daemon's /readyz",
            lambda: httpx.get(proc.url + "/readyz", timeout=2).status_code == 200,
            timeout=30,
            proc=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return proc


def start_prometheus(config: Path, cwd: Path) -> Process:
    """A real ``prometheus`` on ``config`` with its TSDB under ``cwd``, ready or failed."""
    port = free_port()
    proc = start_process(
        "prometheus",
        [tool("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={cwd / 'tsdb'}", "--storage.tsdb.retention.time=1h",
         f"--web.listen-address=127.0.0.1:{port}"],
        cwd,
        f"http://127.0.0.1:{port}",
    )  # fmt: skip
    try:
        wait_for(
            "Prometheus's /-/ready",
            lambda: httpx.get(proc.url + "/-/ready", timeout=2).status_code == 200,
            timeout=30,
            proc=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return proc


# A line the test config adds to the demo: figures fixed by a scripted source, a framework
# whose tiers hold at once, and a switch aimed at a simulator that does not serve the line.
# Within a few seconds of start it has changed tier, run responses (ok and dead), sent
# notifications and left a dead letter, and it goes on doing so every 2 seconds: every
# series the dashboard reads then exists, and rates over them are not 0.
DRILL_LINE = "drill"
DRILL = {
    "source": {"fixed": {"type": "scripted", "interval": "1s"}},
    "line": {
        "name": "Drill (always high)",
        "framework": "drill",
        "source": {
            "use": "fixed", "avg_wait": 400, "longest_wait": 700, "calls_waiting": 12,
            "agents_available": 0, "agents_staffed": 6, "offered": 80, "answered": 60,
            "abandoned": 20, "window": 900, "avg_handle_time": 300,
        },
    },
    "framework": {
        "stale_after": "1m",
        "tiers": [
            {"level": 1, "name": "rising", "when": {"calls_waiting": {"at_least": 0}},
             "for": "1s", "clear_for": "1h",
             "responses": ["notify_duty_manager", "callback_on"]},
            {"level": 2, "name": "high", "when": {"avg_wait": {"above": "300s"}},
             "for": "2s", "clear_for": "1h", "responses": ["notify_duty_manager"],
             # reminders keep counters moving, so rate() over them is not 0
             "repeat": {"every": "2s", "responses": ["notify_duty_manager", "callback_on"]}},
        ],
    },
}  # fmt: skip


def fast_demo_config() -> dict[str, Any]:
    """The shipped demo, made to happen in seconds: 1 s polls and evaluations, plus the drill."""
    config: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config["server"] = {
        "state_file": "state/rising-tide.sqlite", "evaluate_every": "1s", "log_format": "json",
    }  # fmt: skip
    for source in config["sources"].values():
        source["interval"] = "1s"
    config["sources"].update(DRILL["source"])
    config["lines"][DRILL_LINE] = DRILL["line"]
    config["frameworks"]["drill"] = DRILL["framework"]
    return config


@dataclass
class Stack:
    """A daemon on the fast demo and a Prometheus scraping it every second, with rules.yml."""

    daemon: Process
    prometheus: Process
    lines: list[str]
    state_file: Path

    def query(self, expr: str) -> dict[str, Any]:
        """Prometheus's answer to an instant query (``status``, ``data``, maybe ``error``)."""
        response = httpx.get(
            self.prometheus.url + "/api/v1/query", params={"query": expr}, timeout=10
        )
        body: dict[str, Any] = response.json()
        return body

    def wait_for_data(self, exprs: list[str], *, timeout: float) -> dict[str, list[Any]]:
        """Query each expression until all return data; fail naming the errors and the empties."""
        results: dict[str, list[Any]] = {}
        errors: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while True:
            for expr in exprs:
                if results.get(expr):
                    continue
                body = self.query(expr)
                if body["status"] != "success":
                    errors[expr] = body.get("error", "")
                else:
                    results[expr] = body["data"]["result"]
            if errors:
                pytest.fail(f"Prometheus rejected queries: {errors}")
            empty = [e for e in exprs if not results.get(e)]
            if not empty:
                return results
            if time.monotonic() > deadline:
                pytest.fail(f"no data after {timeout:.0f}s for:\n" + "\n".join(empty))
            for proc in (self.daemon, self.prometheus):
                if proc.popen.poll() is not None:
                    pytest.fail(f"{proc.name} exited:\n{proc.log_tail()}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running daemon (fast demo config) scraped every second by a real Prometheus."""
    work = tmp_path_factory.mktemp("stack")
    config = fast_demo_config()
    config_file = work / "rising-tide.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    daemon = start_daemon(config_file, work)
    try:
        prom_config = work / "prometheus.yml"
        prom_config.write_text(
            yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(DEPLOY / "prometheus" / "rules.yml")],
                "scrape_configs": [{
                    "job_name": "rising-tide",
                    "static_configs": [{"targets": [daemon.url.removeprefix("http://")]}],
                }],
            }),
            encoding="utf-8",
        )  # fmt: skip
        prometheus = start_prometheus(prom_config, work)
        try:
            state_file = work / config["server"]["state_file"]
            yield Stack(daemon, prometheus, list(config["lines"]), state_file)
        finally:
            prometheus.stop()
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def demo_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """``risingtide run`` on the shipped demo config, exactly as shipped, in a temp directory."""
    daemon = start_daemon(DEMO_CONFIG, tmp_path_factory.mktemp("demo"), name="demo")
    try:
        yield daemon
    finally:
        daemon.stop()


# The Deployment's pod and its one container, of whichever manifests the test module reads
# (its own ``docs`` fixture: the base kubernetes/ or the built kubernetes-ha/ overlay).
@pytest.fixture(scope="module")
def pod(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = docs["Deployment"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["containers"]
    result: dict[str, Any] = only
    return result
