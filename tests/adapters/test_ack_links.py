"""Acknowledging from a message: a signed link, a confirmation page, and only its POST acks.

Over real HTTP on a FakeClock: a mail scanner's GET acknowledges nothing; the page's form
does, as "NAME (via link)"; a used, overtaken, expired or tampered link says so plainly.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from risingtide.api.links import make_ack_link
from risingtide.domain.model import Action, ResponseOrder
from tests.adapters.desk import SECRET, Desk, running_desk


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def confirm(
    desk: Desk, link: str, name: str = "Sam Okafor", note: str = ""
) -> httpx.Response:
    """Open the link's page and press its button, as a person would."""
    page = await desk.http.get(path_of(link))
    assert page.status_code == 200, page.text
    return await desk.http.post(
        path_of(link), data={"name": name, "note": note, "csrf_token": csrf_of(page)}
    )


async def test_a_get_shows_the_page_and_acknowledges_nothing(desk: Desk) -> None:
    """Following the link (as a mail scanner would, twice) only shows what would be acked."""
    await desk.raise_line()
    link = desk.rt.ack_link("revenues")
    assert link is not None and link.startswith(f"{desk.url}/ack/revenues.2.1.")
    for _ in range(2):
        page = await desk.http.get(path_of(link))
        assert page.status_code == 200
        assert "Acknowledge tier 2 high on Revenues &amp; Benefits" in page.text
        assert '<label for="name">Acknowledge as</label>' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
    assert not desk.rt.states["revenues"].acknowledged


async def test_the_pages_post_acknowledges_as_the_name_typed_via_link(desk: Desk) -> None:
    """A link sent to no one person records the typed name "(via link)", noted unverified."""
    await desk.raise_line()
    link = desk.rt.ack_link("revenues")
    assert link is not None
    done = await confirm(desk, link, "Sam Okafor", "calling the surge team")
    assert done.status_code == 200, done.text
    assert "tier 2 high acknowledged by Sam Okafor (via link)" in done.text
    ack = desk.rt.states["revenues"].ack
    assert ack is not None
    assert (ack.tier, ack.by) == (2, "Sam Okafor (via link)")
    assert ack.note == (
        "calling the surge team; unverified: the name was typed on a link not sent to one person"
    )


async def test_a_used_link_says_already_acknowledged_with_410(desk: Desk) -> None:
    """Once acknowledged, the same link (GET or POST) answers 410 "Already acknowledged"."""
    await desk.raise_line()
    link = desk.rt.ack_link("revenues")
    assert link is not None
    page = await desk.http.get(path_of(link))
    assert (await confirm(desk, link)).status_code == 200
    again = await desk.http.get(path_of(link))
    assert again.status_code == 410
    assert "Already acknowledged" in again.text
    assert "Sam Okafor (via link)" in again.text
    repost = await desk.http.post(
        path_of(link), data={"name": "Someone", "csrf_token": csrf_of(page)}
    )
    assert repost.status_code == 410


async def test_an_expired_link_says_so_with_410(desk: Desk) -> None:
    """A link past ``ack_link_ttl`` (24 h by default) answers 410 with the time it ended."""
    await desk.raise_line()
    link = desk.rt.ack_link("revenues")
    assert link is not None
    page = await desk.http.get(path_of(link))
    desk.clock.advance(timedelta(hours=24))
    gone = await desk.http.get(path_of(link))
    assert gone.status_code == 410
    assert "This link has expired" in gone.text
    late = await desk.http.post(path_of(link), data={"name": "Sam", "csrf_token": csrf_of(page)})
    assert late.status_code == 410
    assert not desk.rt.states["revenues"].acknowledged


async def test_a_tampered_link_is_refused(desk: Desk) -> None:
    """Changing the tier, episode, expiry or signature makes the link invalid (400)."""
    await desk.raise_line()
    link = desk.rt.ack_link("revenues")
    assert link is not None
    token = path_of(link).removeprefix("/ack/")
    line, tier, episode, expires, sig = token.split(".")
    forged = [
        f"{line}.1.{episode}.{expires}.{sig}",
        f"{line}.{tier}.{int(episode) + 1}.{expires}.{sig}",
        f"{line}.{tier}.{episode}.{int(expires) + 86400}.{sig}",
        f"waste.{tier}.{episode}.{expires}.{sig}",
        f"{line}.{tier}.{episode}.{expires}.{sig[:-1]}A",
        token[:-5],
    ]
    for bad in forged:
        resp = await desk.http.get(f"/ack/{bad}")
        assert resp.status_code == 400, bad
        assert "This link is not valid" in resp.text
        post = await desk.http.post(f"/ack/{bad}", data={"name": "x", "csrf_token": "x"})
        assert post.status_code == 400
    other_secret = make_ack_link(
        "another-secret-of-32-characters-or-more!", desk.url, "revenues", 2, 1,
        desk.clock.now() + timedelta(hours=1),
    )  # fmt: skip
    assert (await desk.http.get(path_of(other_secret))).status_code == 400
    assert not desk.rt.states["revenues"].acknowledged


async def test_the_post_needs_the_pages_csrf_value_and_a_name(desk: Desk) -> None:
    """A bare POST of the link (no page) is 403; an empty name re-shows the form with 400."""
    await desk.raise_line()
    link = desk.rt.ack_link("revenues")
    assert link is not None
    bare = await desk.http.post(path_of(link), data={"name": "Sam"})
    assert bare.status_code == 403
    page = await desk.http.get(path_of(link))
    empty = await desk.http.post(path_of(link), data={"name": "  ", "csrf_token": csrf_of(page)})
    assert empty.status_code == 400
    assert "There is a problem" in empty.text and "Enter your name" in empty.text
    assert not desk.rt.states["revenues"].acknowledged


async def test_a_link_from_an_alert_that_is_over_or_overtaken_says_so(desk: Desk) -> None:
    """A rise above the link's tier, or a new episode, make the link 410 with the reason."""
    await desk.raise_line(avg_wait=200)  # tier 1
    tier_1 = desk.rt.ack_link("revenues")
    assert tier_1 is not None and "/ack/revenues.1.1." in tier_1
    await desk.raise_line(avg_wait=400)  # tier 2, same episode
    risen = await desk.http.get(path_of(tier_1))
    assert risen.status_code == 410
    assert "risen since this link was sent" in risen.text and "tier 2 high" in risen.text

    tier_2 = desk.rt.ack_link("revenues")
    assert tier_2 is not None
    await desk.raise_line(avg_wait=100)
    await desk.raise_line(avg_wait=100)  # back to calm: the episode is over
    assert desk.rt.states["revenues"].tier == 0
    over = await desk.http.get(path_of(tier_2))
    assert (over.status_code, "This alert is over" in over.text) == (410, True)


async def test_the_name_is_filled_in_for_someone_signed_in(desk: Desk) -> None:
    """Opened by a signed-in user, the page offers their name."""
    await desk.raise_line()
    await desk.sign_in("priya")
    link = desk.rt.ack_link("revenues")
    assert link is not None
    page = await desk.http.get(path_of(link))
    assert 'id="name" name="name" type="text" value="Priya Shah"' in page.text


async def test_links_need_a_secret_and_a_raised_tier(tmp_path: Path) -> None:
    """Without server.secret_key there are no links; at tier 0 there is nothing to link."""
    async with running_desk(tmp_path, users=False, secret=False) as desk:
        await desk.raise_line()
        assert desk.rt.ack_link("revenues") is None
        page = await desk.http.get("/ack/revenues.2.1.1767700800." + "A" * 43)
        assert page.status_code == 404
        assert "not switched on" in page.text


async def test_the_runtime_hands_responders_a_link_for_the_orders_tier(desk: Desk) -> None:
    """A notification's context carries a link for its own tier and episode, under public_url."""
    assert desk.rt.ack_link("revenues") is None  # calm
    assert desk.rt.ack_link("nope") is None
    await desk.raise_line()
    order = ResponseOrder(
        key="k", line="revenues", response="notify", action=Action.APPLY, tier=2, episode=1,
        trigger="tier_changed", at=desk.clock.now(), reason="r",
    )  # fmt: skip
    link = desk.rt._context_for(order).extra["ack_url"]  # as risingtide.messages reads it
    assert link.startswith(f"{desk.url}/ack/revenues.2.1.")
    expires = int(link.split(".")[-2])
    assert expires == int((desk.clock.now() + timedelta(hours=24)).timestamp())
    undo = ResponseOrder(
        key="k2", line="revenues", response="notify", action=Action.UNDO, tier=2, episode=1,
        trigger="tier_changed", at=desk.clock.now(), reason="r",
    )  # fmt: skip
    assert "ack_url" not in desk.rt._context_for(undo).extra
    assert SECRET not in link
