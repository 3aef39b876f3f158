"""replay_rows: a stats CSV as per-line columns, and where conditions change their truth."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risingtide import replay_csv
from risingtide.domain.model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Framework,
    Not,
    Op,
    QueueStats,
    Tier,
)
from risingtide.replay_rows import read_line_rows
from risingtide.sources.csv_file import STATS_COLUMNS, CsvStatsError, read_rows

HEADER = "time,line," + ",".join(STATS_COLUMNS)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COUNTS = ("calls_waiting", "agents_available", "agents_staffed", "offered", "answered",
          "abandoned")  # fmt: skip


@contextmanager
def small_blocks(size: int) -> Iterator[None]:
    """Read files ``size`` bytes at a time, so that columns are joined from many blocks."""
    before = replay_csv.BLOCK
    replay_csv.BLOCK = size
    try:
        yield
    finally:
        replay_csv.BLOCK = before


def expected_by_line(path: Path) -> dict[str, list[QueueStats]]:
    """What read_rows gives, per line, less rows older than the line's latest so far."""
    out: dict[str, list[QueueStats]] = {}
    for stats in read_rows(path):
        rows = out.setdefault(stats.line, [])
        if rows and stats.at < max(r.at for r in rows):
            continue
        rows.append(stats)
    return out


def brute_marks(rows: list[QueueStats], framework: Framework) -> list[int]:
    """Row 0 and each row whose (when, clear) truths differ from the row before, by holds()."""
    signature = [
        tuple(c.holds(r) for t in framework.tiers for c in (t.when, t.clear)) for r in rows
    ]
    return [i for i in range(len(rows)) if i == 0 or signature[i] != signature[i - 1]]


def framework_of(*pairs: tuple[Condition, Condition]) -> Framework:
    """A framework whose tiers have these (when, clear) conditions."""
    tiers = tuple(
        Tier(level=i + 1, name=f"t{i + 1}", when=w, for_=timedelta(0), clear=c,
             clear_for=timedelta(0))
        for i, (w, c) in enumerate(pairs)
    )  # fmt: skip
    return Framework(name="f", tiers=tiers)


# --------------------------------------------------------------------------- strategies


def time_text(at: datetime, style: int) -> str:
    """``at`` in one of the spellings a stats file may use."""
    if style == 0:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return at.isoformat()  # +00:00
    if style == 2:
        return str(int(at.timestamp()))  # epoch seconds
    return (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")  # read by Python


seconds_cell = st.one_of(
    st.just(""),
    st.integers(0, 3000).map(str),
    st.tuples(st.integers(0, 30000), st.integers(1, 3)).map(
        lambda p: f"{p[0] // 10 ** p[1]}.{p[0] % 10 ** p[1]:0{p[1]}d}"
    ),
    st.sampled_from(["7.", ".5", "0.0", "0120", "299.99", "300", "300.0"]),
    st.tuples(st.integers(0, 10**13), st.integers(1, 6)).map(  # wider than a word
        lambda p: f"{p[0] // 10 ** p[1]}.{p[0] % 10 ** p[1]:0{p[1]}d}"
    ),
)
count_cell = st.one_of(
    st.just(""),
    st.integers(0, 60).map(str),
    st.sampled_from(["0", "007"]),
    st.integers(10**8, 10**15).map(str),
)


@st.composite
def stats_files(draw: st.DrawFn) -> str:
    """A stats file: a few lines, rows mostly in time order (some earlier, some equal)."""
    n = draw(st.integers(1, 40))
    style = draw(st.integers(0, 3))
    lines = draw(st.lists(st.sampled_from(["ct", "rev", "waste", "Adult Care"]), min_size=1,
                          max_size=3, unique=True))  # fmt: skip
    out = [HEADER]
    minute = 0
    for _ in range(n):
        minute += draw(st.sampled_from([0, 1, 1, 1, 2, 7, -3]))
        cells = [
            draw(count_cell) if name in COUNTS else draw(seconds_cell) for name in STATS_COLUMNS
        ]
        at = T0 + timedelta(minutes=minute, seconds=draw(st.sampled_from([0, 0, 30])))
        out.append(",".join([time_text(at, style), draw(st.sampled_from(lines)), *cells]))
        if draw(st.integers(0, 20)) == 0:
            out.append("")  # a blank row
    return "\n".join(out) + "\n"


MEASURES = ("avg_wait", "longest_wait", "calls_waiting", "agents_available", "abandon_rate",
            "answered_rate", "offered", "window", "abandoned")  # fmt: skip
compares = st.builds(
    Compare,
    measure=st.sampled_from(MEASURES),
    op=st.sampled_from(list(Op)),
    threshold=st.one_of(
        st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0, 7.0, 20.0, 120.0, 300.0, 299.99]),
        st.floats(0, 400, allow_nan=False),
    ),
)
conditions: st.SearchStrategy[Condition] = st.recursive(
    compares,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda p: AllOf(tuple(p))),
        st.lists(inner, max_size=3).map(lambda p: AnyOf(tuple(p))),
        inner.map(Not),
    ),
    max_leaves=6,
)


def write(text: str, directory: Path) -> Path:
    path = directory / "stats.csv"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(
    text=stats_files(),
    tiers=st.lists(st.tuples(conditions, conditions), min_size=1, max_size=3),
    block=st.sampled_from([64, 200, 1 << 21]),
)
def test_marks_are_exactly_where_the_brute_force_signature_changes(text, tiers, block):
    """For random rows (unknown cells included) and condition trees, marks == holds() changes."""
    framework = framework_of(*tiers)
    with tempfile.TemporaryDirectory() as tmp, small_blocks(block):
        path = write(text, Path(tmp))
        lines, count = read_line_rows(path)
        expected = expected_by_line(path)
        assert count == sum(1 for _ in read_rows(path))
    assert list(lines) == list(expected)
    for name, rows in lines.items():
        want = expected[name]
        assert [rows.stats(i) for i in range(len(rows))] == want
        assert rows.marks(framework).tolist() == brute_marks(want, framework)


@settings(max_examples=40, deadline=None)
@given(text=stats_files(), block=st.sampled_from([64, 1 << 21]))
def test_the_fast_reader_takes_plain_files_and_agrees_with_read_rows(text, block):
    """Plain files never need the slow path, and their columns are read_rows' rows."""
    with tempfile.TemporaryDirectory() as tmp, small_blocks(block):
        path = write(text, Path(tmp))
        parsed = replay_csv.parse(path)
        assert parsed is not None
        lines, _count = read_line_rows(path)
        expected = expected_by_line(path)
    for name, rows in lines.items():
        assert [rows.stats(i) for i in range(len(rows))] == expected[name]
        assert rows.times_us().tolist() == [
            (s.at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            for s in expected[name]
        ]


# --------------------------------------------------------------------------- examples


def test_rows_older_than_the_line_latest_are_dropped_and_equal_times_kept(tmp_path):
    """An earlier row is dropped per line; equal times stay, in file order."""
    path = write(
        "time,line,avg_wait\n"
        "2026-03-02T09:02:00Z,a,1\n"
        "2026-03-02T09:01:00Z,a,2\n"  # earlier than a's latest: dropped
        "2026-03-02T09:01:00Z,b,3\n"  # b's own first row: kept
        "2026-03-02T09:02:00Z,a,4\n"  # equal to a's latest: kept
        "2026-03-02T09:03:00Z,a,5\n",
        tmp_path,
    )
    lines, count = read_line_rows(path)
    assert count == 5
    assert [lines["a"].stats(i).avg_wait for i in range(len(lines["a"]))] == [1.0, 4.0, 5.0]
    assert [lines["a"].time(i) for i in range(3)] == [
        T0 + timedelta(minutes=2), T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)
    ]  # fmt: skip
    assert lines["a"].time(0).tzinfo is UTC
    assert len(lines["b"]) == 1


def test_gaps_are_the_rows_after_a_longer_silence(tmp_path):
    """gaps(d) lists rows that came more than d after the row before them."""
    minutes = [0, 1, 2, 5, 6, 16, 16, 19]
    path = write(
        "time,line,avg_wait\n"
        + "".join(f"{(T0 + timedelta(minutes=m)).isoformat()},a,1\n" for m in minutes),
        tmp_path,
    )
    rows = read_line_rows(path)[0]["a"]
    assert rows.gaps(timedelta(minutes=2)).tolist() == [3, 5, 7]
    assert rows.gaps(timedelta(minutes=3)).tolist() == [5]  # exactly 3 minutes is no gap
    assert rows.gaps(timedelta(hours=1)).tolist() == []
    assert rows.gaps(timedelta(0)).tolist() == [1, 2, 3, 4, 5, 7]


def test_marks_on_derived_rates_and_not_with_unknowns(tmp_path):
    """abandon_rate is unknown when offered is 0 or blank; Not is false on unknown figures."""
    path = write(
        "time,line,offered,abandoned\n"
        "2026-03-02T09:00:00Z,a,20,1\n"   # 5 %
        "2026-03-02T09:01:00Z,a,20,3\n"   # 15 %
        "2026-03-02T09:02:00Z,a,0,3\n"    # unknown (nothing offered)
        "2026-03-02T09:03:00Z,a,20,\n"    # unknown (abandoned blank)
        "2026-03-02T09:04:00Z,a,20,1\n",  # 5 %
        tmp_path,
    )  # fmt: skip
    rows = read_line_rows(path)[0]["a"]
    above = Compare("abandon_rate", Op.ABOVE, 0.1)
    assert rows.truth(above).tolist() == [False, True, False, False, False]
    assert rows.truth(Not(above)).tolist() == [True, False, False, False, True]
    framework = framework_of((above, Not(above)))
    assert rows.marks(framework).tolist() == [0, 1, 2, 4]


def test_a_condition_numpy_cannot_read_falls_back_to_holds(tmp_path):
    """A count beyond a float64's exact range is compared by holds(), row by row."""
    big = 2**53 + 1
    path = write(f"time,line,offered\n2026-03-02T09:00:00Z,a,{big}\n"
                 f"2026-03-02T09:01:00Z,a,{big - 1}\n", tmp_path)  # fmt: skip
    rows = read_line_rows(path)[0]["a"]
    assert rows.stats(0).offered == big
    at_least = Compare("offered", Op.AT_LEAST, float(2**53 + 2))  # float(big) == 2**53
    assert rows.truth(at_least).tolist() == [False, False]
    assert rows.marks(framework_of((Compare("offered", Op.ABOVE, float(2**53)), at_least))
                      ).tolist() == [0, 1]  # fmt: skip


def test_odd_but_readable_files_read_as_read_rows_reads_them(tmp_path):
    """Quotes, a BOM, CRLF, "3.0" counts and padded cells take the slow path, same rows."""
    path = tmp_path / "stats.csv"
    path.write_bytes(
        "\ufefftime,line,calls_waiting,avg_wait\r\n"
        '2026-03-02T09:00:00Z,"ct",3.0, 12 \r\n'
        ",,,\r\n"
        "\r\n"
        "2026-03-02 09:01:00+00:00,ct,4,1e2\r\n"
        "1772442120.5,ct,,\r\n".encode()
    )
    assert replay_csv.parse(path) is None
    lines, count = read_line_rows(path)
    assert count == 3
    rows = lines["ct"]
    assert [rows.stats(i) for i in range(len(rows))] == list(read_rows(path))


def test_crlf_and_a_bom_stay_on_the_fast_path(tmp_path):
    """A spreadsheet's BOM and CRLF line ends are plain files too."""
    path = tmp_path / "stats.csv"
    path.write_bytes(
        b"\xef\xbb\xbftime,line,avg_wait\r\n2026-03-02T09:00:00Z,ct,5.5\r\n\r\n"
        b"2026-03-02T09:01:00Z,ct,6"  # no newline at the end
    )
    assert replay_csv.parse(path) is not None
    rows = read_line_rows(path)[0]["ct"]
    assert [rows.stats(i) for i in range(len(rows))] == list(read_rows(path))


BAD = [
    "time,line,calls_waiting,avg_wait\n2026-01-05T09:00:00Z,revenues,2.5,10\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05T09:00:00Z,revenues,2,-10\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05T09:00:00Z,revenues,2,1\n"
    "2026-01-05T09:00:15Z,revenues,x,1\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05T09:00:00Z,revenues,2,nan\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05 09:00,revenues,2,1\n",
    "time,line,calls_waiting,avg_wait\nMonday 9am,revenues,2,1\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05T09:00:00Z,,2,1\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05T09:00:00Z,revenues,2\n",
    "time,line,calls_waiting,avg_wait\n2026-02-30T09:00:00Z,revenues,2,1\n",
    "time,line,calls_waiting,avg_wait\n2026-01-05T24:00:00Z,revenues,2,1\n",
    "time,line,calls_waiting,avg_wiat\n",
    "time,line,queue_name\n",
    "time,line,offered,offered\n",
    "line,offered\n",
    "",
    "\n",
    "time,line,offered\n" + "2026-01-05T09:00:00Z,a,1\n" * 30 + "2026-01-05T09:00:00Z,a,1,\n",
    "time,line,offered\n" + "2026-01-05T09:00:00Z,a,1\n" * 30 + "2026-01-05T09:00:00Z,a,-1\n",
]


@pytest.mark.parametrize("text", BAD)
def test_errors_name_the_same_file_row_and_column_as_read_rows(tmp_path, text):
    """Every bad header or cell gives read_rows' own CsvStatsError, wherever the block ends."""
    path = write(text, tmp_path)
    with pytest.raises(CsvStatsError) as slow:
        list(read_rows(path))
    for block in (64, 1 << 21):
        with small_blocks(block), pytest.raises(CsvStatsError) as fast:
            read_line_rows(path)
        assert str(fast.value) == str(slow.value)


def test_a_missing_file_is_an_os_error(tmp_path):
    """A file that cannot be opened raises OSError, as read_rows does."""
    with pytest.raises(OSError, match="nope"):
        read_line_rows(tmp_path / "nope.csv")


def test_columns_are_compact_and_times_ascend(tmp_path):
    """Figures are int32 with a decimal scale when they fit; times are int64 microseconds."""
    path = write(
        "time,line,avg_wait,offered\n"
        "2026-03-02T09:00:00Z,a,1.25,3\n2026-03-02T09:01:00Z,a,7,\n2026-03-02T09:02:00Z,a,0.5,4\n",
        tmp_path,
    )
    parsed = replay_csv.parse(path)
    assert parsed is not None
    avg_wait = parsed.columns[STATS_COLUMNS.index("avg_wait")]
    assert avg_wait is not None
    assert avg_wait[0].dtype == np.int32
    assert (avg_wait[0].tolist(), avg_wait[1]) == ([125, 700, 50], 2)
    rows = read_line_rows(path)[0]["a"]
    assert rows.times_us().dtype == np.int64
    assert [rows.stats(i).avg_wait for i in range(3)] == [1.25, 7.0, 0.5]
    assert [rows.stats(i).offered for i in range(3)] == [3, None, 4]


def test_check_and_importing_replay_rows_leave_numpy_unloaded():
    """`risingtide check` never loads numpy, nor does importing replay_rows (only reading)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "from risingtide.cli import main\n"
        "import risingtide.replay_rows\n"
        f"code = main(['check', '-c', {str(root / 'benchmarks' / 'history-config.yaml')!r}])\n"
        "assert code == 0, code\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert done.stdout.splitlines()[-1] == "False"


junk_cell = st.text(alphabet="0123456789.-+e x", max_size=10)


@settings(max_examples=80, deadline=None)
@given(cells=st.lists(st.tuples(junk_cell, junk_cell), min_size=1, max_size=12))
def test_any_cell_reads_as_read_rows_reads_it_or_fails_at_the_same_place(cells):
    """Digits, points, signs, exponents and spaces in any mix: same rows or same error."""
    text = "time,line,calls_waiting,avg_wait\n" + "".join(
        f"2026-03-02T09:{i:02d}:00Z,a,{count},{wait}\n" for i, (count, wait) in enumerate(cells)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = write(text, Path(tmp))
        slow = fast = ""
        expected: dict[str, list[QueueStats]] = {}
        got: dict[str, list[QueueStats]] = {}
        try:
            expected = expected_by_line(path)
        except CsvStatsError as exc:
            slow = str(exc)
        try:
            lines, _count = read_line_rows(path)
            got = {k: [v.stats(i) for i in range(len(v))] for k, v in lines.items()}
        except CsvStatsError as exc:
            fast = str(exc)
    assert (fast, got) == (slow, expected)


def test_columns_grow_past_the_first_guess_and_keep_every_scale(tmp_path, monkeypatch):
    """Arrays sized too small at first grow; scales and wide values change between blocks."""
    monkeypatch.setattr(replay_csv, "_FIRST_CAPACITY", 2)
    waits = ["5", "7.25", "", "123456789012.5", "0.125", "9", "3000000000", "1.5"] * 4
    counts = ["1", "", "3000000000", "2", "70000000000000000", "0", "5", ""] * 4
    path = write(
        "time,line,avg_wait,offered\n"
        + "".join(
            f"{(T0 + timedelta(minutes=i)).isoformat()},{'ab'[i % 2]},{w},{c}\n"
            for i, (w, c) in enumerate(zip(waits, counts, strict=True))
        ),
        tmp_path,
    )
    with small_blocks(90):
        assert replay_csv.parse(path) is not None
        lines, count = read_line_rows(path)
    assert count == len(waits)
    expected = expected_by_line(path)
    assert {k: [v.stats(i) for i in range(len(v))] for k, v in lines.items()} == expected
