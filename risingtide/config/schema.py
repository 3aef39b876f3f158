"""The shape of the YAML file, as pydantic models: one model per block, unknown keys forbidden.

The loader validates each block on its own (one line, one framework, one source…) so that
one broken block never hides the mistakes in the others, and so that plugin blocks can be
split off and handed to the plugin's own models. Values with a grammar of their own —
durations, thresholds, opening hours, time zones, ``listen`` — are parsed here by plain
validators, whose messages are shown to the analyst as they are.

Cross-block rules (references, tier order, hysteresis, …) are the loader's job, because
they need positions of more than one value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from risingtide.config.calendars import BankHolidays, Hours, parse_day_hours
from risingtide.config.durations import parse_duration
from risingtide.config.errors import show
from risingtide.config.thresholds import Threshold, parse_threshold

T = TypeVar("T")

#: The error type of messages written for people; the loader shows them unchanged.
CONFIG_ERROR = "config"


def config_error(message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A pydantic error whose text is ``message`` exactly (braces and all).

    ``at`` places it below where pydantic would (a model-wide check naming the key at
    fault, e.g. ``("apply", "body", "tier")``), so ``check`` points at that line.
    """
    context: dict[str, Any] = {"message": message}
    if at:
        context["at"] = at
    return PydanticCustomError(CONFIG_ERROR, "{message}", context)


def parsed_by(parse: Callable[[Any], T]) -> PlainValidator:
    """A validator that runs ``parse`` and turns its ``ValueError`` into a readable error."""

    def run(value: Any) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise config_error(str(exc)) from None

    return PlainValidator(run)


def _positive_duration(value: Any) -> timedelta:
    result = parse_duration(value)
    if result <= timedelta(0):
        raise ValueError(f"{show(value)} must be longer than 0s")
    return result


def _timezone(value: Any) -> ZoneInfo:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{show(value)} is not a time zone (use an IANA name, e.g. Europe/London)")
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{show(value)} is not a known time zone (use an IANA name, e.g. Europe/London)"
        ) from None


_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+)):(?P<port>[0-9]+)")


def parse_listen(value: Any) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9470`` for IPv6) as (host, port); ValueError says how to write it."""
    hint = "e.g. 127.0.0.1:9470, or [::1]:9470 for IPv6"
    match = _LISTEN.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{show(value)} is not HOST:PORT ({hint})")
    port = int(match.group("port"))
    if port > 65535:
        raise ValueError(f"{show(value)}: port {port} is out of range (0-65535)")
    return (match.group("v6") or match.group("host"), port)


#: ``server.secret_key`` signs cookies and links; shorter keys are too easy to guess.
MIN_SECRET_LENGTH = 32
_MIN_DISTINCT = 10
_TOKEN_HASH = re.compile(r"sha256:[0-9a-f]{64}")


#: ``server.lease``: renewed every third of it, so shorter would renew too often to be safe.
MIN_LEASE = timedelta(seconds=2)
#: ``server.partitions``: at most this many leases to hold and renew.
MAX_PARTITIONS = 256


def _database_url(value: Any) -> str:
    # Never echo the value: it may hold the database's password.
    hint = "e.g. postgresql://risingtide:${DB_PASSWORD}@db:5432/risingtide"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a postgresql:// URL ({hint})")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("postgresql", "postgresql+psycopg"):
        raise ValueError(f"is not a postgresql:// URL ({hint})")
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ValueError(f"has a port that is not a number from 1 to 65535 ({hint})") from None
    return value.strip()


def _partitions(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{show(value)} is not a whole number from 1 to {MAX_PARTITIONS}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(
            f"{show(value)} is not a whole number from 1 to {MAX_PARTITIONS}"
        ) from None
    if not 1 <= number <= MAX_PARTITIONS:
        raise ValueError(f"{show(value)} is out of range (1 to {MAX_PARTITIONS})")
    return number


def _lease(value: Any) -> timedelta:
    result = parse_duration(value)
    if result < MIN_LEASE:
        raise ValueError(f"{show(value)} is too short: a lease lasts at least 2s")
    return result


def _secret_key(value: Any) -> str:
    # Never echo the value: it is a secret, and check's output ends up in CI logs.
    if not isinstance(value, str):
        raise ValueError('expected text (set it from the environment: "${RISINGTIDE_SECRET_KEY}")')
    hint = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"is {len(value)} characters long; it needs at least {MIN_SECRET_LENGTH} ({hint})"
        )
    if len(set(value)) < _MIN_DISTINCT:
        raise ValueError(f"is too easy to guess: it repeats a few characters ({hint})")
    return value


def _public_url(value: Any) -> str:
    hint = "e.g. https://risingtide.council.example"
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a URL ({hint})")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{show(value)} is not an http:// or https:// URL ({hint})")
    if parts.query or parts.fragment:
        raise ValueError(f"{show(value)} must not have a ?query or #fragment ({hint})")
    return value.strip().rstrip("/")


def _password_hash(value: Any) -> str:
    # The hash is not the password, but it is still not for logs: describe, never echo.
    hint = 'make one with "risingtide hash-password"'
    if not isinstance(value, str) or not value.startswith("$argon2id$"):
        raise ValueError(f"is not an argon2id hash; it starts with $argon2id$ ({hint})")
    import argon2  # here, not at the top: only a config with users has a hash to read
    from argon2.exceptions import InvalidHashError

    try:
        params = argon2.extract_parameters(value)
    except InvalidHashError:
        raise ValueError(f"is not a well-formed argon2id hash ({hint})") from None
    if params.type is not argon2.Type.ID:  # pragma: no cover - the prefix says so
        raise ValueError(f"is not an argon2id hash ({hint})")
    return value


def _token_hash(value: Any) -> str:
    # A raw token pasted here by mistake must not be printed back.
    if not isinstance(value, str) or not _TOKEN_HASH.fullmatch(value.strip().lower()):
        raise ValueError(
            'is not a token hash: write "sha256:" and 64 hex digits, as printed by '
            '"risingtide new-token" (the hash, never the token itself)'
        )
    return value.strip().lower()


Duration = Annotated[timedelta, parsed_by(parse_duration)]
PositiveDuration = Annotated[timedelta, parsed_by(_positive_duration)]
TimeThreshold = Annotated[Threshold, parsed_by(lambda v: parse_threshold(v, "seconds"))]
CountThreshold = Annotated[Threshold, parsed_by(lambda v: parse_threshold(v, "count"))]
RatioThreshold = Annotated[Threshold, parsed_by(lambda v: parse_threshold(v, "ratio"))]
TimeZone = Annotated[ZoneInfo, parsed_by(_timezone)]
DayHours = Annotated[Hours, parsed_by(parse_day_hours)]
Listen = Annotated[tuple[str, int], parsed_by(parse_listen)]
SecretKey = Annotated[str, parsed_by(_secret_key)]
PublicUrl = Annotated[str, parsed_by(_public_url)]
PasswordHash = Annotated[str, parsed_by(_password_hash)]
TokenHash = Annotated[str, parsed_by(_token_hash)]
DatabaseUrl = Annotated[str, parsed_by(_database_url)]
Partitions = Annotated[int, parsed_by(_partitions)]
LeaseDuration = Annotated[timedelta, parsed_by(_lease)]
Text = Annotated[str, Field(min_length=1)]
Ids = list[str]


class Block(BaseModel):
    """Every block forbids unknown keys, so a typo is an error and never silently ignored."""

    # ``defer_build``: a block's validator is built when a config first has such a block,
    # not at import (``check`` of a config without users or reports never builds theirs).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
        arbitrary_types_allowed=True,
        defer_build=True,
    )


# --------------------------------------------------------------------------- server, defaults


class ServerBlock(Block):
    """``server:`` — the HTTP listener, state file and logging."""

    listen: Listen = ("127.0.0.1", 9470)
    state_file: Text = "state/rising-tide.sqlite"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    evaluate_every: PositiveDuration = timedelta(seconds=5)
    secret_key: SecretKey | None = Field(default=None, repr=False)
    public_url: PublicUrl | None = None
    ack_link_ttl: PositiveDuration = timedelta(hours=24)
    #: How long the history is kept: a year and a day, as councils keep records.
    history_retention: PositiveDuration = timedelta(days=366)
    per_line_counters: bool = False
    #: Replicas share this PostgreSQL database instead of the state file (issue 14).
    database: DatabaseUrl | None = Field(default=None, repr=False)
    partitions: Partitions = 1
    lease: LeaseDuration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _partitions_need_a_database(self) -> ServerBlock:
        if self.partitions != 1 and self.database is None:
            raise config_error(
                "only replicas sharing a database split the lines into partitions: "
                "set server.database, or leave partitions at 1",
                at=("partitions",),
            )
        return self


class DefaultsBlock(Block):
    """``defaults:`` — applied to every line that does not say otherwise."""

    target_wait: PositiveDuration | None = None
    #: The average handle time to plan with where the platform gives none (capacity model).
    handle_time: PositiveDuration | None = None
    hours: str | None = None
    framework: str | None = None
    source: Any = None  # an id or {use: id, …}; the loader splits it


# --------------------------------------------------------------------------- users


class UserBlock(Block):
    """One user under ``users:``: who they are, what they may do, how they prove it.

    ``role`` is one of ``risingtide.config.model.ROLES``.
    """

    name: Text
    role: Literal["viewer", "duty_manager", "admin"]
    password_hash: PasswordHash | None = Field(default=None, repr=False)
    tokens: list[TokenHash] = Field(default_factory=list, repr=False)

    @model_validator(mode="after")
    def _can_sign_in(self) -> UserBlock:
        if self.password_hash is None and not self.tokens:
            raise config_error(
                "needs a password_hash (to sign in to the board) or tokens (for scripts), or both"
            )
        return self


# --------------------------------------------------------------------------- calendars


class CalendarBlock(Block):
    """One calendar under ``calendars:`` (day keys are checked by the loader, with positions)."""

    timezone: TimeZone = ZoneInfo("Europe/London")
    hours: dict[str, DayHours] = Field(default_factory=dict)
    bank_holidays: BankHolidays = "none"
    closed_dates: list[date] = Field(default_factory=list)


# --------------------------------------------------------------------------- sources, responses

#: Keys of a ``sources:`` block that the loader reads; the rest belong to the plugin.
SOURCE_COMMON_KEYS = ("type", "interval", "timeout", "jitter")
#: Keys of a ``responses:`` block that the loader reads; the rest belong to the plugin.
RESPONSE_COMMON_KEYS = ("type", "title", "fallback", "page", "group_wait", "rate_limit")
_RATE = re.compile(r"([0-9]+)\s*(?:/|per)\s*([0-9]*\s*[a-z]+)")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate_limit(value: Any) -> tuple[int, timedelta]:
    """``"30/min"``, ``"1/s"``, ``"100 per hour"``, ``"5/10s"`` as (count, period)."""
    hint = 'write e.g. "30/min", "1/s", "500/h" or "5/10s"'
    match = _RATE.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{show(value)} is not a rate ({hint})")
    count, per = int(match.group(1)), match.group(2).replace(" ", "")
    unit = _RATE_UNITS.get(per.removesuffix("s") if len(per) > 1 else per)
    period = timedelta(seconds=unit) if unit is not None else None
    if period is None:
        try:
            period = parse_duration(per)
        except ValueError:
            raise ValueError(f"{show(value)} is not a rate ({hint})") from None
    if count < 1 or period <= timedelta(0):
        raise ValueError(f"{show(value)} must allow at least 1 run in a period longer than 0s")
    return count, period


RateLimit = Annotated[tuple[int, timedelta], parsed_by(parse_rate_limit)]


class SourceBlock(Block):
    """The common keys of one source; ``SourcePlugin.settings_model`` validates the rest."""

    type: Text
    interval: Duration = timedelta(seconds=15)
    timeout: PositiveDuration | None = None
    jitter: Duration = timedelta(0)


class ResponseBlock(Block):
    """The common keys of one response; ``ResponderPlugin.settings_model`` validates the rest.

    ``fallback``: another response to run when this one is given up on (a dead letter).
    ``page``: groups or people (ids under ``groups:``/``people:``) a notification reaches,
    the people on duty by each group's rota. ``group_wait``: how long a notification waits
    so that other lines' orders of the same response go out with it, as one message
    (notifications only; ``0s`` sends each at once; the default is the channel's).
    ``rate_limit``: at most so many runs of this response per period (``"30/min"``); more
    wait their turn. ``title``: what the board calls the response when it is switched on
    ("Call-back offered"); the id, in words, when not given.
    """

    type: Text
    title: Text | None = None
    fallback: Text | None = None
    page: Ids | None = None
    group_wait: Duration | None = None
    rate_limit: RateLimit | None = None


# --------------------------------------------------------------------------- conditions

_OPS = ("above", "below", "at_least", "at_most")


class _Comparison(Block):
    @model_validator(mode="after")
    def _not_empty(self) -> _Comparison:
        if not self.items():  # ``{above: null}`` compares with nothing: not a condition
            raise config_error("needs a comparison: above, below, at_least or at_most")
        return self

    def items(self) -> list[tuple[str, Threshold]]:
        """(op, threshold) for each comparison written, in a fixed order."""
        out: list[tuple[str, Threshold]] = []
        for op in _OPS:
            threshold = getattr(self, op)
            if threshold is not None:
                out.append((op, threshold))
        return out


class TimeComparison(_Comparison):
    """Comparisons for ``avg_wait``, ``longest_wait``, ``predicted_wait`` (seconds; ``target``)."""

    above: TimeThreshold | None = None
    below: TimeThreshold | None = None
    at_least: TimeThreshold | None = None
    at_most: TimeThreshold | None = None


class ForecastComparison(TimeComparison):
    """``forecast_wait``: a time threshold, and how far ahead to look (``within``)."""

    within: PositiveDuration


class CountComparison(_Comparison):
    """Comparisons for ``calls_waiting`` and ``agents_available`` (counts)."""

    above: CountThreshold | None = None
    below: CountThreshold | None = None
    at_least: CountThreshold | None = None
    at_most: CountThreshold | None = None


class RatioComparison(_Comparison):
    """Comparisons for ``abandon_rate`` and ``answered_rate`` (0–1 or a percentage)."""

    above: RatioThreshold | None = None
    below: RatioThreshold | None = None
    at_least: RatioThreshold | None = None
    at_most: RatioThreshold | None = None


class ConditionBlock(Block):
    """A condition: measures with comparisons, ``any:`` and ``all:``; every part must hold."""

    avg_wait: TimeComparison | None = None
    longest_wait: TimeComparison | None = None
    calls_waiting: CountComparison | None = None
    agents_available: CountComparison | None = None
    abandon_rate: RatioComparison | None = None
    answered_rate: RatioComparison | None = None
    offered: CountComparison | None = None
    agents_needed: CountComparison | None = None
    capacity_gap: CountComparison | None = None
    capacity_gap_ratio: RatioComparison | None = None
    predicted_wait: TimeComparison | None = None
    forecast_wait: ForecastComparison | None = None
    any_: list[ConditionBlock] | None = Field(default=None, alias="any", min_length=1)
    all_: list[ConditionBlock] | None = Field(default=None, alias="all", min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> ConditionBlock:
        # ``{avg_wait: null}`` must not compile to an empty AllOf, which always holds.
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise config_error(
                "needs at least one measure (avg_wait, longest_wait, calls_waiting, "
                "agents_available, abandon_rate, answered_rate, offered, agents_needed, "
                "capacity_gap, capacity_gap_ratio, predicted_wait, forecast_wait), any: or all:"
            )
        return self


# --------------------------------------------------------------------------- frameworks


class RepeatBlock(Block):
    """``repeat:`` — responses run every ``every`` while the tier is unacknowledged."""

    every: PositiveDuration
    responses: Annotated[Ids, Field(min_length=1)]


class EscalationBlock(Block):
    """One ``escalate:`` step: run ``responses`` if still unacknowledged ``after`` entry."""

    after: PositiveDuration
    responses: Annotated[Ids, Field(min_length=1)]


class TierBlock(Block):
    """One tier of a framework."""

    level: int
    name: Text
    when: ConditionBlock
    for_: Duration = Field(default=timedelta(0), alias="for")
    clear: ConditionBlock | None = None
    clear_for: Duration | None = None
    responses: Ids = Field(default_factory=list)
    on_exit: Ids = Field(default_factory=list)
    repeat: RepeatBlock | None = None
    escalate: list[EscalationBlock] = Field(default_factory=list)


class _FrameworkCommon(Block):
    step_down: bool = True
    stale_after: PositiveDuration = timedelta(minutes=2)
    stale_alert_after: PositiveDuration = timedelta(minutes=10)
    stale_responses: Ids = Field(default_factory=list)
    calm_name: Text = "calm"
    #: ``at_handover``: an acknowledgement lapses when the duty rota hands over.
    ack_expires: Literal["never", "at_handover"] = "never"


class FrameworkBlock(_FrameworkCommon):
    """One framework under ``frameworks:``."""

    tiers: Annotated[list[TierBlock], Field(min_length=1)]


class FrameworkHead(_FrameworkCommon):
    """A framework with its tiers left unread: the loader validates each tier on its own,
    so one broken tier does not hide the mistakes in the others."""

    tiers: Annotated[list[Any], Field(min_length=1)]


# --------------------------------------------------------------------------- lines


class LineBlock(Block):
    """One line under ``lines:`` (``source`` is an id or ``{use: id, …}``; the loader splits it)."""

    name: Text
    target_wait: PositiveDuration | None = None
    #: The average handle time to plan with where the platform gives none (capacity model).
    handle_time: PositiveDuration | None = None
    hours: str | None = None
    framework: str | None = None
    source: Any = None


#: The top-level sections, in the order the documentation presents them.
SECTIONS = (
    "server", "defaults", "calendars", "sources", "lines", "frameworks", "responses", "users",
    "people", "groups", "reports", "demand", "demand_feeds",
)  # fmt: skip
#: Sections a config must have.
REQUIRED_SECTIONS = ("sources", "lines", "frameworks")

__all__ = [
    "CONFIG_ERROR",
    "MIN_SECRET_LENGTH",
    "REQUIRED_SECTIONS",
    "RESPONSE_COMMON_KEYS",
    "SECTIONS",
    "SOURCE_COMMON_KEYS",
    "CalendarBlock",
    "ConditionBlock",
    "CountComparison",
    "DefaultsBlock",
    "EscalationBlock",
    "FrameworkBlock",
    "FrameworkHead",
    "LineBlock",
    "RatioComparison",
    "RepeatBlock",
    "ResponseBlock",
    "ServerBlock",
    "SourceBlock",
    "TierBlock",
    "TimeComparison",
    "UserBlock",
    "config_error",
    "parse_rate_limit",
    "parsed_by",
]
