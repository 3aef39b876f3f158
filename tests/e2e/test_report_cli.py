"""``risingtide report``: a period's episodes as CSV, Markdown and HTML, from the state file.

The state file is a real SQLite store, held open (and locked) by a writer the whole time,
as a running daemon would hold it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide.cli import main
from risingtide.clock import FakeClock
from risingtide.domain.model import Action, Cause, ResponseOrder, TierChanged
from risingtide.episode_report import CSV_COLUMNS
from risingtide.samples import Sample
from risingtide.store import Store

MIN = timedelta(minutes=1)
#: Two hours ago, to the minute: inside "the last 7 days" whenever the test runs.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)

CONFIG = """
server:
  state_file: {state}
sources:
  feed: {{ type: scripted, interval: 30s }}
lines:
  revenues: {{ name: Revenues & Benefits, source: {{ use: feed }} }}
  waste: {{ name: Waste & Recycling, source: {{ use: feed }} }}
defaults:
  framework: standard
frameworks:
  standard:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }}, for: 1m,
          clear: {{ avg_wait: {{ below: 0.8 * target }} }}, clear_for: 1m, responses: [notify] }}
      - {{ level: 2, name: high, when: {{ avg_wait: {{ above: 300s }} }}, for: 1m,
          clear: {{ avg_wait: {{ below: 240s }} }}, clear_for: 1m }}
responses:
  notify: {{ type: log, message: look }}
"""


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    """A config whose state file has one Revenues episode, held open by a writer."""
    path = tmp_path / "rising-tide.yaml"
    state = tmp_path / "state.sqlite"
    path.write_text(CONFIG.format(state=state))
    with Store(state, FakeClock(T0)) as store:
        t = T0 + 10 * MIN
        rise = TierChanged("revenues", t, 0, 2, Cause.RAISED, "avg_wait 400s > 300s", 1)
        fall = TierChanged("revenues", t + 20 * MIN, 2, 0, Cause.LOWERED, "calm again", 1)
        key = f"revenues/1/tier_changed/2/0/notify/{Action.APPLY.value}"
        order = ResponseOrder(key, "revenues", "notify", Action.APPLY, 2, 1, "tier_changed", t, "")
        store.commit([], [rise, fall], [order])
        store.record_success(key, "logged for Asha Patel", t)
        store.write_samples(
            [("revenues", s.at, s.figures()) for s in (
                Sample(at=t + i * MIN, avg_wait=400.0, offered=60, answered=50, abandoned=10,
                       window=600.0) for i in range(20))]
        )  # fmt: skip
        store.append_history(
            [("revenues", "lessons_learned", t + 30 * MIN, None,
              {"episode": 1, "by": "Priya", "text": "=HYPERLINK(\"http://x\")"})]
        )  # fmt: skip
        yield path


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_is_one_flat_row_per_episode_with_formulas_neutralised(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The week's CSV has the documented columns, the episode's figures and a safe lesson."""
    code, out, _ = report(capsys, "-c", str(config), "--since", "7d", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    [row] = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]]
    assert (row["id"], row["name"], row["peak_tier"], row["minutes"]) == (
        "revenues-1", "Revenues & Benefits", "2", "20.0"
    )  # fmt: skip
    assert (row["offered"], row["abandoned"], row["peak_avg_wait_s"]) == ("120", "20", "400")
    assert (row["notifications"], row["notifications_failed"]) == ("1", "0")
    assert row["lessons"] == '\'=HYPERLINK("http://x")'


def test_markdown_tells_each_episode(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Markdown has the summary table, the timeline with reasons, and who was told."""
    code, out, _ = report(capsys, "-c", str(config), "--format", "markdown")
    assert code == 0
    assert out.startswith("# Episodes from ")
    assert "| revenues-1 | Revenues & Benefits |" in out
    assert "Tier 0 (calm) → Tier 2 (high): avg_wait 400s > 300s" in out
    assert "notify (log): ok — logged for Asha Patel" in out


def test_html_is_self_contained_with_its_chart(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The HTML file carries uPlot and the chart's data inline and loads nothing."""
    out_file = tmp_path / "week.html"
    code, _, err = report(capsys, "-c", str(config), "--output", str(out_file))
    assert code == 0
    assert "1 episode(s) written" in err
    html = out_file.read_text()
    assert "Revenues &amp; Benefits: episode 1" in html
    assert "uPlot" in html
    assert 'class="episode-chart"' in html
    assert "/static/" not in html
    assert "src=" not in html  # no script or image is fetched


def test_the_period_and_line_select_episodes(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An episode that began before --since, or on another line, is left out."""
    since = (T0 + 11 * MIN).isoformat()
    _, out, _ = report(capsys, "-c", str(config), "--since", since, "--format", "csv")
    assert out.count("\n") == 1  # the header alone
    _, out, _ = report(capsys, "-c", str(config), "--line", "waste", "--format", "csv")
    assert out.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--since", "last week"], 2, "neither a duration"),
        (["--since", "2026-11-01T00:00"], 2, "needs a UTC offset"),
        (["--line", "nowhere"], 1, "no line 'nowhere'"),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, says: str
) -> None:
    """Each mistake exits non-zero with its reason on stderr."""
    got, out, err = report(capsys, "-c", str(config), *args)
    assert (got, out) == (code, "")
    assert says in err


def test_no_state_file_is_an_error_not_a_new_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report never creates a state file: a missing one is exit 1 with its path."""
    path = tmp_path / "rising-tide.yaml"
    state = tmp_path / "nothing-here.sqlite"
    path.write_text(CONFIG.format(state=state))
    code, _, err = report(capsys, "-c", str(path))
    assert code == 1
    assert f"no state file at {state}" in err
    assert not state.exists()
