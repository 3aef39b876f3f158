"""Headless Debian Chromium, driven by Playwright, against a daemon on loopback.

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (Debian's package, which
``scripts/install-system-deps`` installs along with axe-core from ``package.json`` here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FOUND = CHROMIUM.exists()
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Every wait in these tests is bounded by this (milliseconds) unless it says otherwise.
TIMEOUT_MS = 8000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Debian Chromium for one test."""
    # No skipping: `make test` installs both; a missing one is a broken setup, said plainly.
    from playwright import async_api as api

    if not CHROMIUM_FOUND:
        pytest.fail("no /usr/bin/chromium: run scripts/install-system-deps as root")
    async with api.async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True, timeout=TIMEOUT_MS * 2
        )
        try:
            yield b
        finally:
            await b.close()
