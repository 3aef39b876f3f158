"""``risingtide replay --compare`` and ``--format html`` as a user runs them.

The history and the two configs are those of ``tests/unit/test_replay_compare.py``, whose
docstring reasons out every figure (today: 2 episodes, 3 notifications; proposed: 1, 2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.test_cli import ROOT, risingtide
from tests.unit.test_replay_compare import write_history

TODAY = "tests/data/replay_compare/today.yaml"
PROPOSED = "tests/data/replay_compare/proposed.yaml"
#: An attribute that would make the browser fetch something from elsewhere.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", re.IGNORECASE)


@pytest.fixture
def stats(tmp_path: Path) -> str:
    return str(write_history(tmp_path / "stats.csv"))


def test_compare_prints_both_configs_side_by_side(stats: str):
    """``--compare`` prints per line today, proposed and the change, and marks one-sided lines."""
    result = risingtide("replay", "-c", TODAY, "--compare", PROPOSED, stats)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"today:    {TODAY}\nproposed: {PROPOSED}\n")
    episodes = re.search(r"^  episodes +(\S+) +(\S+) +(\S+)$", out, re.MULTILINE)
    assert episodes is not None and episodes.groups() == ("2", "1", "-1")
    assert "Waste & Recycling (waste) — only in proposed" in out
    assert "Total (2 lines)" in out


def test_compare_json_carries_each_side_and_the_change(stats: str):
    """``--compare --format json`` gives each line's two scores, the change and the total."""
    result = risingtide("replay", "-c", TODAY, "--compare", PROPOSED, stats, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    revenues, waste = data["lines"]
    assert revenues["today"]["notifications_by_person"] == {"Asha Patel": 2, "Ben Okafor": 1}
    assert revenues["proposed"]["notifications"] == 2
    assert revenues["change"]["short_episodes"] == -1
    assert (waste["line"], waste["only_in"], waste["today"]) == ("waste", "proposed", None)
    assert data["total"]["today"]["episodes"] == 2


def test_html_output_is_one_self_contained_page_with_a_chart_per_line(stats: str, tmp_path: Path):
    """``--format html --output FILE`` writes a page with uPlot inlined, nothing external."""
    page = tmp_path / "report.html"
    result = risingtide("replay", "-c", TODAY, stats, "--format", "html", "--output", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert "uPlot.tzDate" in html and ".uplot" in html  # the library and its style sheet, inlined
    assert EXTERNAL.search(html) is None
    assert len(re.findall(r'<div class="chart" id="chart-\d+"', html)) == 1  # one line
    assert "<caption>Revenues &amp; Benefits: figures</caption>" in html
    assert "Tier 1 rising: entered when avg_wait &gt; 180s for 2m" in html


def test_html_compare_goes_to_stdout_with_a_chart_per_config(stats: str):
    """``--compare --format html`` without ``--output`` prints the page: a chart for each
    line under each config it is in that has rows (revenues twice) and the change column."""
    result = risingtide("replay", "-c", TODAY, "--compare", PROPOSED, stats, "--format", "html")
    assert result.returncode == 0, result.stderr
    html = result.stdout
    charts = re.findall(r'<div class="chart" id="(chart-\d+-\w+)"', html)
    assert charts == ["chart-0-today", "chart-0-proposed"]  # waste has no rows: no chart
    assert "Waste &amp; Recycling: no rows in the file, so nothing to chart." in html
    assert "<strong>Only in the proposed config.</strong>" in html
    assert '<th scope="col" class="num">change</th>' in html


def test_compare_with_a_broken_proposal_names_file_line_and_column(stats: str, tmp_path: Path):
    """A mistake in the proposed config stops with FILE:LINE:COL and exit 1, printing nothing."""
    text = (ROOT / PROPOSED).read_text(encoding="utf-8").replace("for: 4m", "for: four minutes")
    broken = tmp_path / "proposed.yaml"
    broken.write_text(text, encoding="utf-8")
    result = risingtide("replay", "-c", TODAY, "--compare", str(broken), stats)
    assert result.returncode == 1
    assert result.stdout == ""
    assert re.search(rf"^{re.escape(str(broken))}:\d+:\d+: ", result.stderr, re.MULTILINE)


def test_output_to_a_missing_directory_is_a_clear_error(stats: str, tmp_path: Path):
    """``--output`` into a directory that does not exist says so and exits 1."""
    target = tmp_path / "nowhere" / "report.html"
    result = risingtide("replay", "-c", TODAY, stats, "--format", "html", "-o", str(target))
    assert result.returncode == 1
    assert f"risingtide: cannot write {target}: No such file or directory" in result.stderr


def test_rows_for_a_line_in_neither_config_are_counted_not_replayed(stats: str):
    """A row for an unknown line is reported in the text, the JSON and the page."""
    with Path(stats).open("a", encoding="utf-8") as f:
        f.write("2026-01-05T11:30:00Z,parking,100,50,1\n")
    text = risingtide("replay", "-c", TODAY, "--compare", PROPOSED, stats)
    assert "  parking: 1 rows ignored — no such line in either config" in text.stdout
    data = json.loads(risingtide("replay", "-c", TODAY, "--compare", PROPOSED, stats,
                                 "--format", "json").stdout)  # fmt: skip
    assert data["today"]["unknown_lines"] == {"parking": 1}
    page = risingtide("replay", "-c", TODAY, stats, "--format", "html").stdout
    assert "Ignored (no such line in the config):\nparking (1 rows)." in page
