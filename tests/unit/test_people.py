"""Who is on duty: rotas, overnight shifts, gaps, and resolving a response's page list."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
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


# ---------------------------------------------------------------------- next_change

EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
#: The demo's rota: weekday days split at 14:00, nights and weekend days all Chloe.
DEMO_ROTA = (
    Shift(WEEKDAYS, time(7), time(14), ("asha",)),
    Shift(WEEKDAYS, time(14), time(22), ("ben",)),
    Shift(EVERY_DAY, time(22), time(7), ("chloe",)),
    Shift((5, 6), time(7), time(22), ("chloe",)),
)
DEMO = Group("duty", "duty managers", ("asha", "ben", "chloe"), rota=DEMO_ROTA)


def scanned_change(group: Group, after: datetime) -> datetime | None:
    """``next_change`` the slow way: minute by minute (in UTC) for a week."""
    before = (set(group.on_duty(after)), group.by_rota(after))
    start = after.astimezone(UTC).replace(second=0, microsecond=0)
    for n in range(1, 7 * 1440 + 1):
        t = start + timedelta(minutes=n)
        if (set(group.on_duty(t)), group.by_rota(t)) != before:
            return t
    return None


@pytest.mark.parametrize(
    ("at", "change"),
    [
        (london(0, 9), london(0, 13, 30)),  # Ben joins for the handover
        (london(0, 13, 45), london(0, 14)),  # Asha leaves
        (london(0, 14), london(0, 22)),  # a change at exactly `at` is not the next one
        (london(4, 23), london(5, 7)),  # Friday night into the Saturday gap
        (london(5, 12), london(5, 22)),  # the gap ends when Saturday's night shift starts
    ],
)
def test_next_change_is_when_who_is_on_duty_changes(at: datetime, change: datetime) -> None:
    """The next shift boundary at which the people on duty (or rota versus gap) change."""
    assert DUTY.next_change(at) == change
    assert DUTY.next_change(at) == scanned_change(DUTY, at)


def test_next_change_reads_the_rota_in_the_groups_time_zone() -> None:
    """Asked in UTC in summer, the 13:30 London handover is at 12:30 UTC, given in UTC."""
    found = DUTY.next_change(datetime(2026, 7, 6, 9, tzinfo=UTC))  # a Monday, 10:00 BST
    assert found is not None
    assert found.tzinfo == UTC
    assert found == datetime(2026, 7, 6, 12, 30, tzinfo=UTC)


def test_a_handover_to_the_same_person_is_not_a_change() -> None:
    """Chloe's Friday night runs into her weekend day shift: she is on until Monday 07:00."""
    assert DEMO.next_change(london(4, 22)) == london(7, 7)
    assert DEMO.by_rota(london(5, 12)) is True


def test_no_change_within_the_horizon_is_none() -> None:
    """No rota, or one person covering the whole week: nothing changes."""
    assert Group("g", "g", ("asha", "ben")).next_change(london(0, 9)) is None
    always = Group("g", "g", ("asha",), rota=(Shift(EVERY_DAY, time(8), time(8), ("asha",)),))
    assert always.next_change(london(0, 9)) is None
    assert always.by_rota(london(0, 9)) is True
    weekly = Group("g", "g", ("asha", "ben"), rota=(Shift((2,), time(9), time(10), ("ben",)),))
    assert weekly.next_change(london(2, 9, 30)) == london(2, 10)
    assert weekly.next_change(london(2, 9, 30), within=timedelta(minutes=20)) is None


def test_by_rota_is_false_in_a_gap_and_without_a_rota() -> None:
    """A gap pages ``otherwise`` (or everyone): that is not by the rota."""
    assert DUTY.by_rota(london(0, 9)) is True
    assert DUTY.by_rota(london(5, 12)) is False
    assert Group("g", "g", ("asha",)).by_rota(london(0, 9)) is False


def test_a_night_shift_follows_the_wall_clock_when_the_clocks_go_forward() -> None:
    """On 29 March 2026 Chloe's Saturday night shift ends at 07:00 BST, 06:00 UTC: 8 hours."""
    saturday_night = datetime(2026, 3, 28, 23, tzinfo=UTC)
    friday_night = datetime(2026, 3, 27, 23, tzinfo=UTC)  # Chloe until Monday morning
    assert DEMO.next_change(friday_night) == datetime(2026, 3, 30, 6, tzinfo=UTC)  # 07:00 BST
    assert DUTY.next_change(saturday_night) == datetime(2026, 3, 29, 6, tzinfo=UTC)
    assert DUTY.next_change(saturday_night) == scanned_change(DUTY, saturday_night)


def test_a_night_shift_follows_the_wall_clock_when_the_clocks_go_back() -> None:
    """On 25 October 2026 the Saturday night shift ends at 07:00 GMT: 10 hours after 22:00 BST."""
    saturday_night = datetime(2026, 10, 24, 21, 30, tzinfo=UTC)  # 22:30 BST
    assert DUTY.next_change(saturday_night) == datetime(2026, 10, 25, 7, tzinfo=UTC)
    assert DUTY.next_change(saturday_night) == scanned_change(DUTY, saturday_night)


def test_a_shift_starting_in_the_skipped_hour_starts_at_the_jump() -> None:
    """Clocks go forward at 01:00 GMT: a 01:30 start (never shown on a clock) starts then."""
    rota = (
        Shift(EVERY_DAY, time(1, 30), time(6), ("ben",)),
        Shift(EVERY_DAY, time(6), time(1, 30), ("asha",)),
    )
    group = Group("g", "g", ("asha", "ben"), rota=rota)
    after = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 00:30 GMT, Asha on
    found = group.next_change(after)
    assert found == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 02:00 BST
    assert group.on_duty(found) == ("ben",)
    assert found == scanned_change(group, after)


@pytest.mark.parametrize(
    "after",
    [
        datetime(2026, 10, 24, 23, 50, tzinfo=UTC),  # 00:50 BST, before the repeated hour
        datetime(2026, 10, 25, 0, 40, tzinfo=UTC),  # 01:40 BST, in the first 01:00-02:00
        datetime(2026, 10, 25, 1, 10, tzinfo=UTC),  # 01:10 GMT, in the second
    ],
)
def test_a_boundary_in_the_repeated_hour_agrees_with_on_duty(after: datetime) -> None:
    """Clocks go back at 02:00 BST: a 01:30 boundary is met twice; next_change sees each."""
    rota = (
        Shift(EVERY_DAY, time(1, 30), time(6), ("ben",)),
        Shift(EVERY_DAY, time(6), time(1, 30), ("asha",)),
    )
    group = Group("g", "g", ("asha", "ben"), rota=rota)
    assert group.next_change(after) == scanned_change(group, after)


@pytest.mark.parametrize(
    "week",
    [
        datetime(2026, 1, 5, tzinfo=LONDON),
        datetime(2026, 3, 26, tzinfo=LONDON),  # over the night the clocks go forward
        datetime(2026, 10, 22, tzinfo=LONDON),  # and back
    ],
)
def test_next_change_agrees_with_a_minute_by_minute_scan_all_week(week: datetime) -> None:
    """From every 7h13m of a week (both rotas), the fast answer is the slow one."""
    for group in (DUTY, DEMO):
        for n in range(0, 7 * 24 * 60, 433):
            after = week + timedelta(minutes=n)
            assert group.next_change(after) == scanned_change(group, after), after
