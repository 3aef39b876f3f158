"""The replay report (``risingtide replay --format html``) opened from disk in headless Chromium.

The page must work on a laptop with no network: every request the page makes is recorded
and any that is not the file itself is refused, and the test fails if there was one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Request, Route, expect

from risingtide.config import load_config
from risingtide.replay_output import render
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_duty_board import axe_violations
from tests.unit.test_replay_compare import write_history

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
DATA = ROOT / "tests" / "data" / "replay_compare"


class Opened:
    """A page opened from a file, with every request it made."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.requests: list[str] = []
        self.errors: list[str] = []

    @property
    def elsewhere(self) -> list[str]:
        """Requests for anything but the file itself."""
        return [u for u in self.requests if u != self.url]


async def open_report(browser: Browser, path: Path, width: int) -> Opened:
    """Open ``path`` at ``width`` CSS pixels, refusing every request but the file's own."""
    ctx = await browser.new_context(viewport={"width": width, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = await ctx.new_page()
    opened = Opened(page, path.as_uri())

    def record(request: Request) -> None:
        opened.requests.append(request.url)

    async def only_the_file(route: Route) -> None:
        if route.request.url == opened.url:
            await route.continue_()
        else:
            await route.abort()

    page.on("request", record)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    await ctx.route("**/*", only_the_file)
    await page.goto(opened.url)
    return opened


def sample_report(tmp_path: Path) -> Path:
    """The shipped sample's report: two lines, one config."""
    config = load_config(EXAMPLES / "csv-replay.yaml")
    path = tmp_path / "report.html"
    path.write_text(render(config, EXAMPLES / "stats-sample.csv", "html"), encoding="utf-8")
    return path


def compared_report(tmp_path: Path) -> Path:
    """The hand-built hour compared under two configs (one line is only in the second)."""
    stats = write_history(tmp_path / "stats.csv")
    today, proposed = load_config(DATA / "today.yaml"), load_config(DATA / "proposed.yaml")
    path = tmp_path / "compare.html"
    path.write_text(render(today, stats, "html", proposed), encoding="utf-8")
    return path


async def test_the_page_renders_one_chart_per_line_with_no_request_leaving_it(
    browser: Browser, tmp_path: Path
) -> None:
    """Each line gets a drawn uPlot canvas, the script raises nothing, nothing is fetched."""
    opened = await open_report(browser, sample_report(tmp_path), 1280)
    page = opened.page
    await expect(page.locator("h1")).to_have_text("Replay of csv-replay.yaml")
    await expect(page.locator(".chart[data-rendered=true]")).to_have_count(2)
    await expect(page.locator(".chart canvas")).to_have_count(2)
    for line in ("Council Tax", "Revenues & Benefits"):
        await expect(page.get_by_role("heading", level=2, name=line)).to_be_visible()
    size = await page.locator("#chart-0 canvas").evaluate("c => [c.width, c.height]")
    assert size[0] > 600 and size[1] > 200
    # Something is drawn: the tier bands alone make the plot's pixels far from blank.
    inked = await page.locator("#chart-0 canvas").evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i]) n++; } return n; }"""
    )
    assert inked > size[0] * size[1] / 4
    assert opened.errors == []
    assert opened.requests == [opened.url]
    assert opened.elsewhere == []


@pytest.mark.parametrize("width", [1280, 320])
async def test_the_compared_page_is_accessible_at_desktop_and_phone_widths(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    """axe-core finds no WCAG 2.x A/AA violation at 1280 and 320 px, and charts fit the width."""
    opened = await open_report(browser, compared_report(tmp_path), width)
    page = opened.page
    await expect(page.locator(".chart canvas")).to_have_count(2)  # revenues under each config
    chart_width = await page.locator("#chart-0-today canvas").evaluate(
        "c => c.getBoundingClientRect().width"
    )
    assert chart_width <= width
    violations = await axe_violations(page)
    assert violations == []
    assert opened.errors == []
    # axe-core is added as a script tag with its text inlined: still no request elsewhere.
    assert opened.elsewhere == []
