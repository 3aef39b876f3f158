"""A real Prometheus scrapes a running daemon; every PromQL query on the dashboard answers.

The daemon runs the shipped demo config made fast (1 s polls and evaluations) plus a "drill"
line that rises at once, runs responses (one of them dies) and sends notifications, so the
series that exist only after events are there within seconds (see conftest.fast_demo_config).
Prometheus scrapes it every second and loads deploy/prometheus/rules.yml.

Each query on the dashboard is sent to Prometheus's /api/v1/query with Grafana's variables
filled in (VARIABLES below). The rule applied: every query must be accepted
(``status == success``) and return at least one series, except a query that reads only
metrics in EVENT_ONLY: series that appear only when something fails that a config cannot
make fail (a poll). For those, the query must be accepted and Prometheus must know every
metric it reads from the daemon's scrape (target metadata lists each family the daemon
declares, before its first sample), which proves the name is right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import DEPLOY, DRILL_LINE, Stack

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "rising-tide.json"

#: Grafana's variables as the test fills them in; ${line} before $line.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${line}": ".*",
    "$line": ".*",
}
EVENT_ONLY = {"risingtide_poll_errors_total"}
METRIC = re.compile(r"\brisingtide_[a-z_]+")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every query on the dashboard, annotations included."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [
        (p["title"], t["expr"])
        for p in panels(board["panels"])
        for t in p.get("targets", [])
        if t.get("expr")
    ]
    found += [
        (f"annotation {a['name']}", a["expr"])
        for a in board.get("annotations", {}).get("list", [])
        if a.get("expr")
    ]
    return found


def fill(expr: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


QUERIES = dashboard_queries()


def test_the_dashboard_has_queries_to_check() -> None:
    """The dashboard JSON yields a good number of PromQL queries for the live checks."""
    assert len(QUERIES) >= 20


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """Each query on the dashboard is valid and returns series from the live daemon."""
    must = [fill(e, VARIABLES) for _, e in QUERIES if not set(METRIC.findall(e)) <= EVENT_ONLY]
    may_be_empty = [fill(e, VARIABLES) for _, e in QUERIES if set(METRIC.findall(e)) <= EVENT_ONLY]
    assert may_be_empty, "EVENT_ONLY no longer matches a query: drop it, or the rule"
    # Bounded: fails with the list of queries still empty at the deadline.
    stack.wait_for_data(must, timeout=45)
    for expr in may_be_empty:
        body = stack.query(expr)
        assert body["status"] == "success", (expr, body)
        for metric in METRIC.findall(expr):
            meta = httpx.get(
                stack.prometheus.url + "/api/v1/targets/metadata",
                params={"metric": metric}, timeout=5,
            ).json()  # fmt: skip
            assert meta["data"], f"Prometheus has not seen {metric} declared by the daemon"


def test_line_variable_lists_every_line(stack: Stack) -> None:
    """The line variable's label_values(risingtide_line_tier, line) finds every configured line."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    var = next(v for v in board["templating"]["list"] if v["name"] == "line")
    query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
    metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query).groups()  # type: ignore[union-attr]

    def values() -> list[str]:
        url = f"{stack.prometheus.url}/api/v1/label/{label}/values"
        return list(httpx.get(url, params={"match[]": metric}, timeout=5).json()["data"])

    stack.wait_for_data([metric], timeout=30)
    assert sorted(values()) == sorted(stack.lines)


def test_choosing_lines_narrows_every_per_line_query(stack: Stack) -> None:
    """With two lines chosen, every query that keeps a line label returns only those lines."""
    chosen = {"council_tax", DRILL_LINE}
    regex = "|".join(sorted(chosen))  # what Grafana sends for a multi-value regex variable
    per_line = [fill(e, {**VARIABLES, "${line}": regex, "$line": regex}) for _, e in QUERIES]
    per_line = [e for e in per_line if regex in e]
    assert len(per_line) >= 10
    results = stack.wait_for_data([e for e in per_line if "risingtide_line_" in e], timeout=45)
    for expr, series in results.items():
        seen = {s["metric"]["line"] for s in series if "line" in s["metric"]}
        assert seen <= chosen, (expr, seen)


def test_dashboard_reads_only_metrics_the_daemon_exports(stack: Stack) -> None:
    """Every risingtide_ metric the dashboard names is declared on the daemon's /metrics."""
    text = httpx.get(stack.daemon.url + "/metrics", timeout=5).text
    families = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    named = {m for _, e in QUERIES for m in METRIC.findall(e)}
    unknown = {
        m for m in named
        if m not in families and re.sub(r"_(total|bucket|sum|count)$", "", m) not in families
    }  # fmt: skip
    assert unknown == set()


@pytest.mark.parametrize("tier", [1, 2])
def test_the_drill_line_reached_its_tiers(stack: Stack, tier: int) -> None:
    """The drill line rose as designed, so the tier panels show more than calm."""
    stack.wait_for_data([f'risingtide_line_tier{{line="{DRILL_LINE}"}} >= {tier}'], timeout=30)
