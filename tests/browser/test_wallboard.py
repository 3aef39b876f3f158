"""The wallboard (``/wallboard``, issue 12 item 3) in headless Chromium at 1920 × 1080.

Read-only and large: every line's tier in words and colour, its wait against target and the
agents it needs; no buttons or forms; a viewer's token in the URL is taken out of it at once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from risingtide.runtime import Runtime
from tests.adapters.desk import TOKENS, Desk, running_desk
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.surge import surge_daemon
from tests.browser.test_duty_board import axe_violations, signed_in_board

FULL_HD = {"width": 1920, "height": 1080}
#: The smallest type on the wallboard, in CSS pixels: legible from several metres away.
SMALLEST_PX = 28
#: The wallboard polls every 10 s; a change shows within two polls.
TWO_POLLS_MS = 22_000


@pytest.fixture
async def surge(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    async with surge_daemon(tmp_path) as served:
        yield served


async def wallboard(
    browser: Browser, url: str, path: str = "/wallboard", *, bypass_csp: bool = False
) -> Page:
    # axe-core is injected as an inline script, which the wallboard's policy refuses.
    ctx = await browser.new_context(base_url=url, viewport=FULL_HD, bypass_csp=bypass_csp)
    ctx.set_default_timeout(TIMEOUT_MS)
    page = await ctx.new_page()
    await page.goto(path)
    return page


async def test_every_line_shows_tier_in_words_wait_against_target_and_agents_needed(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """Each line has a tile with its tier in words, its wait and target, and agents needed;
    the raised line comes first."""
    url, runtime = surge
    page = await wallboard(browser, url)
    tiles = page.locator("#tiles .tile")
    await expect(tiles).to_have_count(len(runtime.config.lines))
    first = tiles.first
    await expect(first).to_have_attribute("data-line", "council_tax")
    await expect(first.locator(".tier")).to_have_text("Tier 2 · High")
    await expect(first.locator(".wait")).to_contain_text("target 3m")
    view = runtime.view("council_tax")
    assert view is not None and view.agents_needed is not None
    await expect(first.locator(".needed")).to_contain_text(str(view.agents_needed))
    await expect(page.locator("#tile-waste .tier")).to_have_text("Tier 0 · Calm")
    now = runtime.clock.now().astimezone(ZoneInfo("Europe/London"))
    await expect(page.locator("#updated")).to_have_text(f"Updated at {now:%H:%M}")
    colours = await page.locator(".tile .tier").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert colours[0] != colours[-1]  # tier 2 and calm differ in colour as well as words


async def test_it_has_no_buttons_forms_or_links(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """Nothing on the wallboard can be pressed or filled in."""
    url, _ = surge
    page = await wallboard(browser, url)
    await expect(page.locator("#tiles .tile").first).to_be_visible()
    count = await page.locator("button, form, input, select, textarea, a, [tabindex]").count()
    assert count == 0


async def test_the_type_is_large_and_it_fits_1920_by_1080(
    browser: Browser, surge: tuple[str, Runtime]
) -> None:
    """Every piece of text is at least 28 px, and six lines fit the screen without scrolling;
    axe-core finds no WCAG 2.2 AA violation."""
    url, _ = surge
    page = await wallboard(browser, url, bypass_csp=True)
    await expect(page.locator("#tiles .tile").first).to_be_visible()
    sizes = await page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
            .filter(e => Array.from(e.childNodes)
              .some(n => n.nodeType === 3 && n.textContent.trim()))
            .filter(e => e.offsetParent !== null)
            .map(e => parseFloat(getComputedStyle(e).fontSize))"""
    )
    assert sizes and min(sizes) >= SMALLEST_PX
    height = await page.evaluate("() => document.documentElement.scrollHeight")
    assert height <= FULL_HD["height"]
    assert await axe_violations(page) == []


# ---------------------------------------------------------------------- who may see it


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def test_a_viewer_token_opens_it_and_leaves_the_address_bar(
    browser: Browser, desk: Desk
) -> None:
    """``?token=`` with a viewer's token shows the lines; the page is sent with no-referrer,
    the token is gone from the URL, and the page keeps polling with it as a bearer token."""
    await desk.raise_line("revenues", avg_wait=200)
    ctx = await browser.new_context(base_url=desk.url, viewport=FULL_HD)
    ctx.set_default_timeout(TIMEOUT_MS)
    page = await ctx.new_page()
    response = await page.goto(f"/wallboard?token={TOKENS['vera']}")
    assert response is not None and response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    await expect(page.locator("#tile-revenues .tier")).to_have_text("Tier 1 · Rising")
    await page.wait_for_function("() => !location.search.includes('token')")
    assert page.url == f"{desk.url}/wallboard"
    async with page.expect_response(re.compile(r"/api/v1/lines$"), timeout=TWO_POLLS_MS) as info:
        pass
    polled = await info.value
    assert polled.status == 200
    assert polled.request.headers["authorization"] == f"Bearer {TOKENS['vera']}"
    sent = await polled.request.all_headers()
    assert "referer" not in sent, sent.get("referer")


async def test_without_a_token_or_session_it_asks_to_sign_in(browser: Browser, desk: Desk) -> None:
    """Signed out and with no token, the wallboard sends you to sign in; a wrong token is
    refused without showing any line."""
    page = await wallboard(browser, desk.url)
    await page.wait_for_url(re.compile(r"/login\?next=/wallboard$"))
    bad = await page.goto("/wallboard?token=rt_not-a-real-token")
    assert bad is not None and bad.status == 401
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "This wallboard link is not valid"
    )
    await expect(page.locator("#tiles")).to_have_count(0)


async def test_a_signed_in_viewer_sees_it_with_their_session(browser: Browser, desk: Desk) -> None:
    """A signed-in session opens the wallboard without any token."""
    page = await signed_in_board(browser, desk, "vera")
    await page.goto("/wallboard")
    await expect(page.locator("#tiles .tile")).to_have_count(2)
    assert await page.locator("button, form").count() == 0
