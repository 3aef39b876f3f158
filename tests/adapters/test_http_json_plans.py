"""Lines of an ``http_json`` source that map nothing of their own share one worked-out plan."""

from __future__ import annotations

from risingtide.sources.http_json import HttpJsonLine, HttpJsonSettings, _plans

SETTINGS = HttpJsonSettings.model_validate(
    {
        "url": "http://127.0.0.1:9/wallboard",
        "lines_at": "queues",
        "key": "id",
        "window": "15m",
        "map": {
            "calls_waiting": "realtime.waiting",
            "longest_wait": {"path": "realtime.longestMs", "unit": "ms"},
            "offered": "interval.offered",
            "abandon_rate": {"path": "interval.abandonedPct", "unit": "percent"},
        },
    }
)


def test_lines_without_a_map_of_their_own_share_fields_and_keep_their_queue() -> None:
    """Two plain lines share one fields tuple; each reads its own queue; a window of its own
    and a map of its own give a line its own plan."""
    lines = {
        "a": HttpJsonLine.model_validate({"queue": "Q1"}),
        "b": HttpJsonLine.model_validate({}),
        "c": HttpJsonLine.model_validate({"queue": "Q3", "window": "5m"}),
        "d": HttpJsonLine.model_validate({"queue": "Q4", "map": {"offered": None}}),
    }
    a, b, c, d = _plans(SETTINGS, lines)
    assert (a.line, a.queue, b.line, b.queue) == ("a", "Q1", "b", "b")
    assert a.fields is b.fields
    assert (a.window, c.window) == (900.0, 300.0)
    assert c.fields == a.fields
    names = [name for name, _path, _factor in a.fields]
    assert names == ["calls_waiting", "longest_wait", "offered", "abandon_rate"]
    assert [n for n, _path, _factor in d.fields] == [
        "calls_waiting",
        "longest_wait",
        "abandon_rate",
    ]
    assert d.problem == (
        "abandon_rate is mapped but offered is not, so abandoned cannot be worked out"
    )
    assert a.problem is None
