"""Start-up figures for ``scale.py --startup``: ``check`` and start → ready, repeated.

Per label (``before``/``after``…): ``risingtide check`` of the demo config and of an
N-line config (``CHECKS`` runs each), the demo from start to ``/readyz`` and its RSS after
the warm-up (``DEMO_RUNS`` runs), and N lines from start to ``/readyz`` (``STARTS`` runs).
min / median / max of each. The package is byte-compiled first in the interpreter that
runs it, as ``pip install`` leaves it (a source tree read with ``PYTHONDONTWRITEBYTECODE``
would otherwise be compiled on every start, which is not what a council runs).

``--python`` runs the daemon with another interpreter: a venv with only the runtime
dependencies (``make install``; the test extras add ``rich``, through ``schemathesis``,
which structlog then imports), or one whose ``.pth`` puts an export of older code
(``git archive``) before the dependencies, for ``before`` (an editable install's finder
would otherwise take ``risingtide`` from the checkout, ``PYTHONPATH`` or not).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKS = 5
STARTS = 5
DEMO_RUNS = 3
KEY = "startup"  # scale.json: these figures by label
#: Children run here, not in the checkout: ``-m`` and ``-c`` put the working directory
#: first on the path, which would import the checkout's code whatever ``--python`` says.
_AWAY = tempfile.gettempdir()


def compile_package(python: str) -> str:
    """Byte-compile the ``risingtide`` that ``python`` imports; return its directory."""
    code = (
        "import compileall, os, risingtide\n"
        "where = os.path.dirname(risingtide.__file__)\n"
        "compileall.compile_dir(where, quiet=1)\n"
        "print(where)\n"
    )
    done = subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True, timeout=300, cwd=_AWAY
    )
    return done.stdout.strip().splitlines()[-1]


def _check_times(python: str, config: Path) -> list[float]:
    times = []
    for _ in range(CHECKS):
        started = time.perf_counter()
        subprocess.run(
            [python, "-m", "risingtide", "check", "-c", str(config)],
            check=True, capture_output=True, timeout=120, cwd=_AWAY,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return times


def _demo_run(scale: Any, python: str) -> tuple[float, float, float]:
    """One demo daemon: (start → ready, RSS after the warm-up, peak RSS)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = scale._free_port()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [python, "-m", "risingtide", "run", "-c", str(scale.DEMO),
             "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
        )  # fmt: skip
        try:
            ready = scale._wait_ready(f"http://127.0.0.1:{port}", proc, started)
            time.sleep(scale.WARMUP)
            rss, peak = scale._rss(proc.pid)
        finally:
            scale._stop(proc)
    return ready, rss, peak


def _ready_times(scale: Any, python: str, n: int) -> tuple[list[float], list[float]]:
    """``STARTS`` daemons over N lines, start → ready each; and ``check`` of that config."""
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, scale._feed(n) as feed:
        config = Path(tmp) / "scale.yaml"
        checks: list[float] = []
        for i in range(STARTS):
            port = scale._free_port()
            state = Path(tmp) / f"state-{i}.sqlite"  # a first start each time
            config.write_text(scale._config(n, feed, port, state))
            if not checks:
                checks = _check_times(python, config)
            started = time.perf_counter()
            proc = subprocess.Popen(
                [python, "-m", "risingtide", "run", "-c", str(config)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
            )  # fmt: skip
            try:
                ready.append(scale._wait_ready(f"http://127.0.0.1:{port}", proc, started))
            finally:
                scale._stop(proc)
    return ready, checks


def measure(scale: Any, python: str, sizes: list[int]) -> dict[str, Any]:
    """Every start-up figure for one label (see the module docstring)."""
    where = compile_package(python)
    figures: dict[str, Any] = {"package": where, "python": python}
    figures["check_demo_s"] = scale._stats(_check_times(python, scale.DEMO))
    demo = [_demo_run(scale, python) for _ in range(DEMO_RUNS)]
    figures["demo_ready_s"] = scale._stats([d[0] for d in demo])
    figures["demo_rss_mb"] = scale._stats([d[1] for d in demo])
    figures["demo_peak_mb"] = max(d[2] for d in demo)
    for n in sizes:
        ready, checks = _ready_times(scale, python, n)
        figures[f"ready_{n}_s"] = scale._stats(ready)
        figures[f"check_{n}_s"] = scale._stats(checks)
    figures["load"] = os.getloadavg()[0]
    return figures


def _s(stats: dict[str, float] | None, unit: str = "s", digits: int = 2) -> str:
    if not stats:
        return "—"
    return " / ".join(f"{stats[k]:.{digits}f}" for k in ("min", "median", "max")) + f" {unit}"


def table(by_label: dict[str, dict[str, Any]]) -> str:
    """The start-up table, one row per label (``before`` first)."""
    sizes = sorted(
        {int(k.split("_")[1]) for f in by_label.values() for k in f if k.startswith("ready_")}
    )
    head = "| code | `check` demo | demo start → ready | demo RSS (peak) "
    head += "".join(f"| `check` {n:,} lines | {n:,} lines start → ready " for n in sizes)
    head += "| load |\n|---|---|---|---|" + "---|---|" * len(sizes) + "---:|\n"
    rows = []
    for label in sorted(by_label, key=lambda lb: (not lb.startswith("before"), lb)):
        f = by_label[label]
        row = (
            f"| {label} | {_s(f['check_demo_s'])} | {_s(f['demo_ready_s'])} "
            f"| {_s(f['demo_rss_mb'], 'MB', 0)} ({f['demo_peak_mb']:.0f} MB) "
        )
        row += "".join(
            f"| {_s(f.get(f'check_{n}_s'))} | {_s(f.get(f'ready_{n}_s'))} " for n in sizes
        )
        rows.append(row + f"| {f['load']:.1f} |")
    return head + "\n".join(rows)


def describe() -> str:
    """The paragraph above the table."""
    return (
        f"Start-up (`scale.py --startup`): `risingtide check` ({CHECKS} runs) and start → "
        f"`/readyz` of the demo ({DEMO_RUNS} runs, RSS after the warm-up) and of N lines on the "
        f"loopback feed ({STARTS} first starts, each on a new state file), min / median / max, "
        "with the package byte-compiled as `pip install` leaves it. `before` is the code "
        "before the start-up work (lazy plugin tables and imports, the bank-holiday table, "
        "the collector paused while start-up builds what lives on, one write per new line, "
        "shared per-framework work); `after` is now. `…, runtime deps` rows ran in a venv "
        "with only the runtime dependencies (`make install`): the test extras bring `rich`, "
        "which structlog imports when it is there."
    )
