"""Run every benchmark and write its figures into benchmarks/RESULTS.md.

Usage: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["engine", "feed", "notify_latency", "replay", "samples", "simulator", "store"]


def main() -> int:
    """Run each benchmark module's ``main()``; each writes its own RESULTS.md section."""
    sys.path.insert(0, str(HERE))
    for name in BENCHMARKS:
        module = importlib.import_module(name)
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
