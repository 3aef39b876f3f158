"""Stats files: ``read_rows`` for replay, and the ``csv`` source paced by a FakeClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from risingtide.clock import FakeClock
from risingtide.config import check_config, load_config
from risingtide.domain.model import QueueStats
from risingtide.ports import BuildContext, SourceError
from risingtide.sources import SOURCE_TYPES
from risingtide.sources.csv_file import (
    CsvLine,
    CsvSettings,
    CsvSource,
    CsvStatsError,
    read_rows,
)

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "stats.csv"
ROOT = Path(__file__).parents[2]
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # the daemon's start, long after the file's times
F0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the sample file's first time
HEADER = "time,line,calls_waiting,avg_wait"


def source(clock: FakeClock, path: Path = SAMPLE, **settings: Any) -> CsvSource:
    """A csv source for council_tax and revenues, validated as the loader would."""
    lines = settings.pop("lines", {"council_tax": {}, "revenues": {}})
    return CsvSource(
        "replay",
        CsvSettings.model_validate({"path": str(path), **settings}),
        {k: CsvLine.model_validate(v) for k, v in lines.items()},
        clock,
    )


async def polled(src: CsvSource) -> dict[str, QueueStats | SourceError]:
    return dict(await src.poll())


def waiting(result: dict[str, QueueStats | SourceError]) -> dict[str, int | None]:
    return {k: v.calls_waiting if isinstance(v, QueueStats) else None for k, v in result.items()}


# --------------------------------------------------------------------------- read_rows


def test_read_rows_gives_the_file_rows_in_order_as_queue_stats():
    """Each row is one QueueStats: times in UTC (offsets and epoch seconds), blanks unknown."""
    rows = list(read_rows(SAMPLE))
    assert [(r.line, r.at - F0, r.calls_waiting) for r in rows] == [
        ("council_tax", timedelta(0), 4),
        ("revenues", timedelta(0), 1),
        ("council_tax", timedelta(seconds=15), 6),
        ("council_tax", timedelta(seconds=30), 9),  # written 10:00:30+01:00
        ("revenues", timedelta(seconds=30), 0),
        ("council_tax", timedelta(seconds=45), 12),  # written as epoch seconds
    ]
    assert rows[0] == QueueStats(
        line="council_tax",
        at=F0,
        calls_waiting=4,
        avg_wait=95.0,
        longest_wait=180.0,
        agents_available=3,
        offered=60,
        answered=55,
        abandoned=4,
        window=900.0,
    )
    assert rows[1].longest_wait is None
    assert rows[2].avg_wait == 110.5
    assert rows[0].at.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"{HEADER}\n2026-01-05T09:00:00Z,revenues,2.5,10\n",
            '2:3: calls_waiting: "2.5" is not a whole number',
        ),
        (f"{HEADER}\n2026-01-05T09:00:00Z,revenues,2,-10\n", '2:4: avg_wait: "-10" is negative'),
        (
            f"{HEADER}\n2026-01-05T09:00:00Z,revenues,2,1\n2026-01-05T09:00:15Z,revenues,x,1\n",
            '3:3: calls_waiting: "x" is not a whole number',
        ),
        (
            f"{HEADER}\n2026-01-05T09:00:00Z,revenues,2,nan\n",
            '2:4: avg_wait: "nan" is not a number of seconds',
        ),
        (
            f"{HEADER}\n2026-01-05 09:00,revenues,2,1\n",
            '2:1: time: "2026-01-05 09:00" has no UTC offset (add Z or +00:00)',
        ),
        (
            f"{HEADER}\nMonday 9am,revenues,2,1\n",
            '2:1: time: "Monday 9am" is not a time (use ISO 8601 with an offset, e.g. '
            "2026-01-05T09:00:00Z, or epoch seconds)",
        ),
        (f"{HEADER}\n2026-01-05T09:00:00Z,,2,1\n", "2:2: line: empty; every row needs a line"),
        (
            f"{HEADER}\n2026-01-05T09:00:00Z,revenues,2\n",
            "2:4: expected 4 cells (as in the header), found 3",
        ),
        (
            "time,line,calls_waiting,avg_wiat\n",
            '1:4: unknown column "avg_wiat" (did you mean "avg_wait"?)',
        ),
        (
            "time,line,queue_name\n",
            '1:3: unknown column "queue_name" (known: time, line, '
            "calls_waiting, avg_wait, longest_wait, agents_available, agents_staffed, offered, "
            "answered, abandoned, window, avg_handle_time)",
        ),
        ("time,line,offered,offered\n", '1:4: column "offered" appears twice (first as column 3)'),
        ("line,offered\n", '1:1: missing column "time" (the header must name time and line)'),
        ("", "1:1: the file is empty; its first row must name the columns"),
    ],
)
def test_a_bad_header_or_cell_is_named_by_file_row_and_column(tmp_path, text, expected):
    """Every mistake is reported as FILE:ROW:COLUMN: message, counting as a spreadsheet does."""
    path = tmp_path / "stats.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CsvStatsError) as caught:
        list(read_rows(path))
    assert str(caught.value) == f"{path}:{expected}"
    assert isinstance(caught.value, ValueError)


def test_odd_but_readable_cells_and_blank_rows_are_accepted(tmp_path):
    """Whole numbers written 3.0, padded cells, a BOM and blank or empty rows all read."""
    path = tmp_path / "stats.csv"
    path.write_text(
        f"\ufeff{HEADER}\n2026-01-05T09:00:00Z,revenues, 3.0 ,  \n,,,\n\n"
        "2026-01-05T09:00:00Z,revenues,3.0,\n",
        encoding="utf-8",
    )
    rows = list(read_rows(path))
    assert [(r.calls_waiting, r.avg_wait) for r in rows] == [(3, None), (3, None)]


# --------------------------------------------------------------------------- the source


async def test_paced_replay_restamps_rows_onto_the_daemon_clock():
    """pace 60: 15 file seconds pass in a quarter of a daemon second; each row is stamped
    when it fell due, so its age is daemon time."""
    clock = FakeClock(T0)
    src = source(clock, pace=60)
    first = await polled(src)
    assert waiting(first) == {"council_tax": 4, "revenues": 1}
    assert all(isinstance(s, QueueStats) and s.at == T0 for s in first.values())
    clock.advance(0.2)
    assert waiting(await polled(src)) == {"council_tax": 4, "revenues": 1}  # 09:00:12 in file
    clock.advance(0.3)  # 09:00:30 in file
    result = await polled(src)
    assert waiting(result) == {"council_tax": 9, "revenues": 0}
    council_tax = result["council_tax"]
    assert isinstance(council_tax, QueueStats)
    assert council_tax.at == T0 + timedelta(seconds=0.5)
    clock.advance(60)  # long past the end: the last rows stay, so the lines go stale
    result = await polled(src)
    assert waiting(result) == {"council_tax": 12, "revenues": 0}
    revenues = result["revenues"]
    assert isinstance(revenues, QueueStats)
    assert revenues.at == T0 + timedelta(seconds=0.5)
    await src.aclose()


async def test_fast_replay_moves_one_file_timestamp_per_poll():
    """pace fast: each poll takes the next timestamp's rows, stamped with the poll's time."""
    clock = FakeClock(T0)
    src = source(clock, pace="fast")
    seen = []
    for _ in range(5):
        result = await polled(src)
        seen.append(waiting(result))
        clock.advance(5)
    assert seen == [
        {"council_tax": 4, "revenues": 1},
        {"council_tax": 6, "revenues": 1},
        {"council_tax": 9, "revenues": 0},
        {"council_tax": 12, "revenues": 0},
        {"council_tax": 12, "revenues": 0},
    ]
    last = await polled(src)
    council_tax = last["council_tax"]
    assert isinstance(council_tax, QueueStats)
    assert council_tax.at == T0 + timedelta(seconds=15)  # stamped at the 4th poll
    await src.aclose()


async def test_start_file_keeps_the_file_timestamps():
    """start: file stamps rows with the file's own times (for a clock set to the file)."""
    clock = FakeClock(F0)
    src = source(clock, pace="realtime", start="file")
    clock.advance(20)
    result = await polled(src)
    assert waiting(result) == {"council_tax": 4, "revenues": 1}  # pace counts from the 1st poll
    clock.advance(30)
    result = await polled(src)
    assert [s.at for s in result.values() if isinstance(s, QueueStats)] == [
        F0 + timedelta(seconds=30),
        F0 + timedelta(seconds=30),
    ]
    await src.aclose()


async def test_loop_starts_again_with_times_moving_forward():
    """loop: after the last row the file starts again, shifted by its span plus one step."""
    clock = FakeClock(F0)
    src = source(clock, pace="fast", start="file", loop=True)
    times = []
    for _ in range(6):
        result = await polled(src)
        council_tax = result["council_tax"]
        assert isinstance(council_tax, QueueStats)
        times.append((council_tax.at - F0).total_seconds())
    assert times == [0, 15, 30, 45, 60, 75]
    await src.aclose()


async def test_line_in_file_maps_a_file_name_to_a_config_line():
    """line_in_file picks the file's rows for a config line of another name."""
    clock = FakeClock(T0)
    lines = {"ctax": {"line_in_file": "council_tax"}, "highways": {}}
    src = source(clock, pace="fast", lines=lines)
    result = await polled(src)
    assert waiting(result) == {"ctax": 4, "highways": None}
    ctax, highways = result["ctax"], result["highways"]
    assert isinstance(ctax, QueueStats)
    assert ctax.line == "ctax"
    assert isinstance(highways, SourceError)
    assert (highways.reason, highways.retryable) == ("no_data", True)
    for _ in range(4):
        result = await polled(src)
    highways = result["highways"]
    assert isinstance(highways, SourceError)
    assert str(highways) == f'{SAMPLE} has no rows for line "highways"'
    assert not highways.retryable
    await src.aclose()


async def test_a_bad_file_fails_every_poll_until_it_is_fixed(tmp_path):
    """An unknown column is a non-retryable parse error naming file, row and column, on
    every poll; once the file changes, the replay reads it afresh and catches up."""
    path = tmp_path / "stats.csv"
    path.write_text("time,line,calls_wating\n", encoding="utf-8")
    clock = FakeClock(T0)
    src = source(clock, path, pace=60)
    for _ in range(2):
        with pytest.raises(SourceError) as caught:
            await src.poll()
        assert (caught.value.reason, caught.value.retryable) == ("parse", False)
        assert str(caught.value) == (
            f'{path}:1:3: unknown column "calls_wating" (did you mean "calls_waiting"?)'
        )
        clock.advance(0.25)
    path.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert waiting(await polled(src)) == {"council_tax": 9, "revenues": 0}  # 09:00:30 by now
    await src.aclose()


async def test_rows_out_of_time_order_are_refused_with_their_row(tmp_path):
    """The source needs rows in time order and says which row is not."""
    path = tmp_path / "stats.csv"
    path.write_text(
        f"{HEADER}\n2026-01-05T09:00:15Z,revenues,1,\n2026-01-05T09:00:00Z,revenues,2,\n",
        encoding="utf-8",
    )
    src = source(FakeClock(T0), path, pace="fast")
    with pytest.raises(SourceError) as caught:
        await src.poll()  # the first poll reads on to see where its timestamp ends
    assert str(caught.value) == (
        f"{path}:3:1: time: 2026-01-05T09:00:00+00:00 is earlier than the row before it; "
        "sort the file by time"
    )


async def test_a_missing_file_is_retryable_and_read_once_it_appears(tmp_path):
    """No file yet: reason file, retryable; the next poll opens it when it is there."""
    path = tmp_path / "later.csv"
    src = source(FakeClock(T0), path, pace="fast")
    with pytest.raises(SourceError) as caught:
        await src.poll()
    assert (caught.value.reason, caught.value.retryable) == ("file", True)
    path.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert waiting(await polled(src)) == {"council_tax": 4, "revenues": 1}
    await src.aclose()


def test_settings_are_checked_when_the_config_is_loaded(tmp_path, monkeypatch):
    """A pace that is not one, an unknown start and a misspelt line key are config errors."""
    monkeypatch.chdir(tmp_path)
    Path("replay.yaml").write_text(
        """\
sources:
  replay: { type: csv, path: stats.csv, pace: slow, start: later }
  other: { type: csv, path: stats.csv, pace: 0 }
lines:
  waste: { name: Waste, source: { use: replay, line_in_flie: WASTE } }
defaults: { framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
""",
        encoding="utf-8",
    )
    _, errors, _ = check_config("replay.yaml", env={})
    assert [str(e) for e in errors] == [
        'replay.yaml:2:47: sources.replay.pace: "slow" is not a pace (use fast, realtime, '
        "or a speed such as 60)",
        'replay.yaml:2:60: sources.replay.start: "later" is not one of now or file',
        "replay.yaml:3:46: sources.other.pace: 0 is not a pace: a speed must be more than 0",
        'replay.yaml:5:48: lines.waste.source: unknown key "line_in_flie" '
        '(did you mean "line_in_file"?)',
    ]


async def test_the_example_config_loads_and_replays_its_sample(monkeypatch):
    """``config/examples/csv-replay.yaml`` loads, and its source reads stats-sample.csv."""
    monkeypatch.chdir(ROOT)
    config = load_config("config/examples/csv-replay.yaml", env={})
    assert config.warnings == ()
    settings = config.sources["replay"].settings
    src = SOURCE_TYPES["csv"].build(
        "replay",
        settings,
        {k: v.source_params for k, v in config.lines_of("replay").items()},
        BuildContext(clock=FakeClock(T0)),
    )
    result = await src.poll()
    await src.aclose()
    assert set(result) == {"council_tax", "revenues"}
    assert all(isinstance(s, QueueStats) and s.at == T0 for s in result.values())
    assert sum(1 for _ in read_rows(ROOT / "config" / "examples" / "stats-sample.csv")) == 82
