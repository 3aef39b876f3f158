"""``Calendar.next_change``: the opening and closing instants the engine treats as deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from risingtide.domain.model import ALWAYS_OPEN, Calendar

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = ((time(8), time(18)),)


def office(*closed: date) -> Calendar:
    """Mon–Fri 08:00–18:00 London time, closed on ``closed``."""
    return Calendar(name="office", tz=LONDON, hours=(WEEKDAYS,) * 5 + ((), ()),
                    closed=frozenset(closed))  # fmt: skip


def test_an_open_line_next_changes_at_closing_time():
    """Monday 17:43 GMT: the next change is 18:00 the same day."""
    now = datetime(2026, 11, 30, 17, 43, tzinfo=UTC)
    assert office().next_change(now) == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


def test_friday_evening_next_changes_on_monday_morning():
    """Friday 18:00 to Monday 08:00: the weekend is skipped."""
    now = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    assert office().next_change(now) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_a_closed_date_and_a_clock_change_move_the_doors():
    """Closed Monday 30 March 2026 (a closure) and BST from 29 March: Tuesday 08:00 BST."""
    now = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)  # Friday, GMT
    cal = office(date(2026, 3, 30))
    assert cal.next_change(now) == datetime(2026, 3, 31, 7, 0, tzinfo=UTC)


def test_the_answer_is_the_same_when_asked_again_later_in_the_same_spell():
    """The memo answers a later question within the spell, and a question after it anew."""
    cal = office()
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert cal.next_change(monday) == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    assert cal.next_change(monday.replace(hour=17)) == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    assert cal.next_change(monday.replace(hour=18)) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert cal.next_change(monday.replace(hour=7)) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_an_always_open_calendar_never_changes():
    """``always`` has no deadline."""
    assert ALWAYS_OPEN.next_change(datetime(2026, 1, 1, tzinfo=UTC)) is None
