"""Durations as people write them: ``90s``, ``5m``, ``1h30m``, ``500ms`` or a bare number.

A bare number (YAML ``90`` or the text ``"90"``) means seconds. Parts run from the largest
unit to the smallest, each at most once: ``d`` (days), ``h``, ``m``, ``s``, ``ms``; each may
have a decimal fraction (``1.5h``). Arithmetic is exact (``Decimal``), rounded to the
microsecond, so ``format_duration`` and ``parse_duration`` round-trip.

Every failure is a ``DurationError`` (a ``ValueError``) whose message can be shown as is.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from risingtide.config.errors import show

#: Shown after "is not a duration" so the reader sees what would work.
EXAMPLES = "use e.g. 90s, 5m, 1h30m"

_UNIT_US: dict[str, int] = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
}
_ORDER = ("d", "h", "m", "s", "ms")
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PART = re.compile(rf"({_NUMBER})(ms|d|h|m|s)\s*")
_BARE = re.compile(rf"[+-]?{_NUMBER}")


class DurationError(ValueError):
    """A value that is not a duration, or is negative or absurdly long."""


def _from_microseconds(us: Decimal, value: object) -> timedelta:
    try:
        return timedelta(microseconds=int(us.to_integral_value()))
    except (OverflowError, InvalidOperation):
        raise DurationError(f"{show(value)} is too long for a duration") from None


def parse_duration(value: object) -> timedelta:
    """Turn ``90s``, ``5m``, ``1h30m``, ``500ms``, ``90`` (seconds) into a ``timedelta``.

    Raises ``DurationError`` for anything else, including negative durations.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise DurationError(f"{show(value)} is negative; a duration must be 0 or more")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DurationError(f"{show(value)} is not a duration ({EXAMPLES})")
    if isinstance(value, float) and not math.isfinite(value):
        raise DurationError(f"{show(value)} is not a duration ({EXAMPLES})")
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(f"{show(value)} is negative; a duration must be 0 or more")
        return _from_microseconds(Decimal(str(value)) * _UNIT_US["s"], value)
    text = value.strip()
    if _BARE.fullmatch(text):
        if text.startswith("-"):
            raise DurationError(f"{show(value)} is negative; a duration must be 0 or more")
        return _from_microseconds(Decimal(text) * _UNIT_US["s"], value)
    if text.startswith("-") and _parts(text[1:].lstrip()) is not None:
        raise DurationError(f"{show(value)} is negative; a duration must be 0 or more")
    total = _parts(text)
    if total is None:
        raise DurationError(f"{show(value)} is not a duration ({EXAMPLES})")
    return _from_microseconds(total, value)


def _parts(text: str) -> Decimal | None:
    """The total in microseconds of ``1h30m``-style text, or None if it is not one."""
    pos = 0
    last = -1
    total = Decimal(0)
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            return None
        rank = _ORDER.index(match.group(2))
        if rank <= last:  # units must run from largest to smallest, each once
            return None
        last = rank
        total += Decimal(match.group(1)) * _UNIT_US[match.group(2)]
        pos = match.end()
    return total if pos else None


def format_duration(value: timedelta) -> str:
    """Write a non-negative duration compactly: ``1h30m``, ``500ms``, ``2.5s``, ``0s``.

    The result always parses back to the same ``timedelta``.
    """
    if value < timedelta(0):
        raise DurationError("cannot format a negative duration")
    us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    out: list[str] = []
    for unit in ("d", "h", "m"):
        count, us = divmod(us, _UNIT_US[unit])
        if count:
            out.append(f"{count}{unit}")
    seconds, micros = divmod(us, 1_000_000)
    if micros == 0:
        if seconds or not out:
            out.append(f"{seconds}s")
    elif seconds == 0 and micros % 1000 == 0:
        out.append(f"{micros // 1000}ms")
    else:
        out.append(f"{seconds}.{micros:06d}".rstrip("0") + "s")
    return "".join(out)


def parse_offset(value: object) -> timedelta:
    """A duration that may be negative, written with a leading minus: ``-5m`` is five
    minutes *before* a reference time. Raises ``DurationError`` otherwise."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:].lstrip())
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value)
    return parse_duration(value)
