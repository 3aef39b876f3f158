"""The ``simulator`` source: living call lines, the daemon's built-in default.

Each line bound to a simulator source is a ``risingtide.simulation.LineSim``: a queue with
random callers, agents, abandonment, time-of-day demand and scripted demand events. The
source maps wall time to simulated time::

    sim_t = warmup + (clock.now() - started_at).total_seconds() * speed

and every ``poll()`` advances each line to ``sim_t`` and reports its figures as
``QueueStats``. ``warmup`` is simulated at once on the first poll, so the 15-minute windows
are already full when the daemon starts. The model's ``t = 0`` is ``warmup`` before the
daemon's start; demand events' ``at`` count from the daemon's start.

The simulator also *responds*: ``set_deflection``, ``set_callback`` and ``set_surge`` switch
the IVR deflection message, call-back and surge staff on a line, which is how the
``simulator`` responder (``risingtide.responders.simulator``) closes the loop.

Durations in these settings are written ``90s``, ``5m``, ``1h30m`` or as a number of
seconds (``Duration`` below).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from risingtide.clock import Clock
from risingtide.config.durations import parse_duration, parse_offset
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.ports import (
    BuildContext,
    PollResult,
    SourceError,
    SourcePlugin,
    StatsSource,
    lines_as,
    settings_as,
)
from risingtide.simulation import (
    DAY,
    PROFILES,
    DemandEvent,
    LineParams,
    LineSim,
    SimStats,
    line_seed,
    profile_from_hours,
)

#: The council's local time zone: the time-of-day profile is read in local time.
LOCAL_TZ: Final = ZoneInfo("Europe/London")

# --------------------------------------------------------------------------- durations


def _parse_patience(value: object) -> timedelta | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    return parse_duration(value)


def _parse_start(value: object) -> object:
    # PyYAML reads an unquoted 10:30 as the base-60 integer 630; say so rather than guess.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('write the start time in quotes, e.g. start: "09:30"')
    return value


#: A pydantic field type for a duration, read as the rest of the config reads them.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

#: A duration that may be negative (``-5m``): an event that began before the daemon started.
Offset = Annotated[timedelta, BeforeValidator(parse_offset)]

#: A duration, or ``none`` (no abandonment).
Patience = Annotated[timedelta | None, BeforeValidator(_parse_patience)]

ProfileName = Literal["flat", "council_weekday"]

# --------------------------------------------------------------------------- settings


class SimulatorSettings(BaseModel):
    """The simulator source's own block under ``sources:``.

    ``seed``: the random seed (the same seed gives the same callers). ``speed``: simulated
    seconds per wall second. ``warmup``: simulated at once before the start, so windows are
    full. ``window``: the window for offered/answered/abandoned and the averages. ``start``:
    the local (Europe/London) time of day the simulation pretends to start at, for the
    time-of-day profile; by default the real local time when the source is built.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 2026
    speed: float = Field(default=1.0, gt=0)
    warmup: Duration = timedelta(minutes=30)
    window: Duration = timedelta(minutes=15)
    start: Annotated[time | None, BeforeValidator(_parse_start)] = None

    @field_validator("window")
    @classmethod
    def _window_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("window must be longer than 0s")
        return value


class DemandEventSettings(BaseModel):
    """A scripted change in demand: ``{name, at, for, multiply}``.

    ``at`` is when it starts, counted from the daemon's start — negative (``-5m``) for an
    event already under way when the daemon starts, as far back as the warm-up; ``for`` how
    long it lasts; ``multiply`` the factor on arrivals meanwhile (0 silences the line, 3
    triples it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    at: Offset
    for_: Duration = Field(alias="for")
    multiply: float = Field(ge=0, allow_inf_nan=False)


class SimulatorLine(BaseModel):
    """A line's ``source:`` block (minus ``use``) for a simulator source.

    See ``docs/simulator.md`` for what each setting means and its default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: int = Field(ge=1)
    arrivals_per_hour: float = Field(gt=0, allow_inf_nan=False)
    handle_time: Duration = timedelta(minutes=5)
    patience: Patience = timedelta(minutes=4)
    ivr_abandon_share: float = Field(default=0.15, ge=0, le=1)
    deflection_share: float = Field(default=0.25, ge=0, le=1)
    callback_share: float = Field(default=0.5, ge=0, le=1)
    surge_agents: int = Field(default=0, ge=0)
    surge_delay: Duration = timedelta(minutes=3)
    profile: ProfileName | dict[int, float] = "flat"
    events: tuple[DemandEventSettings, ...] = ()

    @field_validator("handle_time", "patience")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: ProfileName | dict[int, float]) -> ProfileName | dict[int, float]:
        if isinstance(value, dict):
            profile_from_hours(value)  # raises ValueError with the reason
        return value

    def profile_multipliers(self) -> tuple[float, ...]:
        """The 24 hourly multipliers this line's profile stands for."""
        if isinstance(self.profile, str):
            return PROFILES[self.profile]
        return profile_from_hours(self.profile)


def line_params(
    line: SimulatorLine, *, window: float, warmup: float, start_of_day: float
) -> LineParams:
    """The model parameters for a line; ``start_of_day`` is the daemon start's local time
    in seconds after midnight (the model starts ``warmup`` earlier)."""
    return LineParams(
        agents=line.agents,
        arrivals_per_hour=line.arrivals_per_hour,
        handle_time=line.handle_time.total_seconds(),
        patience=None if line.patience is None else line.patience.total_seconds(),
        ivr_share=line.ivr_abandon_share,
        deflection_share=line.deflection_share,
        callback_share=line.callback_share,
        surge_agents=line.surge_agents,
        surge_delay=line.surge_delay.total_seconds(),
        profile=line.profile_multipliers(),
        events=tuple(_event(e, warmup) for e in line.events),
        window=window,
        day_offset=(start_of_day - warmup) % DAY,
    )


def _event(e: DemandEventSettings, warmup: float) -> DemandEvent:
    """The model's event; one that began before the warm-up is cut at the warm-up's start."""
    start = warmup + e.at.total_seconds()
    end = start + e.for_.total_seconds()
    return DemandEvent(
        name=e.name, at=max(0.0, start), duration=max(0.0, end - max(0.0, start)),
        multiply=e.multiply,
    )  # fmt: skip


# --------------------------------------------------------------------------- the source


class SimulatorSource:
    """Simulated lines, advanced to the clock's time on each poll and switchable by the
    ``simulator`` responder."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        settings: SimulatorSettings,
        lines: Mapping[str, SimulatorLine],
    ) -> None:
        """Set the simulation up, starting now by ``clock``; nothing is simulated until the
        first poll."""
        self.name = name
        self.settings = settings
        self._clock = clock
        self.started_at: datetime = clock.now()
        self.start_time: time = settings.start or self.started_at.astimezone(LOCAL_TZ).time()
        start = self.start_time
        start_of_day = start.hour * 3600 + start.minute * 60 + start.second
        warmup = settings.warmup.total_seconds()
        window = settings.window.total_seconds()
        self._models = {
            line_id: LineSim(
                line_params(cfg, window=window, warmup=warmup, start_of_day=start_of_day),
                line_seed(settings.seed, line_id),
            )
            for line_id, cfg in lines.items()
        }
        self._sim_t = 0.0

    @property
    def lines(self) -> frozenset[str]:
        """The ids of the lines this source simulates."""
        return frozenset(self._models)

    def sim_time(self) -> float:
        """Simulated seconds since the model's start, for the clock's current time.

        Never goes backwards, even if the clock does.
        """
        elapsed = (self._clock.now() - self.started_at).total_seconds()
        t = self.settings.warmup.total_seconds() + elapsed * self.settings.speed
        self._sim_t = max(self._sim_t, t)
        return self._sim_t

    async def poll(self) -> PollResult:
        """Advance every line to now and report its figures."""
        now = self._clock.now()
        t = self.sim_time()
        result: dict[str, QueueStats | SourceError] = {}
        for line_id, model in self._models.items():
            model.advance_to(t)
            result[line_id] = _queue_stats(line_id, now, model.stats())
        return result

    async def aclose(self) -> None:
        """Nothing to release."""

    # -------------------------------------------------------------- controls

    def set_deflection(self, line: str, on: bool) -> bool:
        """Switch the IVR deflection message on ``line``; True if that changed anything."""
        return self._at_now(line).set_deflection(on)

    def set_callback(self, line: str, on: bool) -> bool:
        """Switch call-back on ``line``; True if that changed anything."""
        return self._at_now(line).set_callback(on)

    def set_surge(self, line: str, on: bool) -> bool:
        """Call surge staff to ``line`` or stand them down; True if that changed anything."""
        return self._at_now(line).set_surge(on)

    def switches(self, line: str) -> dict[str, bool]:
        """Which responses are on for ``line``: ``ivr_deflection``, ``callback``,
        ``surge_staff``."""
        return self._model(line).switches

    def callback_backlog(self, line: str) -> int:
        """Callers on ``line`` waiting to be called back, as of the last poll or switch."""
        return self._model(line).callback_backlog

    def details(self, line: str) -> SimStats:
        """The line's full simulated figures now (with deflections and call-back backlog)."""
        return self._at_now(line).stats()

    def _model(self, line: str) -> LineSim:
        try:
            return self._models[line]
        except KeyError:
            raise KeyError(f"simulator {self.name!r} has no line {line!r}") from None

    def _at_now(self, line: str) -> LineSim:
        # A switch acts at the current simulated time, so bring the line up to it first.
        model = self._model(line)
        model.advance_to(self.sim_time())
        return model


def _queue_stats(line: str, at: datetime, s: SimStats) -> QueueStats:
    return QueueStats(
        line=line,
        at=at,
        calls_waiting=s.calls_waiting,
        avg_wait=s.avg_wait,
        longest_wait=s.longest_wait,
        agents_available=s.agents_available,
        agents_staffed=s.agents_staffed,
        offered=s.offered,
        answered=s.answered,
        abandoned=s.abandoned,
        window=s.window,
        avg_handle_time=s.avg_handle_time,
    )


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(SimulatorSettings, settings, f"simulator {name!r}")
    own = lines_as(SimulatorLine, lines, f"simulator {name!r}")
    return SimulatorSource(name, ctx.clock, settings, own)


PLUGIN = SourcePlugin(
    type="simulator",
    settings_model=SimulatorSettings,
    line_model=SimulatorLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Simulated call lines that respond to IVR deflection, call-back and surge "
    "staff: the built-in demo.",
)
