"""The duration grammar: 90s, 5m, 1h30m, 500ms, bare seconds; never negative."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risingtide.config.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2m30s", timedelta(minutes=2, seconds=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1d", timedelta(days=1)),
        ("1.5h", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        (" 90 ", timedelta(seconds=90)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        (90, timedelta(seconds=90)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parses_the_documented_forms(text: object, expected: timedelta) -> None:
    """Each documented way of writing a duration gives the right timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", '"5 minutes" is not a duration (use e.g. 90s, 5m, 1h30m)'),
        ("5m30", '"5m30" is not a duration (use e.g. 90s, 5m, 1h30m)'),
        ("30s5m", '"30s5m" is not a duration (use e.g. 90s, 5m, 1h30m)'),
        ("5m5m", '"5m5m" is not a duration (use e.g. 90s, 5m, 1h30m)'),
        ("", '"" is not a duration (use e.g. 90s, 5m, 1h30m)'),
        ("-5m", '"-5m" is negative; a duration must be 0 or more'),
        (-3, "-3 is negative; a duration must be 0 or more"),
        (True, "true is not a duration (use e.g. 90s, 5m, 1h30m)"),
        (None, "nothing is not a duration (use e.g. 90s, 5m, 1h30m)"),
        (float("nan"), "nan is not a duration (use e.g. 90s, 5m, 1h30m)"),
        ("99999999999d", '"99999999999d" is too long for a duration'),
    ],
)
def test_rejects_everything_else_with_a_plain_message(value: object, message: str) -> None:
    """Text that is not a duration, negative or absurd values fail with a readable message."""
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=2, milliseconds=500), "2.5s"),
        (timedelta(days=1, seconds=1), "1d1s"),
    ],
)
def test_formats_compactly(value: timedelta, text: str) -> None:
    """format_duration writes the shortest natural form."""
    assert format_duration(value) == text


durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650))


@given(durations)
def test_any_formatted_duration_parses_back_to_itself(value: timedelta) -> None:
    """format_duration then parse_duration is the identity, down to the microsecond."""
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_one_part_durations_scale_by_their_unit(count: int, unit: str) -> None:
    """N followed by a unit is N times that unit."""
    scale = {
        "ms": timedelta(milliseconds=1),
        "s": timedelta(seconds=1),
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
    }[unit]
    assert parse_duration(f"{count}{unit}") == count * scale


@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()))
def test_junk_never_raises_anything_but_duration_error(value: object) -> None:
    """Whatever it is given, parse_duration returns a timedelta or raises DurationError."""
    try:
        result = parse_duration(value)
    except DurationError:
        return
    assert result >= timedelta(0)
