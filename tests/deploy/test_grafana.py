"""The Grafana dashboard JSON and its provisioning: variables, datasources, tier colours, layout."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO

GRAFANA = DEPLOY / "grafana"
DASHBOARD_FILE = GRAFANA / "dashboards" / "rising-tide.json"
DS_UID = "${datasource}"
BOARD_CSS = REPO / "risingtide" / "api" / "static" / "board.css"
TIER_NAMES = ["calm", "rising", "high", "flood", "major incident"]


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return data


def all_panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from all_panels(p.get("panels", []))


def query_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(board["panels"]) if p.get("targets")]


def exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in query_panels(board) for t in p["targets"]]


def variable(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in board["templating"]["list"] if v["name"] == name)


def board_css_colours() -> dict[int, str]:
    """The duty board's tier background colours, read from its CSS (.t0 … .t4)."""
    css = BOARD_CSS.read_text(encoding="utf-8")
    found = re.findall(r"\.t(\d)\s*\{\s*background:\s*(#[0-9a-fA-F]{6})", css)
    colours = {int(tier): colour.lower() for tier, colour in found}
    assert sorted(colours) == [0, 1, 2, 3, 4], "board.css's tier rules changed shape"
    return colours


def test_dashboard_is_provisionable_json(board: dict[str, Any]) -> None:
    """The dashboard is JSON with a fixed uid, a title, unique panel ids and no overlaps."""
    assert board["uid"] == "rising-tide" and board["title"] == "Rising Tide"
    assert "id" not in board or board["id"] is None, "a provisioned dashboard carries no id"
    panels = list(all_panels(board["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    boxes = [
        (p["title"], p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"])
        for p in panels
    ]
    for i, (t1, x1, y1, w1, h1) in enumerate(boxes):
        assert x1 + w1 <= 24, t1
        for t2, x2, y2, w2, h2 in boxes[i + 1 :]:
            overlap = x1 < x2 + w2 and x2 < x1 + w1 and y1 < y2 + h2 and y2 < y1 + h1
            assert not overlap, f"{t1!r} overlaps {t2!r}"


def test_datasource_is_a_prometheus_variable_used_by_every_panel(board: dict[str, Any]) -> None:
    """Every panel and query uses the ${datasource} variable, which lists Prometheus sources."""
    ds = variable(board, "datasource")
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    panels = query_panels(board)
    assert len(panels) >= 15
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": DS_UID}, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": DS_UID}, p["title"]
    assert DS_UID not in json.dumps(board["templating"]["list"][0])


def test_line_variable_is_multi_select_with_all(board: dict[str, Any]) -> None:
    """The line variable is label_values(risingtide_line_tier, line), multi-select with All."""
    line = variable(board, "line")
    query = line["query"]["query"] if isinstance(line["query"], dict) else line["query"]
    assert query == "label_values(risingtide_line_tier, line)"
    assert line["multi"] is True and line["includeAll"] is True
    assert line["datasource"]["uid"] == DS_UID


def test_every_per_line_metric_is_filtered_by_the_line_variable(board: dict[str, Any]) -> None:
    """Each use of a metric with a line label on the dashboard selects line=~"$line"."""
    per_line = r"risingtide_line_\w+"
    uses = [m for e in exprs(board) for m in re.finditer(per_line + r"(\{[^}]*\})?", e)]
    assert len(uses) >= 15
    for m in uses:
        assert m.group(1) is not None and 'line=~"$line"' in m.group(1), m.group(0)


def test_dashboard_covers_what_the_duty_manager_and_operators_need(board: dict[str, Any]) -> None:
    """The dashboard reads every metric the issue lists, with poll durations as quantiles."""
    text = "\n".join(exprs(board))
    for metric in [
        "risingtide_line_tier", "risingtide_line_tier_acknowledged",
        "risingtide_line_avg_wait_seconds", "risingtide_line_longest_wait_seconds",
        "risingtide_line_target_wait_seconds", "risingtide_line_calls_waiting",
        "risingtide_line_agents_available", "risingtide_line_agents_needed",
        "risingtide_line_abandon_ratio", "risingtide_source_stats_age_seconds",
        "risingtide_switches_live", "risingtide_tier_transitions_total",
        "risingtide_response_runs_total", "risingtide_notifications_total",
        "risingtide_outbox_pending", "risingtide_outbox_dead", "risingtide_poll_errors_total",
        "risingtide_poll_duration_seconds_bucket",
    ]:  # fmt: skip
        assert re.search(rf"\b{metric}\b", text), metric
    assert "rate(risingtide_response_runs_total" in text
    assert re.search(
        r"histogram_quantile\(0\.9\d?, .*risingtide_poll_duration_seconds_bucket", text
    )


def test_target_wait_is_drawn_as_a_reference_beside_the_waits(board: dict[str, Any]) -> None:
    """Both wait panels draw the line's target wait as a dashed reference series."""
    for title in ["Average wait against target", "Longest wait against target"]:
        panel = next(p for p in query_panels(board) if p["title"] == title)
        assert any("risingtide_line_target_wait_seconds" in t["expr"] for t in panel["targets"])
        dashed = [
            o for o in panel["fieldConfig"]["overrides"]
            if any(prop["id"] == "custom.lineStyle" for prop in o["properties"])
        ]  # fmt: skip
        assert dashed, title


def test_abandonment_is_drawn_against_the_ten_percent_target(board: dict[str, Any]) -> None:
    """The abandonment panel shows ratios as percentages with a dashed threshold at 10 %."""
    panel = next(p for p in query_panels(board) if "risingtide_line_abandon_ratio" in json.dumps(p))
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "percentunit"
    assert 0.1 in [step["value"] for step in defaults["thresholds"]["steps"]]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_tier_colours_match_the_duty_board(board: dict[str, Any]) -> None:
    """Every panel showing a tier maps 0–4 to the duty board's names and CSS colours."""
    css = board_css_colours()
    # panels whose only metric is the tier: their values are tiers
    tier_panels = [
        p for p in query_panels(board)
        if {m for t in p["targets"] for m in re.findall(r"\brisingtide_\w+", t["expr"])}
        == {"risingtide_line_tier"}
        and p["fieldConfig"]["defaults"].get("mappings")
    ]  # fmt: skip
    assert {p["type"] for p in tier_panels} == {"state-timeline", "stat"}
    for p in tier_panels:
        options = p["fieldConfig"]["defaults"]["mappings"][0]["options"]
        for tier in range(5):
            mapping = options[str(tier)]
            assert mapping["color"].lower() == css[tier], (p["title"], tier)
            assert mapping["text"] == f"{tier} {TIER_NAMES[tier]}", (p["title"], tier)
        steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["color"].lower() for s in steps] == [css[t] for t in range(5)], p["title"]


def test_datasource_provisioning_points_at_the_compose_prometheus() -> None:
    """The provisioned datasource is the compose stack's Prometheus, the default source."""
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"]).groups()  # type: ignore[union-attr]
    assert host in compose["services"] and port == "9090"


def test_dashboard_provisioning_reads_the_folder_compose_mounts() -> None:
    """The dashboard provider's path is where compose mounts deploy/grafana/dashboards."""
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "rising-tide.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(
        v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"] if v.startswith(".")
    )
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home == f"{provider['options']['path']}/{DASHBOARD_FILE.name}"


def test_dashboard_reads_only_metrics_the_daemon_declares(board: dict[str, Any]) -> None:
    """Every risingtide_ name on the dashboard is a family the daemon's /metrics declares
    (its renders of the demo config, no line needed), so a rename cannot strand a panel."""
    from prometheus_client import CollectorRegistry

    from risingtide.config import load_config
    from risingtide.metrics import Metrics

    config = load_config(REPO / "config" / "rising-tide.yaml")
    metrics = Metrics(CollectorRegistry(), lambda: [], lambda: config)
    metrics.prime(config)
    text = metrics.render([]).decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    named = {m for e in exprs(board) for m in re.findall(r"\brisingtide_[a-z_]+", e)}
    unknown = {
        m for m in named
        if m not in families and re.sub(r"_(total|bucket|sum|count)$", "", m) not in families
    }  # fmt: skip
    assert named and unknown == set()
    assert "risingtide_line_stats_age_seconds" not in families  # gone: per source now
