"""The ``prometheus`` source against a fake Prometheus on loopback.

The fake answers ``/api/v1/query`` (GET and form-encoded POST) in the documented format
(prometheus.io, "HTTP API": instant queries, instant vectors, scalars, error documents),
records the ``query`` and ``time`` it receives, and answers only queries it was given.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import FakeClock
from risingtide.config import check_config, load_config
from risingtide.domain.model import QueueStats
from risingtide.ports import SourceError
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.prometheus import (
    PrometheusLine,
    PrometheusSettings,
    PrometheusSource,
    label_value,
)
from risingtide.sources.webclient import RetryPolicy
from tests.adapters.loopback import Loopback, free_port

ROOT = Path(__file__).parents[2]
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=0)
NOW = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
NOW_TS = "1767604500.000"  # NOW as the Unix time the source sends


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    """A successful instant-vector answer: one ``(labels, value)`` per series."""
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1767604500.0, v]} for m, v in samples],
        },
    }


def one(value: str, **labels: str) -> dict[str, Any]:
    """A vector with one series."""
    return vector((labels, value))


def error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    """Prometheus' error document with its HTTP status."""
    return status, {"status": "error", "errorType": kind, "error": message}


class FakePrometheus:
    """Answers the instant queries it was told about; anything else is a bad_data error."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.seen: list[tuple[str, str, str | None]] = []
        self.auth_seen: set[str | None] = set()
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    def app(self) -> Starlette:
        async def query(request: Request) -> Response:
            params = request.query_params if request.method == "GET" else await request.form()
            text = str(params.get("query", ""))
            when = params.get("time")
            self.seen.append((request.method, text, None if when is None else str(when)))
            self.auth_seen.add(request.headers.get("authorization"))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
            answer = self.answers.get(text)
            if answer is None:
                status, body = error(
                    400, "bad_data", f'invalid parameter "query": no fake for {text}'
                )
            elif isinstance(answer, tuple):
                status, body = answer
            else:
                status, body = 200, answer
            if isinstance(body, str):  # not Prometheus: e.g. a proxy's error page
                return PlainTextResponse(body, status_code=status)
            return JSONResponse(body, status_code=status)

        return Starlette(routes=[Route("/api/v1/query", query, methods=["GET", "POST"])])


@pytest.fixture
async def prom():
    p = FakePrometheus()
    async with Loopback(p.app()) as url:
        yield p, url


def source(settings: dict[str, Any], lines: dict[str, dict[str, Any]]) -> PrometheusSource:
    """Validate both blocks as the loader does, then build the source with quick retries."""
    return PrometheusSource(
        "prom",
        PrometheusSettings.model_validate(settings),
        {k: PrometheusLine.model_validate(v) for k, v in lines.items()},
        FakeClock(NOW),
        policy=FAST,
    )


async def poll(src: PrometheusSource) -> dict[str, QueueStats | SourceError]:
    try:
        return dict(await src.poll())
    finally:
        await src.aclose()


CT = {
    "calls_waiting": 'queue_calls_waiting{queue="council_tax"}',
    "avg_wait": 'queue_avg_wait_seconds{queue="council_tax"}',
    "longest_wait": 'max(queue_oldest_call_age_seconds{queue="council_tax"})',
    "agents_available": 'sum(queue_agents{queue="council_tax",state="available"})',
    "offered": 'sum(increase(queue_calls_offered_total{queue="council_tax"}[15m]))',
    "abandoned": 'sum(increase(queue_calls_abandoned_total{queue="council_tax"}[15m]))',
}


async def test_per_line_queries_become_stats_at_the_poll_time(prom):
    """Each figure's query is sent as documented, at the poll's time; counts are rounded."""
    p, url = prom
    p.answers = {
        CT["calls_waiting"]: one("14", queue="council_tax"),
        CT["avg_wait"]: one("318.5", queue="council_tax"),
        CT["longest_wait"]: one("412"),
        CT["agents_available"]: one("1"),
        CT["offered"]: one("211.6"),  # increase() extrapolates
        CT["abandoned"]: one("25.4"),
    }
    result = await poll(source({"url": url, "window": "15m"}, {"council_tax": {"queries": CT}}))
    assert result["council_tax"] == QueueStats(
        line="council_tax",
        at=NOW,
        calls_waiting=14,
        avg_wait=318.5,
        longest_wait=412.0,
        agents_available=1,
        offered=212,
        abandoned=25,
        window=900.0,
    )
    assert sorted(p.seen) == sorted(("GET", q, NOW_TS) for q in CT.values())


async def test_templates_fill_in_the_queue_and_a_line_query_beats_its_template(prom):
    """``{queue}`` becomes each line's queue (default: its id); per-line queries win, and a
    per-line null drops a templated figure."""
    p, url = prom
    p.answers = {
        'queue_calls_waiting{queue="council_tax"}': one("4"),
        'queue_calls_waiting{queue="revs_and_bens"}': one("2"),
        'queue_avg_wait_seconds{queue="council_tax"}': one("95"),
        "avg_over_time(rb_wait_seconds[5m])": one("61"),
    }
    settings = {
        "url": url,
        "queries": {
            "calls_waiting": 'queue_calls_waiting{queue="{queue}"}',
            "avg_wait": 'queue_avg_wait_seconds{queue="{queue}"}',
            "longest_wait": 'queue_oldest_seconds{queue="{queue}"}',
        },
    }
    lines = {
        "council_tax": {"queries": {"longest_wait": None}},
        "revenues": {
            "queue": "revs_and_bens",
            "queries": {"avg_wait": "avg_over_time(rb_wait_seconds[5m])", "longest_wait": None},
        },
    }
    result = await poll(source(settings, lines))
    council_tax, revenues = result["council_tax"], result["revenues"]
    assert isinstance(council_tax, QueueStats)
    assert isinstance(revenues, QueueStats)
    assert (council_tax.calls_waiting, council_tax.avg_wait, council_tax.longest_wait) == (
        4,
        95.0,
        None,
    )
    assert (revenues.calls_waiting, revenues.avg_wait) == (2, 61.0)
    assert len(p.seen) == 4


async def test_an_empty_vector_nan_and_infinity_are_unknown(prom):
    """No series, NaN and +Inf leave a figure unknown; a scalar result is read as is."""
    p, url = prom
    p.answers = {
        "calls_waiting_q": vector(),
        "avg_wait_q": one("NaN"),
        "longest_wait_q": one("+Inf"),
        "agents_q": {
            "status": "success",
            "data": {"resultType": "scalar", "result": [1767604500.0, "3"]},
        },
    }
    queries = {
        "calls_waiting": "calls_waiting_q",
        "avg_wait": "avg_wait_q",
        "longest_wait": "longest_wait_q",
        "agents_available": "agents_q",
    }
    result = await poll(source({"url": url}, {"waste": {"queries": queries}}))
    assert result["waste"] == QueueStats(line="waste", at=NOW, agents_available=3)


async def test_several_series_are_a_parse_error_naming_them(prom):
    """A query that returns two series fails its line: figures are never summed silently."""
    p, url = prom
    p.answers = {
        "queue_calls_waiting": vector(({"queue": "council_tax"}, "4"), ({"queue": "waste"}, "1")),
        'queue_calls_waiting{queue="waste"}': one("1"),
    }
    lines = {
        "council_tax": {"queries": {"calls_waiting": "queue_calls_waiting"}},
        "waste": {"queries": {"calls_waiting": 'queue_calls_waiting{queue="waste"}'}},
    }
    result = await poll(source({"url": url}, lines))
    failed = result["council_tax"]
    assert isinstance(failed, SourceError)
    assert (failed.reason, failed.retryable) == ("parse", False)
    assert str(failed) == (
        'line "council_tax": calls_waiting query queue_calls_waiting: the query returned 2 '
        'series ({queue="council_tax"}, {queue="waste"}); it must return one: aggregate it '
        "(sum, max, …) or narrow its label matchers"
    )
    assert isinstance(result["waste"], QueueStats)


async def test_a_bad_query_is_refused_with_prometheus_own_message(prom):
    """400 bad_data is http_4xx, not retryable, with Prometheus' error text; other lines
    carry on."""
    p, url = prom
    bad = 'queue_calls_waiting{queue="council_tax"'
    p.answers = {
        bad: error(
            400,
            "bad_data",
            'invalid parameter "query": 1:38: parse error: unexpected end of input inside braces',
        ),
        'queue_calls_waiting{queue="waste"}': one("1"),
    }
    lines = {
        "council_tax": {"queries": {"calls_waiting": bad}},
        "waste": {"queries": {"calls_waiting": 'queue_calls_waiting{queue="waste"}'}},
    }
    result = await poll(source({"url": url}, lines))
    failed = result["council_tax"]
    assert isinstance(failed, SourceError)
    assert (failed.reason, failed.retryable) == ("http_4xx", False)
    assert str(failed) == (
        f'line "council_tax": calls_waiting query {bad}: Prometheus answered 400 (bad_data): '
        'invalid parameter "query": 1:38: parse error: unexpected end of input inside braces'
    )
    assert [q for _, q, _ in p.seen].count(bad) == 1  # not retried
    assert isinstance(result["waste"], QueueStats)


async def test_a_query_timeout_is_retried_then_fails_the_poll_as_http_5xx(prom):
    """503 (Prometheus' query timeout) is retried within the budget; when every query
    fails so, the whole poll fails once, with Prometheus' message."""
    p, url = prom
    p.answers = {"slow_q": error(503, "timeout", "query timed out in expression evaluation")}
    src = source({"url": url}, {"waste": {"queries": {"avg_wait": "slow_q"}}})
    with pytest.raises(SourceError) as caught:
        await poll(src)
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert "query timed out in expression evaluation" in str(caught.value)
    assert len(p.seen) == 3


async def test_an_error_page_from_a_proxy_in_front_is_still_classified(prom):
    """A 503 that is not a Prometheus document is the client's usual http_5xx, with the
    start of the page."""
    p, url = prom
    p.answers = {"q": (503, "<html>upstream connect error</html>")}
    with pytest.raises(SourceError) as caught:
        await poll(source({"url": url}, {"waste": {"queries": {"calls_waiting": "q"}}}))
    assert (caught.value.reason, caught.value.retryable) == ("http_5xx", True)
    assert "upstream connect error" in str(caught.value)


async def test_queries_run_concurrently_but_never_more_than_the_limit(prom):
    """Six distinct queries with concurrency 2 overlap two at a time; a shared query is
    sent once for all the lines that use it."""
    p, url = prom
    p.delay = 0.05
    p.answers = {f"q{i}": one(str(i)) for i in range(6)} | {"agents_total": one("30")}
    lines = {
        f"line{i}": {"queries": {"calls_waiting": f"q{i}", "agents_staffed": "agents_total"}}
        for i in range(6)
    }
    result = await poll(source({"url": url, "concurrency": 2}, lines))
    assert p.max_in_flight == 2
    assert len(p.seen) == 7
    assert all(isinstance(s, QueueStats) and s.agents_staffed == 30 for s in result.values())


async def test_post_sends_the_query_form_encoded_with_basic_auth(prom):
    """``method: POST`` sends query and time in the body; Basic credentials are sent."""
    p, url = prom
    p.answers = {"sum(queue_calls_waiting)": one("7")}
    settings = {
        "url": url,
        "method": "POST",
        "auth": {"basic": {"username": "grafana-reader", "password": "pw"}},
    }
    lines = {"all_lines": {"queries": {"calls_waiting": "sum(queue_calls_waiting)"}}}
    result = await poll(source(settings, lines))
    assert isinstance(result["all_lines"], QueueStats)
    assert p.seen == [("POST", "sum(queue_calls_waiting)", NOW_TS)]
    assert p.auth_seen == {"Basic " + base64.b64encode(b"grafana-reader:pw").decode()}


async def test_a_rate_becomes_a_count_and_the_at_query_stamps_the_stats(prom):
    """``abandon_rate`` × ``offered`` gives ``abandoned``; ``at`` reads a Unix time."""
    p, url = prom
    p.answers = {
        "offered_q": one("40"),
        "rate_q": one("0.125"),
        "timestamp(queue_calls_waiting)": one("1767604470"),
    }
    queries = {
        "offered": "offered_q",
        "abandon_rate": "rate_q",
        "at": "timestamp(queue_calls_waiting)",
    }
    result = await poll(source({"url": url, "window": "15m"}, {"waste": {"queries": queries}}))
    stats = result["waste"]
    assert isinstance(stats, QueueStats)
    assert (stats.offered, stats.abandoned, stats.abandon_rate) == (40, 5, 0.125)
    assert stats.at == datetime(2026, 1, 5, 9, 14, 30, tzinfo=UTC)


async def test_prometheus_unreachable_fails_the_whole_poll():
    """Nothing listening: the poll fails once with reason network, retryable."""
    src = source({"url": f"http://127.0.0.1:{free_port()}"}, {"waste": {"queries": CT}})
    with pytest.raises(SourceError) as caught:
        await poll(src)
    assert (caught.value.reason, caught.value.retryable) == ("network", True)


def test_label_values_are_escaped_for_promql():
    """A queue with quotes or backslashes cannot break out of its label matcher."""
    assert label_value('say "hi"\\now') == 'say \\"hi\\"\\\\now'


def test_config_mistakes_are_reported_with_positions(tmp_path, monkeypatch):
    """A misspelt figure, {queue} in the url and a rate without offered are config errors."""
    monkeypatch.chdir(tmp_path)
    Path("centre.yaml").write_text(
        """\
sources:
  prom:
    type: prometheus
    url: "http://prometheus:9090/{queue}"
    queries:
      avg_wiat: 'queue_avg_wait_seconds{queue="{queue}"}'
  prom2:
    type: prometheus
    url: http://prometheus:9090
    queries: { abandon_rate: 'queue_abandon_ratio{queue="{queue}"}' }
lines:
  waste: { name: Waste, source: prom2 }
defaults: { framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
""",
        encoding="utf-8",
    )
    _, errors, _ = check_config("centre.yaml", env={})
    assert [str(e) for e in errors] == [
        "centre.yaml:4:10: sources.prom.url: {queue} belongs in the queries, not in the url",
        'centre.yaml:6:7: sources.prom.queries: unknown key "avg_wiat" (did you mean "avg_wait"?)',
        "centre.yaml:8:5: sources.prom2: queries.abandon_rate needs queries.offered: "
        "abandoned = round(abandon_rate × offered)",
    ]


def test_the_plugin_is_wired_and_the_example_config_loads():
    """``type: prometheus`` is in the wiring table; the example config loads cleanly."""
    assert SOURCE_TYPES["prometheus"].settings_model is PrometheusSettings
    config = load_config(
        ROOT / "config" / "examples" / "prometheus.yaml", env={"PROMETHEUS_TOKEN": "t"}
    )
    assert config.sources["prometheus"].type == "prometheus"
    assert config.warnings == ()
