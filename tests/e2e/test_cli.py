"""The ``risingtide`` command as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "rising-tide.yaml"


def risingtide(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "risingtide", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_check_passes_the_shipped_demo_config():
    """``risingtide check config/rising-tide.yaml`` exits 0 and says what it found."""
    result = risingtide("check", "config/rising-tide.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok — 6 lines" in result.stdout


def test_check_finds_every_mistake_in_a_broken_copy_with_file_line_and_column(tmp_path: Path):
    """A broken copy of the demo exits 1 with each error as FILE:LINE:COL: message."""
    text = DEMO.read_text()
    text = text.replace("interval: 10s", "interval: ten seconds")
    text = text.replace("responses: [notify_senior_managers, open_webchat]",
                        "responses: [notify_senior_managers, open_webchatt]")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    lines = text.splitlines()
    interval_line = next(i for i, ln in enumerate(lines, 1) if "interval: ten seconds" in ln)
    webchat_line = next(i for i, ln in enumerate(lines, 1) if "open_webchatt" in ln)

    result = risingtide("check", "-c", str(broken))
    assert result.returncode == 1
    errors = [
        ln for ln in result.stderr.splitlines()
        if re.match(rf"{re.escape(str(broken))}:\d+:\d+: (?!warning:)", ln)
    ]
    assert len(errors) == 2, result.stderr
    assert result.stderr.rstrip().endswith("2 error(s)")
    assert errors[0].startswith(f"{broken}:{interval_line}:")
    assert "not a duration" in errors[0]
    assert errors[1].startswith(f"{broken}:{webchat_line}:")
    assert 'unknown response "open_webchatt"' in errors[1]


def test_run_refuses_a_bad_config_with_exit_1(tmp_path: Path):
    """``run`` on a config with mistakes prints them and exits 1 without starting."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("lines: {}\n")
    result = risingtide("run", "-c", str(bad))
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr


def test_usage_errors_exit_2():
    """No command, or a malformed --listen, is a usage error: exit 2."""
    assert risingtide().returncode == 2
    result = risingtide("run", "--listen", "nine-four-seven-zero")
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_status_without_a_daemon_says_so_and_exits_1():
    """``status`` against a port where nothing listens explains itself and exits 1."""
    result = risingtide("status", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot reach the daemon" in result.stderr


def test_probe_prints_every_lines_figures_from_the_demo_simulator():
    """``risingtide probe`` polls the simulator once and prints a row per line."""
    result = risingtide("probe", "-c", "config/rising-tide.yaml")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split()[:3] == ["LINE", "SOURCE", "waiting"]
    assert [r.split()[0] for r in rows[1:]] == [
        "council_tax", "revenues", "waste", "adult_social_care", "highways", "helping_hands"
    ]
    assert all(r.split()[1] == "demo" for r in rows[1:])


def test_probe_one_line_and_an_unknown_line(tmp_path: Path):
    """``probe LINE`` shows just that line; an unknown line is exit 1 with the known ones."""
    result = risingtide("probe", "-c", "config/rising-tide.yaml", "waste")
    assert result.returncode == 0, result.stderr
    assert [r.split()[0] for r in result.stdout.splitlines()[1:]] == ["waste"]
    result = risingtide("probe", "-c", "config/rising-tide.yaml", "wast")
    assert result.returncode == 1
    assert "no such line" in result.stderr and "waste" in result.stderr


def test_probe_shows_a_failing_source_and_exits_1(tmp_path: Path):
    """A source that cannot be reached shows its classified reason and makes probe exit 1."""
    config = tmp_path / "down.yaml"
    config.write_text(
        "sources:\n  feed:\n    type: http_json\n    url: http://127.0.0.1:9/queues\n"
        "    request_budget: 1s\n    lines_at: queues\n    key: id\n"
        "    map: { calls_waiting: waiting }\n"
        "lines:\n  revenues: { name: Revenues, source: { use: feed, queue: rev } }\n"
        "frameworks:\n  f:\n    tiers:\n      - { level: 1, name: rising, "
        "when: { calls_waiting: { above: 10 } } }\n"
        "defaults: { framework: f }\n"
    )
    result = risingtide("probe", "-c", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "network:" in result.stdout


def test_replay_prints_the_timeline_and_a_summary():
    """``risingtide replay`` shows each change with its reason and what would have run."""
    result = risingtide(
        "replay", "-c", "config/rising-tide.yaml", "tests/data/replay-council-tax.csv"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "council_tax  0 calm → 1 rising  (rising to tier 1 rising: avg_wait 230s" in out
    assert "would run page_surge_staff" in out and "would undo callback_on" in out
    assert "Summary (14 rows; nothing was sent)" in out


def test_replay_json_is_for_tools():
    """``--format json`` gives the events, responses and summaries as JSON."""
    import json

    result = risingtide("replay", "-c", "config/rising-tide.yaml",
                        "tests/data/replay-council-tax.csv", "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["rows"] == 14
    assert [e["to_tier"] for e in body["events"] if e["kind"] == "tier_changed"] == [1, 2, 1, 0]
    assert body["summary"][0]["episodes"] == 1


def test_replay_a_bad_csv_names_file_row_and_column(tmp_path: Path):
    """A malformed cell stops the replay with FILE:ROW:COLUMN and exit 1."""
    bad = tmp_path / "bad.csv"
    bad.write_text("time,line,avg_wait\n2026-06-01T09:00:00Z,council_tax,lots\n")
    result = risingtide("replay", "-c", "config/rising-tide.yaml", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{bad}:2:3:")
