"""A living call line: a pure discrete-event model of one contact-centre queue.

This is the engine behind the ``simulator`` source (``risingtide.sources.simulator``), the
daemon's built-in default. It has no asyncio, no wall clock and no third-party imports:
time is *simulated seconds* since the model's ``t = 0``, and the model moves only when told
to, with ``LineSim.advance_to(t)``. Reading ``LineSim.stats()`` gives the figures a real
platform would report at that moment.

What one line models (M/M/N+G with a time-varying arrival rate):

* **Arrivals** are Poisson with rate ``arrivals_per_hour × profile(hour of day) ×
  demand-event multipliers``. The rate is piecewise constant (per hour, per event), and
  arrival times are drawn by inverting the cumulative rate, which is exact.
* **Handle times** are exponential with mean ``handle_time`` (exponential so that the model
  can be checked against Erlang C; see ``docs/decisions.md``).
* **Agents** are ``agents`` identical servers taking callers first come, first served.
* **Patience**: a share ``ivr_share`` of callers give up around the IVR message, uniformly
  between 60 and 120 s of waiting; the rest have an exponential patience with mean
  ``patience``. The default share, 0.15, makes about 44 % of *abandonments* fall at the IVR
  message at everyday loads — the council's measured figure (a share of 0.44 of *callers*
  would put some 70–85 % of abandonments there). ``patience=None`` disables abandonment.
* **Responses** the daemon can switch on (``set_deflection``, ``set_callback``,
  ``set_surge``):

  - *IVR deflection*: each new caller is turned away to the website with probability
    ``deflection_share``. Deflected callers are not offered to the queue.
  - *Call-back*: each caller waiting when it is switched on, and each new caller who would
    have to wait while it is on, accepts a call-back with probability ``callback_share``.
    They leave the queue (offered, never answered, never abandoned) and join a call-back
    backlog, which agents work through only when nobody is waiting on the line.
  - *Surge staff*: ``surge_agents`` join ``surge_delay`` seconds after the switch; when it
    is switched off, idle ones leave at once and busy ones after their current call.

Randomness: each line has its own random streams, seeded from the source seed and the line
id through SHA-256 (``line_seed``), so a run is the same on every machine and Python
version, and one line's traffic does not depend on which other lines exist. Every caller
draws all of their attributes up front, whatever the switches, so two runs with the same
seed see the same callers and differ only in what the switches did to them.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

HOUR: Final = 3600.0
DAY: Final = 86400.0

#: Built-in time-of-day profiles: 24 arrival-rate multipliers, one per local hour (0–23).
#: ``council_weekday`` is a typical council contact-centre day: near-silent overnight, a
#: climb from 08:00, the morning peak at 09:00–11:00 (highest on a Monday morning, which this
#: shape is drawn for), a dip over lunch, a second after-lunch peak, and a tail after 17:00.
PROFILES: Final[Mapping[str, tuple[float, ...]]] = {
    "flat": (1.0,) * 24,
    "council_weekday": (
        0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05,  # 00–06
        0.30,  # 07
        0.90,  # 08
        1.35,  # 09 morning peak
        1.25,  # 10
        1.05,  # 11
        0.85,  # 12 lunch dip
        1.15,  # 13 after-lunch peak
        1.10,  # 14
        0.95,  # 15
        0.80,  # 16
        0.50,  # 17
        0.25,  # 18
        0.15,  # 19
        0.05, 0.05, 0.05, 0.05,  # 20–23
    ),
}


def profile_from_hours(hours: Mapping[int, float]) -> tuple[float, ...]:
    """Turn an ``hour -> multiplier`` mapping into 24 multipliers.

    An hour not listed takes the multiplier of the nearest listed hour before it, wrapping
    round midnight, so ``{8: 1.0, 18: 0.1}`` means 1.0 from 08:00 to 18:00 and 0.1 otherwise.
    """
    if not hours:
        raise ValueError("a profile needs at least one hour")
    for hour, mult in hours.items():
        if not 0 <= hour <= 23:
            raise ValueError(f"profile hour {hour} is not between 0 and 23")
        if mult < 0 or not math.isfinite(mult):
            raise ValueError(f"profile multiplier {mult} for hour {hour} must be ≥ 0")
    if not any(m > 0 for m in hours.values()):
        raise ValueError("a profile needs at least one hour with a multiplier above 0")
    last = hours[max(hours)]  # what carries over midnight into the first listed hour
    out: list[float] = []
    for hour in range(24):
        last = hours.get(hour, last)
        out.append(last)
    return tuple(out)


def line_seed(seed: int, line: str) -> int:
    """A 64-bit seed for one line, stable across processes (never ``hash()``, which is salted)."""
    digest = hashlib.sha256(f"risingtide-sim/{seed}/{line}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, slots=True)
class DemandEvent:
    """Demand multiplied by ``multiply`` from ``at`` for ``duration`` simulated seconds."""

    name: str
    at: float
    duration: float
    multiply: float

    def __post_init__(self) -> None:
        """Reject negative times and multipliers."""
        if self.at < 0 or self.duration < 0:
            raise ValueError(f"demand event {self.name!r}: times must not be negative")
        if self.multiply < 0 or not math.isfinite(self.multiply):
            raise ValueError(f"demand event {self.name!r}: multiply must be ≥ 0")

    @property
    def end(self) -> float:
        """When the event stops (simulated seconds)."""
        return self.at + self.duration


@dataclass(frozen=True, slots=True)
class LineParams:
    """Everything that shapes one line's traffic. Times are in (simulated) seconds.

    ``day_offset`` is the local time of day, in seconds after midnight, at the model's
    ``t = 0``; the profile is read at ``(day_offset + t) mod 24 h``. ``window`` is the
    trailing window over which ``stats()`` counts and averages.
    """

    agents: int
    arrivals_per_hour: float
    handle_time: float = 300.0
    patience: float | None = 240.0
    ivr_share: float = 0.15
    ivr_window: tuple[float, float] = (60.0, 120.0)
    deflection_share: float = 0.25
    callback_share: float = 0.5
    surge_agents: int = 0
    surge_delay: float = 180.0
    profile: tuple[float, ...] = PROFILES["flat"]
    events: tuple[DemandEvent, ...] = ()
    window: float = 900.0
    day_offset: float = 9 * HOUR

    def __post_init__(self) -> None:
        """Check ranges, so a bad value fails here rather than deep in a run."""
        if self.agents < 0 or self.surge_agents < 0:
            raise ValueError("agents and surge_agents must not be negative")
        if not self.arrivals_per_hour > 0 or not math.isfinite(self.arrivals_per_hour):
            raise ValueError("arrivals_per_hour must be above 0")
        if not self.handle_time > 0:
            raise ValueError("handle_time must be above 0")
        if self.patience is not None and not self.patience > 0:
            raise ValueError("patience must be above 0 (or None for no abandonment)")
        for name in ("ivr_share", "deflection_share", "callback_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        low, high = self.ivr_window
        if not 0 <= low <= high:
            raise ValueError("ivr_window must be (low, high) with 0 ≤ low ≤ high")
        if self.surge_delay < 0 or not self.window > 0:
            raise ValueError("surge_delay must be ≥ 0 and window above 0")
        if len(self.profile) != 24 or not any(m > 0 for m in self.profile):
            raise ValueError("profile needs 24 multipliers, at least one above 0")
        if any(m < 0 for m in self.profile):
            raise ValueError("profile multipliers must be ≥ 0")


@dataclass(frozen=True, slots=True)
class SimStats:
    """What the line's platform would report at ``t`` (seconds and counts).

    ``avg_wait`` is the mean wait of calls *answered* in the trailing window, the way
    Connect and Twilio report it. When none was answered it is 0.0 if nobody waited either
    (a quiet line), but None ("unknown") if callers are waiting or abandoned: a platform
    showing 0 there would make a stuck queue look calm. ``avg_handle_time`` is None when no
    call was completed in the window.
    """

    t: float
    calls_waiting: int
    longest_wait: float
    avg_wait: float | None
    agents_available: int
    agents_staffed: int
    offered: int
    answered: int
    abandoned: int
    window: float
    avg_handle_time: float | None
    deflected: int
    callback_backlog: int


@dataclass(slots=True)
class Totals:
    """Counts since ``t = 0`` (for long-run checks; the platform view is ``SimStats``)."""

    arrivals: int = 0
    deflected: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    callbacks_requested: int = 0
    callbacks_made: int = 0
    completed: int = 0
    wait_answered: float = 0.0
    handle_completed: float = 0.0


Outcome = Literal["answered", "abandoned", "deflected", "callback"]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """How one caller's call ended (kept only when the model is built with ``record=True``).

    ``wait`` is the time from arrival to answer, abandonment or accepting a call-back.
    """

    arrived: float
    outcome: Outcome
    wait: float


# Caller states.
_WAITING: Final = 0
_SERVED: Final = 1
_ABANDONED: Final = 2
_CALLBACK: Final = 3  # in the call-back backlog
_CALLED_BACK: Final = 4  # an agent is (or was) on the call-back

# Event kinds, in heap entries ``(time, seq, kind, caller)``; ``seq`` breaks ties in the
# order events were scheduled, which keeps runs deterministic.
_ARRIVE: Final = 0
_ABANDON: Final = 1
_DONE: Final = 2
_SURGE_JOIN: Final = 3


class _Caller:
    """One caller and everything random about them, drawn on arrival."""

    __slots__ = ("arrived", "callback_u", "deflect_u", "handle", "patience", "state")

    def __init__(
        self, arrived: float, deflect_u: float, callback_u: float, patience: float | None,
        handle: float,
    ) -> None:
        self.arrived = arrived
        self.deflect_u = deflect_u
        self.callback_u = callback_u
        self.patience = patience
        self.handle = handle
        self.state = _WAITING


class _Window:
    """Trailing-window records, each dropped once it is older than the window.

    Old records are dropped as new ones are added (and on reading), so a long run without
    reads keeps only one window's worth.
    """

    __slots__ = ("abandoned", "answered", "completed", "deflected", "length", "offered")

    def __init__(self, length: float) -> None:
        self.length = length
        self.offered: deque[float] = deque()
        self.abandoned: deque[float] = deque()
        self.deflected: deque[float] = deque()
        self.answered: deque[tuple[float, float]] = deque()  # (answered at, wait)
        self.completed: deque[tuple[float, float]] = deque()  # (completed at, handle time)

    @staticmethod
    def add(times: deque[float], now: float, since: float) -> None:
        """Record an instant and drop those at or before ``since``."""
        times.append(now)
        while times[0] <= since:
            times.popleft()

    @staticmethod
    def add_pair(pairs: deque[tuple[float, float]], now: float, value: float,
                 since: float) -> None:
        """Record an instant with its value and drop those at or before ``since``."""
        pairs.append((now, value))
        while pairs[0][0] <= since:
            pairs.popleft()

    def prune(self, since: float) -> None:
        """Drop every record at or before ``since``."""
        for times in (self.offered, self.abandoned, self.deflected):
            while times and times[0] <= since:
                times.popleft()
        for pairs in (self.answered, self.completed):
            while pairs and pairs[0][0] <= since:
                pairs.popleft()


class LineSim:
    """One line's queue, steppable: ``advance_to(t)`` then ``stats()``.

    >>> sim = LineSim(LineParams(agents=10, arrivals_per_hour=100), seed=1)
    >>> sim.advance_to(1800.0)
    >>> sim.stats().agents_staffed
    10
    """

    def __init__(self, params: LineParams, seed: int, *, record: bool = False) -> None:
        """Start empty at ``t = 0`` with every switch off.

        ``seed`` is the line's own seed (see ``line_seed``). ``record`` keeps a
        ``CallRecord`` for every caller in ``records`` (for analysis and tests).
        """
        self.params = params
        # Two streams: the arrival stream alone decides when callers come, so a change to
        # how callers are treated never moves later arrivals.
        self._arrivals_rng = random.Random(seed)
        self._callers_rng = random.Random(seed ^ 0x5EED_CA11_E125)
        self._now = 0.0
        self._seq = 0
        self._heap: list[tuple[float, int, int, _Caller | None]] = []
        self._queue: deque[_Caller] = deque()  # FIFO; callers who left are skipped lazily
        self._waiting = 0
        self._backlog: deque[_Caller] = deque()
        self._staffed = params.agents
        self._busy = 0
        self._leaving = 0  # agents who leave as soon as their current call ends
        self._surge_present = 0
        self._surge_join_seq: int | None = None
        self._surge_joining = 0
        self._deflection = False
        self._callback = False
        self._surge = False
        self._window = _Window(params.window)
        self.totals = Totals()
        self.records: list[CallRecord] | None = [] if record else None
        self._rate = params.arrivals_per_hour / HOUR
        self._schedule(self._next_arrival(0.0), _ARRIVE, None)

    # ------------------------------------------------------------------ reading

    @property
    def now(self) -> float:
        """The simulated time the model has been advanced to."""
        return self._now

    @property
    def switches(self) -> dict[str, bool]:
        """Which responses are switched on."""
        return {
            "ivr_deflection": self._deflection,
            "callback": self._callback,
            "surge_staff": self._surge,
        }

    @property
    def callback_backlog(self) -> int:
        """Callers waiting to be called back."""
        return len(self._backlog)

    def stats(self) -> SimStats:
        """The figures at ``now``: "now" values and trailing-window counts and means."""
        w = self._window
        w.prune(self._now - self.params.window)
        answered = len(w.answered)
        if answered:
            avg_wait: float | None = math.fsum(x for _, x in w.answered) / answered
        elif self._waiting or w.abandoned:
            avg_wait = None
        else:
            avg_wait = 0.0
        completed = len(w.completed)
        avg_handle = math.fsum(x for _, x in w.completed) / completed if completed else None
        oldest = self._oldest_waiting()
        return SimStats(
            t=self._now,
            calls_waiting=self._waiting,
            longest_wait=0.0 if oldest is None else self._now - oldest.arrived,
            avg_wait=avg_wait,
            agents_available=self._staffed - self._busy,
            agents_staffed=self._staffed,
            offered=len(w.offered),
            answered=answered,
            abandoned=len(w.abandoned),
            window=self.params.window,
            avg_handle_time=avg_handle,
            deflected=len(w.deflected),
            callback_backlog=len(self._backlog),
        )

    def arrival_rate(self, t: float) -> float:
        """The arrival rate (callers per hour, before deflection) in force at ``t``."""
        rate, _ = self._segment(t)
        return rate * HOUR

    # ------------------------------------------------------------------ driving

    def advance_to(self, t: float) -> None:
        """Run every event up to and including simulated time ``t``.

        Stepping in many small calls gives exactly the same run as one big one.
        """
        if t < self._now:
            raise ValueError(f"cannot go back in time from {self._now} to {t}")
        heap = self._heap
        while heap and heap[0][0] <= t:
            when, seq, kind, caller = heapq.heappop(heap)
            self._now = when
            if kind == _ARRIVE:
                self._arrive()
            elif kind == _DONE:
                assert caller is not None
                self._done(caller)
            elif kind == _ABANDON:
                assert caller is not None
                self._abandon(caller)
            else:
                self._surge_join(seq)
        self._now = t

    def set_deflection(self, on: bool) -> bool:
        """Switch IVR deflection of new callers on or off; True if that changed anything."""
        if on == self._deflection:
            return False
        self._deflection = on
        return True

    def set_callback(self, on: bool) -> bool:
        """Switch call-back on or off; True if that changed anything.

        Switching it on offers a call-back to everyone waiting now; ``callback_share`` of
        them (the same callers whichever way the run went) accept and leave the queue.
        """
        if on == self._callback:
            return False
        self._callback = on
        if on:
            share = self.params.callback_share
            for caller in self._queue:
                if caller.state == _WAITING and caller.callback_u < share:
                    self._waiting -= 1
                    self._take_callback(caller)
        return True

    def set_surge(self, on: bool) -> bool:
        """Call surge staff in (they join after ``surge_delay``) or stand them down.

        Standing down: those not yet arrived never come; idle ones leave now; busy ones
        finish their current call first. Calling them in again while some are still
        finishing keeps those, and only the rest need the delay.
        """
        if on == self._surge:
            return False
        self._surge = on
        n = self.params.surge_agents
        if on:
            stay = min(self._leaving, n)
            self._leaving -= stay
            self._surge_present += stay
            joining = n - stay
            if joining > 0:
                self._surge_joining = joining
                self._surge_join_seq = self._schedule(
                    self._now + self.params.surge_delay, _SURGE_JOIN, None
                )
        else:
            self._surge_join_seq = None  # a join still pending is cancelled
            self._surge_joining = 0
            go_now = min(self._staffed - self._busy, self._surge_present)
            self._staffed -= go_now
            self._leaving += self._surge_present - go_now
            self._surge_present = 0
        return True

    # ------------------------------------------------------------------ internals

    def _schedule(self, when: float, kind: int, caller: _Caller | None) -> int:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, caller))
        return self._seq

    def _segment(self, t: float) -> tuple[float, float]:
        """The arrival rate (per second) at ``t`` and when it next changes."""
        p = self.params
        k = math.floor((t + p.day_offset) / HOUR)
        end = (k + 1) * HOUR - p.day_offset
        if end <= t:  # float rounding just below an hour boundary
            k += 1
            end += HOUR
        mult = p.profile[k % 24]
        for ev in p.events:
            if ev.at <= t < ev.end:
                mult *= ev.multiply
                end = min(end, ev.end)
            elif ev.at > t:
                end = min(end, ev.at)
        return self._rate * mult, end

    def _next_arrival(self, t: float) -> float:
        """The next arrival after ``t``: one unit-exponential draw spent along the rate."""
        need = self._arrivals_rng.expovariate(1.0)
        while True:
            rate, end = self._segment(t)
            if rate > 0:
                dt = need / rate
                if t + dt < end:
                    return t + dt
                need = max(need - rate * (end - t), 0.0)
            t = end

    def _new_caller(self) -> _Caller:
        p = self.params
        rng = self._callers_rng
        # Always the same five draws per caller, so runs stay aligned whatever the switches.
        deflect_u = rng.random()
        callback_u = rng.random()
        ivr = rng.random() < p.ivr_share
        ivr_patience = rng.uniform(*p.ivr_window)
        handle = rng.expovariate(1.0 / p.handle_time)
        exp_patience = rng.expovariate(1.0 / p.patience) if p.patience is not None else 0.0
        patience = None if p.patience is None else (ivr_patience if ivr else exp_patience)
        return _Caller(self._now, deflect_u, callback_u, patience, handle)

    def _record(self, caller: _Caller, outcome: Outcome) -> None:
        if self.records is not None:
            self.records.append(CallRecord(caller.arrived, outcome, self._now - caller.arrived))

    def _arrive(self) -> None:
        now = self._now
        self._schedule(self._next_arrival(now), _ARRIVE, None)
        caller = self._new_caller()
        self.totals.arrivals += 1
        w = self._window
        if self._deflection and caller.deflect_u < self.params.deflection_share:
            self.totals.deflected += 1
            w.add(w.deflected, now, now - w.length)
            self._record(caller, "deflected")
            return
        self.totals.offered += 1
        w.add(w.offered, now, now - w.length)
        # Invariant: an idle agent means nobody is waiting and no call-back is pending.
        if self._staffed > self._busy:
            self._answer(caller)
        elif self._callback and caller.callback_u < self.params.callback_share:
            self._take_callback(caller)
        else:
            self._queue.append(caller)
            self._waiting += 1
            if caller.patience is not None:
                self._schedule(now + caller.patience, _ABANDON, caller)

    def _answer(self, caller: _Caller) -> None:
        now = self._now
        wait = now - caller.arrived
        caller.state = _SERVED
        self._busy += 1
        self.totals.answered += 1
        self.totals.wait_answered += wait
        w = self._window
        w.add_pair(w.answered, now, wait, now - w.length)
        self._record(caller, "answered")
        self._schedule(now + caller.handle, _DONE, caller)

    def _take_callback(self, caller: _Caller) -> None:
        caller.state = _CALLBACK
        self._backlog.append(caller)
        self.totals.callbacks_requested += 1
        self._record(caller, "callback")

    def _abandon(self, caller: _Caller) -> None:
        if caller.state != _WAITING:
            return  # answered or took a call-back first
        caller.state = _ABANDONED
        self._waiting -= 1
        self.totals.abandoned += 1
        w = self._window
        w.add(w.abandoned, self._now, self._now - w.length)
        self._record(caller, "abandoned")

    def _done(self, caller: _Caller) -> None:
        self._busy -= 1
        if caller.state == _SERVED:  # an inbound call; call-backs are not inbound handling
            self.totals.completed += 1
            self.totals.handle_completed += caller.handle
            w = self._window
            w.add_pair(w.completed, self._now, caller.handle, self._now - w.length)
        if self._leaving:
            self._leaving -= 1
            self._staffed -= 1
        self._dispatch()

    def _surge_join(self, seq: int) -> None:
        if seq != self._surge_join_seq:
            return  # stood down before they arrived
        self._surge_join_seq = None
        self._staffed += self._surge_joining
        self._surge_present += self._surge_joining
        self._surge_joining = 0
        self._dispatch()

    def _oldest_waiting(self) -> _Caller | None:
        queue = self._queue
        while queue and queue[0].state != _WAITING:
            queue.popleft()
        return queue[0] if queue else None

    def _dispatch(self) -> None:
        """Give idle agents work: the queue first, then the call-back backlog."""
        while self._staffed > self._busy:
            caller = self._oldest_waiting()
            if caller is not None:
                self._queue.popleft()
                self._waiting -= 1
                self._answer(caller)
            elif self._backlog:
                callback = self._backlog.popleft()
                callback.state = _CALLED_BACK
                self._busy += 1
                self.totals.callbacks_made += 1
                self._schedule(self._now + callback.handle, _DONE, callback)
            else:
                return
