"""``GET /api/v1/demand`` and the board's "Coming up" panel, against a real daemon on loopback.

The desk daemon runs on a FakeClock at Monday 5 January 2026, 09:00 UTC, with a demand
calendar: Council Tax bills on the Wednesday (revenues, pre-armed, paging), a storm in
three weeks (all lines) and a drill relative to the daemon's start.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from risingtide.api.demand import DemandOut
from tests.adapters.desk import Desk, bearer, running_desk

DEMAND = """
demand:
  - name: Council Tax bills
    lines: [revenues]
    start: "2026-01-07T08:00"
    for: 8h
    multiply: 3
    prearm: { level: 2, lead: 1h }
    tighten: { level: 1, for: 0s }
    responses: [notify]
    lead: 2h
  - { name: Storm, lines: all, start: "2026-01-26T06:00", for: 1d, calls_per_hour: 400 }
  - { name: Drill, lines: [waste], start: -5m, for: 30m, multiply: 2 }
"""


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path, tweak=lambda text: text + DEMAND) as d:
        yield d


async def demand(desk: Desk, **params: str) -> dict[str, Any]:
    """The API's answer (as a viewer), checked against its documented shape."""
    resp = await desk.http.get("/api/v1/demand", params=params, headers=bearer("vera"))
    assert resp.status_code == 200, resp.text
    body = dict(resp.json())
    DemandOut.model_validate(body)
    return body


async def test_the_next_seven_days_per_line(desk: Desk) -> None:
    """Revenues has the bills (with pre-arm and lead times); waste the drill under way; the
    storm, three weeks off, is not within 7 days but is within 30."""
    body = await demand(desk)
    assert body["days"] == 7
    by_line = {entry["line"]: entry["events"] for entry in body["lines"]}
    assert sorted(by_line) == ["revenues", "waste"]
    (bills,) = by_line["revenues"]
    assert bills["start"] == "2026-01-07T08:00:00+00:00"
    assert bills["prearm_level"] == 2
    assert bills["prearm_from"] == "2026-01-07T07:00:00+00:00"
    assert (bills["responses"], bills["responses_at"]) == (["notify"], "2026-01-07T06:00:00+00:00")
    assert bills["tighten"] == [{"level": 1, "for_seconds": 0.0}]
    assert bills["running"] is False
    (drill,) = by_line["waste"]
    assert drill["running"] is True
    assert drill["start"] == "2026-01-05T08:55:00+00:00"
    later = await demand(desk, days="30", line="waste")
    assert [e["name"] for e in later["lines"][0]["events"]] == ["Drill", "Storm"]


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"days": "0"}, 400, "days must be a whole number from 1 to 366"),
        ({"days": "soon"}, 400, "days must be a whole number"),
        ({"days": "400"}, 400, "from 1 to 366"),
        ({"line": "parking"}, 404, "no line 'parking'"),
    ],
)
async def test_a_bad_query_is_refused_with_a_reason(
    desk: Desk, params: dict[str, str], status: int, reason: str
) -> None:
    """A bad ``days`` is a 400 and an unknown line a 404, each saying why."""
    resp = await desk.http.get("/api/v1/demand", params=params, headers=bearer("vera"))
    assert resp.status_code == status
    assert reason in resp.json()["error"]


async def test_reading_the_calendar_needs_a_viewer_when_users_are_configured(desk: Desk) -> None:
    """Like every read: 401 without credentials."""
    assert (await desk.http.get("/api/v1/demand")).status_code == 401


async def test_the_board_shows_what_is_coming_up(desk: Desk) -> None:
    """The board's "Coming up" panel lists the drill under way and the bills with what they
    do; two weeks on, the bills are gone and the storm is listed."""
    resp = await desk.http.get("/", headers=bearer("vera"))
    panel = re.search(r'<section id="coming-up".*?</section>', resp.text, re.S)
    assert panel is not None
    assert " hidden" not in panel.group(0).split(">", 1)[0]
    items = [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li.*?</li>", panel.group(0))]
    assert items == [
        "Drill (Waste &amp; Recycling): under way until 09:25; 2× the usual calls",
        "Council Tax bills (Revenues &amp; Benefits): Wed 07 Jan 08:00 to Wed 07 Jan 16:00; "
        "3× the usual calls; tier 2 pre-armed from Wed 07 Jan 07:00; notify at Wed 07 Jan 06:00",
    ]
    desk.clock.advance(15 * 86400)  # Tuesday 20 January: the storm is 6 days off
    resp = await desk.http.get("/", headers=bearer("vera"))
    assert "Council Tax bills" not in resp.text
    assert "Storm" in resp.text
