"""The threshold grammar: what may follow ``above:``, ``below:``, ``at_least:``, ``at_most:``.

A tiny hand-written grammar (never ``eval``)::

    threshold := number                      300, 0.1
               | duration                    300s, 5m, 1h30m        (time measures)
               | percentage                  10%, 12.5%             (ratio measures)
               | [N *] target [* N] [± D]    target, 0.8 * target, target * 1.5,
                                             target + 60s, 2 * target - 30s

``target`` is the line's target wait, so it is allowed only for the time measures
(``avg_wait``, ``longest_wait``, ``predicted_wait``). A threshold stays symbolic
(``factor * target + offset``) until a line is compiled and ``Threshold.resolve`` is given
that line's target.

Every failure is a ``ThresholdError`` (a ``ValueError``) whose message can be shown as is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from risingtide.config.durations import DurationError, parse_duration
from risingtide.config.errors import show

Unit = Literal["seconds", "count", "ratio"]

_NUM = r"[0-9]+(?:\.[0-9]+)?"
_TARGET = re.compile(
    rf"(?:(?P<f1>{_NUM})\s*\*\s*)?target(?:\s*\*\s*(?P<f2>{_NUM}))?"
    r"(?:\s*(?P<sign>[+-])\s*(?P<offset>\S.*?))?"
)
_NUMBER = re.compile(rf"[+-]?{_NUM}")
_PERCENT = re.compile(rf"(?P<num>[+-]?{_NUM})\s*%")

_EXAMPLES: dict[Unit, str] = {
    "seconds": "use e.g. 300s, 5m, target, 0.8 * target, target + 60s",
    "count": "use a number, e.g. 5",
    "ratio": "use e.g. 10% or 0.1",
}


class ThresholdError(ValueError):
    """A value that is not a valid threshold for its measure."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """``factor * target + offset``, kept symbolic until a line's target is known.

    ``factor`` is 0 for a plain number; ``text`` is the threshold as written, for messages.
    """

    offset: float
    factor: float = 0.0
    text: str = ""

    @property
    def uses_target(self) -> bool:
        """True when the threshold depends on the line's target wait."""
        return self.factor != 0.0

    def resolve(self, target: float) -> float:
        """The absolute threshold for a line whose target wait is ``target`` seconds."""
        return self.factor * target + self.offset


def _finite(number: float, value: object, unit: Unit) -> float:
    if not math.isfinite(number):
        raise ThresholdError(f"{show(value)} is not a threshold ({_EXAMPLES[unit]})")
    return number


def parsed_by(number: float, value: object, unit: Unit) -> Threshold:
    """A constant threshold, checked against the measure's range."""
    number = _finite(number, value, unit)
    if number < 0:
        raise ThresholdError(f"{show(value)} is negative; a threshold must be 0 or more")
    if unit == "ratio" and number > 1:
        raise ThresholdError(
            f"{show(value)} is not a ratio between 0 and 1 (write 10% or 0.1 for ten per cent)"
        )
    return Threshold(offset=number, text=str(value))


def parse_threshold(value: object, unit: Unit) -> Threshold:
    """Parse a threshold written for a measure measured in ``unit``.

    Raises ``ThresholdError`` when the text is not in the grammar or does not suit the
    measure (``target`` or a duration on a count, a percentage on a time, a ratio above 1).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ThresholdError(f"{show(value)} is not a threshold ({_EXAMPLES[unit]})")
    if isinstance(value, int | float):
        return parsed_by(float(value), value, unit)
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return parsed_by(float(text), value, unit)
    percent = _PERCENT.fullmatch(text)
    if percent:
        if unit != "ratio":
            raise ThresholdError(
                f"{show(value)} cannot be used here: a percentage applies only to "
                "abandon_rate and answered_rate"
            )
        number = float(percent.group("num"))
        if not 0 <= number <= 100:
            raise ThresholdError(f"{show(value)} is not a percentage between 0% and 100%")
        return Threshold(offset=_finite(number / 100, value, unit), text=value)
    if text.startswith("-"):
        raise ThresholdError(f"{show(value)} is negative; a threshold must be 0 or more")
    if "target" in text:
        if unit != "seconds":
            raise ThresholdError(
                f"{show(value)} cannot be used here: target (the line's target wait) "
                "applies only to avg_wait, longest_wait, predicted_wait and forecast_wait"
            )
        return _target(text, value)
    if unit == "seconds":
        try:
            seconds = parse_duration(text).total_seconds()
        except DurationError:
            pass
        else:
            return Threshold(offset=seconds, text=value)
    elif _is_duration(text):
        raise ThresholdError(
            f"{show(value)} cannot be used here: this measure is a {unit}, not a time"
        )
    raise ThresholdError(f"{show(value)} is not a threshold ({_EXAMPLES[unit]})")


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except DurationError:
        return False
    return True


def _target(text: str, value: str) -> Threshold:
    """``[N *] target [* N] [± D]``."""
    match = _TARGET.fullmatch(text)
    if match is None or (match.group("f1") and match.group("f2")):
        raise ThresholdError(f"{show(value)} is not a threshold ({_EXAMPLES['seconds']})")
    factor = _finite(float(match.group("f1") or match.group("f2") or 1), value, "seconds")
    if factor <= 0:
        raise ThresholdError(f"{show(value)}: the multiple of target must be more than 0")
    offset = 0.0
    if match.group("offset") is not None:
        try:
            offset = parse_duration(match.group("offset")).total_seconds()
        except DurationError:
            raise ThresholdError(
                f"{show(value)}: {show(match.group('offset'))} is not a duration "
                "(use e.g. target + 60s)"
            ) from None
        if match.group("sign") == "-":
            offset = -offset
    return Threshold(offset=offset, factor=factor, text=value)
