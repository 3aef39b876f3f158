"""The fast path of ``replay_rows``: a stats CSV's plain rows tokenised and converted by numpy.

``parse(path)`` reads the file in blocks of 2 MiB and turns every block into columns with
whole-array numpy operations: the field bounds from the positions of commas and newlines;
figures of up to 8 bytes each read as one unaligned 64-bit word and converted with a few
integer operations on all 8 bytes at once (SWAR), wider ones from a right-aligned matrix of
their digits; times from the fixed positions of ``2026-01-05T09:00:00Z``, once per run of
equal texts; line names keyed by their bytes as words. It accepts only what it can
convert exactly as ``read_rows`` would:

- no quotes, NUL bytes or lone carriage returns (``\\r\\n`` line ends are fine);
- every non-empty row with exactly the header's cells;
- counts written as digits (at most 18); seconds as digits with at most one ``.`` (at most
  15 digits, so ``digits / 10**k`` is exactly Python's ``float(text)``, both being the
  correctly rounded value of the same decimal); an empty cell is unknown;
- times as ``YYYY-MM-DDTHH:MM:SSZ`` or ``…+00:00`` or whole epoch seconds, checked as
  ``datetime`` checks them; any other spelling goes through ``read_rows``' own ``_time``
  (one call per distinct text);
- line names that are UTF-8, not blank.

For anything else it returns ``None`` and the caller reads the file with ``read_rows``, which
either accepts it (slowly) or raises the exact ``CsvStatsError``. A count or seconds column is
kept as integers with ``-1`` for unknown and a decimal ``scale``: the value is
``raw / 10**scale`` (seconds) or ``raw`` (counts) — 4 bytes a cell where that fits; a seconds
column whose scaled integers would pass 2**53 is kept as float64 (NaN unknown, scale
``FLOATS``), each value the correctly rounded float of its text.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from risingtide.sources.csv_file import _COUNTS, STATS_COLUMNS, CsvStatsError, _columns, _time

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Ints = NDArray[np.integer[Any]]

_FIRST_CAPACITY = 1 << 23  # rows: 8 Mi rows × 48 B would be 400 MB if all were written
BLOCK = 1 << 21  # bytes read at a time: small temporaries, yet few numpy calls a row
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
_MAX_FLOAT_DIGITS = 15  # below 2**53: exact in a float64
_MAX_COUNT_DIGITS = 18  # below 2**63
_MAX_EPOCH_DIGITS = 11  # whole epoch seconds up to the year 5138
_PAD = 64  # bytes of zeros after a block, so that a word may be read at any cell start
#: ``_LOW_BYTES[k]`` keeps the first ``k`` bytes of a little-endian word.
_POW10 = np.array([float(10**k) for k in range(23)])  # exact: no pow() rounding
#: The scale of a column kept as float64 (NaN for unknown) rather than scaled integers.
FLOATS = -1
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)

# Byte classes: 0 plain, 1 comma, 2 newline, 3 carriage return, 4 refused (quote, NUL).
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[ord(",")] = 1
_CLASS[ord("\n")] = 2
_CLASS[ord("\r")] = 3
_CLASS[ord('"')] = 4
_CLASS[0] = 4


class _RefusedError(Exception):
    """The fast path cannot convert this file exactly; ``read_rows`` must read it."""


@dataclass(slots=True)
class Parsed:
    """Every data row of a file, in file order, as columns.

    ``codes[i]`` indexes ``lines`` (in order of first appearance); ``columns`` follows
    ``STATS_COLUMNS``: ``None`` for a column the file does not have, else ``(raw, scale)``.
    """

    lines: list[str]
    codes: NDArray[np.int32]
    times_us: Ints
    columns: list[tuple[NDArray[Any], int] | None]


def parse(path: Path) -> Parsed | None:
    """The file's rows as columns, or None when only ``read_rows`` can read it exactly."""
    hugepages = _hugepages(False)
    try:
        return _parse(path)
    except (_RefusedError, CsvStatsError, UnicodeDecodeError):
        return None
    finally:
        _hugepages(hugepages)


def _hugepages(enabled: bool) -> bool:
    """Turn numpy's huge pages for large arrays on or off; returns the previous setting.

    numpy asks Linux for 2 MiB pages for arrays of 4 MiB or more, so every column written
    a little at a time holds up to 2 MiB it has not used yet: ~15 MB more peak RSS here.
    (Pinning glibc's mmap threshold saves as much but makes every temporary array fault in
    fresh pages: four times slower.)
    """
    import importlib

    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            switch = importlib.import_module(name)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
        return bool(switch(enabled))
    return enabled


def _parse(path: Path) -> Parsed:
    with path.open("rb") as f:
        first = f.readline().removeprefix(codecs.BOM_UTF8)
        names = first.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8")
        if '"' in names or "\r" in names or not names.strip():
            raise _RefusedError
        index = _columns(names.split(","), str(path))
        width = len(names.split(","))
        # A data row has its commas, a newline and a time and a line of a byte or more;
        # pages never written are never resident, but a huge file starts smaller and grows.
        capacity = min(os.fstat(f.fileno()).st_size // (width + 1) + 1, _FIRST_CAPACITY)
        reader = _Blocks(index, width, capacity)
        rest = b""
        while True:
            more = f.read(BLOCK)
            data = rest + more
            cut = data.rfind(b"\n") + 1 if more else len(data)
            if cut:
                chunk = data[:cut] if data[cut - 1 : cut] == b"\n" else data[:cut] + b"\n"
                reader.block(chunk)
            rest = data[cut:]
            if not more:
                break
    return reader.result()


class _Blocks:
    """Converts blocks of whole rows into columns.

    Each column is written in place into an array sized for the most rows the file can
    hold: pages never written are never resident, and nothing is copied at the end (per
    block pieces joined at the end cost a third more peak memory, as the allocator keeps
    the freed pieces).
    """

    def __init__(self, index: dict[str, int], width: int, capacity: int) -> None:
        self.index = index
        self.width = width
        self.capacity = capacity
        self.size = 0
        self.lines: dict[str, int] = {}
        self.codes = np.empty(capacity, dtype=np.int32)
        self.times = np.empty(capacity, dtype=np.int64)
        self.figures = {n: _Figures(capacity, n in _COUNTS) for n in STATS_COLUMNS if n in index}
        self.time_cache: dict[bytes, int] = {}

    def block(self, data: bytes) -> None:
        """Convert one block of whole rows (it ends with a newline)."""
        b = np.frombuffer(data, dtype=np.uint8)
        starts, ends = _fields(b, self.width)
        rows = starts.shape[1]
        if not rows:
            return
        at, end = self.size, self.size + rows
        if end > self.capacity:
            self._grow(max(end, 2 * self.capacity))
        words, ending = _words(data)
        idx = self.index
        t_s, t_e = starts[idx["time"]], ends[idx["time"]]
        self.times[at:end] = self._times(b, words, data, t_s, t_e)
        self.codes[at:end] = self._lines(words, data, starts[idx["line"]], ends[idx["line"]])
        for name, column in self.figures.items():
            k = idx[name]
            column.add(*_numbers(b, ending, starts[k], ends[k], name in _COUNTS))
        self.size = end

    def _grow(self, capacity: int) -> None:
        """Room for ``capacity`` rows (a file larger than the first guess, or growing)."""
        self.capacity = capacity
        self.codes = _resized(self.codes, capacity, self.size)
        self.times = _resized(self.times, capacity, self.size)
        for column in self.figures.values():
            column.capacity = capacity
            column.raw = _resized(column.raw, capacity, self.size)

    def result(self) -> Parsed:
        """All rows' columns (views of the first ``size`` rows)."""
        columns: list[tuple[NDArray[Any], int] | None] = [
            self.figures[n].result() if n in self.figures else None for n in STATS_COLUMNS
        ]
        return Parsed(list(self.lines), self.codes[: self.size], self.times[: self.size], columns)

    def _times(
        self, b: NDArray[np.uint8], words: NDArray[np.uint64], data: bytes, s: Ints, e: Ints
    ) -> Ints:
        """Each row's time in epoch microseconds, converting each run of equal texts once
        (a platform writes one time for all its lines)."""
        n = e - s
        if len(s) < 2 or int(n.max()) > _PAD:
            return self._times_of(b, data, s, e)
        same = n[1:] == n[:-1]
        for offset in range(0, int(n.max()), 8):
            key = words[s + offset]  # bytes past a cell's end: stricter, never wrong
            same &= key[1:] == key[:-1]
        first = np.concatenate(([True], ~same))
        heads = np.flatnonzero(first)
        out: Ints = self._times_of(b, data, s[heads], e[heads])[np.cumsum(first) - 1]
        return out

    def _times_of(self, b: NDArray[np.uint8], data: bytes, s: Ints, e: Ints) -> Ints:
        n = e - s
        out = np.empty(len(s), dtype=np.int64)
        done = np.zeros(len(s), dtype=bool)
        for width, suffix in ((20, b"Z"), (25, b"+00:00")):
            rows = np.flatnonzero(n == width)
            if len(rows):
                us, ok = _iso(b, s[rows], suffix)
                out[rows[ok]] = us[ok]
                done[rows[ok]] = True
        rows = np.flatnonzero(~done & (n <= _MAX_EPOCH_DIGITS) & (n > 0))
        if len(rows):
            value, ok = _digits(b, s[rows], e[rows])
            out[rows[ok]] = value[ok] * 1_000_000
            done[rows[ok]] = True
        for i in np.flatnonzero(~done).tolist():
            text = data[s[i] : e[i]]
            known = self.time_cache.get(text)
            if known is None:
                try:
                    known = (_time(text.decode("utf-8")) - EPOCH) // ONE_US
                except (ValueError, OverflowError, OSError):
                    raise _RefusedError from None
                self.time_cache[text] = known
            out[i] = known
        return out

    def _lines(self, words: NDArray[np.uint64], data: bytes, s: Ints, e: Ints) -> NDArray[np.int32]:
        n = e - s
        width = int(n.max())
        if int(n.min()) == 0 or width > _PAD:
            raise _RefusedError
        # Each cell as little-endian words, bytes past its end masked off (no NUL in the
        # block, so the zero padding cannot collide with a real name).
        parts = [words[s + k] & _LOW_BYTES[np.clip(n - k, 0, 8)] for k in range(0, width, 8)]
        key = parts[0].copy()
        for part in parts[1:]:
            key = key * np.uint64(0x9E3779B97F4A7C15) ^ part
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        if any((part != part[first[inverse]]).any() for part in parts[1:]):
            raise _RefusedError  # a hash collision: never mind, read it slowly
        local = np.empty(len(uniq), dtype=np.int32)
        for u in np.argsort(first, kind="stable").tolist():
            i = int(first[u])
            name = data[s[i] : e[i]].decode("utf-8")
            if not name.strip():
                raise _RefusedError
            local[u] = self.lines.setdefault(name, len(self.lines))
        out: NDArray[np.int32] = local[inverse]
        return out


def _words(data: bytes) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """Unaligned little-endian views of ``data`` 8 bytes at a time, zeros outside it:
    ``starting[i]`` is ``data[i:i+8]`` and ``ending[i]`` is ``data[i-8:i]``."""
    padded = bytes(8) + data + bytes(_PAD + 8)
    size = len(data) + _PAD
    ending: NDArray[np.uint64] = np.ndarray((size,), dtype="<u8", buffer=padded, strides=(1,))
    starting: NDArray[np.uint64] = np.ndarray(
        (size,), dtype="<u8", buffer=padded, offset=8, strides=(1,)
    )
    return starting, ending


def _fields(b: NDArray[np.uint8], width: int) -> tuple[Ints, Ints]:
    """Each non-empty row's cell starts and ends, shape (width, rows)."""
    seps = np.flatnonzero(b <= 44).astype(np.int32)  # separators and refused bytes: ≤ ","
    kinds = _CLASS[b[seps]]
    seps = seps[kinds > 0]
    kinds = kinds[kinds > 0]
    if (kinds == 4).any():
        raise _RefusedError
    newlines = seps[kinds == 2]
    commas = seps[kinds == 1]
    line_start = np.concatenate((np.zeros(1, dtype=np.int32), newlines[:-1] + 1))
    line_end = newlines.copy()
    crs = seps[kinds == 3]
    if len(crs):
        if not (b[crs + 1] == 10).all():  # a lone CR: the csv module's own line end
            raise _RefusedError
        line_end[b[np.maximum(newlines - 1, 0)] == 13] -= 1
        line_end = np.maximum(line_end, line_start)
    keep = line_end > line_start  # blank rows are skipped
    if not keep.all():
        line_start, line_end = line_start[keep], line_end[keep]
    rows = len(line_start)
    if len(commas) != rows * (width - 1):
        raise _RefusedError
    commas = commas.reshape(rows, width - 1)
    # Sorted commas, each row's group inside its own row: exactly width - 1 in every row.
    if rows and not ((commas[:, 0] >= line_start).all() and (commas[:, -1] < line_end).all()):
        raise _RefusedError
    # One row per column, so that each column's cells are contiguous.
    starts = np.empty((width, rows), dtype=np.int32)
    ends = np.empty((width, rows), dtype=np.int32)
    starts[0] = line_start
    starts[1:] = commas.T + 1
    ends[:-1] = commas.T
    ends[-1] = line_end
    return starts, ends


def _digits(b: NDArray[np.uint8], s: Ints, e: Ints) -> tuple[Ints, NDArray[np.bool_]]:
    """Cells of only digits as integers (ok False for any other cell, or an empty one)."""
    n = e - s
    value, _frac, dots, bad = _scan(b, e, n, int(n.max()) if len(n) else 0)
    if bad or dots is not None:
        return value, np.zeros(len(s), dtype=bool)  # Python reads them, one text at a time
    return value, n > 0


def _scan(
    b: NDArray[np.uint8], e: Ints, n: Ints, width: int
) -> tuple[Ints, Ints, Ints | None, bool]:
    """Cells read as a right-aligned byte matrix, one byte position per row (widest × rows:
    numpy is slow along short axes).

    Returns the digits as an integer (ignoring a point), the digits after the point, the
    points in each cell (None when there are none at all), and whether any cell had a
    byte that is neither a digit nor a point.
    """
    value = np.zeros(len(e), dtype=np.int64)
    frac = np.zeros(len(e), dtype=np.int64)
    if width == 0:
        return value, frac, None, False
    j = np.arange(width, dtype=np.int32)[:, None]
    cells = b[np.maximum(e[None, :] - width + j, 0)]
    live = j >= (width - n)[None, :]
    digits = cells - np.uint8(48)  # wraps: anything but 0-9 is above 9
    is_digit = (digits <= 9) & live
    points = (cells == 46) & live
    bad = bool((live > (is_digit | points)).any())
    digits *= is_digit  # a point or a byte of the cell before reads as 0
    if not points.any():
        for k in range(width):
            value *= 10
            value += digits[k]
        return value, frac, None, bad
    dots = np.zeros(len(e), dtype=np.int64)
    for k in range(width):
        value = np.where(points[k], value, value * 10 + digits[k])
        frac += (dots > 0) & is_digit[k]
        dots += points[k]
    return value, frac, dots, bad


_ZEROS = np.uint64(0x3030303030303030)  # "00000000"
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_POINTS = np.uint64(0x2E2E2E2E2E2E2E2E)  # "........"
_ONES = np.uint64(0x0101010101010101)
_TOP_BITS = np.uint64(0x8080808080808080)


def _scan8(ending: NDArray[np.uint64], e: Ints, n: Ints) -> tuple[Ints, Ints, Ints | None, bool]:
    """``_scan`` for cells of at most 8 bytes, each read as one word (SWAR: every byte of a
    64-bit integer at once). Byte 0 of ``ending[e]`` is the 8th character before the end."""
    keep = ~_LOW_BYTES[8 - n]  # the cell's own bytes, at the top of the word
    x = (ending[e] & keep) | (_ZEROS & ~keep)  # anything before the cell reads as "0"
    y = x ^ _POINTS
    marks = (y - _ONES) & ~y & _TOP_BITS  # the lowest marked byte is the first point
    dots: Ints | None = None
    frac = np.zeros(len(e), dtype=np.int64)
    if marks.any():
        first = marks & (~marks + np.uint64(1))
        at = (np.frexp(first.astype(np.float64))[1] - 8) // 8  # the point's byte, 0-7
        has = marks != 0
        at = np.where(has, at, 0).astype(np.uint64)
        shift = np.uint64(8) * at
        low = _LOW_BYTES[at]
        closed = (
            ((x & low) << np.uint64(8))
            | (x & ~(low | (np.uint64(0xFF) << shift)))
            | (_ZEROS & np.uint64(0xFF))
        )
        x = np.where(has, closed, x)
        frac = np.where(has, 7 - at.astype(np.int64), 0)
        dots = has.astype(np.int64)
    # Every byte a digit: its high nibble is 3, and adding 6 keeps it 3.
    check = (x & _HIGH_NIBBLES) | (((x + np.uint64(0x0606060606060606)) & _HIGH_NIBBLES) >> 4)
    bad = bool((check != np.uint64(0x3333333333333333)).any())
    v = x - _ZEROS
    v = ((v & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561)) >> np.uint64(8)
    v = ((v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    v = ((v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return v.astype(np.int64), frac, dots, bad


def _numbers(
    b: NDArray[np.uint8], ending: NDArray[np.uint64], s: Ints, e: Ints, count: bool
) -> tuple[Ints, Ints]:
    """A figure column's cells as (digits without the point, digits after the point).

    Empty cells give ``-1``; any cell ``read_rows`` might read differently refuses the file.
    """
    n = e - s
    width = int(n.max()) if len(n) else 0
    if width > (_MAX_COUNT_DIGITS if count else _MAX_FLOAT_DIGITS + 1):
        raise _RefusedError
    value, frac, dots, bad = _scan8(ending, e, n) if width <= 8 else _scan(b, e, n, width)
    if bad:
        raise _RefusedError  # a sign, a space, an exponent …: read_rows decides
    if dots is not None:
        if count:
            raise _RefusedError  # "3.0" is a count to read_rows' careful path only
        if (dots > 1).any() or ((dots == n) & (n > 0)).any():
            raise _RefusedError  # "1.2.3", "."
        if ((n - dots) > _MAX_FLOAT_DIGITS).any():
            raise _RefusedError
    elif not count and width > _MAX_FLOAT_DIGITS:
        raise _RefusedError
    empty = n == 0
    if empty.any():
        value[empty] = -1
    return value, frac


def _resized(array: NDArray[Any], capacity: int, size: int) -> NDArray[Any]:
    """A new array of ``capacity`` with the first ``size`` items of ``array``."""
    out = np.empty(capacity, dtype=array.dtype)
    out[:size] = array[:size]
    return out


class _Figures:
    """One figure column, filled block by block: integers at one decimal scale (int32 while
    they fit), or float64 once a scaled integer would pass 2**53; -1 or NaN for unknown."""

    def __init__(self, capacity: int, count: bool) -> None:
        self.capacity = capacity
        self.count = count  # counts stay integers (no point is ever allowed in them)
        self.raw: NDArray[Any] = np.empty(capacity, dtype=np.int32)
        self.scale = 0
        self.size = 0

    def add(self, value: Ints, frac: Ints) -> None:
        """Append a block's cells: digits without the point (-1: unknown), digits after it."""
        end = self.size + len(value)
        if self.scale != FLOATS:
            block_scale = int(frac.max()) if len(frac) else 0
            if block_scale > self.scale:
                self._rescale(block_scale)
        if self.scale != FLOATS:
            shift = 10 ** (self.scale - frac)
            if not self.count and (value > (2**53 - 1) // shift).any():
                self._to_floats()
            else:
                scaled = np.where(value >= 0, value * shift, -1)
                if self.raw.dtype == np.int32 and int(scaled.max()) >= 2**31:
                    self._widen()
                self.raw[self.size : end] = scaled
        if self.scale == FLOATS:
            self.raw[self.size : end] = np.where(value >= 0, value / _POW10[frac], np.nan)
        self.size = end

    def result(self) -> tuple[NDArray[Any], int]:
        """The filled rows and their scale (``FLOATS`` for float64)."""
        return self.raw[: self.size], self.scale

    def _rescale(self, scale: int) -> None:
        factor = 10 ** (scale - self.scale)
        filled = self.raw[: self.size]
        top = int(filled.max()) if self.size else 0
        if top > (2**53 - 1) // factor:
            self._to_floats()
            return
        if self.raw.dtype == np.int32 and top * factor >= 2**31:
            self._widen()
            filled = self.raw[: self.size]
        filled[filled >= 0] *= factor
        self.scale = scale

    def _widen(self) -> None:
        wide = np.empty(self.capacity, dtype=np.int64)
        wide[: self.size] = self.raw[: self.size]
        self.raw = wide

    def _to_floats(self) -> None:
        floats = np.empty(self.capacity, dtype=np.float64)
        filled = self.raw[: self.size]
        floats[: self.size] = np.where(filled >= 0, filled / _POW10[self.scale], np.nan)
        self.raw = floats
        self.scale = FLOATS


def _iso(b: NDArray[np.uint8], s: Ints, suffix: bytes) -> tuple[Ints, NDArray[np.bool_]]:
    """``YYYY-MM-DDTHH:MM:SS`` + suffix cells as epoch microseconds (ok False otherwise)."""
    pattern = b"0000-00-00T00:00:00" + suffix
    ok = np.ones(len(s), dtype=bool)
    d: list[NDArray[np.int64]] = []
    for k, want in enumerate(pattern):
        byte = b[s + k]
        if want == ord("0") and k < 19:  # the date and time's digits, not the suffix's
            digit = byte - np.uint8(48)
            ok &= digit <= 9
            d.append(digit.astype(np.int64))
        else:
            ok &= byte == want
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
    month = d[4] * 10 + d[5]
    day = d[6] * 10 + d[7]
    hour = d[8] * 10 + d[9]
    minute = d[10] * 10 + d[11]
    second = d[12] * 10 + d[13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    last = month_days[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= last)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_from_civil(year, month, day)
    us = ((days * 24 + hour) * 60 + minute) * 60 + second
    return us * 1_000_000, ok


def _days_from_civil(y: Ints, m: Ints, d: Ints) -> Ints:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: Ints = era * 146097 + doe - 719468
    return days
