"""Opening-hours grammar: day keys, time ranges and bank holidays."""

from __future__ import annotations

from datetime import date, time

import pytest

from risingtide.config.calendars import (
    CalendarError,
    bank_holidays,
    parse_day_hours,
    parse_days,
    week,
)


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mon", (0,)),
        ("Sun", (6,)),
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("sat-sun", (5, 6)),
        ("weekdays", (0, 1, 2, 3, 4)),
        ("weekend", (5, 6)),
        ("daily", (0, 1, 2, 3, 4, 5, 6)),
    ],
)
def test_day_keys(key: str, days: tuple[int, ...]) -> None:
    """Single days, ranges and named groups map to weekday numbers (Monday is 0)."""
    assert parse_days(key) == days


@pytest.mark.parametrize("key", ["fri-mon", "holiday", "monday", "mon-", ""])
def test_bad_day_keys(key: str) -> None:
    """Unknown day names and backwards ranges are errors."""
    with pytest.raises(CalendarError):
        parse_days(key)


def test_hours_values() -> None:
    """One range, several ranges (comma or list, sorted), closed, and 24:00 as end of day."""
    assert parse_day_hours("08:30-17:00") == ((time(8, 30), time(17)),)
    split = ((time(8), time(12)), (time(13), time(17)))
    assert parse_day_hours("13:00-17:00, 08:00-12:00") == split
    assert parse_day_hours(["08:00-12:00", "13:00-17:00"]) == split
    assert parse_day_hours("closed") == ()
    assert parse_day_hours("9:00 – 17:00") == ((time(9), time(17)),)
    assert parse_day_hours("00:00-24:00") == ((time(0), time.max),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("17:00-08:30", '"17:00-08:30" must start before it ends'),
        ("08:00-08:00", '"08:00-08:00" must start before it ends'),
        ("9am-5pm", '"9am-5pm" is not a time range'),
        ("25:00-26:00", '"25:00-26:00" is not a time range'),
        ("24:00-24:00", '"24:00-24:00" is not a time range'),
        ("08:00-12:00, 11:59-13:00", "08:00-12:00 and 11:59-13:00 overlap"),
        (17, "17 is not opening hours"),
        (None, "nothing is not opening hours"),
    ],
)
def test_bad_hours_values(value: object, message: str) -> None:
    """Backwards, overlapping and malformed ranges are errors that quote the range."""
    with pytest.raises(CalendarError) as caught:
        parse_day_hours(value)
    assert str(caught.value).startswith(message)


def test_later_keys_override_earlier_ones_and_unlisted_days_close() -> None:
    """week() applies assignments in order; days never assigned are closed."""
    nine_five = ((time(9), time(17)),)
    morning = ((time(9), time(12)),)
    days = week([((0, 1, 2, 3, 4), nine_five), ((2,), morning)])
    assert days == (nine_five, nine_five, morning, nine_five, nine_five, (), ())


def test_bank_holidays_by_region() -> None:
    """Each UK region has its own bank holidays; `none` has none."""
    england = bank_holidays("england-and-wales", 2026, 2026)
    scotland = bank_holidays("scotland", 2026, 2026)
    northern_ireland = bank_holidays("northern-ireland", 2026, 2026)
    assert {date(2026, 12, 25), date(2026, 8, 31), date(2026, 4, 6)} <= england
    assert date(2026, 1, 2) in scotland
    assert date(2026, 4, 6) not in scotland  # no Easter Monday in Scotland
    assert date(2026, 3, 17) in northern_ireland  # St Patrick's Day
    assert bank_holidays("none", 2026, 2026) == frozenset()
