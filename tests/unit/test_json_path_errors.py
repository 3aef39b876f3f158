"""A JSON path that does not resolve says where it stopped, written as a path."""

from __future__ import annotations

import pytest

from risingtide.sources.http_json import PathError, parse_json_path

PAYLOAD = {"data": {"queues": [{"id": "Q1", "stats": {"waiting": 3}}], "n": 1, "odd key": {}}}
RECORD = PAYLOAD["data"]["queues"][0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.data.queues[0].stats.wait", '$.data.queues[0].stats has no "wait"'),
        ("$.data.queues[3]", "$.data.queues has 1 item(s), so no [3]"),
        ("$.data.n.x", "$.data.n is a number, not an object"),
        ("$.data.queues[0][1]", "$.data.queues[0] is an object, not a list"),
        ('$.data["odd key"].x', '$.data["odd key"] has no "x"'),
        ("stats.calls", 'data.queues[0].stats has no "calls"'),
        ("$.nothing", '$ has no "nothing"'),
    ],
)
def test_a_path_that_stops_names_the_place_it_stopped(path: str, message: str) -> None:
    """The message names the path walked so far, from ``$`` or from the record."""
    with pytest.raises(PathError) as caught:
        parse_json_path(path).resolve(PAYLOAD, RECORD, "data.queues[0]")
    assert str(caught.value).startswith(message)


def test_a_path_that_resolves_gives_the_value_and_null_gives_none() -> None:
    """Found values come back as they are; a null on the way is unknown (None)."""
    assert parse_json_path("stats.waiting").resolve(PAYLOAD, RECORD, "x") == 3
    assert parse_json_path("$.data.n").resolve(PAYLOAD, RECORD, "x") == 1
    assert parse_json_path("a.b").resolve({}, {"a": None}, "x") is None
