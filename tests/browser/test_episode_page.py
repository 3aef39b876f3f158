"""The episode page in a real headless browser against a real daemon on loopback.

A surge on the desk's scripted source (a FakeClock) makes an episode with figures kept
around it; the page must tell its story, draw its chart from this daemon alone, and pass
axe-core at desktop and phone widths.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Request, expect

from risingtide.domain.model import QueueStats
from risingtide.episode_report import render_html
from risingtide.episodes import build_episode, find_episodes
from risingtide.sources.scripted import ScriptedSource
from tests.adapters.desk import Desk, running_desk
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_duty_board import axe_violations, signed_in_board


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def minute(desk: Desk, avg_wait: float) -> None:
    """A minute of figures for revenues: two polls 30 s apart, each evaluated."""
    src = desk.rt.sources["fixed"]
    assert isinstance(src, ScriptedSource)
    assert desk.rt.poller is not None
    for _ in range(2):
        desk.clock.advance(30)
        stats = QueueStats(
            line="revenues", at=desk.clock.now(), avg_wait=avg_wait, longest_wait=avg_wait * 1.5,
            calls_waiting=4, agents_staffed=12, offered=40, answered=34, abandoned=6,
            window=600.0, avg_handle_time=300.0,
        )  # fmt: skip
        src.push(stats)
        await desk.rt.poller.poll("fixed")
        desk.rt.evaluate_all(desk.clock.now())
        await desk.rt.samples.drain()


async def surge(desk: Desk) -> str:
    """Ten calm minutes, ten at 400 s, ten calm: the episode's id."""
    for wait in [100.0] * 10 + [400.0] * 10 + [100.0] * 10:
        await minute(desk, wait)
    return "revenues-1"


async def episode_page(browser: Browser, desk: Desk, width: int) -> tuple[Page, list[str]]:
    """The episode page at ``width`` px, signed in as the duty manager; requests it made."""
    # bypass_csp: the page forbids inline scripts, and axe-core is injected as one.
    page = await signed_in_board(
        browser, desk, viewport={"width": width, "height": 900}, bypass_csp=True
    )
    requests: list[str] = []

    def seen(request: Request) -> None:
        requests.append(request.url)

    page.on("request", seen)
    await page.goto("/episodes/revenues-1")
    await page.locator("figure.episode-chart canvas").first.wait_for(timeout=TIMEOUT_MS)
    return page, requests


@pytest.mark.parametrize("width", [1280, 320])
async def test_the_episode_page_tells_the_story_with_its_chart(
    browser: Browser, desk: Desk, width: int
) -> None:
    """Heading, timeline, peak and chart render; nothing is fetched from elsewhere; axe-clean."""
    await surge(desk)
    page, requests = await episode_page(browser, desk, width)
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Revenues & Benefits: episode 1"
    )
    await expect(page.locator("dl.facts")).to_contain_text("Tier 2 (high)")
    await expect(page.locator("dl.facts")).to_contain_text("6 min 40 s")  # the peak wait
    await expect(page.get_by_text("rising to tier 2 high")).to_be_visible()
    await expect(page.locator("figcaption")).to_contain_text("peaked at 6 min 40 s")
    assert await page.locator("figure.episode-chart canvas").count() >= 1
    assert requests, "the page made no requests at all"
    assert all(url.startswith(desk.url) for url in requests), requests
    assert await axe_violations(page) == []


async def test_lessons_learned_are_added_from_the_page(browser: Browser, desk: Desk) -> None:
    """The duty manager types lessons into the form; they show on the page after saving."""
    await surge(desk)
    page, _ = await episode_page(browser, desk, 1280)
    await page.get_by_label("What should we do differently next time?").fill(
        "Put the IVR message on sooner."
    )
    await page.get_by_role("button", name="Save lessons learned").click()
    await expect(page.get_by_role("status")).to_contain_text("saved")
    await expect(page.locator(".lesson")).to_have_text("Put the IVR message on sooner.")
    assert await axe_violations(page) == []


async def test_an_empty_lesson_is_named_in_an_error_summary(browser: Browser, desk: Desk) -> None:
    """Saving nothing shows an error summary whose link leads to the field, axe-clean."""
    await surge(desk)
    page, _ = await episode_page(browser, desk, 1280)
    await page.get_by_role("button", name="Save lessons learned").click()
    summary = page.get_by_role("alert")
    await expect(summary).to_contain_text("Enter the lessons learned")
    await summary.get_by_role("link").click()
    await expect(page.locator("#text")).to_be_focused()
    assert await axe_violations(page) == []


async def test_the_episodes_list_links_to_each_episode(browser: Browser, desk: Desk) -> None:
    """The list shows the episode with its peak tier and links to its page."""
    await surge(desk)
    page = await signed_in_board(browser, desk, bypass_csp=True)
    await page.goto("/episodes")
    link = page.get_by_role("link", name="Revenues & Benefits episode 1")
    await expect(page.locator("table")).to_contain_text("Tier 2 (high)")
    await link.click()
    await page.wait_for_url(f"{desk.url}/episodes/revenues-1")
    assert await axe_violations(page) == []


async def test_the_board_trend_is_drawn_from_the_last_hour_on_first_load(
    browser: Browser, desk: Desk
) -> None:
    """The sparkline spans the daemon's half hour of samples at once, not the page's seconds."""
    await surge(desk)
    page = await signed_in_board(browser, desk, bypass_csp=True)
    spark = page.locator("#line-revenues svg.spark")
    await expect(spark).to_have_attribute("aria-label", re.compile(r"last (29|30) minutes"))
    await expect(page.locator("header.site")).to_contain_text("Episodes")
    assert await axe_violations(page) == []


async def test_the_html_report_draws_its_charts_offline(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    """The report file, opened from disk, draws each chart with nothing fetched; axe-clean."""
    await surge(desk)
    store = desk.rt.store
    assert store is not None
    now = desk.clock.now()
    episodes = [build_episode(store, r, now, desk.rt.config) for r in find_episodes(store)]
    out = tmp_path / "report.html"
    out.write_text(render_html(episodes, title="This week's episodes", generated=now))
    ctx = await browser.new_context()
    page = await ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(out.as_uri())
    await page.locator("figure.episode-chart canvas").first.wait_for(timeout=TIMEOUT_MS)
    assert requests == [out.as_uri()]
    await expect(page.get_by_role("heading", level=1)).to_have_text("This week's episodes")
    assert await axe_violations(page) == []
