"""Opening-hours grammar: day keys, time ranges and bank holidays."""

from __future__ import annotations

import importlib.metadata
from datetime import date, time

import pytest

from risingtide.config import bank_holiday_table
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


@pytest.mark.parametrize("subdiv", ["ENG", "SCT", "NIR"])
def test_the_kept_bank_holiday_table_is_the_package_answer(subdiv: str) -> None:
    """Every year the table holds has the dates the installed ``holidays`` gives.

    Fails after a ``holidays`` upgrade that changes a date: regenerate the table with
    ``python -m risingtide.config.bank_holiday_table``.
    """
    first, last = bank_holiday_table.FIRST_YEAR, bank_holiday_table.LAST_YEAR
    assert importlib.metadata.version("holidays") == bank_holiday_table.MADE_WITH
    assert bank_holiday_table.table_dates(subdiv, first, last) == (
        bank_holiday_table.package_dates(subdiv, first, last)
    )


def test_the_table_answers_only_inside_its_years_and_for_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside its years, or with another ``holidays`` installed, the package answers."""
    first, last = bank_holiday_table.FIRST_YEAR, bank_holiday_table.LAST_YEAR
    assert bank_holiday_table.table_dates("ENG", first, last + 1) is None
    assert bank_holiday_table.table_dates("ENG", first - 1, last) is None
    inside = bank_holiday_table.table_dates("ENG", 2026, 2026)
    assert inside is not None and date(2026, 12, 25) in inside
    assert all(d.year == 2026 for d in inside)
    monkeypatch.setattr(bank_holiday_table, "MADE_WITH", "0.0")
    bank_holiday_table._made_with_installed.cache_clear()
    try:
        assert bank_holiday_table.table_dates("ENG", 2026, 2026) is None
        assert bank_holidays.__wrapped__("england-and-wales", 2026, 2026) == inside
    finally:
        monkeypatch.undo()
        bank_holiday_table._made_with_installed.cache_clear()
