"""A stats CSV as columns, one ``LineRows`` per line: what event-driven replay walks over.

``read_line_rows(path)`` reads a stats file (the format of ``docs/sources/csv.md``) into
one ``LineRows`` per line: the line's rows in time order as numpy columns. A row whose time
is earlier than the line's latest row so far is dropped (the engine ignores older stats, as
``replay`` does); rows with equal times stay in file order; blank rows are skipped. A bad
header or cell raises the same ``CsvStatsError`` (``FILE:ROW:COLUMN: message``) as
``read_rows``.

**How the file is read — chosen by measurement** (``benchmarks/RESULTS.md``, "Replay at
scale", 862,282 rows of 30 days × 20 lines, one core): numpy, with a tokeniser of our own
(``replay_csv``) that converts blocks of rows with whole-array operations — field bounds
from the positions of commas and newlines, figures of up to 8 bytes as one 64-bit word
each, times once per run of equal texts — and falls back to ``read_rows`` for any file it
cannot convert exactly (quoted cells, ``3.0`` as a count, signs or spaces in figures …).
It reads ~1.4–1.5 million rows/s into per-line columns at 126 MB peak RSS (the interpreter
and ``risingtide``'s CSV module are 65 MB of that), numpy imports in ~0.06 s. pyarrow's
and polars' readers parse at 1.3–4 and 2.2–3.2 million rows/s into one table (no per-line
split, no exact checks) but peak at 324 and 262 MB: importing either costs 55–70 MB before
a row is read, which alone breaks the 150 MB budget of a ``risingtide replay`` run. The
``csv`` module loop (``read_rows``) manages ~0.24 million rows/s. numpy is imported on the
first read only, never by ``risingtide check`` or the daemon.

**marks(framework)** says at which rows any tier's ``when`` or ``clear`` truth changes, so a
walker can skip the rows in between. Compiled to numpy: ``Compare`` on every ``QueueStats``
figure and on the derived ``abandon_rate`` and ``answered_rate`` (unknown when ``abandoned``
or ``answered`` is unknown or ``offered`` is unknown or 0), every ``Op``; ``AllOf``,
``AnyOf``; ``Not`` (false when any measure its part reads is unknown, as ``Not.holds``).
Anything else — another condition type, a measure that is not a figure, a count too large
for a float64 to hold exactly — is evaluated by calling ``holds()`` on each row (correct,
slower).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from risingtide.domain.model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Framework,
    Not,
    Op,
    QueueStats,
)
from risingtide.sources.csv_file import _COUNTS, STATS_COLUMNS, read_rows

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Floats = NDArray[np.float64]
    Bools = NDArray[np.bool_]

__all__ = ["LineRows", "read_line_rows"]

_EXACT = 2**53  # integers below this are exact in a float64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_OPS: dict[Op, Callable[[Any, Any], Any]] = {
    Op.ABOVE: operator.gt,
    Op.BELOW: operator.lt,
    Op.AT_LEAST: operator.ge,
    Op.AT_MOST: operator.le,
}


class _UncompiledError(Exception):
    """A condition numpy cannot evaluate exactly; ``holds()`` is called per row instead."""


class _Column:
    """One figure column: integers with ``-1`` for unknown, read as ``raw / 10**scale``
    (seconds) or ``raw`` (counts); or float64 with NaN for unknown (``raw`` is floats);
    or, for counts too large for int64, Python objects."""

    __slots__ = ("count", "raw", "scale")

    def __init__(self, raw: Any, scale: int, count: bool) -> None:
        self.raw = raw
        self.scale = scale
        self.count = count

    def value(self, i: int) -> int | float | None:
        """Row ``i``'s figure as ``read_rows`` gives it, None when unknown."""
        v = self.raw[i].item() if hasattr(self.raw[i], "item") else self.raw[i]
        if v is None or v == -1 or v != v:  # -1 or NaN: unknown
            return None
        if self.count:
            return int(v)
        if isinstance(v, float):
            return v
        return v / 10**self.scale if self.scale else float(v)

    def values(self, rows: Any) -> list[int | float | None]:
        """The figures of ``rows`` (an index array) as ``value`` gives each, in one pass."""
        scale, count = 10**self.scale if self.scale else 0, self.count
        out: list[int | float | None] = []
        for v in self.raw[rows].tolist():
            if v is None or v == -1 or v != v:
                out.append(None)
            elif count:
                out.append(int(v))
            elif isinstance(v, float):
                out.append(v)
            else:
                out.append(v / scale if scale else float(v))
        return out

    def floats(self) -> Floats:
        """The figures as float64 with NaN for unknown; _UncompiledError if any is inexact."""
        import numpy as np

        raw = self.raw
        if raw.dtype == object:
            raise _UncompiledError
        if raw.dtype.kind == "f":
            same: Floats = raw
            return same
        if len(raw) and int(raw.max()) >= _EXACT:
            raise _UncompiledError
        values: Floats = raw.astype(np.float64)
        if self.scale:
            values /= 10**self.scale
        values[raw == -1] = np.nan
        return values


class LineRows:
    """One line's rows of a stats file, in time order, as columns."""

    __slots__ = ("_columns", "_times", "line")

    def __init__(self, line: str, times_us: Any, columns: tuple[_Column | None, ...]) -> None:
        """Rows of ``line``: epoch microseconds and the figure columns (STATS_COLUMNS order)."""
        self.line = line
        self._times = times_us
        self._columns = columns

    def __len__(self) -> int:
        """The number of rows."""
        return len(self._times)

    def __repr__(self) -> str:
        """``LineRows('council_tax', 1440 rows)``."""
        return f"LineRows({self.line!r}, {len(self)} rows)"

    def time(self, i: int) -> datetime:
        """Row ``i``'s time, aware UTC (``QueueStats.at``)."""
        return _EPOCH + timedelta(microseconds=int(self._times[i]))

    def times_us(self) -> NDArray[np.int64]:
        """Every row's time as int64 epoch microseconds, non-decreasing."""
        out: NDArray[np.int64] = self._times
        return out

    def stats(self, i: int) -> QueueStats:
        """Row ``i`` exactly as ``read_rows`` yields it."""
        values: list[Any] = [None if c is None else c.value(i) for c in self._columns]
        return QueueStats(self.line, self.time(i), *values)

    def stats_many(self, rows: Sequence[int]) -> list[QueueStats]:
        """Rows ``rows`` as ``stats`` gives each, a column at a time (replay's visits)."""
        import numpy as np

        index = np.asarray(rows, dtype=np.int64)
        columns = [[None] * len(index) if c is None else c.values(index) for c in self._columns]
        line, times = self.line, self._times[index].tolist()
        return [
            QueueStats(line, _EPOCH + timedelta(microseconds=t), *values)
            for t, *values in zip(times, *columns, strict=True)
        ]

    def marks(self, framework: Framework) -> NDArray[np.int64]:
        """Row 0 and every row where any tier's ``when`` or ``clear`` truth differs from the
        row before, ascending (empty for no rows)."""
        import numpy as np

        n = len(self)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        changed = np.zeros(n - 1, dtype=bool)
        cache: dict[str, Floats] = {}
        for tier in framework.tiers:
            for condition in (tier.when, tier.clear):
                truth = self.truth(condition, cache)
                changed |= truth[1:] != truth[:-1]
        out: NDArray[np.int64] = np.concatenate(([0], np.flatnonzero(changed) + 1)).astype(np.int64)
        return out

    def truth(self, condition: Condition, cache: dict[str, Floats] | None = None) -> Bools:
        """``condition.holds(stats(i))`` for every row, as a bool array.

        ``cache`` keeps the measures' float columns between calls on the same rows.
        """
        import numpy as np

        try:
            return self._compile(condition, {} if cache is None else cache)
        except _UncompiledError:
            return np.fromiter(
                (condition.holds(self.stats(i)) for i in range(len(self))), bool, len(self)
            )

    def gaps(self, longer_than: timedelta) -> NDArray[np.int64]:
        """Rows ``i >= 1`` that come more than ``longer_than`` after row ``i - 1``."""
        import numpy as np

        limit = longer_than // timedelta(microseconds=1)
        out: NDArray[np.int64] = (np.flatnonzero(np.diff(self._times) > limit) + 1).astype(np.int64)
        return out

    # ------------------------------------------------------------------ compiling conditions

    def _compile(self, condition: Condition, cache: dict[str, Floats]) -> Bools:
        import numpy as np

        if isinstance(condition, Compare):
            values = self._measure(condition.measure, cache)
            test = _OPS.get(condition.op)
            if test is None:
                raise _UncompiledError
            with np.errstate(invalid="ignore"):
                result: Bools = test(values, condition.threshold)  # NaN compares false
            return result
        if isinstance(condition, AllOf | AnyOf):
            every = isinstance(condition, AllOf)
            out = np.full(len(self), every)
            for part in condition.parts:
                truth = self._compile(part, cache)
                out = (out & truth) if every else (out | truth)
            return out
        if isinstance(condition, Not):
            out = ~self._compile(condition.part, cache)
            for m in condition.part.measures():
                out &= ~np.isnan(self._measure(m, cache))
            return out
        raise _UncompiledError

    def _measure(self, name: str, cache: dict[str, Floats]) -> Floats:
        """A measure as float64, NaN where ``getattr(stats, name)`` is None."""
        import numpy as np

        if name in cache:
            return cache[name]
        if name in ("abandon_rate", "answered_rate"):
            part = self._measure("abandoned" if name == "abandon_rate" else "answered", cache)
            offered = self._measure("offered", cache)
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(offered > 0, part / offered, np.nan)  # 0 or NaN: unknown
        elif name in STATS_COLUMNS:
            column = self._columns[STATS_COLUMNS.index(name)]
            values = np.full(len(self), np.nan) if column is None else column.floats()
        else:
            raise _UncompiledError
        cache[name] = values
        return values


def read_line_rows(path: Path | str) -> tuple[dict[str, LineRows], int]:
    """Every line's rows (dict in order of first appearance) and the count of data rows read.

    Raises ``CsvStatsError`` for a bad header or cell and ``OSError`` when the file cannot
    be read, as ``read_rows`` does.
    """
    from risingtide.replay_csv import parse

    path = Path(path)
    parsed = parse(path)
    if parsed is None:
        return _from_stats(read_rows(path))
    columns = [
        None if c is None else _Column(c[0], c[1], name in _COUNTS)
        for name, c in zip(STATS_COLUMNS, parsed.columns, strict=True)
    ]
    parsed.columns = []  # the split frees each whole-file column as it goes
    return _split(parsed.lines, parsed.codes, parsed.times_us, columns), len(parsed.codes)


def _split(
    lines: list[str], codes: Any, times: Any, columns: list[_Column | None]
) -> dict[str, LineRows]:
    """Rows in file order → one LineRows per line, dropping rows older than the line's
    latest so far."""
    import numpy as np

    order = np.argsort(codes.astype(np.int16) if len(lines) < 2**15 else codes, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(lines)))))
    picks = []
    for k in range(len(lines)):
        rows = order[bounds[k] : bounds[k + 1]]
        t = times[rows]
        keep = t == np.maximum.accumulate(t)  # earlier than a row before it: dropped
        picks.append(rows if keep.all() else rows[keep])
    out = {name: LineRows(name, times[rows], ()) for name, rows in zip(lines, picks, strict=True)}
    per_line: list[list[_Column | None]] = [[] for _ in lines]
    for c in range(len(columns)):
        column = columns[c]
        for k, rows in enumerate(picks):
            per_line[k].append(
                None if column is None else _Column(column.raw[rows], column.scale, column.count)
            )
        columns[c] = column = None  # free the whole-file column before the next one
    for k, name in enumerate(lines):
        out[name]._columns = tuple(per_line[k])
    return out


def _from_stats(rows: Iterable[QueueStats]) -> tuple[dict[str, LineRows], int]:
    """The slow path: build the columns from ``read_rows``' QueueStats."""
    import numpy as np

    codes: dict[str, int] = {}
    code_list: list[int] = []
    times: list[int] = []
    values: list[list[Any]] = [[] for _ in STATS_COLUMNS]
    for stats in rows:
        code_list.append(codes.setdefault(stats.line, len(codes)))
        times.append((stats.at - _EPOCH) // _ONE_US)
        for k, name in enumerate(STATS_COLUMNS):
            values[k].append(getattr(stats, name))
    columns: list[_Column | None] = []
    for name, cells in zip(STATS_COLUMNS, values, strict=True):
        if name in _COUNTS:
            big = any(v is not None and v >= 2**63 for v in cells)
            raw = (
                np.array(cells, dtype=object)
                if big
                else np.array([-1 if v is None else v for v in cells], dtype=np.int64)
            )
        else:
            raw = np.array([np.nan if v is None else v for v in cells], dtype=np.float64)
        columns.append(_Column(raw, 0, name in _COUNTS))
    code_array = np.array(code_list, dtype=np.int32)
    time_array = np.array(times, dtype=np.int64)
    return _split(list(codes), code_array, time_array, columns), len(code_list)
