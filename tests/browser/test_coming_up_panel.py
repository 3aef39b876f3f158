"""The duty board's "Coming up" panel (the demand calendar) in a real headless browser.

The desk daemon runs on a FakeClock at Monday 5 January 2026, 09:00 UTC; the page's own
clock is Playwright's, run forward so the panel's once-a-minute refresh comes at once.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.adapters.desk import Desk, running_desk
from tests.browser.test_duty_board import axe_violations, signed_in_board

DEMAND = """
demand:
  - name: Council Tax bills
    lines: [revenues, waste]
    start: "2026-01-07T08:00"
    for: 8h
    multiply: 3
    prearm: { level: 2, lead: 1h }
    responses: [notify]
    lead: 2h
  - { name: Drill, lines: [waste], start: -5m, for: 30m, calls_per_hour: 120 }
"""


async def a_minute_of_polls(page: Page) -> None:
    """Run the page's clock a poll at a time, letting each poll's fetches answer."""
    for _ in range(13):
        await page.clock.run_for(5_000)
        await asyncio.sleep(0.2)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path, tweak=lambda text: text + DEMAND) as d:
        yield d


async def test_the_panel_is_refreshed_in_the_daemons_words(browser: Browser, desk: Desk) -> None:
    """Once the drill is over on the daemon's clock, the page's own refresh from
    /api/v1/demand drops it and words the bills exactly as the daemon rendered them."""
    page = await signed_in_board(browser, desk)
    items = page.locator("#coming-up-list li")
    rendered = await items.all_text_contents()
    assert rendered == [
        "Drill (Waste & Recycling): under way until 09:25; 120 calls an hour expected",
        "Council Tax bills (Revenues & Benefits, Waste & Recycling): Wed 07 Jan 08:00 to "
        "Wed 07 Jan 16:00; 3× the usual calls; tier 2 pre-armed from Wed 07 Jan 07:00; "
        "notify at Wed 07 Jan 06:00",
    ]
    await page.clock.install()
    await page.reload()  # every timer now on the page's fake clock
    await expect(items).to_have_count(2)
    desk.clock.advance(30 * 60)  # 09:30 on the daemon's clock: the drill is over
    await a_minute_of_polls(page)
    await expect(items).to_have_count(1)
    assert await items.all_text_contents() == rendered[1:]  # the script words it the same
    assert re.search(r"Coming up", await page.content())
    violations = await axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
