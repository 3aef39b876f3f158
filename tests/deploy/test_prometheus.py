"""Prometheus config and rules: promtool checks and unit tests, runbooks, the daemon's metrics.

``promtool`` comes from Debian's ``prometheus`` package (scripts/install-system-deps).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO, Process, Stack, run, tool, wait_for

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules.yml"
OPERATIONS = REPO / "docs" / "operations.md"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alerts() -> list[dict[str, Any]]:
    return [r for g in load(RULES)["groups"] for r in g["rules"] if "alert" in r]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown`` (lower case, punctuation dropped)."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        text = re.sub(r"[`*_]", "", heading).strip().lower()
        anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def exported_families(metrics_text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", metrics_text, flags=re.MULTILINE))


def test_promtool_check_config() -> None:
    """promtool accepts prometheus.yml (and, through it, rules.yml)."""
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    """promtool accepts rules.yml."""
    result = run([tool("promtool"), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    """Every case in rules.test.yml passes under promtool test rules."""
    result = run([tool("promtool"), "test", "rules", str(PROMETHEUS / "rules.test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_both_firing_and_quiet() -> None:
    """Each alert in rules.yml has a unit test where it fires and one where it stays quiet."""
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in load(PROMETHEUS / "rules.test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown staying quiet"


def test_alerts_explain_themselves_and_link_to_their_runbook() -> None:
    """Each alert has a summary, a description and a runbook_url to its heading in the guide."""
    anchors = github_anchors(OPERATIONS.read_text(encoding="utf-8"))
    for alert in alerts():
        notes = alert["annotations"]
        assert notes["summary"].strip() and len(notes["description"].split()) >= 10, alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        doc, _, anchor = notes["runbook_url"].partition("#")
        assert doc == "docs/operations.md", alert["alert"]
        assert anchor == alert["alert"].lower(), "one heading per alert, named after it"
        assert anchor in anchors, f"docs/operations.md has no heading for #{anchor}"


def test_alerts_select_the_job_prometheus_yml_scrapes() -> None:
    """The job name the alerts select is the one prometheus.yml scrapes Rising Tide under."""
    jobs = {c["job_name"] for c in load(PROMETHEUS / "prometheus.yml")["scrape_configs"]}
    selected = set(re.findall(r'job="([^"]+)"', RULES.read_text(encoding="utf-8")))
    assert selected == {"rising-tide"} and selected <= jobs


def test_rules_read_only_metrics_the_daemon_exports(stack: Stack) -> None:
    """Every risingtide_ metric named in rules.yml is one the running daemon exports."""
    families = exported_families(httpx.get(stack.daemon.url + "/metrics", timeout=5).text)
    rules = [r for g in load(RULES)["groups"] for r in g["rules"]]
    # the metrics read by the expressions; recorded names (level:metric:ops) are not read
    named = {
        m for r in rules for m in re.findall(r"(?<![:\w])risingtide_[a-z_]+(?![:\w])", r["expr"])
    }
    assert named, "rules.yml names no metric?"
    # a counter's TYPE line names it without _total; a histogram's without _bucket
    unknown = {
        m for m in named
        if m not in families and re.sub(r"_(total|bucket|sum|count)$", "", m) not in families
    }  # fmt: skip
    assert unknown == set()


def test_recording_rules_record_on_live_data(stack: Stack) -> None:
    """Prometheus evaluates the recording rules over the daemon's live series."""
    # (line:risingtide_time_in_tier_seconds:1h samples on minute boundaries, so it may have no
    # data for up to a minute after start: rules.test.yml checks its figures, and the test
    # above that it evaluates without error.)
    exprs = [
        "line:risingtide_tier_at_least_2:ratio_1h",
        "response:risingtide_response_runs_failing:ratio_rate5m",
    ]
    results = stack.wait_for_data(exprs, timeout=40)
    lines = {s["metric"]["line"] for s in results[exprs[0]]}
    assert lines == set(stack.lines)
    failing = {s["metric"]["response"]: float(s["value"][1]) for s in results[exprs[1]]}
    # The drill's reminders keep its responses running, so some ratio is defined, and no
    # series carries a line (runs count by response). (A dead run is not in it: a failure's
    # counter is born at 1 on its first increment, with its reason, which rate() cannot
    # see. The dead-letter alert reads the outbox_dead gauge for that reason.)
    assert failing and all(0 <= v <= 1 for v in failing.values())
    assert not [s for s in results[exprs[1]] if "line" in s["metric"]]


def test_every_rule_evaluates_cleanly_on_live_data(stack: Stack) -> None:
    """Prometheus loaded every rule in rules.yml and evaluates each without error."""
    expected = sum(len(g["rules"]) for g in load(RULES)["groups"])

    def evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(stack.prometheus.url + "/api/v1/rules", timeout=5).json()["data"]
        rules = [r for g in groups["groups"] for r in g["rules"]]
        done = len(rules) == expected and all(
            r.get("lastEvaluation", "0001").startswith("20") for r in rules
        )
        return rules if done else None

    rules = wait_for("every rule to be evaluated", evaluated, timeout=30, proc=stack.prometheus)
    assert [(r["name"], r.get("lastError", "")) for r in rules if r["health"] != "ok"] == []


@pytest.mark.parametrize("which", ["demo", "fast demo after events"])
def test_promtool_finds_no_problems_in_the_daemons_metrics(
    which: str, request: pytest.FixtureRequest
) -> None:
    """promtool check metrics reports nothing about the daemon's /metrics."""
    # The shipped demo as shipped, and the fast demo once tier changes, responses, dead
    # letters and notifications have created their labelled series.
    if which == "demo":
        daemon: Process = request.getfixturevalue("demo_daemon")
    else:
        stack: Stack = request.getfixturevalue("stack")
        daemon = stack.daemon
        wait_for_series(daemon, "risingtide_response_runs_total{")
    text = httpx.get(daemon.url + "/metrics", timeout=5).text
    assert "risingtide_line_tier{" in text
    result = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def wait_for_series(daemon: Process, prefix: str, timeout: float = 30) -> None:
    wait_for(
        prefix,
        lambda: prefix in httpx.get(daemon.url + "/metrics", timeout=5).text,
        timeout=timeout,
        proc=daemon,
    )
