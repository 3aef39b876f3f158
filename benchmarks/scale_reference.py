"""The reference beside ``scale.py``: Prometheus + Alertmanager on the same N queues.

The loopback feed of ``scale.py`` also serves its figures as a Prometheus exposition
(``/metrics``: nine series a queue, the same numbers as the JSON wallboard); Debian's
Prometheus scrapes it every 15 s and evaluates two alert rules (the two tiers' ``when``:
average wait over 180 s, over 300 s) for every queue, and sends to Debian's Alertmanager.
Measured: start → both ready, their RSS after the warm-up (and peak), the time of a query
for every series (min / median / max of ``scale.SCRAPES``), and how many series it holds.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

START_LIMIT = 120.0  # each tool may take this long to become ready
QUERY = '{__name__=~"csc_.+"}'


def exposition(document: bytes) -> bytes:
    """The wallboard document as Prometheus text: one series per queue and figure."""
    queues = json.loads(document)["queues"]
    figures = {
        "csc_calls_waiting": lambda q: q["realtime"]["waiting"],
        "csc_longest_wait_seconds": lambda q: q["realtime"]["longestMs"] / 1000,
        "csc_agents_available": lambda q: q["realtime"]["free"],
        "csc_agents_staffed": lambda q: q["realtime"]["staffed"],
        "csc_offered": lambda q: q["interval"]["offered"],
        "csc_answered": lambda q: q["interval"]["answered"],
        "csc_abandon_ratio": lambda q: q["interval"]["abandonedPct"] / 100,
        "csc_avg_wait_seconds": lambda q: q["interval"]["avgWaitSec"],
        "csc_avg_handle_seconds": lambda q: q["interval"]["avgHandleSec"],
    }
    out: list[str] = []
    for name, read in figures.items():
        out.append(f"# TYPE {name} gauge")
        out.extend(f'{name}{{line="{q["id"]}"}} {read(q)}' for q in queues)
    return ("\n".join(out) + "\n").encode()


_RULES = """\
groups:
  - name: tiers
    rules:
      - alert: Rising
        expr: csc_avg_wait_seconds > 180
      - alert: High
        expr: csc_avg_wait_seconds > 300
"""


def _files(work: Path, target: str, ports: dict[str, int]) -> None:
    (work / "rules.yml").write_text(_RULES)
    (work / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 15s, scrape_timeout: 10s, evaluation_interval: 15s}}\n"
        f"rule_files: [{work / 'rules.yml'}]\n"
        "alerting:\n  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['127.0.0.1:{ports['am']}']}}]\n"
        "scrape_configs:\n  - job_name: feed\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    (work / "alertmanager.yml").write_text(
        "route: {receiver: none, group_by: [alertname]}\nreceivers: [{name: none}]\n"
    )


def _rss(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _first_scrape(base: str, started: float) -> None:
    """Wait (bounded) until Prometheus has scraped the feed once; say why if it cannot."""
    while time.perf_counter() - started < START_LIMIT:
        targets = httpx.get(base + "/api/v1/targets", timeout=10).json()["data"]
        active = targets["activeTargets"]
        if active and active[0]["health"] == "up":
            return
        if active and active[0]["lastError"]:
            raise RuntimeError(f"Prometheus cannot scrape the feed: {active[0]['lastError']}")
        time.sleep(0.5)
    raise RuntimeError("Prometheus did not scrape the feed in time")


def measure(
    n: int, target: str, ports: dict[str, int], warmup: float, queries: int
) -> dict[str, Any]:
    """Run both tools against ``target`` (host:port serving ``/metrics``); take the figures."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if prometheus is None or alertmanager is None:
        raise RuntimeError("Debian's prometheus and prometheus-alertmanager are needed")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _files(work, target, ports)
        commands = {
            "am": [alertmanager, f"--config.file={work / 'alertmanager.yml'}",
                   f"--storage.path={work / 'am'}", "--cluster.listen-address=",
                   f"--web.listen-address=127.0.0.1:{ports['am']}"],
            "prom": [prometheus, f"--config.file={work / 'prometheus.yml'}",
                     f"--storage.tsdb.path={work / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{ports['prom']}"],
        }  # fmt: skip
        started = time.perf_counter()
        procs = {
            name: subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env={**os.environ})
            for name, cmd in commands.items()
        }  # fmt: skip
        try:
            base = f"http://127.0.0.1:{ports['prom']}"
            urls = [base + "/-/ready", f"http://127.0.0.1:{ports['am']}/-/ready"]
            while not all(_ready(u) for u in urls):
                if time.perf_counter() - started > START_LIMIT:
                    raise RuntimeError("Prometheus or Alertmanager was not ready in time")
                time.sleep(0.1)
            ready_s = time.perf_counter() - started
            _first_scrape(base, started)
            time.sleep(warmup)
            times: list[float] = []
            count = 0
            for _ in range(queries):
                asked = time.perf_counter()
                answer = httpx.get(base + "/api/v1/query", params={"query": QUERY}, timeout=120)
                answer.raise_for_status()
                times.append(time.perf_counter() - asked)
                count = len(answer.json()["data"]["result"])
            prom, prom_peak = _rss(procs["prom"].pid)
            am, am_peak = _rss(procs["am"].pid)
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return {
        "lines": n, "ready_s": ready_s, "series": count,
        "query_s": {"min": min(times), "median": statistics.median(times), "max": max(times)},
        "prometheus_mb": prom, "prometheus_peak_mb": prom_peak,
        "alertmanager_mb": am, "alertmanager_peak_mb": am_peak,
        "load": os.getloadavg()[0],
    }  # fmt: skip
