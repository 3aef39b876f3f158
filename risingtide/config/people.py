"""``people:`` and ``groups:``: who notifications reach, and the weekly rota of each group.

::

    people:
      asha:
        name: Asha Patel
        email: asha.patel@council.example
        mobile: "07700 900123"          # a UK mobile; sent as +447700900123
        teams: asha.patel@council.example   # Teams sign-in name, for an @mention
        slack: U024BE7LH                # Slack member id, for an @mention
    groups:
      duty_managers:
        members: [asha, ben, chloe]
        rota:
          - { days: mon-fri, hours: "08:00-13:00", on_duty: asha }
          - { days: mon-fri, hours: "13:00-20:00", on_duty: [ben] }
          - { days: weekend, hours: "08:00-08:00", on_duty: chloe }   # 24 hours
        otherwise: [asha]               # when no shift covers the moment (default: members)

Every address is checked here, so ``check`` finds a mistyped mobile before a surge does.
``hours`` is one ``HH:MM-HH:MM`` range; an end at or before the start runs past midnight
(a night shift belongs to the day it starts). The rota's times are in the group's
``timezone`` (default Europe/London). ``check`` warns about the hours of the week no shift
covers, since then ``otherwise`` is paged.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from risingtide.addresses import (
    check_email_address,
    check_slack_member,
    check_teams_user,
    normalise_uk_mobile,
)
from risingtide.config.calendars import CalendarError, parse_days
from risingtide.config.errors import show
from risingtide.config.schema import Block, Text, TimeZone, config_error, parsed_by
from risingtide.domain.model import WEEKDAYS
from risingtide.domain.people import Shift

__all__ = ["GroupBlock", "PersonBlock", "ShiftBlock", "describe_gap", "parse_shift_hours"]


def _names(value: Any) -> tuple[str, ...]:
    """One id or a list of ids, as a tuple (``on_duty: asha`` or ``on_duty: [asha, ben]``)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"{show(value)} is not a person id or a list of them")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{show(item)} is not a person id")
        if item.strip() in out:
            raise ValueError(f'"{item.strip()}" is listed twice')
        out.append(item.strip())
    return tuple(out)


_HOURS = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*[-–]\s*([0-9]{1,2}):([0-9]{2})")


def parse_shift_hours(value: Any) -> tuple[time, time]:
    """``"08:00-13:00"`` as (start, end); the end may be at or before the start (overnight)."""
    hint = '(write e.g. "08:00-13:00"; "22:00-06:00" runs overnight, "08:00-08:00" is 24 hours)'
    match = _HOURS.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{show(value)} is not a shift {hint}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h2 == 24 and m2 == 0:
        h2 = 0  # "24:00" is midnight at the end of the day
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{show(value)} is not a shift {hint}")
    return time(h1, m1), time(h2, m2)


def _days(value: Any) -> tuple[int, ...]:
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a day (use e.g. mon, mon-fri, weekend)")
    try:
        return parse_days(value)
    except CalendarError as exc:
        raise ValueError(str(exc)) from None


PersonIds = Annotated[tuple[str, ...], parsed_by(_names)]
ShiftHours = Annotated[tuple[time, time], parsed_by(parse_shift_hours)]
Days = Annotated[tuple[int, ...], parsed_by(_days)]


class PersonBlock(Block):
    """One person under ``people:``: a name and at least one way to reach them."""

    name: Text
    email: str | None = None
    mobile: str | None = None
    teams: str | None = None
    slack: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _checked(check_email_address, value)

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, value: str | None) -> str | None:
        return None if value is None else _checked(normalise_uk_mobile, value)

    @field_validator("teams")
    @classmethod
    def _teams(cls, value: str | None) -> str | None:
        return None if value is None else _checked(check_teams_user, value)

    @field_validator("slack")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        return None if value is None else _checked(check_slack_member, value)

    @model_validator(mode="after")
    def _reachable(self) -> PersonBlock:
        if not any((self.email, self.mobile, self.teams, self.slack)):
            raise config_error("needs at least one of email, mobile, teams or slack")
        return self


def _checked(check: Any, value: str) -> str:
    try:
        result: str = check(value)
    except ValueError as exc:
        raise config_error(str(exc)) from None
    return result


class ShiftBlock(Block):
    """One shift of a rota: who is on duty, on which days, between which times."""

    days: Days
    hours: ShiftHours
    on_duty: PersonIds

    def shift(self) -> Shift:
        """The domain value."""
        return Shift(days=self.days, start=self.hours[0], end=self.hours[1], on_duty=self.on_duty)


class GroupBlock(Block):
    """One group under ``groups:``; ``members`` defaults to everyone its rota names."""

    name: Text | None = None
    members: PersonIds | None = None
    rota: list[ShiftBlock] = Field(default_factory=list)
    otherwise: PersonIds | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _has_people(self) -> GroupBlock:
        if self.members is None and not self.rota:
            raise config_error("needs members, or a rota naming who is on duty")
        return self

    def member_ids(self) -> tuple[str, ...]:
        """``members``, or everyone the rota and ``otherwise`` name, in order of mention."""
        if self.members is not None:
            return self.members
        found: list[str] = []
        for shift in self.rota:
            found.extend(p for p in shift.on_duty if p not in found)
        found.extend(p for p in self.otherwise or () if p not in found)
        return tuple(found)


def describe_gap(start: int, end: int) -> str:
    """A span of minutes of the week as ``Sat 00:00 to Mon 08:00``."""

    def at(minute: int) -> str:
        day, rest = divmod(minute % (7 * 24 * 60), 24 * 60)
        return f"{WEEKDAYS[day].capitalize()} {rest // 60:02d}:{rest % 60:02d}"

    return f"{at(start)} to {at(end)}"
