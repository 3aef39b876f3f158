"""When a weekly report falls due, which week it is, and what an empty week's summary says."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from risingtide.config.model import ReportConfig
from risingtide.weekly import last_due, next_due, summary_text, week_of

LONDON = ZoneInfo("Europe/London")
WEEKLY = ReportConfig(id="weekly", weekday=0, at=time(8), timezone=LONDON, responses=("mail",))


@pytest.mark.parametrize(
    ("now", "due"),
    [
        # Monday 08:00 GMT exactly is due; a second before, last Monday's was the latest.
        (datetime(2026, 1, 5, 8, 0, tzinfo=UTC), datetime(2026, 1, 5, 8, 0, tzinfo=UTC)),
        (datetime(2026, 1, 5, 7, 59, 59, tzinfo=UTC), datetime(2025, 12, 29, 8, 0, tzinfo=UTC)),
        (datetime(2026, 1, 8, 12, 0, tzinfo=UTC), datetime(2026, 1, 5, 8, 0, tzinfo=UTC)),
        # In summer, 08:00 London is 07:00 UTC.
        (datetime(2026, 6, 1, 7, 0, tzinfo=UTC), datetime(2026, 6, 1, 7, 0, tzinfo=UTC)),
        (datetime(2026, 6, 1, 6, 59, tzinfo=UTC), datetime(2026, 5, 25, 7, 0, tzinfo=UTC)),
    ],
)
def test_the_latest_due_time_is_monday_8_uk_time(now: datetime, due: datetime) -> None:
    """last_due gives the most recent Monday 08:00 London at or before now, in GMT or BST."""
    assert last_due(WEEKLY, now) == due


def test_the_clocks_changing_keeps_8_oclock() -> None:
    """The Monday after the clocks go forward is due at 08:00 BST (07:00 UTC), a week less an
    hour after the Monday before."""
    before = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # GMT
    after = next_due(WEEKLY, before)
    assert after == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert after - before == timedelta(days=7, hours=-1)
    assert after.astimezone(LONDON).hour == 8


def test_the_week_is_the_iso_week_of_the_due_day_in_the_reports_zone() -> None:
    """A Monday 00:30 report in Auckland is in that Monday's ISO week, though UTC says Sunday."""
    auckland = ReportConfig("nz", 0, time(0, 30), ZoneInfo("Pacific/Auckland"), ("mail",))
    due = last_due(auckland, datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
    assert due.astimezone(UTC).weekday() == 6
    assert week_of(auckland, due) == "2026-W02"
    assert week_of(WEEKLY, datetime(2026, 1, 5, 8, 0, tzinfo=UTC)) == "2026-W02"


def test_an_empty_week_says_so() -> None:
    """A week with no episode still goes out, saying no line rose."""
    text = summary_text(
        [], title="Rising Tide weekly report",
        start=datetime(2025, 12, 29, 8, tzinfo=UTC), end=datetime(2026, 1, 5, 8, tzinfo=UTC),
    )  # fmt: skip
    assert text == (
        "Rising Tide weekly report: 0 episodes from Mon 29 Dec 2025 08:00 to Mon 5 Jan 2026 "
        "08:00\n\nNo line rose above calm."
    )
