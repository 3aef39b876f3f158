"""The JSON the API accepts and returns, as pydantic models.

Request bodies are validated with these models (strictly: unknown fields, wrong types and
text where a number belongs are all refused), and ``risingtide.api.openapi`` generates the
OpenAPI schemas of every body and response from them, so the document cannot drift from
what the code accepts. The response models are documentation only: the handlers build
their JSON from the read model (``risingtide.view``), and the tests check the two agree.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from risingtide.config.durations import DurationError, parse_duration

#: Silences and declarations are for planned work and known events, not for ever.
MAX_SPAN = timedelta(days=31)

#: What a duration in a body looks like (``parse_duration`` has the last word).
DURATION_PATTERN = r"^ *([0-9]{1,6}(\.[0-9]{1,6})?(ms|d|h|m|s) *){1,5}$"

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    # The pattern tells the document what stripping means: blank text is not a reason.
    Field(pattern=r"\S", description="Why, in a sentence; kept in the line's history."),
]
Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=1000),
    Field(description="Anything the next person should know; kept in the history."),
]
DurationText = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="A duration from now: 90s, 15m, 2h, 1h30m, 1d.",
        examples=["2h", "45m", "1h30m"],
    ),
]
Until = Annotated[
    AwareDatetime,
    Field(
        description="When it ends: an ISO 8601 date and time with a UTC offset.",
        examples=["2026-11-23T17:00:00+00:00"],
    ),
]


def _whole(value: Any) -> Any:
    # JSON Schema calls 2.0 an integer, so the document's readers may send it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Level = Annotated[
    int,
    Field(ge=1, le=99, description="The tier to declare, 1 to the line's top tier."),
    BeforeValidator(_whole),  # after the Field, or its bounds leave the JSON Schema
]

_ONE_OF_UNTIL_FOR: dict[str, Any] = {
    "oneOf": [
        {"required": ["until"], "not": {"required": ["for"]}},
        {"required": ["for"], "not": {"required": ["until"]}},
    ]
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


class _Timed(_Body):
    """A body with exactly one of ``until`` and ``for``.

    Both are left out of the schema's nullable forms, and an explicit ``null`` is refused,
    so the document's ``oneOf`` says exactly what is accepted.
    """

    until: Until | SkipJsonSchema[None] = None
    for_: DurationText | SkipJsonSchema[None] = Field(default=None, alias="for")

    @model_validator(mode="after")
    def _one_of_until_and_for(self) -> _Timed:
        # (A "before" validator would make pydantic decode the JSON first, and strict mode
        # then refuses the text of a date; the fields set tell an explicit null instead.)
        for name, key in (("until", "until"), ("for_", "for")):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f'"{key}" must not be null; leave it out instead')
        if (self.until is None) == (self.for_ is None):
            raise ValueError('give exactly one of "until" (a date and time) and "for" (e.g. "2h")')
        return self

    def end(self, now: datetime) -> datetime:
        """When it ends, as an aware datetime; ``SemanticError`` when it cannot be."""
        if self.until is not None:
            end = self.until
            if end <= now:
                raise SemanticError(f'"until" ({end.isoformat()}) is not in the future')
        else:
            assert self.for_ is not None
            try:
                span = parse_duration(self.for_.strip())
            except DurationError as exc:
                raise SemanticError(f'"for": {exc}') from None
            if span <= timedelta(0):
                raise SemanticError('"for" must be longer than 0s')
            if span > MAX_SPAN:
                raise SemanticError(f'"for" can be at most {MAX_SPAN.days} days')
            # Whole seconds, rounded up: the runtime reads its clock a moment later, and
            # "silenced for 2h" should not come out as "for 1h59m".
            end = now + span
            if end.microsecond:
                end = end.replace(microsecond=0) + timedelta(seconds=1)
        if end - now > MAX_SPAN:
            raise SemanticError(f'"until" can be at most {MAX_SPAN.days} days ahead')
        return end


class SemanticError(ValueError):
    """A well-formed request that cannot be done as asked (HTTP 422)."""


class AckBody(_Body):
    """``POST /api/v1/lines/{line}/ack``: acknowledge the line's current tier."""

    note: Note = ""


class SilenceBody(_Timed):
    """``POST /api/v1/lines/{line}/silence``: silence the line for planned work."""

    model_config = ConfigDict(json_schema_extra=_ONE_OF_UNTIL_FOR)

    reason: Reason
    undo: bool = Field(
        default=False,
        description="Also undo the line's live switches now (IVR deflection, call-back…).",
    )


class OverrideBody(_Timed):
    """``POST /api/v1/lines/{line}/override``: declare a tier ahead of a known event."""

    model_config = ConfigDict(json_schema_extra=_ONE_OF_UNTIL_FOR)

    level: Level
    reason: Reason


class OutboxNoteBody(_Body):
    """``POST /api/v1/outbox/{key}/retry`` and ``…/dismiss``: retry or dismiss a dead letter."""

    note: Note = ""


B = TypeVar("B", bound=BaseModel)


def parse_body(model: type[B], raw: bytes) -> B:
    """``raw`` (JSON; empty means ``{}``) validated by ``model``; ``BodyError`` says why not."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise BodyError(_explain(exc)) from None


class BodyError(ValueError):
    """A body that is not JSON or not the right shape (HTTP 400)."""


def _explain(exc: ValidationError) -> str:
    messages = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        if kind == "none_required":
            continue  # the "or leave it out" branch of an optional field: says nothing
        # Bodies are flat: the first part names the field; the rest are union branch tags.
        where = str(err["loc"][0]) if err["loc"] else ""
        if kind == "json_invalid":
            messages.append("the body is not valid JSON")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            messages.append("the body must be a JSON object")
        elif kind == "extra_forbidden":
            messages.append(f'unknown field "{where}"')
        elif kind == "missing":
            messages.append(f'"{where}" is required')
        elif kind == "string_pattern_mismatch":
            messages.append(f'"{where}" is not a duration (use e.g. 90s, 15m, 2h, 1h30m)')
        elif kind == "timezone_aware":
            messages.append(f'"{where}" needs a UTC offset, e.g. 2026-11-23T17:00:00+00:00')
        elif kind.startswith(("datetime_", "date_")):
            messages.append(
                f'"{where}" is not a date and time (use e.g. 2026-11-23T17:00:00+00:00)'
            )
        elif kind == "string_too_short":
            messages.append(f'"{where}" must not be empty')
        elif kind == "string_too_long":
            limit = (err.get("ctx") or {}).get("max_length")
            messages.append(f'"{where}" is too long (at most {limit} characters)')
        elif kind == "string_type":
            messages.append(f'"{where}" must be text')
        elif kind == "bool_type":
            messages.append(f'"{where}" must be true or false')
        elif kind in ("int_type", "int_from_float", "int_parsing"):
            messages.append(f'"{where}" must be a whole number')
        elif kind in ("greater_than_equal", "less_than_equal"):
            ctx = err.get("ctx") or {}
            bound = "at least" if kind == "greater_than_equal" else "at most"
            messages.append(f'"{where}" must be {bound} {ctx.get("ge", ctx.get("le"))}')
        else:
            # pydantic's own words, less the echo of the input (it may be long or private)
            text = re.sub(r"^Value error, ", "", str(err["msg"]))
            messages.append(f'"{where}": {text}' if where else text)
    return "; ".join(dict.fromkeys(messages))


# --------------------------------------------------------------------------- responses


class Error(BaseModel):
    """Every 4xx and 5xx from the JSON API."""

    error: str = Field(description="Why, in a sentence fit to show a person.")


class ReloadError(Error):
    """``POST /-/reload`` refused the new config; the old one keeps running."""

    errors: list[str] = Field(description="Every problem as FILE:LINE:COL: message.")


class Reloaded(BaseModel):
    """``POST /-/reload`` loaded the config."""

    status: Literal["reloaded"]


class Acknowledgement(BaseModel):
    """Who acknowledged which tier, and when."""

    tier: int
    by: str
    at: datetime
    note: str


class SilenceOut(BaseModel):
    """A silence in force."""

    until: datetime
    by: str
    reason: str
    undo: bool


class DeclarationOut(BaseModel):
    """A declared tier in force."""

    level: int
    until: datetime
    by: str
    reason: str


class StatsOut(BaseModel):
    """The line's latest figures (seconds, counts, ratios 0–1); null when unknown."""

    at: datetime
    calls_waiting: int | None
    avg_wait: float | None
    longest_wait: float | None
    agents_available: int | None
    agents_staffed: int | None
    offered: int | None
    answered: int | None
    abandoned: int | None
    abandon_rate: float | None
    answered_rate: float | None
    window: float | None
    avg_handle_time: float | None
    arrivals_per_hour: float | None = Field(
        default=None, description="Smoothed arrivals the capacity model plans for (calls/hour)."
    )
    handle_time: float | None = Field(
        default=None,
        description="Handle time the capacity model uses (s): the platform's, else the config's.",
    )


class LineOut(BaseModel):
    """One call line as it stands now."""

    line: str = Field(description="The line's id in the config.")
    name: str
    tier: int
    tier_name: str
    max_tier: int
    episode: int = Field(description="Rises from calm so far; identifies an alert.")
    entered_at: datetime | None
    open: bool
    stale: bool
    stale_since: datetime | None
    acknowledged: bool
    acknowledgement: Acknowledgement | None
    silence: SilenceOut | None
    declaration: DeclarationOut | None
    live_switches: list[str] = Field(description="Switches on, or whose undo is still pending.")
    undo_pending: list[str] = Field(
        default_factory=list, description="Switches whose undo has not yet gone through."
    )
    target_wait: float
    stats_age: float | None
    agents_needed: int | None = Field(
        description="Agents Erlang C says the line needs to meet its target wait."
    )
    capacity_gap: int | None = Field(
        default=None, description="Agents needed − agents staffed (negative: spare agents)."
    )
    capacity_gap_ratio: float | None = Field(
        default=None, description="The gap as a share of agents needed (0.08 is 8 %)."
    )
    predicted_wait: float | None = Field(
        default=None,
        description="Erlang C's mean wait with the agents staffed, seconds (capped at 3600).",
    )
    forecast_wait: float | None = Field(
        default=None,
        description="The worst wait the forecast sees within the line's forecast_wait horizon "
        "(only for lines whose conditions read it), seconds.",
    )
    last_error: str | None
    stats: StatsOut | None


class LinesOut(BaseModel):
    """One page of the configured lines, in config order."""

    lines: list[LineOut]
    next: str | None = Field(
        default=None,
        description="The path of the next page with the same filter; null on the last.",
    )
    total: int = Field(default=0, description="Lines the filter keeps, on every page.")


class CommandDone(BaseModel):
    """A duty-manager command was recorded."""

    reason: str = Field(description="What happened, as the history records it.")
    line: LineOut


class EventOut(BaseModel):
    """One entry of the history."""

    id: int
    at: datetime
    line: str
    kind: str
    tier: int | None
    data: dict[str, Any]


class EventsOut(BaseModel):
    """A page of the history, newest first; pass ``next_before`` as ``before`` for more."""

    events: list[EventOut]
    next_before: int | None


class OutboxEntryOut(BaseModel):
    """One response order in the outbox, with its delivery state."""

    key: str = Field(description="The order's idempotency key (contains /, : and @).")
    status: Literal["pending", "done", "dead", "dismissed"]
    line: str
    tier: int
    response: str = Field(description="The response's id in the config.")
    action: Literal["apply", "undo"]
    trigger: str = Field(description="What planned it: tier_changed, reminder, escalated…")
    reason: str = Field(description="Why it was planned.")
    at: datetime = Field(description="When it was planned to run.")
    attempts: int = Field(description="Runs so far (since it was last requeued).")
    last_error: str | None = Field(description="Why the last run failed, if it did.")
    created_at: datetime
    next_attempt_at: datetime = Field(description="When a pending entry may run next.")
    finished_at: datetime | None = Field(description="When it was done or given up on.")
    batch: str | None = Field(description="The key of the message it was sent in, if shared.")


class OutboxOut(BaseModel):
    """Outbox entries of one status: dead letters newest first, pending ones oldest first."""

    status: Literal["dead", "pending"]
    total: int = Field(description="How many entries have this status (more than listed "
                       "when limit cut the list short).")  # fmt: skip
    entries: list[OutboxEntryOut]


class OutboxDone(BaseModel):
    """A dead letter was requeued or dismissed."""

    reason: str = Field(description="What happened, in a sentence.")
    entry: OutboxEntryOut


class SessionOut(BaseModel):
    """Who the caller is (``GET /api/v1/session``)."""

    users_configured: bool
    authenticated: bool
    user: str | None = None
    name: str | None = None
    role: Literal["viewer", "duty_manager", "admin"] | None = None
    via: Literal["token", "session"] | None = None
    csrf_token: str | None = Field(
        default=None, description="Send as X-CSRF-Token on cookie-authenticated changes."
    )
    expires_at: datetime | None = None


class Health(BaseModel):
    """``GET /healthz``."""

    status: str
    version: str | None = None
