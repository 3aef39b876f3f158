"""Screenshot the demo surge's episode page into docs/images/episode.png.

Runs the shipped demo config (``config/rising-tide.yaml``) on a fake clock from a Monday
10:00 for 45 simulated minutes — the Council Tax surge rises and falls back to calm — with
the HTTP port on loopback, then opens the episode's page in Debian's headless Chromium::

    .venv/bin/python scripts/episode_screenshot.py [OUT.png] [--width 1280]

Nothing leaves the machine; the state file lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import async_playwright

from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.episodes import LESSONS_KIND, find_episodes, lessons_record
from risingtide.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 10:00 in London
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def surge(runtime: Runtime, clock: FakeClock, minutes: int) -> None:
    """Advance second by second, polling and evaluating on the config's cadence."""
    assert runtime.poller is not None
    assert runtime.dispatcher is not None
    every = int(runtime.config.server.evaluate_every.total_seconds())
    for _ in range(minutes * 60):
        clock.advance(1)
        elapsed = int((clock.now() - START).total_seconds())
        for sid, sc in runtime.config.sources.items():
            if elapsed % int(sc.interval.total_seconds()) == 0:
                await runtime.poller.poll(sid)
        if elapsed % every == 0:
            runtime.evaluate_all(clock.now())
            await runtime.dispatcher.run_due()


async def main(out: Path, width: int, minutes: int, *, full: bool = True) -> None:
    """Run the surge, then photograph its episode."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(ROOT / "config" / "rising-tide.yaml")
        server = dataclasses.replace(config.server, state_file=Path(tmp) / "state.sqlite")
        config = dataclasses.replace(config, server=server)
        clock = FakeClock(START)
        port = free_port()
        runtime = Runtime(config, clock=clock, port=port)
        await runtime.start(schedule=False)
        try:
            # The duty manager acknowledges four minutes in, and writes up the lessons after.
            await surge(runtime, clock, 4)
            runtime.acknowledge("council_tax", by="Asha Patel", note="surge staff paged")
            await surge(runtime, clock, minutes - 4)
            assert runtime.store is not None
            episodes = find_episodes(runtime.store, line="council_tax")
            if not episodes:
                raise SystemExit("the demo produced no Council Tax episode")
            lesson = (
                "Reminder letters went out without warning the contact centre: ask "
                "Revenues for the print date and declare tier 1 that morning."
            )
            data = lessons_record(episodes[-1], "Asha Patel", lesson)
            runtime.store.append_history([("council_tax", LESSONS_KIND, clock.now(), None, data)])
            url = f"http://127.0.0.1:{port}/episodes/{episodes[-1].id}"
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = await browser.new_page(viewport={"width": width, "height": 900})
                await page.goto(url)
                await page.wait_for_selector("figure.episode-chart canvas")
                out.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(out), full_page=full)
                await browser.close()
            print(f"{url} -> {out}")
        finally:
            await runtime.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "docs/images/episode.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--minutes", type=int, default=45)
    parser.add_argument("--first-screen", action="store_true", help="only the first screen")
    ns = parser.parse_args()
    asyncio.run(main(ns.out, ns.width, ns.minutes, full=not ns.first_screen))
