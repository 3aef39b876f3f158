"""Run every benchmark and write its figures into benchmarks/RESULTS.md.

Usage: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``). ``--skip NAME`` leaves a
benchmark out (repeatable); ``--quick`` leaves out the slow ones (``latency``: about two
minutes of real Prometheus + Alertmanager beside the daemon at 1 s sampling; its 15 s run
takes about ten and is only run by hand, ``benchmarks/latency.py --poll 15``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "engine", "feed", "notify_latency", "replay", "samples", "simulator", "store", "latency",
]  # fmt: skip
SLOW = {"latency"}
#: Benchmarks whose main() reads options: given none here, they run at their defaults.
TAKES_ARGV = {"latency"}


def main(argv: list[str] | None = None) -> int:
    """Run each benchmark module's ``main()``; each writes its own RESULTS.md section."""
    parser = argparse.ArgumentParser(description="Run every benchmark.")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=BENCHMARKS,
        help="leave this benchmark out (repeatable)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"leave out the slow ones ({', '.join(sorted(SLOW))})"
    )
    args = parser.parse_args(argv)  # fmt: skip
    skip = set(args.skip) | (SLOW if args.quick else set())
    sys.path.insert(0, str(HERE))
    for name in BENCHMARKS:
        if name in skip:
            print(f"skipped: {name}")
            continue
        module = importlib.import_module(name)
        if name in TAKES_ARGV:
            module.main([])
        else:
            module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
