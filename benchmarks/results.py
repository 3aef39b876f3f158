"""Shared by the benchmarks: write one ``## Title`` section of RESULTS.md, keep the rest."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """One line saying when and on what the figures were taken."""
    return (
        f"Run {time.strftime('%Y-%m-%d')} · Python {platform.python_version()} · "
        f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()}); one core used."
    )


def write_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``## {title}`` section of ``path`` with ``body``."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    new = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: new + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
