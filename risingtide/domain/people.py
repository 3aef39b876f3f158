"""People, groups and weekly rotas: who a notification reaches at a given moment.

A response pages groups (``duty_managers``) or people by id; a group with a rota pages only
the people on duty at the moment the order was made, so a tier at 14:10 on a Tuesday texts
the afternoon duty manager, not all five. Pure: no I/O, no clock of its own.

A shift names the weekdays it *starts* on and a start and end time in the group's timezone;
an end at or before the start runs past midnight into the next day (``22:00-06:00`` on
``fri`` covers Friday night into Saturday morning). Shifts may overlap (a handover
half-hour pages both). When no shift covers the moment, the group's ``otherwise`` list is
paged, which is every member unless the config says else: a gap in a rota should wake too
many people rather than nobody.

Shift times are wall-clock times in the group's timezone, so a shift starts at 08:00 in
summer and in winter alike; on the night the clocks change a shift is as long as the wall
clock says (``Group.next_change`` finds the very moment the people on duty change, even
when a shift boundary falls in the hour that is skipped or repeated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["CHANGE_HORIZON", "Directory", "Group", "Person", "Shift", "uncovered"]

_LONDON = ZoneInfo("Europe/London")
_DAY_MINUTES = 24 * 60
_WEEK_MINUTES = 7 * _DAY_MINUTES
#: How far ahead ``Group.next_change`` looks: a weekly rota repeats after this.
CHANGE_HORIZON = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a notification can reach; addresses are checked when the config is loaded.

    ``mobile`` is in international form (``+447…``); ``teams`` is the person's Teams user
    principal name (for an @mention), ``slack`` their Slack member id (``U…``).
    """

    id: str
    name: str
    email: str | None = None
    mobile: str | None = None
    teams: str | None = None
    slack: str | None = None

    def address(self, kind: str) -> str | None:
        """The person's address of ``kind`` (``email``, ``mobile``, ``teams``, ``slack``)."""
        value = getattr(self, kind, None) if kind in _ADDRESS_KINDS else None
        return value if isinstance(value, str) else None


_ADDRESS_KINDS = frozenset({"email", "mobile", "teams", "slack"})


def _minute(t: time) -> int:
    return t.hour * 60 + t.minute


@dataclass(frozen=True, slots=True)
class Shift:
    """One line of a rota: ``on_duty`` from ``start`` to ``end`` on each of ``days``.

    ``days`` are weekdays (Monday is 0) the shift starts on; ``end <= start`` runs past
    midnight.
    """

    days: tuple[int, ...]
    start: time
    end: time
    on_duty: tuple[str, ...]

    def spans(self) -> list[tuple[int, int]]:
        """The minutes of the week (Monday 00:00 is 0) the shift covers, as [start, end)."""
        length = (_minute(self.end) - _minute(self.start)) % _DAY_MINUTES or _DAY_MINUTES
        out: list[tuple[int, int]] = []
        for day in self.days:
            begin = day * _DAY_MINUTES + _minute(self.start)
            finish = begin + length
            if finish <= _WEEK_MINUTES:
                out.append((begin, finish))
            else:  # Sunday night into Monday morning wraps round the week
                out.extend([(begin, _WEEK_MINUTES), (0, finish - _WEEK_MINUTES)])
        return out

    def covers(self, local: datetime) -> bool:
        """True when the shift covers ``local`` (a time in the group's timezone)."""
        at = local.weekday() * _DAY_MINUTES + local.hour * 60 + local.minute
        at_seconds = at * 60 + local.second + local.microsecond / 1e6
        return any(b * 60 <= at_seconds < e * 60 for b, e in self.spans())


@dataclass(frozen=True, slots=True)
class Group:
    """People paged together, optionally by a weekly rota.

    Without a rota every member is on duty. With one, those whose shifts cover the moment
    are, or ``otherwise`` when no shift does.
    """

    id: str
    name: str
    members: tuple[str, ...]
    rota: tuple[Shift, ...] = ()
    otherwise: tuple[str, ...] | None = None  # None: every member
    tz: ZoneInfo = _LONDON

    def on_duty(self, at: datetime) -> tuple[str, ...]:
        """The ids of the people on duty at ``at`` (an aware datetime), in rota order."""
        if not self.rota:
            return self.members
        local = at.astimezone(self.tz)
        found: list[str] = []
        for shift in self.rota:
            if shift.covers(local):
                found.extend(p for p in shift.on_duty if p not in found)
        if found:
            return tuple(found)
        return self.members if self.otherwise is None else self.otherwise

    def by_rota(self, at: datetime) -> bool:
        """True when a shift covers ``at``; False in a gap (``otherwise`` paged) or with no rota."""
        local = at.astimezone(self.tz)
        return any(shift.covers(local) for shift in self.rota)

    def next_change(self, after: datetime, within: timedelta = CHANGE_HORIZON) -> datetime | None:
        """The first moment after ``after`` when who is on duty changes, in UTC.

        A change is a different set of people on duty, or a move between a shift and a gap
        (``by_rota``). A boundary where one shift hands over to another for the same person
        is not a change. None when nothing changes within ``within`` (or there is no rota).
        ``after`` must be aware. (UTC rather than the group's zone: an aware time in the
        hour the clocks go back over never compares equal to one in another zone.)
        """
        if not self.rota:
            return None
        horizon = after + within
        now = self._duty(after)
        for moment in sorted(self._boundaries(after, horizon)):
            if after < moment <= horizon and self._duty(moment) != now:
                return moment
        return None

    def _duty(self, at: datetime) -> tuple[frozenset[str], bool]:
        return frozenset(self.on_duty(at)), self.by_rota(at)

    def _boundaries(self, after: datetime, horizon: datetime) -> set[datetime]:
        """Every moment in [after, horizon] at which who is on duty could change (in UTC).

        That is each shift's start and end as a wall-clock time on each day (both readings
        of a time the clocks go back over), and each change of UTC offset: when the clocks go
        forward over a shift's start, the shift begins at the jump.
        """
        first = after.astimezone(self.tz).date() - timedelta(days=1)
        days = (horizon.astimezone(self.tz).date() - first).days + 1
        found: set[datetime] = set()
        for n in range(days + 1):
            day = first + timedelta(days=n)
            for shift in self.rota:
                if day.weekday() not in shift.days:
                    continue
                ends_next_day = _minute(shift.end) <= _minute(shift.start)
                end_day = day + timedelta(days=1) if ends_next_day else day
                for on, wall in ((day, shift.start), (end_day, shift.end)):
                    found.update(_instants(on, wall, self.tz))
        found.update(_offset_changes(self.tz, after, horizon))
        return found


def _instants(day: date, wall: time, tz: ZoneInfo) -> set[datetime]:
    """The moments (in UTC) the wall clock in ``tz`` reads ``wall`` on ``day``.

    Both readings are kept: two for a time the clocks go back over, and for a time they
    skip, the instants either side of the jump (harmless extra candidates).
    """
    naive = datetime.combine(day, wall)
    return {naive.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)}


def _offset_changes(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The moments in [start, end] when ``tz`` changes its UTC offset, to the second.

    Looks hour by hour (no zone changes offset twice in an hour), then bisects.
    """
    out: list[datetime] = []
    step = timedelta(hours=1)
    t = start.astimezone(UTC)
    stop = end.astimezone(UTC)
    offset = t.astimezone(tz).utcoffset()
    while t < stop:
        nxt = min(t + step, stop)
        later = nxt.astimezone(tz).utcoffset()
        if later != offset:
            lo, hi = int(t.timestamp()), int(nxt.timestamp()) + 1
            while hi - lo > 1:  # offset(lo) is the old one, offset(hi) the new
                mid = (lo + hi) // 2
                if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            out.append(datetime.fromtimestamp(hi, UTC))
        t, offset = nxt, later
    return out


def uncovered(rota: Iterable[Shift]) -> list[tuple[int, int]]:
    """The minutes of the week no shift covers, as merged [start, end) spans."""
    spans = sorted(s for shift in rota for s in shift.spans())
    gaps: list[tuple[int, int]] = []
    reached = 0
    for begin, end in spans:
        if begin > reached:
            gaps.append((reached, begin))
        reached = max(reached, end)
    if reached < _WEEK_MINUTES:
        gaps.append((reached, _WEEK_MINUTES))
    return gaps


@dataclass(frozen=True, slots=True)
class Directory:
    """Everyone in the config (``people:``) and their groups (``groups:``)."""

    people: Mapping[str, Person] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)

    def resolve(self, names: Iterable[str], at: datetime) -> tuple[Person, ...]:
        """The people that ``names`` (group or person ids) page at ``at``, each once.

        A name that is neither is skipped: the loader has already refused it, and a
        message must still reach everyone else.
        """
        found: dict[str, Person] = {}
        for name in names:
            group = self.groups.get(name)
            ids = group.on_duty(at) if group is not None else (name,)
            for pid in ids:
                person = self.people.get(pid)
                if person is not None and pid not in found:
                    found[pid] = person
        return tuple(found.values())
