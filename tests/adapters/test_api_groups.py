"""``GET /api/v1/groups`` and the board's "On duty" panel, against a real daemon on loopback.

The desk daemon runs on a FakeClock at Monday 5 January 2026, 09:00 UTC (09:00 in London),
with a duty managers' rota: Asha 07:00-14:00, Ben 14:00-22:00, Chloe overnight, weekdays
only, so the weekend is a gap in the rota.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from risingtide.api.duty import GroupsOut
from tests.adapters.desk import Desk, bearer, running_desk

PEOPLE = """
people:
  asha: { name: Asha Patel, email: asha.patel@example.gov.uk, mobile: "07700 900123" }
  ben: { name: Ben Okafor, email: ben.okafor@example.gov.uk, mobile: "07700 900456" }
  chloe: { name: Chloe Evans, email: chloe.evans@example.gov.uk, slack: U024BE7LH }
  morgan: { name: Morgan Price, teams: morgan.price@example.gov.uk }
groups:
  duty_managers:
    members: [asha, ben, chloe]
    rota:
      - { days: mon-fri, hours: "07:00-14:00", on_duty: asha }
      - { days: mon-fri, hours: "14:00-22:00", on_duty: ben }
      - { days: mon-fri, hours: "22:00-07:00", on_duty: chloe }
  heads_of_service:
    name: Heads of customer services
    members: [morgan]
"""
ADDRESSES = re.compile(r"@|\+44|07700|U024BE7LH|example\.gov\.uk")


def with_people(text: str) -> str:
    """The desk's config with people, groups, and its notification paging the duty managers."""
    plain = "notify: { type: log, message: duty manager please look }"
    assert plain in text
    paged = "notify: { type: log, message: duty manager please look, page: [duty_managers] }"
    return text.replace(plain, paged) + PEOPLE


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path, tweak=with_people) as d:
        yield d


async def groups(desk: Desk, at: str | None = None) -> dict[str, Any]:
    """The API's answer (as a viewer), checked against its documented shape."""
    params = {"at": at} if at is not None else {}
    resp = await desk.http.get("/api/v1/groups", params=params, headers=bearer("vera"))
    assert resp.status_code == 200, resp.text
    body = dict(resp.json())
    GroupsOut.model_validate(body)
    return body


def group(body: dict[str, Any], gid: str) -> dict[str, Any]:
    found = [g for g in body["groups"] if g["group"] == gid]
    assert len(found) == 1, body
    return dict(found[0])


def names(g: dict[str, Any]) -> list[str]:
    return [p["name"] for p in g["on_duty"]]


async def test_groups_say_who_is_on_duty_by_the_daemons_clock(desk: Desk) -> None:
    """At 09:00 Asha is on duty until 14:00; once the daemon's clock passes 14:00, Ben."""
    body = await groups(desk)
    assert body["at"] == "2026-01-05T09:00:00+00:00"
    duty = group(body, "duty_managers")
    assert duty == {
        "group": "duty_managers",
        "name": "duty managers",
        "timezone": "Europe/London",
        "on_duty": [{"id": "asha", "name": "Asha Patel"}],
        "by_rota": True,
        "next_change": "2026-01-05T14:00:00+00:00",
        "paged_by": ["notify"],
    }
    heads = group(body, "heads_of_service")
    assert heads["name"] == "Heads of customer services"
    assert names(heads) == ["Morgan Price"]
    assert heads["by_rota"] is False  # no rota: every member, always
    assert heads["next_change"] is None
    assert heads["paged_by"] == []

    desk.clock.advance(5 * 3600 + 1)  # 14:00:01
    duty = group(await groups(desk), "duty_managers")
    assert names(duty) == ["Ben Okafor"]
    assert duty["next_change"] == "2026-01-05T22:00:00+00:00"


async def test_the_rota_changes_between_two_at_moments(desk: Desk) -> None:
    """?at= asks about another moment: the morning is Asha's, the afternoon Ben's."""
    morning = group(await groups(desk, "2026-01-07T10:00:00Z"), "duty_managers")
    afternoon = group(await groups(desk, "2026-01-07T15:30:00+00:00"), "duty_managers")
    assert names(morning) == ["Asha Patel"]
    assert names(afternoon) == ["Ben Okafor"]
    assert morning["next_change"] == "2026-01-07T14:00:00+00:00"
    # In summer the rota is still read in London time: 13:30 UTC is 14:30 BST, Ben's shift,
    # which ends at 22:00 BST, given with its offset.
    summer = group(await groups(desk, "2026-07-08T13:30:00Z"), "duty_managers")
    assert names(summer) == ["Ben Okafor"]
    assert summer["next_change"] == "2026-07-08T22:00:00+01:00"


async def test_a_gap_in_the_rota_pages_everyone_and_is_not_by_rota(desk: Desk) -> None:
    """Saturday noon no shift covers: every member is paged, until Monday's 07:00 shift."""
    saturday = group(await groups(desk, "2026-01-10T12:00:00Z"), "duty_managers")
    assert names(saturday) == ["Asha Patel", "Ben Okafor", "Chloe Evans"]
    assert saturday["by_rota"] is False
    assert saturday["next_change"] == "2026-01-12T07:00:00+00:00"
    friday_night = group(await groups(desk, "2026-01-09T23:00:00Z"), "duty_managers")
    assert names(friday_night) == ["Chloe Evans"]
    assert friday_night["by_rota"] is True
    assert friday_night["next_change"] == "2026-01-10T07:00:00+00:00"


async def test_no_addresses_in_the_answer(desk: Desk) -> None:
    """People appear by id and name only: no email, mobile, Teams or Slack address."""
    for at in ("2026-01-05T09:00:00Z", "2026-01-10T12:00:00Z", "2026-01-05T23:00:00Z"):
        resp = await desk.http.get("/api/v1/groups", params={"at": at}, headers=bearer("vera"))
        assert ADDRESSES.search(resp.text) is None, resp.text
        for g in resp.json()["groups"]:
            assert all(set(p) == {"id", "name"} for p in g["on_duty"])


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2026-01-05T09:00:00", "needs a timezone"),
        ("2026-01-05 09:00", "needs a timezone"),
        ("next tuesday", "Invalid isoformat string"),
        ("9999-12-31T23:00:00Z", "between the years 1900 and 8999"),
        ("0001-01-01T00:00:00+05:00", "bad query parameter at"),
    ],
)
async def test_a_bad_at_is_refused_with_a_reason(desk: Desk, at: str, reason: str) -> None:
    """A malformed, naive or out-of-range ``at`` is a 400 that says what is wrong."""
    resp = await desk.http.get("/api/v1/groups", params={"at": at}, headers=bearer("vera"))
    assert resp.status_code == 400
    assert reason in resp.json()["error"]


async def test_reading_the_groups_needs_a_viewer_when_users_are_configured(desk: Desk) -> None:
    """Like every read: 401 without credentials, 200 for a viewer."""
    resp = await desk.http.get("/api/v1/groups")
    assert resp.status_code == 401
    assert "WWW-Authenticate" in resp.headers
    assert (await desk.http.get("/api/v1/groups", headers=bearer("vera"))).status_code == 200


async def test_the_board_is_rendered_with_the_on_duty_panel(desk: Desk) -> None:
    """The board's HTML names who is on duty in each paged group, with no addresses."""
    resp = await desk.http.get("/", headers=bearer("vera"))
    assert resp.status_code == 200
    panel = re.search(r'<section id="on-duty".*?</section>', resp.text, re.S)
    assert panel is not None
    assert " hidden" not in panel.group(0).split(">", 1)[0]
    items = [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li.*?</li>", panel.group(0))]
    assert items == ["Duty managers: Asha Patel (until 14:00)"]  # heads are paged by nothing
    assert ADDRESSES.search(resp.text) is None

    desk.clock.advance(13 * 3600)  # 22:00: Chloe's night, until Tuesday 07:00
    resp = await desk.http.get("/", headers=bearer("vera"))
    assert 'Chloe Evans</span> <span class="until">(until Tue 07:00)</span>' in resp.text


async def test_without_groups_the_answer_is_empty_and_the_panel_hidden(tmp_path: Path) -> None:
    """A config with no groups: an empty list, and the board's panel is not shown."""
    async with running_desk(tmp_path, users=False) as desk:
        resp = await desk.http.get("/api/v1/groups")
        assert resp.status_code == 200
        assert resp.json()["groups"] == []
        board = await desk.http.get("/")
        assert re.search(r'<section id="on-duty"[^>]* hidden>', board.text)
