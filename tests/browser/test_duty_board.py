"""The duty board at ``/`` in a real headless browser against a real daemon on loopback.

The daemon runs on a FakeClock with a scripted source (``tests.adapters.desk``), so the
tests decide when a line's tier changes; the page polls every 5 s on the browser's clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.adapters.desk import PASSWORDS, Desk, bearer, running_desk
from tests.browser.conftest import AXE, TIMEOUT_MS

#: A tier change must show within two polls (5 s each) and a little slack.
TWO_POLLS_MS = 12_000


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def open_page(browser: Browser, desk: Desk, **context: Any) -> Page:
    ctx = await browser.new_context(base_url=desk.url, **context)
    ctx.set_default_timeout(TIMEOUT_MS)
    return await ctx.new_page()


async def signed_in_board(browser: Browser, desk: Desk, uid: str = "priya", **context: Any) -> Page:
    """The board, after signing in through the sign-in page as ``uid``."""
    page = await open_page(browser, desk, **context)
    await page.goto("/")  # redirected to sign in
    await page.get_by_label("Username").fill(uid)
    await page.get_by_label("Password").fill(PASSWORDS[uid])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{desk.url}/")
    await expect(page.locator("#who")).to_contain_text("Signed in as")
    await expect(page.locator("#lines tr")).to_have_count(2)
    return page


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations on the page as it is now."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run scripts/install-system-deps (npm ci)")
    # Evaluated by the test driver, not as an inline <script>: the page's CSP rightly bans those.
    await page.evaluate(AXE.read_text())
    result = await page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values:
             ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"""
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


async def line_json(desk: Desk, line: str) -> dict[str, Any]:
    resp = await desk.http.get(f"/api/v1/lines/{line}", headers=bearer("priya"))
    return dict(resp.json())


async def test_board_renders_every_line_with_tier_in_text(browser: Browser, desk: Desk) -> None:
    """Every configured line has a row with its name, its tier in words and its figures."""
    await desk.raise_line("revenues", avg_wait=200)
    page = await signed_in_board(browser, desk)
    revenues = page.locator("#line-revenues")
    await expect(revenues.locator("th")).to_have_text("Revenues & Benefits")
    await expect(revenues.locator(".tier")).to_have_text("Tier 1 (rising)")
    await expect(revenues.locator(".col-avg")).to_contain_text("3m 20s (over target 3m 0s)")
    await expect(page.locator("#line-waste th")).to_have_text("Waste & Recycling")
    await expect(page.locator("#line-waste .tier")).to_have_text("Tier 0 (calm)")
    await expect(page.get_by_text("since you opened it")).to_be_visible()


async def test_tier_change_shows_without_reload(browser: Browser, desk: Desk) -> None:
    """A tier raised in the daemon appears, and is announced, within two polls, without reload."""
    page = await signed_in_board(browser, desk)
    await expect(page.locator("#line-revenues .tier")).to_have_text("Tier 0 (calm)")
    await page.evaluate("() => { window.__sameDocument = true; }")
    await desk.raise_line("revenues", avg_wait=400)
    await expect(page.locator("#line-revenues .tier")).to_have_text(
        "Tier 2 (high)", timeout=TWO_POLLS_MS
    )
    await expect(page.locator("#announce")).to_contain_text(
        "Revenues & Benefits rose to Tier 2 (high)", timeout=TIMEOUT_MS
    )
    assert await page.evaluate("() => window.__sameDocument === true")


async def test_acknowledge_button_acknowledges_and_says_who(browser: Browser, desk: Desk) -> None:
    """Signed in as priya, Acknowledge records her acknowledgement and the page names her."""
    await desk.raise_line("revenues", avg_wait=400)
    page = await signed_in_board(browser, desk)
    row = page.locator("#line-revenues")
    await row.get_by_role("button", name="Acknowledge tier 2").click()
    await expect(row.locator(".col-status")).to_contain_text("Acknowledged by Priya Shah")
    await expect(row.locator(".row-message")).to_contain_text("You acknowledged Tier 2 (high)")
    body = await line_json(desk, "revenues")
    assert body["acknowledged"] is True
    assert body["acknowledgement"]["by"] == "Priya Shah"


async def test_keyboard_tab_reaches_acknowledge_and_enter_activates(
    browser: Browser, desk: Desk
) -> None:
    """Tabbing from the top reaches the skip link first, then Acknowledge; Enter acknowledges."""
    await desk.raise_line("waste", avg_wait=400)
    page = await signed_in_board(browser, desk)
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.textContent") == (
        "Skip to main content"
    )
    for _ in range(40):  # bounded: the page has far fewer stops than this before the button
        await page.keyboard.press("Tab")
        label = await page.evaluate(
            "() => document.activeElement.tagName + ' ' + document.activeElement.textContent"
        )
        if label == "BUTTON Acknowledge tier 2 on Waste & Recycling":
            break
    else:
        pytest.fail("Tab never reached the Acknowledge button")
    assert await page.evaluate("() => document.activeElement.closest('tr').dataset.line") == (
        "waste"
    )
    await page.keyboard.press("Enter")
    await expect(page.locator("#line-waste .col-status")).to_contain_text(
        "Acknowledged by Priya Shah"
    )
    assert (await line_json(desk, "waste"))["acknowledged"] is True


async def test_silence_form_shows_errors_in_text_then_silences(
    browser: Browser, desk: Desk
) -> None:
    """The Silence form says in words what is missing, then silences the line with the reason."""
    page = await signed_in_board(browser, desk)
    await page.locator("#line-revenues").get_by_role("button", name="Silence").click()
    dialog = page.get_by_role("dialog", name="Silence Revenues & Benefits")
    await dialog.get_by_role("button", name="Silence line").click()
    await expect(dialog.get_by_role("alert")).to_have_text("Error: Enter a reason.")
    await expect(dialog.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_label("Reason").fill("telephony upgrade")
    await dialog.get_by_label("How long").fill("forever")
    await dialog.get_by_role("button", name="Silence line").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("is not a duration")
    await dialog.get_by_label("How long").fill("2h")
    await dialog.get_by_role("button", name="Silence line").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#line-revenues .col-status")).to_contain_text(
        "Silenced by Priya Shah"
    )
    assert (await line_json(desk, "revenues"))["silence"]["reason"] == "telephony upgrade"


async def test_declare_form_declares_a_tier(browser: Browser, desk: Desk) -> None:
    """The Declare form sends level, duration and reason, and the line shows the declaration."""
    page = await signed_in_board(browser, desk)
    await page.locator("#line-waste").get_by_role("button", name="Declare").click()
    dialog = page.get_by_role("dialog", name="Declare a tier on Waste & Recycling")
    await dialog.get_by_label("Tier").select_option("2")
    await dialog.get_by_label("Reason").fill("bin collections changed")
    await dialog.get_by_role("button", name="Declare tier").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#line-waste .col-status")).to_contain_text(
        "Tier 2 declared by Priya Shah"
    )
    assert (await line_json(desk, "waste"))["declaration"]["level"] == 2


async def test_no_accessibility_violations_signed_in(browser: Browser, desk: Desk) -> None:
    """axe-core finds no WCAG 2.x A/AA violations on the board signed in, nor with a form open."""
    await desk.raise_line("revenues", avg_wait=400)
    page = await signed_in_board(browser, desk)
    await expect(page.locator("#line-revenues .ack")).to_be_visible()
    violations = await axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)
    await page.locator("#line-revenues").get_by_role("button", name="Declare").click()
    await expect(page.locator("#declare-dialog")).to_be_visible()
    violations = await axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)


async def test_no_accessibility_violations_signed_out(browser: Browser, tmp_path: Path) -> None:
    """Signed out (a daemon with no users, whose board is open), axe-core finds no violations."""
    async with running_desk(tmp_path, users=False) as desk:
        await desk.raise_line("revenues", avg_wait=400)
        page = await open_page(browser, desk)
        await page.goto("/")
        await expect(page.locator("#lines tr")).to_have_count(2)
        row = page.locator("#line-revenues")
        await expect(row.get_by_role("link", name="Sign in to acknowledge")).to_be_visible()
        await expect(row.get_by_role("button", name="Acknowledge tier 2")).to_have_count(0)
        violations = await axe_violations(page)
        assert violations == [], json.dumps(violations, indent=1)


@pytest.mark.parametrize("width", [1280, 640])
async def test_no_horizontal_scroll_at_1280_and_at_200_percent_zoom(
    browser: Browser, desk: Desk, width: int
) -> None:
    """At 1280 px, and at 1280 px zoomed to 200 % (640 CSS px), nothing scrolls sideways."""
    await desk.raise_line("revenues", avg_wait=400)
    page = await signed_in_board(browser, desk, viewport={"width": width, "height": 800})
    await expect(page.locator("#line-revenues .ack")).to_be_visible()
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0


async def test_history_page_filters_and_has_no_accessibility_violations(
    browser: Browser, tmp_path: Path
) -> None:
    """The history page lists the tier change, filters by line, and passes axe-core."""
    async with running_desk(tmp_path, users=False) as desk:
        await desk.raise_line("revenues", avg_wait=400)
        page = await open_page(browser, desk)
        await page.goto("/")
        await page.get_by_role("link", name="History").click()
        await page.wait_for_url(f"{desk.url}/history")
        await expect(page.locator("#history")).to_contain_text("Tier 0 → 2")
        violations = await axe_violations(page)
        assert violations == [], json.dumps(violations, indent=1)
        await page.get_by_label("Line").select_option("waste")
        await page.get_by_role("button", name="Show events").click()
        await expect(page.locator("#history")).to_contain_text("No events match")
