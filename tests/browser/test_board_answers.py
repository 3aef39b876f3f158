"""The board answers the duty manager's first questions (issue 12, item 2), in headless Chromium.

Most tests run the shipped demo four minutes into its Council Tax surge (``surge.py``); the
sign-out, button-name and many-lines tests use the desk with users (``tests.adapters.desk``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from risingtide.api.wallboard import BoardOut
from risingtide.runtime import Runtime
from tests.adapters.desk import Desk, running_desk
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.surge import surge_daemon
from tests.browser.test_duty_board import TWO_POLLS_MS, axe_violations, signed_in_board

UK = ZoneInfo("Europe/London")


@pytest.fixture
async def surge(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    async with surge_daemon(tmp_path) as served:
        yield served


async def open_board(browser: Browser, url: str, width: int = 1280, height: int = 900) -> Page:
    ctx = await browser.new_context(base_url=url, viewport={"width": width, "height": height})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = await ctx.new_page()
    await page.goto("/")
    await expect(page.locator("#lines tr").first).to_be_visible()
    return page


async def board_line(url: str, line: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        body = (await http.get("/api/v1/board")).json()
    return next(item for item in body["lines"] if item["line"] == line)


async def test_a_raised_line_says_why_since_when_what_next_and_who_was_told(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """Council Tax in its surge shows the condition in words, the UK clock time it rose, the
    next reminder and escalation with the people they reach, who was told, the agents it
    needs against those staffed, and its switches by title."""
    url, runtime = surge
    api = await board_line(url, "council_tax")
    brief = api["briefing"]
    assert api["tier"] == 2
    page = await open_board(browser, url)
    row = page.locator("#line-council_tax")
    await expect(row.locator(".tier")).to_have_text("Tier 2 (high)")
    now = runtime.clock.now().astimezone(UK)
    await expect(page.locator("#updated")).to_contain_text(f"Updated at {now:%H:%M:%S}")
    cause = row.locator(".cause")
    await expect(cause).to_have_text(
        re.compile(r"^Why: abandonment \d+ % over 10 % with \d+ offered$")
    )
    await expect(cause).to_have_text("Why: " + brief["cause"])
    since = datetime.fromisoformat(api["entered_at"]).astimezone(UK)
    await expect(row.locator(".col-time")).to_contain_text(f"since {since:%H:%M}")
    state = runtime.states["council_tax"]
    assert state.entered_at is not None
    due = (state.entered_at + runtime.config.lines["council_tax"].framework.tiers[1]
           .escalation[0].after).astimezone(UK)  # fmt: skip
    await expect(row.locator(".col-status .next")).to_have_text(
        f"Next: reminder 1 and escalation step 1 at {due:%H:%M}, to Asha Patel and Morgan Price"
    )
    await expect(row.locator(".col-status .notified")).to_contain_text(
        re.compile(r"Told: Notify duty manager at \d\d:\d\d to Asha Patel \(sent\)")
    )
    needed, gap = brief["agents_needed"], brief["agents_gap"]
    assert needed > 0 and gap == needed - api["stats"]["agents_staffed"]
    short = f"Needed: {needed} ({gap} short, {brief['agents_gap_percent']})"
    await expect(row.locator(".col-agents .needed")).to_have_text(
        short if gap > 0 else f"Needed: {needed} (enough staffed)"
    )
    await expect(row.locator(".col-status .switched")).to_have_text(
        "Switched on: Call-back offered, IVR message: use the website, Surge staff paged"
    )
    assert "callback_on" not in await row.locator(".col-status").inner_text()


async def test_the_board_json_matches_its_documented_schema(surge: tuple[str, Runtime]) -> None:
    """``GET /api/v1/board`` validates against ``BoardOut`` (extra keys forbidden)."""
    url, _ = surge
    async with httpx.AsyncClient(base_url=url) as http:
        body = (await http.get("/api/v1/board")).json()
    board = BoardOut.model_validate(body)
    assert board.lines[0].line == "council_tax"
    assert board.lines[0].briefing.cause
    assert board.lines[1].briefing.cause is None  # calm lines carry no raised-line answers


async def test_an_acknowledgement_shows_until_the_rota_hands_over(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """Under the demo's ``ack_expires: at_handover`` an acknowledgement at 10:04 lasts until
    Asha Patel's shift ends at 14:00, and the board says so; nothing more is due."""
    url, runtime = surge
    runtime.acknowledge("council_tax", by="Asha Patel")
    page = await open_board(browser, url)
    status = page.locator("#line-council_tax .col-status")
    await expect(status).to_contain_text(
        re.compile(r"Acknowledged by Asha Patel at .*10:04, until the handover at 14:00")
    )
    await expect(status.locator(".next")).to_have_count(0)


async def test_raised_lines_come_first_then_calm_lines_in_config_order(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """The raised line heads the board although it is not first in the config."""
    url, runtime = surge
    page = await open_board(browser, url)
    order = await page.locator("#lines tr").evaluate_all("rows => rows.map(r => r.dataset.line)")
    raised = [lid for lid in order if runtime.states[lid].tier > 0]
    assert raised == ["council_tax"]
    assert order[0] == "council_tax"
    assert order[1:] == [lid for lid in runtime.config.lines if lid != "council_tax"]


@pytest.mark.parametrize("width", [1280, 320])
async def test_the_board_in_a_surge_has_no_accessibility_violations(
    browser: Browser, surge: tuple[str, Runtime], width: int
) -> None:
    """axe-core finds no WCAG 2.2 AA violation at 1280 px nor at 320 px."""
    url, _ = surge
    page = await open_board(browser, url, width=width, height=640)
    await expect(page.locator("#line-council_tax .cause")).to_be_visible()
    assert await axe_violations(page) == []


async def test_at_320_px_the_raised_line_is_on_the_first_screen(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """On a 320 × 568 phone the raised line's name and tier show without scrolling."""
    url, _ = surge
    page = await open_board(browser, url, width=320, height=568)
    row = page.locator("#line-council_tax")
    await expect(row.locator(".tier")).to_be_in_viewport()
    box = await row.locator(".tier").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 568
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320


# ---------------------------------------------------------------------- with users


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def test_every_button_names_its_line(browser: Browser, desk: Desk) -> None:
    """Each action button's name carries the line, so no two rows share a button name."""
    await desk.raise_line("revenues", avg_wait=400)
    page = await signed_in_board(browser, desk)
    for name in (
        "Acknowledge tier 2 on Revenues & Benefits",
        "Silence Revenues & Benefits",
        "Silence Waste & Recycling",
        "Declare a tier on Waste & Recycling",
    ):
        await expect(page.get_by_role("button", name=name, exact=True)).to_have_count(1)
    names = await page.locator("#lines button").evaluate_all(
        "bs => bs.filter(b => b.offsetParent).map(b => b.textContent)"
    )
    assert len(names) == len(set(names)) >= 5
    await expect(page.locator("#line-revenues button.silence")).to_have_text(
        "Silence Revenues & Benefits"
    )  # the visible word, then the line for screen readers


async def test_sign_out_from_the_board_ends_the_session(browser: Browser, desk: Desk) -> None:
    """The board's Sign out button posts the sign-out (with its CSRF value) and the board
    then asks to sign in again."""
    page = await signed_in_board(browser, desk)
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/login$"))
    await page.goto("/")
    await page.wait_for_url(re.compile(r"/login\?next=/$"))
    answer = await page.request.get("/api/v1/lines")  # with the browser's cookies
    assert answer.status == 401


def _many_lines(text: str) -> str:
    extra = "".join(
        f"  line_{n:02d}: {{ name: Line {n:02d}, source: {{ use: fixed, avg_wait: 100 }} }}\n"
        for n in range(20)
    )
    return text.replace("\nlines:\n", "\nlines:\n" + extra, 1)


async def test_with_many_lines_the_calm_ones_are_collapsed_with_a_count(
    browser: Browser, tmp_path: Path
) -> None:
    """With 22 lines the raised one is listed and the 21 calm ones fold under a summary that
    counts them; opening it shows them."""
    async with running_desk(tmp_path, tweak=_many_lines) as desk:
        await desk.raise_line("waste", avg_wait=400)
        page = await signed_in_board_any(browser, desk)
        await expect(page.locator("#lines tr")).to_have_count(1)
        await expect(page.locator("#lines tr").first).to_have_attribute("data-line", "waste")
        calm = page.locator("#calm")
        await expect(calm.locator("summary")).to_have_text("21 calm lines")
        await expect(page.locator("#calm-lines tr").first).to_be_hidden()
        await calm.locator("summary").click()
        await expect(page.locator("#calm-lines tr")).to_have_count(21)
        await expect(page.locator("#line-line_05")).to_be_visible()
        assert await axe_violations(page) == []


async def signed_in_board_any(browser: Browser, desk: Desk) -> Page:
    """The board signed in as priya, whatever the number of lines."""
    ctx = await browser.new_context(base_url=desk.url)
    ctx.set_default_timeout(TWO_POLLS_MS)
    page = await ctx.new_page()
    await page.goto("/")
    await page.get_by_label("Username").fill("priya")
    await page.get_by_label("Password").fill("priya's long password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{desk.url}/")
    await expect(page.locator("#who")).to_contain_text("Signed in as")
    return page


async def test_the_history_page_reads_uk_time(browser: Browser, desk: Desk) -> None:
    """The history page gives times on the UK clock with its zone, as the board does."""
    desk.clock.set(datetime(2026, 7, 6, 9, 0, tzinfo=UK))  # summer: BST, an hour off UTC
    await desk.raise_line("revenues", avg_wait=400)
    page = await signed_in_board(browser, desk)
    await page.goto("/history?line=revenues&kind=tier_changed")
    await expect(page.locator("#history tbody tr").first).to_contain_text("2026-07-06 09:00:10 BST")
    await expect(page.locator("#history")).not_to_contain_text("UTC")
