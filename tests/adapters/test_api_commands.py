"""The duty manager's commands over real HTTP: what each does, and every way to get it wrong.

Bad bodies are 400, impossible requests 422, the engine's refusals 409, unknown lines 404 —
each with ``{"error": reason}`` — and what is done lands in the history with the user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from risingtide.api.models import LineOut
from tests.adapters.desk import Desk, bearer, running_desk

SILENCE = "/api/v1/lines/revenues/silence"
OVERRIDE = "/api/v1/lines/revenues/override"
ACK = "/api/v1/lines/revenues/ack"
PRIYA = bearer("priya")


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def post_raw(desk: Desk, path: str, content: bytes) -> tuple[int, str]:
    resp = await desk.http.post(
        path, content=content, headers={**PRIYA, "Content-Type": "application/json"}
    )
    return resp.status_code, resp.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        (ACK, b"{not json", "the body is not valid JSON"),
        (ACK, b"[1, 2]", "the body must be a JSON object"),
        (ACK, b'{"note": "x", "by": "Someone Else"}', 'unknown field "by"'),
        (ACK, b'{"note": 5}', '"note" must be text'),
        (SILENCE, b'{"reason": "upgrade"}', 'exactly one of "until"'),
        (SILENCE, b'{"for": "1h", "until": "2026-01-05T12:00:00Z", "reason": "x"}',
         'exactly one of "until"'),
        (SILENCE, b'{"for": "1h"}', '"reason" is required'),
        (SILENCE, b'{"for": "1h", "reason": "   "}', '"reason" must not be empty'),
        (SILENCE, b'{"for": "an hour", "reason": "x"}', '"for" is not a duration'),
        (SILENCE, b'{"until": "2026-01-05T12:00:00", "reason": "x"}', "needs a UTC offset"),
        (SILENCE, b'{"until": null, "for": "1h", "reason": "x"}', '"until" must not be null'),
        (SILENCE, b'{"for": "1h", "reason": "x", "undo": "yes"}', '"undo" must be true or false'),
        (OVERRIDE, b'{"level": "2", "for": "1h", "reason": "x"}', '"level" must be a whole number'),
        (OVERRIDE, b'{"level": 0, "for": "1h", "reason": "x"}', "\"level\" must be at least 1"),
    ],
)
async def test_malformed_bodies_are_400_with_the_reason(
    desk: Desk, path: str, body: bytes, reason: str
) -> None:
    """Not JSON, unknown fields, wrong types, both or neither of until/for: 400, saying which."""
    status, error = await post_raw(desk, path, body)
    assert status == 400
    assert reason in error


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        (SILENCE, b'{"until": "2026-01-05T08:59:00Z", "reason": "x"}', "is not in the future"),
        (SILENCE, b'{"for": "0s", "reason": "x"}', "must be longer than 0s"),
        (SILENCE, b'{"for": "32d", "reason": "x"}', "at most 31 days"),
        (SILENCE, b'{"until": "2027-01-05T09:00:00Z", "reason": "x"}', "at most 31 days ahead"),
        (SILENCE, b'{"for": "5m1h", "reason": "x"}', "is not a duration"),
        (OVERRIDE, b'{"level": 3, "for": "1h", "reason": "x"}', "revenues has no tier 3"),
        (OVERRIDE, b'{"level": 1, "until": "2020-01-01T00:00:00+01:00", "reason": "x"}',
         "is not in the future"),
    ],
)
async def test_impossible_requests_are_422_with_the_reason(
    desk: Desk, path: str, body: bytes, reason: str
) -> None:
    """A past ``until``, a span too long, a tier the line lacks: 422, saying which."""
    status, error = await post_raw(desk, path, body)
    assert status == 422
    assert reason in error


async def test_what_the_engine_refuses_is_409_with_its_reason(desk: Desk) -> None:
    """Acknowledging a calm line, lifting a silence that is not there: 409 with the reason."""
    calm = await desk.http.post(ACK, headers=PRIYA)
    assert (calm.status_code, calm.json()["error"]) == (
        409, "revenues is calm; there is nothing to acknowledge",
    )  # fmt: skip
    lift = await desk.http.delete(SILENCE, headers=PRIYA)
    assert (lift.status_code, lift.json()["error"]) == (409, "revenues is not silenced")
    end = await desk.http.delete(OVERRIDE, headers=PRIYA)
    assert (end.status_code, end.json()["error"]) == (409, "revenues has no declared tier")


async def test_an_unknown_line_is_404_and_oversized_or_odd_requests_are_4xx(desk: Desk) -> None:
    """No such line: 404; a body over 64 KiB: 413; unknown routes and methods: JSON 4xx."""
    resp = await desk.http.post("/api/v1/lines/nope/ack", headers=PRIYA)
    assert (resp.status_code, resp.json()["error"]) == (404, "no line 'nope' in the config")
    big = await desk.http.post(ACK, headers=PRIYA, content=b'{"note": "' + b"x" * 70_000 + b'"}')
    assert big.status_code == 413
    wrong_method = await desk.http.put(SILENCE, headers=PRIYA)
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (
        405, "that method is not allowed here",
    )  # fmt: skip
    nowhere = await desk.http.get("/api/v2/lines")
    assert nowhere.status_code == 404 and nowhere.json()["error"]


async def test_ack_records_the_users_name_and_note_and_returns_the_line(desk: Desk) -> None:
    """The acknowledgement is by the token's user, with the note, and the answer is the line."""
    await desk.raise_line()
    resp = await desk.http.post(ACK, headers=PRIYA, json={"note": "two agents back from lunch"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["reason"] == "tier 2 high acknowledged by Priya Shah"
    line = LineOut.model_validate(body["line"])
    assert line.acknowledged and line.acknowledgement is not None
    assert (line.acknowledgement.by, line.acknowledgement.note) == (
        "Priya Shah", "two agents back from lunch",
    )  # fmt: skip
    again = await desk.http.post(ACK, headers=PRIYA)
    assert again.status_code == 409
    assert "already acknowledged at tier 2 by Priya Shah" in again.json()["error"]


async def test_silence_for_a_duration_then_lift_it(desk: Desk) -> None:
    """``for: 2h`` silences until exactly two hours from now; DELETE lifts it."""
    resp = await desk.http.post(
        SILENCE, headers=PRIYA, json={"for": "2h", "reason": "phone upgrade", "undo": True}
    )
    assert resp.status_code == 200, resp.text
    silence = resp.json()["line"]["silence"]
    until = desk.clock.now() + timedelta(hours=2)
    assert silence == {"until": until.isoformat(), "by": "Priya Shah",
                       "reason": "phone upgrade", "undo": True}  # fmt: skip
    assert resp.json()["reason"] == "silenced by Priya Shah for 2h: phone upgrade"
    lifted = await desk.http.delete(SILENCE, headers=PRIYA)
    assert lifted.status_code == 200
    assert lifted.json()["line"]["silence"] is None


async def test_declare_until_a_time_then_end_it(desk: Desk) -> None:
    """Declaring tier 1 raises the line at once; DELETE ends the declaration."""
    until = (desk.clock.now() + timedelta(hours=3)).isoformat()
    resp = await desk.http.post(
        OVERRIDE, headers=PRIYA, json={"level": 1, "until": until, "reason": "bin day change"}
    )
    assert resp.status_code == 200, resp.text
    line = resp.json()["line"]
    assert (line["tier"], line["declaration"]["level"], line["declaration"]["by"]) == (
        1, 1, "Priya Shah",
    )  # fmt: skip
    ended = await desk.http.delete(OVERRIDE, headers=PRIYA)
    assert ended.status_code == 200
    assert ended.json()["line"]["declaration"] is None
    assert "cleared by Priya Shah" in ended.json()["reason"]


async def test_reload_answers_422_with_the_config_errors_and_records_who(
    desk: Desk, tmp_path: Path
) -> None:
    """A broken config is refused with every error; a good reload is in the history by user."""
    path = tmp_path / "rising-tide.yaml"
    good = path.read_text()
    path.write_text(good.replace("for: 10s", "for: ten seconds", 1))
    resp = await desk.http.post("/-/reload", headers=bearer("ada"))
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "the config has 1 error(s); the old config keeps running"
    assert body["errors"][0].startswith(f"{path}:")
    assert "is not a duration" in body["errors"][0]

    path.write_text(good)
    assert (await desk.http.post("/-/reload", headers=bearer("ada"))).status_code == 200
    assert desk.rt.store is not None
    entry = desk.rt.store.history(kinds=["config_reloaded"])[0]
    assert entry.data["by"] == "Ada Admin"


async def test_the_line_json_matches_its_documented_schema(desk: Desk) -> None:
    """Every line the API returns validates against the model its OpenAPI schema comes from."""
    await desk.raise_line()
    desk.rt.silence("waste", until=desk.clock.now() + timedelta(hours=1), by="Ada", reason="x")
    lines = (await desk.http.get("/api/v1/lines", headers=PRIYA)).json()["lines"]
    for line in lines:
        LineOut.model_validate(line)
