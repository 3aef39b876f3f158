"""The episode API and pages, lessons learned and the trend, on a real daemon on loopback."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.adapters.desk import Desk, bearer, running_desk


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def surge(desk: Desk) -> str:
    """Revenues rises to tier 2 and falls back to calm; the episode's id."""
    await desk.raise_line("revenues", avg_wait=400)
    for _ in range(3):
        await desk.raise_line("revenues", avg_wait=100)
    return "revenues-1"


async def test_the_list_and_one_episode_as_json(desk: Desk) -> None:
    """A surge lists as one episode, with its timeline and peak tier in the detail."""
    eid = await surge(desk)
    listed = (await desk.http.get("/api/v1/episodes", headers=bearer("vera"))).json()
    assert [e["id"] for e in listed["episodes"]] == [eid]
    assert listed["episodes"][0]["peak_tier"] == 2
    assert listed["episodes"][0]["ongoing"] is False
    one = (await desk.http.get(f"/api/v1/episodes/{eid}", headers=bearer("vera"))).json()
    steps = [(s["from_tier"], s["to_tier"]) for s in one["timeline"]]
    assert steps[0] == (0, 2)
    assert steps[-1][1] == 0
    assert one["thresholds"] == {"1": 180.0, "2": 300.0}
    assert [n["response"] for n in one["notifications"]] == ["notify"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=0", "limit must be between 1 and 500"),
        ("since=yesterday", "bad query parameter"),
        ("until=2026-01-05T09:00:00", "needs a timezone"),
    ],
)
async def test_a_bad_list_query_is_a_400_that_says_why(desk: Desk, query: str, reason: str) -> None:
    """Each bad parameter is refused with its reason."""
    resp = await desk.http.get(f"/api/v1/episodes?{query}", headers=bearer("vera"))
    assert resp.status_code == 400
    assert reason in resp.json()["error"]


async def test_an_unknown_or_malformed_episode_is_a_404(desk: Desk) -> None:
    """An id that is not one, or that the history does not have, is a 404 saying which."""
    bad = await desk.http.get("/api/v1/episodes/not%20an%20id", headers=bearer("vera"))
    assert bad.status_code == 404
    assert "not an episode id" in bad.json()["error"]
    missing = await desk.http.get("/api/v1/episodes/revenues-9", headers=bearer("vera"))
    assert missing.status_code == 404
    assert "no episode 'revenues-9'" in missing.json()["error"]
    page = await desk.http.get("/episodes/revenues-9", headers=bearer("vera"))
    assert page.status_code == 404
    assert "No such episode" in page.text


async def test_a_duty_manager_adds_lessons_learned_through_the_api(desk: Desk) -> None:
    """Lessons are stored as a history event with the user's name, and shown on the episode."""
    eid = await surge(desk)
    url = f"/api/v1/episodes/{eid}/lessons"
    text = "Switch the IVR message on at tier 1 next time."
    resp = await desk.http.post(url, json={"text": text}, headers=bearer("priya"))
    assert resp.status_code == 201
    assert resp.json()["by"] == "Priya Shah"
    events = await desk.http.get("/api/v1/events?kind=lessons_learned", headers=bearer("vera"))
    [event] = events.json()["events"]
    assert (event["line"], event["data"]["text"], event["data"]["episode"]) == (
        "revenues", text, 1
    )  # fmt: skip
    one = (await desk.http.get(f"/api/v1/episodes/{eid}", headers=bearer("vera"))).json()
    assert [(n["by"], n["text"]) for n in one["lessons"]] == [("Priya Shah", text)]
    page = await desk.http.get(f"/episodes/{eid}", headers=bearer("vera"))
    assert text in page.text
    # Scripts from this daemon only: the chart's library is served, never fetched.
    assert "script-src 'self'" in page.headers["content-security-policy"]
    history = await desk.http.get("/history?kind=lessons_learned", headers=bearer("vera"))
    assert f"Lessons learned on episode 1 by Priya Shah: {text}" in history.text
    exported = await desk.http.get(
        "/api/v1/events.csv?kind=lessons_learned", headers=bearer("vera")
    )
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["kind"], row["by"], row["reason"]) == ("lessons_learned", "Priya Shah", text)


@pytest.mark.parametrize(
    ("who", "body", "status", "reason"),
    [
        (None, {"text": "x"}, 401, ""),
        ("vera", {"text": "x"}, 403, "this needs a duty manager"),
        ("priya", {"text": "   "}, 400, "Enter the lessons learned"),
        ("priya", {"text": "x" * 4001}, 400, "4000 characters or fewer"),
        ("priya", {"words": "x"}, 400, '"text" string'),
        ("priya", ["x"], 400, '"text" string'),
    ],
)
async def test_lessons_are_refused_with_a_reason_and_nothing_stored(
    desk: Desk, who: str | None, body: object, status: int, reason: str
) -> None:
    """Without a duty manager, or without text, nothing reaches the history."""
    eid = await surge(desk)
    headers = bearer(who) if who else {}
    resp = await desk.http.post(f"/api/v1/episodes/{eid}/lessons", json=body, headers=headers)
    assert resp.status_code == status
    assert reason in resp.json()["error"]
    events = await desk.http.get("/api/v1/events?kind=lessons_learned", headers=bearer("vera"))
    assert events.json()["events"] == []


async def form_csrf(client: httpx.AsyncClient, eid: str) -> str:
    page = await client.get(f"/episodes/{eid}")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_the_page_form_saves_lessons_with_the_session_csrf(desk: Desk) -> None:
    """Signed in with a cookie, the form posts with its CSRF value and comes back saved."""
    eid = await surge(desk)
    await desk.sign_in("priya")
    csrf = await form_csrf(desk.http, eid)
    resp = await desk.http.post(
        f"/api/v1/episodes/{eid}/lessons", data={"csrf_token": csrf, "text": "Page surge staff"}
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/episodes/{eid}?saved=1#add-lessons"
    page = await desk.http.get(resp.headers["location"])
    assert "Your lessons learned were saved" in page.text
    assert "Page surge staff" in page.text


async def test_the_form_without_its_csrf_value_saves_nothing(desk: Desk) -> None:
    """A form posted from elsewhere (no CSRF value) is refused with a page saying why."""
    eid = await surge(desk)
    await desk.sign_in("priya")
    resp = await desk.http.post(
        f"/api/v1/episodes/{eid}/lessons", data={"csrf_token": "forged", "text": "x"}
    )
    assert resp.status_code == 403
    assert "did not come from this site" in resp.text
    one = (await desk.http.get(f"/api/v1/episodes/{eid}", headers=bearer("vera"))).json()
    assert one["lessons"] == []


async def test_an_empty_form_shows_the_error_beside_the_field(desk: Desk) -> None:
    """An empty text comes back as a 400 page with an error summary linking to the field."""
    eid = await surge(desk)
    await desk.sign_in("priya")
    csrf = await form_csrf(desk.http, eid)
    resp = await desk.http.post(
        f"/api/v1/episodes/{eid}/lessons", data={"csrf_token": csrf, "text": ""}
    )
    assert resp.status_code == 400
    assert '<a href="#text">Enter the lessons learned</a>' in resp.text


async def test_the_trend_is_the_last_hour_from_the_server(desk: Desk) -> None:
    """The trend holds one sample a minute of the line's figures, with the daemon's now."""
    await desk.raise_line("revenues", avg_wait=200)
    desk.clock.advance(60)
    await desk.raise_line("revenues", avg_wait=250)
    body = (await desk.http.get("/api/v1/lines/revenues/trend", headers=bearer("vera"))).json()
    assert body["now"] == desk.clock.now().isoformat()
    assert [s["avg_wait"] for s in body["samples"]] == [200, 250]
    missing = await desk.http.get("/api/v1/lines/nowhere/trend", headers=bearer("vera"))
    assert missing.status_code == 404
