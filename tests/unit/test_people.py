"""Who is on duty: rotas, overnight shifts, gaps, and resolving a response's page list."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from risingtide.domain.people import Directory, Group, Person, Shift, uncovered

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = (0, 1, 2, 3, 4)
ASHA = Person("asha", "Asha Patel", mobile="+447700900123")
BEN = Person("ben", "Ben Okafor", email="ben@council.example")
CHLOE = Person("chloe", "Chloe Evans", slack="U024BE7LH")
ROTA = (
    Shift(WEEKDAYS, time(7), time(14), ("asha",)),
    Shift(WEEKDAYS, time(13, 30), time(22), ("ben",)),  # half an hour's handover
    Shift((0, 1, 2, 3, 4, 5, 6), time(22), time(7), ("chloe",)),  # overnight
)
DUTY = Group("duty", "duty managers", ("asha", "ben", "chloe"), rota=ROTA)


def london(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in London in the week of Monday 2026-01-05 (``day`` 0 is Monday)."""
    return datetime(2026, 1, 5 + day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("at", "on_duty"),
    [
        (london(0, 9), ("asha",)),
        (london(0, 13, 45), ("asha", "ben")),  # both during the handover
        (london(0, 14), ("ben",)),
        (london(0, 21, 59), ("ben",)),
        (london(0, 22), ("chloe",)),
        (london(1, 6, 59), ("chloe",)),  # Monday's night shift, on Tuesday morning
        (london(6, 3), ("chloe",)),  # Saturday night into Sunday
        (london(0, 0, 30), ("chloe",)),  # Sunday night's shift wraps round the week
    ],
)
def test_rota_pages_whoever_is_on_duty(at: datetime, on_duty: tuple[str, ...]) -> None:
    """Shifts by weekday and time, overnight shifts into the next day, overlaps."""
    assert DUTY.on_duty(at) == on_duty


def test_rota_reads_the_clock_in_its_own_time_zone() -> None:
    """In summer 08:30 in London is 07:30 UTC: the morning shift, not the night."""
    summer = datetime(2026, 7, 6, 7, 30, tzinfo=UTC)  # a Monday
    assert DUTY.on_duty(summer) == ("asha",)


def test_a_gap_pages_otherwise_or_everyone() -> None:
    """Saturday daytime has no shift: every member, or ``otherwise`` when given."""
    saturday_noon = london(5, 12)
    assert DUTY.on_duty(saturday_noon) == ("asha", "ben", "chloe")
    fallback = Group("duty", "duty", DUTY.members, rota=ROTA, otherwise=("ben",))
    assert fallback.on_duty(saturday_noon) == ("ben",)


def test_a_group_without_a_rota_is_everyone() -> None:
    """No rota: every member, always."""
    group = Group("g", "g", ("asha", "ben"))
    assert group.on_duty(london(3, 3)) == ("asha", "ben")


def test_uncovered_finds_the_weekend_days() -> None:
    """The rota above leaves Saturday and Sunday 07:00-22:00 uncovered."""
    assert uncovered(ROTA) == [
        (5 * 1440 + 7 * 60, 5 * 1440 + 22 * 60),
        (6 * 1440 + 7 * 60, 6 * 1440 + 22 * 60),
    ]
    assert uncovered([Shift((0, 1, 2, 3, 4, 5, 6), time(8), time(8), ("a",))]) == []
    assert uncovered([]) == [(0, 7 * 1440)]


def test_directory_resolves_groups_and_people_once_each() -> None:
    """Groups by rota and people by id, in order, each person once; unknown names skipped."""
    directory = Directory(people={"asha": ASHA, "ben": BEN, "chloe": CHLOE}, groups={"duty": DUTY})
    at = london(0, 9)
    assert directory.resolve(["duty", "ben", "asha", "nobody"], at) == (ASHA, BEN)
    assert directory.resolve([], at) == ()


def test_person_address_by_kind() -> None:
    """A channel asks a person for the address it needs."""
    assert ASHA.address("mobile") == "+447700900123"
    assert ASHA.address("email") is None
    assert ASHA.address("name") is None  # not an address
