"""Historical stats in a CSV file: ``read_rows`` for replay, and the ``csv`` source that
replays a file through the running daemon.

The file (UTF-8, a spreadsheet's BOM allowed) starts with a header row naming its columns,
in any order::

    time,line,calls_waiting,avg_wait,longest_wait,agents_available,offered,abandoned,window
    2026-01-05T09:00:00Z,council_tax,4,95,180,3,60,4,900
    2026-01-05T09:00:00Z,revenues,1,40,,5,35,1,900

- ``time``: ISO 8601 with an offset or ``Z`` (``2026-01-05T09:00:00+00:00``), or Unix
  epoch seconds (``1767603600``); converted to UTC.
- ``line``: the line's name in the file (a config line id, unless ``line_in_file`` maps it).
- any of the ``QueueStats`` figures (``STATS_COLUMNS``): counts are whole numbers, times and
  ``window`` are seconds; nothing is negative; an empty cell means unknown.

Any other column is an error naming it. Rows must be in time order for the source (the
replay command reads them in file order).

**``read_rows(path)``** yields one validated ``QueueStats`` per row, in file order, with the
file's ``line`` and ``time``. It is built for speed (a ``csv.reader``, column indexes worked
out once from the header, ``datetime.fromisoformat`` with the last timestamp remembered,
one comparison per cell to validate it, no pydantic per row): a cell that does not convert
sends its row to a careful slow path that raises ``CsvStatsError`` (a ``ValueError``) as
``FILE:ROW:COLUMN: message``, row and column counting from 1 as a spreadsheet shows them
(the header is row 1).

A file that fails the source's poll is not read again until it changes; then the replay
reads it afresh and catches up with its clock.

**The ``csv`` source** replays the file in the daemon. ``pace`` sets the speed: ``realtime``
(the default; the file's own time passes as fast as the daemon's), a number (``60`` = a
file hour per daemon minute), or ``fast`` (each poll moves on to the file's next timestamp,
so the poll interval sets the pace). Each poll returns, for every line, the latest row
whose time has come. How ``at`` is set (``start``):

- ``now`` (default): rows are re-stamped onto the daemon's timeline. The replay starts at
  the first poll ``T0``; a row ``t`` seconds of file time after the file's first row is
  stamped ``T0 + t / pace`` — exactly when it became due — and with ``pace: fast`` it is
  stamped with the poll's time. So the engine's staleness rules work as they would live: a
  line with no row for longer than ``stale_after`` (in daemon time) goes stale, and when a
  non-looping file ends, every line goes stale.
- ``file``: rows keep the file's timestamps. Useful when the clock is itself set to the
  file's time (a ``FakeClock`` in a test or demo); against the wall clock, old files look
  stale at once.

With ``loop: true`` the file starts again when it ends; its times are shifted on by the
file's span plus its last step, so ``at`` never goes backwards (in both modes).
"""

from __future__ import annotations

import csv
import difflib
import math
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from risingtide.clock import Clock
from risingtide.config.errors import show
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.ports import (
    BuildContext,
    PollResult,
    SourceError,
    SourcePlugin,
    StatsSource,
    lines_as,
    settings_as,
)

__all__ = [
    "COLUMNS",
    "PLUGIN",
    "STATS_COLUMNS",
    "CsvLine",
    "CsvSettings",
    "CsvSource",
    "CsvStatsError",
    "read_rows",
]


#: The figure columns, in ``QueueStats`` order (so a column's index is its argument slot).
STATS_COLUMNS: Final = (
    "calls_waiting",
    "avg_wait",
    "longest_wait",
    "agents_available",
    "agents_staffed",
    "offered",
    "answered",
    "abandoned",
    "window",
    "avg_handle_time",
)
#: Every column a stats file may have.
COLUMNS: Final = ("time", "line", *STATS_COLUMNS)
_COUNTS: Final = frozenset(
    ("calls_waiting", "agents_available", "agents_staffed", "offered", "answered", "abandoned")
)
_SECONDS: Final = frozenset(STATS_COLUMNS) - _COUNTS
_EPOCH = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_TIME_HINT = "use ISO 8601 with an offset, e.g. 2026-01-05T09:00:00Z, or epoch seconds"


class CsvStatsError(ValueError):
    """A stats file that cannot be read, as ``FILE:ROW:COLUMN: message`` (1-based)."""

    def __init__(self, file: str, row: int, column: int, message: str) -> None:
        """Say what is wrong at ``row`` and ``column`` of ``file``."""
        super().__init__(f"{file}:{row}:{column}: {message}")
        self.file = file
        self.row = row
        self.column = column
        self.message = message


def read_rows(path: Path | str) -> Iterator[QueueStats]:
    """The rows of a stats file as ``QueueStats``, in file order, validated.

    ``line`` and ``at`` are the file's own. Raises ``CsvStatsError`` for a bad header or
    cell (``FILE:ROW:COLUMN: message``) and ``OSError`` when the file is read (the file
    is opened on the first ``next``). Blank rows are skipped.
    """
    return _parse(Path(path), _Header())


@dataclass(slots=True)
class _Header:
    """What the header said and where the reader is, for the source's own messages."""

    time_column: int = 1
    reader: Any = None

    @property
    def row(self) -> int:
        """The row just read (1-based; the header is row 1)."""
        return int(self.reader.line_num) if self.reader is not None else 0


def _parse(path: Path, header: _Header) -> Generator[QueueStats, None, None]:
    """The rows of ``path``: one generator with the hot loop inline (see the comments)."""
    file = str(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header.reader = reader
        try:
            names = next(reader, None)
            if names is None:
                raise CsvStatsError(
                    file, 1, 1, "the file is empty; its first row must name the columns"
                )
            index = _columns(names, file)
            header.time_column = index["time"] + 1
            t_i, l_i = index["time"], index["line"]
            # (cell index, argument slot) for each figure column present, by kind.
            slot = {name: i for i, name in enumerate(STATS_COLUMNS)}
            counts = tuple((i, slot[n]) for n, i in index.items() if n in _COUNTS)
            seconds = tuple(
                (i, slot[n]) for n, i in index.items() if n in slot and n not in _COUNTS
            )
            width = len(names)
            blank: list[Any] = [None] * len(STATS_COLUMNS)
            last_text = ""
            at: datetime | None = None
            for row in reader:
                if len(row) != width:
                    if not any(c.strip() for c in row):
                        continue
                    raise CsvStatsError(
                        file,
                        reader.line_num,
                        min(len(row), width) + 1,
                        f"expected {width} cells (as in the header), found {len(row)}",
                    )
                # The hot path assumes every cell is good and checks with one comparison
                # each; the first surprise (a ValueError) hands the row to ``_careful``,
                # which finds the bad cell, or accepts what only looked odd ("3.0", blanks).
                try:
                    text = row[t_i]
                    if text != last_text or at is None:
                        at = None
                        at = _time(text)
                        last_text = text
                    values = blank.copy()
                    for i, s in counts:
                        cell = row[i]
                        if cell:
                            count = int(cell)
                            if count < 0:
                                raise ValueError(cell)
                            values[s] = count
                    for i, s in seconds:
                        cell = row[i]
                        if cell:
                            real = float(cell)
                            if not 0.0 <= real < math.inf:  # false for NaN too
                                raise ValueError(cell)
                            values[s] = real
                    line = row[l_i]
                    if not line:
                        raise ValueError(line)
                except (ValueError, OverflowError, OSError):
                    careful = _careful(row, names, file, reader.line_num)
                    if careful is None:
                        continue  # a row of empty cells
                    line, at, values = careful
                    last_text = row[t_i]
                yield QueueStats(line, at, *values)
        except UnicodeDecodeError as exc:
            raise CsvStatsError(
                file, reader.line_num + 1, 1, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})"
            ) from None
        except csv.Error as exc:
            raise CsvStatsError(file, reader.line_num, 1, f"not valid CSV: {exc}") from None


def _columns(names: list[str], file: str) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = raw.strip()
        if name in index:
            raise CsvStatsError(
                file, 1, i + 1, f'column "{name}" appears twice (first as column {index[name] + 1})'
            )
        if name not in COLUMNS:
            close = difflib.get_close_matches(name, COLUMNS, n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}"?' if close else "known: " + ", ".join(COLUMNS)
            raise CsvStatsError(file, 1, i + 1, f'unknown column "{name}" ({hint})')
        index[name] = i
    for required in ("time", "line"):
        if required not in index:
            raise CsvStatsError(
                file, 1, 1, f'missing column "{required}" (the header must name time and line)'
            )
    return index


def _time(text: str) -> datetime:
    """A cell's time in UTC; ValueError for anything else (the careful path says why)."""
    if _EPOCH.fullmatch(text):
        return datetime.fromtimestamp(float(text), UTC)
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(text)
    return when if when.utcoffset() == timedelta(0) else when.astimezone(UTC)


def _careful(
    row: list[str], names: list[str], file: str, row_number: int
) -> tuple[str, datetime, list[Any]] | None:
    """Read one row cell by cell; raise ``CsvStatsError`` at the first bad cell.

    Returns None for a row whose cells are all empty.
    """
    if not any(c.strip() for c in row):
        return None
    values: list[Any] = [None] * len(STATS_COLUMNS)
    line = ""
    at: datetime | None = None
    for i, cell in enumerate(row):
        name = names[i].strip()
        text = cell.strip()

        def bad(message: str, column: int = i + 1, name: str = name) -> CsvStatsError:
            return CsvStatsError(file, row_number, column, f"{name}: {message}")

        if name == "time":
            if not text:
                raise bad("empty; every row needs a time")
            try:
                at = _time(text)
            except (ValueError, OverflowError, OSError):
                if _has_no_offset(text):
                    raise bad(f"{show(cell)} has no UTC offset (add Z or +00:00)") from None
                raise bad(f"{show(cell)} is not a time ({_TIME_HINT})") from None
        elif name == "line":
            if not text:
                raise bad("empty; every row needs a line")
            line = cell
        elif text:
            values[STATS_COLUMNS.index(name)] = _figure(name, text, cell, bad)
    # Both columns exist (the header was checked) and were read above.
    assert at is not None
    assert line
    return line, at, values


def _has_no_offset(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is None
    except ValueError:
        return False


def _figure(name: str, text: str, cell: str, bad: Callable[[str], CsvStatsError]) -> int | float:
    unit = "a whole number" if name in _COUNTS else "a number of seconds"
    try:
        number = float(text)
    except ValueError:
        raise bad(f"{show(cell)} is not {unit}") from None
    if not math.isfinite(number):
        raise bad(f"{show(cell)} is not {unit}")
    if number < 0:
        raise bad(f"{show(cell)} is negative")
    if name in _COUNTS:
        if not number.is_integer():
            raise bad(f"{show(cell)} is not {unit}")
        return int(number)
    return number


# --------------------------------------------------------------------------- settings


def _pace(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "fast":
            return "fast"
        if word == "realtime":
            return 1.0
        try:
            value = float(word.removesuffix("x"))
        except ValueError:
            raise ValueError(
                f"{show(value)} is not a pace (use fast, realtime, or a speed such as 60)"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{show(value)} is not a pace (use fast, realtime, or a speed such as 60)")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{show(value)} is not a pace: a speed must be more than 0")
    return float(value)


#: ``fast``, or the file seconds that pass per daemon second (``realtime`` is 1).
Pace = Annotated[Literal["fast"] | float, BeforeValidator(_pace)]


class CsvSettings(BaseModel):
    """The ``csv`` source's own block under ``sources:`` (see the module docstring).

    ``path`` is relative to the directory the daemon runs in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, Field(min_length=1)]
    pace: Pace = 1.0
    loop: bool = False
    start: Literal["now", "file"] = "now"


class CsvLine(BaseModel):
    """A line's ``source:`` block for a ``csv`` source: ``line_in_file`` (default: the
    line's id) is the ``line`` value of its rows."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    line_in_file: Annotated[str, Field(min_length=1)] | None = None


# --------------------------------------------------------------------------- the source


class CsvSource:
    """Replays a stats file, paced against the clock (see the module docstring)."""

    def __init__(
        self, name: str, settings: CsvSettings, lines: Mapping[str, CsvLine], clock: Clock
    ) -> None:
        """Replay ``settings.path`` for ``lines``; nothing is read until the first poll."""
        self.name = name
        self.settings = settings
        self._clock = clock
        self._path = Path(settings.path)
        self._bound: dict[str, list[str]] = {}
        for line, params in lines.items():
            self._bound.setdefault(params.line_in_file or line, []).append(line)
        self._started: datetime | None = None  # the first poll: the replay's start
        self._failure: SourceError | None = None
        self._failed_version: tuple[int, int] | None = None
        self._rows: Generator[QueueStats, None, None] | None = None
        self._header = _Header()
        self._restart()

    def _restart(self) -> None:
        """Read the file from the top again; the replay's clock (``_started``) runs on."""
        self._close()
        self._rows = None
        self._latest: dict[str, QueueStats] = {}
        self._pending: QueueStats | None = None
        self._done = False
        self._first: datetime | None = None  # the first row's time, on the daemon's timeline
        self._pass_first: datetime | None = None
        self._last: datetime | None = None
        self._step = timedelta(seconds=1)  # the last gap between distinct times
        self._offset = timedelta(0)

    async def poll(self) -> PollResult:
        """Move the replay on to the clock's time; each line's latest row so far."""
        now = self._clock.now()
        if self._failure is not None:
            # A bad file fails every poll without being read again, until it is changed:
            # then the replay reads it afresh and catches up with its clock.
            if self._version() == self._failed_version:
                raise self._failure
            self._failure = None
            self._restart()
        try:
            self._advance(now)
        except CsvStatsError as exc:
            self._restart()
            self._failure = SourceError(str(exc), reason="parse", retryable=False)
            self._failed_version = self._version()
            raise self._failure from None
        except OSError as exc:
            self._restart()  # open it again next poll
            raise SourceError(
                f"cannot read {self._path}: {exc.strerror or exc}", reason="file"
            ) from None
        result: dict[str, QueueStats | SourceError] = {}
        for in_file, lines in self._bound.items():
            stats = self._latest.get(in_file)
            for line in lines:
                if stats is not None:
                    result[line] = replace(stats, line=line)
                elif self._done:
                    result[line] = SourceError(
                        f'{self._path} has no rows for line "{in_file}"',
                        reason="no_data",
                        retryable=False,
                    )
                else:
                    result[line] = SourceError(
                        f'no row for line "{in_file}" in {self._path} yet', reason="no_data"
                    )
        return result

    async def aclose(self) -> None:
        """Close the file."""
        self._close()

    # -------------------------------------------------------------- replay

    def _advance(self, now: datetime) -> None:
        if self._started is None:
            self._started = now
        pace = self.settings.pace
        if pace == "fast":
            due: datetime | None = None
            while (row := self._peek()) is not None and (due is None or row.at == due):
                due = row.at
                self._take(row, now)
            return
        first = self._peek()
        if first is None or self._first is None:
            return
        cursor = self._first + (now - self._started) * pace
        while (row := self._peek()) is not None and row.at <= cursor:
            stamp = row.at
            if self.settings.start == "now":
                stamp = self._started + (row.at - self._first) / pace
            self._take(row, stamp)

    def _take(self, row: QueueStats, stamp: datetime) -> None:
        self._pending = None
        if row.line not in self._bound:
            return
        at = row.at if self.settings.start == "file" else stamp
        self._latest[row.line] = row if at == row.at else replace(row, at=at)

    def _peek(self) -> QueueStats | None:
        """The next row on the daemon's timeline (file time plus the loop offset), kept
        until taken; None when the replay is over."""
        if self._pending is not None:
            return self._pending
        if self._done:
            return None
        row = self._next_row()
        if row is None and self.settings.loop and self._last is not None:
            assert self._pass_first is not None
            self._offset += (self._last - self._pass_first) + self._step
            self._pass_first = None
            row = self._next_row()
        if row is None:
            self._done = True
            self._close()
            import structlog  # here, not at the top: replay reads files with this module

            structlog.get_logger(__name__).info(
                "csv replay finished", source=self.name, file=str(self._path)
            )
            return None
        at = row.at + self._offset
        if self._last is not None and at < self._last:
            raise CsvStatsError(
                str(self._path),
                self._header.row,
                self._header.time_column,
                f"time: {row.at.isoformat()} is earlier than the row before it; "
                "sort the file by time",
            )
        if self._last is not None and at > self._last:
            self._step = at - self._last
        if self._first is None:
            self._first = at
        if self._pass_first is None:
            self._pass_first = at
        self._last = at
        self._pending = row if not self._offset else replace(row, at=at)
        return self._pending

    def _next_row(self) -> QueueStats | None:
        if self._rows is None:
            self._rows = _parse(self._path, self._header)
        row = next(self._rows, None)
        if row is None:
            self._close()
            self._rows = None
        return row

    def _close(self) -> None:
        if self._rows is not None:
            self._rows.close()

    def _version(self) -> tuple[int, int] | None:
        """The file's modification time and size, to notice that it was changed."""
        try:
            info = self._path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(CsvSettings, settings, f"csv {name!r}")
    own = lines_as(CsvLine, lines, f"csv {name!r}")
    return CsvSource(name, settings, own, ctx.clock)


PLUGIN = SourcePlugin(
    type="csv",
    settings_model=CsvSettings,
    line_model=CsvLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Replays historical stats from a CSV file, paced against the clock.",
)
