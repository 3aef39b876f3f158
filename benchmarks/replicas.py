"""10,000 lines at 15 s polling on one replica and on two, sharing one PostgreSQL.

The loopback feed and the 10k-line config of ``benchmarks/scale.py``, with the store on a
throwaway PostgreSQL cluster (``tests/pgcluster.py``: initdb in a temp dir, a free port)
instead of a SQLite file, and the lines spread over ``PARTITIONS`` partitions. Measured:

* **one replica**: start → ``/readyz``, its CPU (% of one core, from ``/proc``'s utime +
  stime over ``WINDOW`` seconds after a warm-up) and RSS;
* **two replicas** on a fresh database: each one's CPU and RSS over the same window, and
  the partitions each leads;
* **takeover of a half**: kill -9 one of the two and time until the other leads every
  partition (its ``risingtide_leader`` gauge), against the bound the issue sets
  (``lease + evaluate_every``, 10 s + 5 s by default), in ``TRIALS`` trials;
* PostgreSQL's own size for 10k lines (``pg_database_size``) and the server's RSS.

    .venv/bin/python benchmarks/replicas.py            # 10,000 lines (a few minutes)
    .venv/bin/python benchmarks/replicas.py --lines 2000 --trials 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import scale  # noqa: E402
from results import machine, write_section  # noqa: E402

from tests.pgcluster import Cluster, running_cluster  # noqa: E402

FIGURES = HERE / "replicas.json"  # the last run's figures, for --write-only
PARTITIONS = 8
LEASE = 10.0  # the defaults: server.lease and server.evaluate_every
EVALUATE_EVERY = 5.0
WARMUP = 20.0
WINDOW = 60.0  # four polls at 15 s
TRIALS = 3
TAKEOVER_LIMIT = 120.0
_LEADER = re.compile(r'^risingtide_leader\{partition="(\d+)"\} (\S+)$', re.MULTILINE)


def _config(n: int, feed: str, port: int, database: str) -> str:
    """scale.py's config of N lines, on the shared database, in partitions."""
    text = scale._config(n, feed, port, Path("unused.sqlite"))
    return text.replace(
        "  state_file: unused.sqlite\n",
        f"  database: {database}\n  partitions: {PARTITIONS}\n",
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _leads(base: str) -> set[int]:
    text = httpx.get(base + "/metrics", timeout=60).text
    return {int(p) for p, v in _LEADER.findall(text) if float(v) == 1.0}


@contextlib.contextmanager
def _replica(name: str, config: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "RISINGTIDE_REPLICA": name}
    proc = subprocess.Popen(
        [sys.executable, "-m", "risingtide", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            scale._stop(proc)


@contextlib.contextmanager
def _start(n: int, feed: str, cluster: Cluster, tmp: Path, names: list[str]) -> Iterator[Any]:
    """(database URL, [(name, base URL, process, ready seconds)]) for replicas started on a
    fresh database; they are stopped at the end of the block."""
    database = cluster.new_database()
    with contextlib.ExitStack() as stack:
        started = []
        for name in names:
            port = scale._free_port()
            config = tmp / f"{name}.yaml"
            config.write_text(_config(n, feed, port, database))
            proc = stack.enter_context(_replica(name, config, tmp))
            started.append((name, f"http://127.0.0.1:{port}", proc, time.perf_counter()))
        yield database, [(name, base, proc, scale._wait_ready(base, proc, at))
                         for name, base, proc, at in started]  # fmt: skip


def _usage(procs: list[subprocess.Popen[bytes]]) -> list[dict[str, float]]:
    """CPU (% of one core) and RSS of each process over ``WINDOW`` after ``WARMUP``."""
    time.sleep(WARMUP)
    before = [_cpu_seconds(p.pid) for p in procs]
    time.sleep(WINDOW)
    return [
        {"cpu_pct": 100 * (_cpu_seconds(p.pid) - b) / WINDOW,
         "rss_mb": scale._rss(p.pid)[0], "peak_rss_mb": scale._rss(p.pid)[1]}
        for p, b in zip(procs, before, strict=True)
    ]  # fmt: skip


def _database_figures(cluster: Cluster, database: str) -> dict[str, float]:
    name = database.rsplit("/", 1)[1]
    size = float(cluster.psql(f"SELECT pg_database_size('{name}')"))
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return {"db_mb": size / 1e6, "postgres_rss_mb": scale._rss(postmaster)[0]}


def _connections(cluster: Cluster, database: str) -> int:
    """Connections open to ``database`` now (both replicas' pools)."""
    name = database.rsplit("/", 1)[1]
    return int(cluster.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"))


def measure(n: int, trials: int) -> dict[str, Any]:
    """Every figure for N lines."""
    figures: dict[str, Any] = {"lines": n, "partitions": PARTITIONS}
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        scale._feed(n) as feed,
        running_cluster() as cluster,
    ):
        tmp = Path(tmp_name)
        with _start(n, feed, cluster, tmp, ["solo"]) as (database, started):
            (_, base, proc, ready) = started[0]
            figures["one"] = {"ready_s": ready, **_usage([proc])[0],
                              "leads": len(_leads(base))}  # fmt: skip
            figures |= _database_figures(cluster, database)
        takeovers: list[float] = []
        for trial in range(trials):
            with _start(n, feed, cluster, tmp, ["a", "b"]) as (database, started):
                bases = [s[1] for s in started]
                deadline = time.monotonic() + TAKEOVER_LIMIT
                while time.monotonic() < deadline:  # until they have shared the partitions
                    if all(len(_leads(b)) == PARTITIONS // 2 for b in bases):
                        break
                    time.sleep(0.5)
                if trial == 0:
                    usage = _usage([s[2] for s in started])
                    figures["connections"] = _connections(cluster, database)
                    figures["two"] = [
                        {"ready_s": s[3], **u, "leads": len(_leads(s[1]))}
                        for s, u in zip(started, usage, strict=True)
                    ]
                survivor = bases[0]
                killed = time.monotonic()
                started[1][2].send_signal(signal.SIGKILL)
                while time.monotonic() - killed < TAKEOVER_LIMIT:
                    if len(_leads(survivor)) == PARTITIONS:
                        break
                    time.sleep(0.1)
                takeovers.append(time.monotonic() - killed)
                print(f"trial {trial + 1}: the half moved in {takeovers[-1]:.1f} s")
        figures["takeover_s"] = scale._stats(takeovers)
        figures["takeovers"] = takeovers
    return figures


def write(f: dict[str, Any]) -> None:
    """The "Replicas" section of RESULTS.md."""
    one, two, t = f["one"], f["two"], f["takeover_s"]
    rows = [
        f"| one replica | {one['ready_s']:.1f} s | {one['cpu_pct']:.1f} % | "
        f"{one['rss_mb']:.0f} MB ({one['peak_rss_mb']:.0f} MB) | {one['leads']} |",
        *(
            f"| two replicas: {name} | {r['ready_s']:.1f} s | {r['cpu_pct']:.1f} % | "
            f"{r['rss_mb']:.0f} MB ({r['peak_rss_mb']:.0f} MB) | {r['leads']} |"
            for name, r in zip("ab", two, strict=True)
        ),
    ]
    body = f"""{machine()} `benchmarks/replicas.py`: {f["lines"]:,} lines on the loopback feed
of `scale.py` (polled every 15 s, 1 % breaching), the store on a throwaway PostgreSQL 15 cluster
on loopback, the lines in {f["partitions"]} partitions, default lease (10 s) and
`evaluate_every` (5 s). CPU is % of one core over {WINDOW:.0f} s after a {WARMUP:.0f} s warm-up.

| | start → ready | CPU | RSS (peak) | partitions led |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}

**Takeover of a half** (kill -9 one of the two; until the other leads all {f["partitions"]}
partitions), {len(f["takeovers"])} trials: {t["min"]:.1f} / {t["median"]:.1f} /
{t["max"]:.1f} s (min / median / max), against the bound of lease + `evaluate_every` = 15 s.

PostgreSQL for {f["lines"]:,} lines: the database {f["db_mb"]:.1f} MB after one replica's
run (an empty one is about 7.5 MB: PostgreSQL's own catalogue), the server
{f["postgres_rss_mb"]:.0f} MB RSS (its postmaster; backends are shared memory mostly);
{f["connections"]} connections open with two replicas running.

Every replica polls the whole feed (a standby's board shows live figures, and a takeover
starts with warm smoothing), so polling and mapping cost the same on each; evaluation,
persistence and dispatch are split by partition."""
    write_section("Replicas", body)


def main(argv: list[str] | None = None) -> None:
    """Measure, print, write RESULTS.md's section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--write-only", type=Path, help="write RESULTS.md from saved figures")
    args = parser.parse_args(argv)
    if args.write_only:
        write(json.loads(args.write_only.read_text()))
        return
    figures = measure(args.lines, args.trials)
    FIGURES.write_text(json.dumps(figures, indent=1) + "\n")
    print(figures)
    write(figures)
    print(f"median of {len(figures['takeovers'])}: {statistics.median(figures['takeovers']):.1f}")


if __name__ == "__main__":
    main()
