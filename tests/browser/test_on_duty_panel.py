"""The board's "On duty" panel in a real headless browser, on the shipped demo config.

The daemon runs ``config/rising-tide.yaml`` on a FakeClock (no scheduler: the demo's
simulator is never polled, which the panel does not need) from Monday 5 January 2026, 09:00
in London, when Asha Patel is the duty manager until 14:00.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.runtime import Runtime
from tests.adapters.desk import free_port
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_duty_board import TWO_POLLS_MS, axe_violations
from tests.e2e.demo_harness import with_state_file

DEMO = Path(__file__).resolve().parents[2] / "config" / "rising-tide.yaml"
MONDAY_9AM = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 09:00 GMT


@asynccontextmanager
async def demo_daemon(tmp_path: Path) -> AsyncIterator[tuple[str, FakeClock]]:
    """The demo config served on a free loopback port, on a FakeClock at MONDAY_9AM."""
    config = with_state_file(load_config(DEMO), tmp_path / "state.sqlite")
    clock = FakeClock(MONDAY_9AM)
    port = free_port()
    runtime = Runtime(config, clock=clock, port=port)
    await runtime.start(schedule=False)
    try:
        yield f"http://127.0.0.1:{port}", clock
    finally:
        await runtime.shutdown()


async def board(browser: Browser, url: str, width: int = 1280) -> Page:
    ctx = await browser.new_context(base_url=url, viewport={"width": width, "height": 800})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = await ctx.new_page()
    await page.goto("/")
    return page


async def test_panel_names_who_is_on_duty_and_follows_the_rota(
    browser: Browser, tmp_path: Path
) -> None:
    """Asha until 14:00 as the page arrives; after 14:00 on the daemon's clock, Ben, unreloaded."""
    async with demo_daemon(tmp_path) as (url, clock):
        page = await board(browser, url)
        panel = page.get_by_role("region", name="On duty")
        await expect(panel).to_be_visible()
        duty = panel.locator("li[data-group=duty_managers]")
        await expect(duty).to_have_text("Duty managers: Asha Patel (until 14:00)")
        await expect(panel.locator("li")).to_have_text(
            [
                "Duty managers: Asha Patel (until 14:00)",
                "Heads of service: Morgan Price",
                "Service directors: Sam Hughes",
            ]
        )
        await expect(panel).not_to_contain_text("@")  # names only, never addresses
        await page.evaluate("() => { window.__sameDocument = true; }")
        clock.advance(timedelta(hours=5, seconds=1))
        await expect(duty).to_have_text(
            "Duty managers: Ben Okafor (until 22:00)", timeout=TWO_POLLS_MS
        )
        clock.advance(timedelta(days=4, hours=8))  # Friday 22:00: Chloe's weekend
        await expect(duty).to_have_text(
            "Duty managers: Chloe Evans (until Mon 07:00)", timeout=TWO_POLLS_MS
        )
        assert await page.evaluate("() => window.__sameDocument === true")


async def test_panel_has_no_accessibility_violations_and_fits_a_narrow_screen(
    browser: Browser, tmp_path: Path
) -> None:
    """axe-core passes the board with the panel shown; at 320 px the panel does not overflow."""
    async with demo_daemon(tmp_path) as (url, _):
        page = await board(browser, url)
        await expect(page.get_by_role("region", name="On duty")).to_be_visible()
        await expect(page.locator("#lines tr")).to_have_count(6)
        violations = await axe_violations(page)
        assert violations == [], json.dumps(violations, indent=1)

        narrow = await board(browser, url, width=320)
        panel = narrow.locator("#on-duty")
        await expect(panel).to_be_visible()
        overflow = await panel.evaluate("(e) => e.scrollWidth - e.clientWidth")
        assert overflow <= 0
        box = await panel.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 320
