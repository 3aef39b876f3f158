"""Regenerate docs/images/board-surge.png and docs/images/wallboard.png.

Runs the shipped demo on a FakeClock into its Council Tax surge (``tests/browser/surge.py``)
and photographs the duty board (1280 px wide) and the wallboard (1920 × 1080) in Debian's
headless Chromium. From the repository root::

    .venv/bin/python scripts/board_screenshots.py [SECONDS_INTO_THE_SURGE]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from tests.browser.conftest import ARGS, CHROMIUM  # noqa: E402
from tests.browser.surge import surge_daemon  # noqa: E402

IMAGES = ROOT / "docs" / "images"


async def main(seconds: int) -> None:
    """Serve the demo ``seconds`` into its surge and take both pictures."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with surge_daemon(Path(tmp), seconds) as (url, _runtime), async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                board = await browser.new_page(viewport={"width": 1280, "height": 900})
                await board.goto(url + "/")
                await board.locator("#lines .cause").first.wait_for()
                await board.screenshot(path=str(IMAGES / "board-surge.png"), full_page=True)
                wall = await browser.new_page(viewport={"width": 1920, "height": 1080})
                await wall.goto(url + "/wallboard")
                await wall.locator("#tiles .tile").first.wait_for()
                await wall.screenshot(path=str(IMAGES / "wallboard.png"))
            finally:
                await browser.close()
    print(f"wrote {IMAGES / 'board-surge.png'} and {IMAGES / 'wallboard.png'}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 240))
