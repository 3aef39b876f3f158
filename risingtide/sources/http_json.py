"""The ``http_json`` source: any wallboard or in-house feed that serves queue figures as JSON.

One request fetches every line (preferred): ``lines_at`` says where the per-line records
are in the response — a list (matched on ``key``, a path inside each record) or an object
keyed by queue id — and each line's ``queue`` picks its record. When the URL contains
``{queue}``, the source instead sends one request per line (concurrently, bounded), with
the line's queue put into the URL (and into any text of a POST ``body``).

``map`` says, for each ``QueueStats`` figure, where it is in a record and in what unit::

    map:
      calls_waiting: stats.waiting                      # a JSON path: dots and [index]
      avg_wait: { path: stats.avgWaitMs, unit: ms }     # s | ms | min → seconds
      offered: totals.offered
      abandon_rate: { path: totals.abandonedPct, unit: percent }   # abandoned = rate × offered
      at: $.generatedAt                                 # $ = from the whole response

JSON paths are parsed by hand (``parse_json_path``; never ``eval``) when the config is
loaded, so a malformed path is a config error with its file position. A path that does not
resolve in a response is a ``SourceError(reason="parse")`` naming the line, the figure, the
path and the exact place it stopped; JSON ``null`` (and NaN or infinity) means "unknown".

HTTP goes through ``PlatformClient`` (retries, ``Retry-After``, 401 re-authentication and
classified errors, see ``risingtide.sources.webclient``). The auth settings, ``BearerAuth``
and the value helpers here are shared with the ``prometheus`` source.

See ``docs/sources/http_json.md`` for a worked example.
"""

from __future__ import annotations

import asyncio
import difflib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from risingtide.clock import Clock
from risingtide.config.errors import show
from risingtide.config.schema import PositiveDuration, TimeZone, config_error
from risingtide.domain.model import MEASURES, QueueStats
from risingtide.httpauth import AuthSettings, build_auth, http_url
from risingtide.ports import (
    BuildContext,
    PollResult,
    SourceError,
    SourcePlugin,
    StatsSource,
    lines_as,
    settings_as,
)
from risingtide.sources.webclient import BearerAuth, PlatformClient, RetryPolicy

# Re-exported: the prometheus source reads its auth block the same way.
__all__ = ["AuthSettings", "BearerAuth", "build_auth", "http_url"]

# --------------------------------------------------------------------------- JSON paths

_PATH_HINT = "write e.g. data.queues[0].waiting"
_NAME = re.compile(r"[^.\[\]\s'\"]+")
_INDEX = re.compile(r"-?[0-9]+")


#: From how many lines one document is mapped in a worker thread rather than on the loop.
MAP_IN_THREAD_FROM = 1000


class PathError(Exception):
    """A JSON path that does not resolve in a payload; the message says where it stopped."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed JSON path: keys (``str``) and list indexes (``int``) from its start.

    ``absolute`` paths (written from ``$``) start at the whole response; the others start at
    the record they are read in.
    """

    text: str
    steps: tuple[str | int, ...]
    absolute: bool = False

    def __str__(self) -> str:
        """The path as written."""
        return self.text

    def resolve(self, root: Any, start: Any, start_at: str) -> Any:
        """The value at this path, from ``root`` (absolute) or ``start`` (named ``start_at``).

        ``null`` anywhere on the way gives None (unknown). A missing key, an index out of
        range or a step into the wrong kind of value raises ``PathError``.
        """
        node = root if self.absolute else start
        for done, step in enumerate(self.steps):
            if node is None:
                return None
            if isinstance(step, str):
                if not isinstance(node, dict):
                    here = self._here(start_at, done)
                    raise PathError(f"{here or '$'} is {_kind(node)}, not an object")
                if step not in node:
                    here = self._here(start_at, done)
                    raise PathError(f'{here or "$"} has no "{step}"{_close(step, node)}')
                node = node[step]
            else:
                if not isinstance(node, list):
                    here = self._here(start_at, done)
                    raise PathError(f"{here or '$'} is {_kind(node)}, not a list")
                try:
                    node = node[step]
                except IndexError:
                    here = self._here(start_at, done)
                    raise PathError(
                        f"{here or '$'} has {len(node)} item(s), so no [{step}]"
                    ) from None
        return node

    def _here(self, start_at: str, done: int) -> str:
        """Where the walk stands after its first ``done`` steps, written as a path (for
        messages only: worked out when one is needed, not at every step of every poll)."""
        here = "$" if self.absolute else start_at
        for step in self.steps[:done]:
            here = join_path(here, step)
        return here


def join_path(base: str, step: str | int) -> str:
    """``base`` one step further, written as a path: ``a.b``, ``a[0]``, ``a["x y"]``."""
    if isinstance(step, int):
        return f"{base}[{step}]"
    if not _NAME.fullmatch(step):
        return f'{base}["{step}"]'
    return f"{base}.{step}" if base and base != "$" else (f"$.{step}" if base else step)


def parse_json_path(value: object) -> JsonPath:
    """Read a JSON path: ``data.queues[0].stats.waiting``, ``$.generated``, ``["Calls Waiting"]``.

    Names are separated by dots; ``[n]`` indexes a list (``[-1]`` is the last item);
    ``["any text"]`` is a key with dots or spaces in it; a leading ``$`` starts at the whole
    response (``$`` alone is the response itself). Raises ``ValueError`` saying what is
    wrong and where.
    """
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a JSON path ({_PATH_HINT})")
    text = value
    if not text:
        raise ValueError(f"a JSON path must not be empty ($ is the whole response; {_PATH_HINT})")

    def bad(pos: int, why: str) -> ValueError:
        return ValueError(
            f'"{text}" is not a JSON path: {why} at character {pos + 1} ({_PATH_HINT})'
        )

    steps: list[str | int] = []
    absolute = text.startswith("$")
    pos = 1 if absolute else 0
    expect = "first"  # first: a name or [; name: a name (after a dot); after: . or [ or the end
    if absolute and pos < len(text):
        if text[pos] == ".":
            pos += 1
            expect = "name"
        elif text[pos] != "[":
            raise bad(pos, "expected . or [ after $")
    while pos < len(text):
        char = text[pos]
        if char == "[":
            if expect == "name":
                raise bad(pos, "expected a name after the dot")
            if text[pos + 1 : pos + 2] in ("'", '"'):
                quote_char = text[pos + 1]
                end = text.find(quote_char, pos + 2)
                if end < 0:
                    raise bad(pos + 1, "unclosed quote")
                if text[end + 1 : end + 2] != "]":
                    raise bad(end + 1, "expected ] after the quoted name")
                if end == pos + 2:
                    raise bad(pos + 1, "empty quoted name")
                steps.append(text[pos + 2 : end])
                pos = end + 2
            else:
                close = text.find("]", pos)
                if close < 0:
                    raise bad(pos, "unclosed [")
                inner = text[pos + 1 : close]
                if not _INDEX.fullmatch(inner):
                    raise bad(
                        pos + 1, f'[{inner}] is not an index (use [0], or ["name"] for a key)'
                    )
                steps.append(int(inner))
                pos = close + 1
            expect = "after"
        elif char == ".":
            if expect != "after":
                raise bad(pos, "empty name")
            pos += 1
            expect = "name"
        else:
            if expect == "after":
                raise bad(pos, f'expected . or [ before "{char}"')
            match = _NAME.match(text, pos)
            if match is None:
                raise bad(pos, f'unexpected "{char}" (quote such names: ["a name"])')
            steps.append(match.group())
            pos = match.end()
            expect = "after"
    if expect == "name":
        raise bad(len(text) - 1, "the path ends with a dot")
    return JsonPath(text, tuple(steps), absolute)


def _json_path(value: Any) -> JsonPath:
    if isinstance(value, JsonPath):
        return value
    try:
        return parse_json_path(value)
    except ValueError as exc:
        raise config_error(str(exc)) from None


#: A pydantic field type for a JSON path, checked when the config is loaded.
JsonPathField = Annotated[JsonPath, PlainValidator(_json_path)]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def _close(word: str, node: dict[str, Any]) -> str:
    keys = [k for k in node if isinstance(k, str)]
    close = difflib.get_close_matches(word, keys, n=1, cutoff=0.6)
    if close:
        return f' (did you mean "{close[0]}"?)'
    if len(keys) <= 8:
        return f" (it has: {', '.join(keys)})" if keys else " (it is empty)"
    return ""


# --------------------------------------------------------------------------- figures

#: The counts of ``QueueStats`` (whole numbers).
COUNT_FIELDS: Final = (
    "calls_waiting",
    "agents_available",
    "agents_staffed",
    "offered",
    "answered",
    "abandoned",
)
#: The durations of ``QueueStats`` (seconds).
TIME_FIELDS: Final = ("avg_wait", "longest_wait", "avg_handle_time")
#: Ratios a feed may give instead of counts: ``abandoned = round(abandon_rate × offered)``.
RATE_FIELDS: Final = {"abandon_rate": "abandoned", "answered_rate": "answered"}
#: Factors that turn a time in the named unit into seconds.
TIME_UNITS: Final = {"s": 1.0, "ms": 0.001, "min": 60.0}
#: Factors that turn a rate in the named unit into a ratio 0–1.
RATIO_UNITS: Final = {"ratio": 1.0, "percent": 0.01}


def to_number(value: Any) -> float | None:
    """A JSON value as a float: numbers and numeric text; None for null, NaN and infinities.

    Raises ``ValueError`` naming the value for anything else (true/false, words, objects).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"is {_shown(value)}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"is {_shown(value)}, not a number") from None
    return number if math.isfinite(number) else None


def compose_stats(
    line: str,
    at: datetime,
    values: Mapping[str, float | None],
    window: float | None,
    *,
    round_counts: bool,
) -> QueueStats:
    """``QueueStats`` from figures already in seconds, counts and ratios.

    Counts must be whole numbers unless ``round_counts`` (Prometheus' ``increase()``
    extrapolates, so its counts are rounded); nothing may be negative and no ratio above 1.
    A rate becomes a count: ``abandoned = abandon_rate × offered`` (unknown while
    ``offered`` is), to the nearest whole number, halves up. Raises ``ValueError`` with
    ``FIELD …: why`` for the first bad figure.
    """
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if value < 0:
            raise ValueError(f"{name} is {_num(value)}; it cannot be negative")
        if name in RATE_FIELDS:
            if value > 1:
                raise ValueError(
                    f"{name} is {_num(value)}, above 1 (a ratio is 0–1; "
                    "for a percentage set unit: percent)"
                )
            continue  # turned into a count below, once offered is known
        if name in COUNT_FIELDS:
            whole = math.floor(value + 0.5)
            if not round_counts and abs(value - whole) > 1e-9:
                raise ValueError(f"{name} is {_num(value)}, not a whole number")
            out[name] = whole
        else:
            out[name] = value
    for rate, count in RATE_FIELDS.items():
        ratio = values.get(rate)
        offered = out.get("offered")
        if ratio is not None and offered is not None and ratio <= 1:
            out[count] = math.floor(ratio * offered + 0.5)  # half up, as people round
    return QueueStats(line=line, at=at, window=window, **out)


def _num(value: float) -> str:
    return f"{value:g}"


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return _kind(value)
    text = repr(value) if isinstance(value, str) else str(value).lower()
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- auth


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


#: ``GET`` or ``POST``, in any case.
Method = Annotated[Literal["GET", "POST"], BeforeValidator(_upper)]


# --------------------------------------------------------------------------- the mapping


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: JsonPathField


def _unit(allowed: tuple[str, ...], what: str) -> BeforeValidator:
    """A check of ``unit`` whose message says which units this kind of figure takes."""

    def check(value: Any) -> Any:
        if value not in allowed:
            if allowed == ("count",):
                raise ValueError(f"{show(value)}: {what} takes no unit (leave unit out)")
            choices = ", ".join(allowed[:-1]) + " or " + allowed[-1]
            raise ValueError(f"{show(value)} is not {what} (use {choices})")
        return value

    return BeforeValidator(check)


class CountSpec(_Spec):
    """Where a count is: ``{path}`` (a count takes no unit)."""

    unit: Annotated[Literal["count"], _unit(("count",), "a count")] = "count"


class TimeSpec(_Spec):
    """Where a duration is, and its unit: ``s`` (default), ``ms`` or ``min``."""

    unit: Annotated[Literal["s", "ms", "min"], _unit(("s", "ms", "min"), "a time unit")] = "s"


class RateSpec(_Spec):
    """Where a rate is, and its unit: ``ratio`` (0–1, default) or ``percent`` (0–100)."""

    unit: Annotated[Literal["ratio", "percent"], _unit(("ratio", "percent"), "a rate unit")] = (
        "ratio"
    )


class AtSpec(_Spec):
    """Where the figures' timestamp is: ISO 8601 text, or epoch seconds/milliseconds.

    ``unit`` applies to epoch numbers; ``timezone`` to ISO text written without an offset.
    """

    unit: Annotated[Literal["s", "ms"], _unit(("s", "ms"), "an epoch unit")] = "s"
    timezone: TimeZone | None = None


def _shorthand(value: Any) -> Any:
    # ``avg_wait: stats.avgWait`` is short for ``avg_wait: {path: stats.avgWait}``.
    return {"path": value} if isinstance(value, str) else value


Count = Annotated[CountSpec | None, BeforeValidator(_shorthand)]
Time = Annotated[TimeSpec | None, BeforeValidator(_shorthand)]
Rate = Annotated[RateSpec | None, BeforeValidator(_shorthand)]
At = Annotated[AtSpec | None, BeforeValidator(_shorthand)]


class FieldMap(BaseModel):
    """For each figure, where it is in a record (a path, or ``{path, unit}``).

    Give ``abandoned`` *or* ``abandon_rate`` (and ``answered`` or ``answered_rate``), not
    both: a rate is turned into a count with ``offered``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls_waiting: Count = None
    avg_wait: Time = None
    longest_wait: Time = None
    agents_available: Count = None
    agents_staffed: Count = None
    offered: Count = None
    answered: Count = None
    abandoned: Count = None
    abandon_rate: Rate = None
    answered_rate: Rate = None
    avg_handle_time: Time = None
    at: At = None

    @model_validator(mode="after")
    def _one_of_each_pair(self) -> FieldMap:
        for rate, count in RATE_FIELDS.items():
            if getattr(self, rate) is not None and getattr(self, count) is not None:
                raise ValueError(
                    f"give {count} or {rate}, not both ({count} = round({rate} × offered))"
                )
        return self


def merge_maps(base: FieldMap, override: FieldMap | None) -> dict[str, _Spec]:
    """The line's mapping: the source's, with the keys the line sets replacing its own.

    A line's ``null`` removes a figure; a line's ``abandoned`` replaces the source's
    ``abandon_rate`` too (they fill the same figure), and likewise for ``answered``.
    """
    merged: dict[str, _Spec] = {
        k: v for k in FieldMap.model_fields if (v := getattr(base, k)) is not None
    }
    if override is None:
        return merged
    for name in override.model_fields_set:
        for rate, count in RATE_FIELDS.items():
            if name in (rate, count):
                merged.pop(rate, None)
                merged.pop(count, None)
        spec = getattr(override, name)
        if spec is None:
            merged.pop(name, None)
        else:
            merged[name] = spec
    return merged


# --------------------------------------------------------------------------- settings


class HttpJsonSettings(BaseModel):
    """The ``http_json`` source's own block under ``sources:`` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    url: Annotated[str, Field(min_length=1)]
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    auth: AuthSettings | None = None
    request_budget: PositiveDuration = timedelta(seconds=8)
    lines_at: JsonPathField | None = None
    key: JsonPathField | None = None
    map: FieldMap
    window: PositiveDuration | None = None
    concurrency: int = Field(default=4, ge=1, le=32)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        http_url(value)
        for placeholder in re.findall(r"\{[^{}]*\}", value):
            if placeholder != "{queue}":
                raise ValueError(
                    f"{show(placeholder)} is not a placeholder; the only one is {{queue}}"
                )
        return value

    @field_validator("key")
    @classmethod
    def _key_relative(cls, value: JsonPath | None) -> JsonPath | None:
        if value is not None and value.absolute:
            raise ValueError(
                f"{show(value.text)}: key is read inside each record, so it cannot start with $"
            )
        return value

    @model_validator(mode="after")
    def _shape(self) -> HttpJsonSettings:
        if self.body is not None and self.method != "POST":
            raise ValueError("body is sent only with method: POST")
        if not self.per_line and self.lines_at is None:
            raise ValueError(
                "lines_at is required: say where the per-line records are in the response "
                "(or put {queue} in the url for one request per line)"
            )
        if self.key is not None and self.lines_at is None:
            raise ValueError("key needs lines_at (the list or object of records it is read in)")
        if not set(merge_maps(self.map, None)) - {"at"}:
            raise ValueError("map must map at least one figure (e.g. calls_waiting, avg_wait)")
        for rate in RATE_FIELDS:
            if getattr(self.map, rate) is not None and self.map.offered is None:
                raise ValueError(
                    f"map.{rate} needs map.offered: {RATE_FIELDS[rate]} = round({rate} × offered)"
                )
        return self

    @property
    def per_line(self) -> bool:
        """True when the URL holds ``{queue}``: one request per line."""
        return "{queue}" in self.url


class HttpJsonLine(BaseModel):
    """A line's ``source:`` block for an ``http_json`` source.

    ``queue``: the value of ``key`` (or the object key) that is this line's record, or what
    ``{queue}`` in the URL becomes; by default the line's id. ``map``: figures mapped
    differently for this line (a key set to null removes a figure). ``window``: this line's
    window, if not the source's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    queue: Annotated[str, Field(min_length=1)] | None = None
    map: FieldMap | None = None
    window: PositiveDuration | None = None


# --------------------------------------------------------------------------- reading records


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the source reads for one line."""

    line: str
    queue: str
    fields: tuple[tuple[str, JsonPath, float], ...]  # (figure, path, factor to base units)
    at: AtSpec | None
    window: float | None
    problem: str | None  # a mapping that cannot work (found when merging); reported per poll


#: What a plan reads, apart from whose line it is: (fields, at, window, problem).
_Shape = tuple[tuple[tuple[str, JsonPath, float], ...], AtSpec | None, float | None, str | None]


def _plans(settings: HttpJsonSettings, lines: Mapping[str, HttpJsonLine]) -> list[_Plan]:
    """Every line's plan; lines that map nothing of their own share one worked-out shape."""
    shared: dict[timedelta | None, _Shape] = {}
    plans: list[_Plan] = []
    for line, params in lines.items():
        if params.map is None:
            shape = shared.get(params.window)
            if shape is None:
                shape = shared[params.window] = _shape(settings, params)
        else:
            shape = _shape(settings, params)
        fields, at, window, problem = shape
        queue = params.queue if params.queue is not None else line
        plans.append(_Plan(line, queue, fields, at, window, problem))
    return plans


def _shape(settings: HttpJsonSettings, params: HttpJsonLine) -> _Shape:
    merged = merge_maps(settings.map, params.map)
    fields: list[tuple[str, JsonPath, float]] = []
    for name, spec in merged.items():
        if isinstance(spec, TimeSpec):
            fields.append((name, spec.path, TIME_UNITS[spec.unit]))
        elif isinstance(spec, RateSpec):
            fields.append((name, spec.path, RATIO_UNITS[spec.unit]))
        elif isinstance(spec, CountSpec):
            fields.append((name, spec.path, 1.0))
    at = merged.get("at")
    problem = None
    for rate, count in RATE_FIELDS.items():
        if rate in merged and "offered" not in merged:
            problem = f"{rate} is mapped but offered is not, so {count} cannot be worked out"
    window = params.window or settings.window
    return (
        tuple(fields),
        at if isinstance(at, AtSpec) else None,
        window.total_seconds() if window is not None else None,
        problem,
    )


def read_record(plan: _Plan, payload: Any, record: Any, where: str, now: datetime) -> QueueStats:
    """The line's ``QueueStats`` from its ``record`` (found at ``where`` in ``payload``).

    Raises ``SourceError(reason="parse")`` naming the line, the figure and the path.
    """
    values: dict[str, float | None] = {}
    for name, path, factor in plan.fields:
        raw = _resolve(plan, name, path, payload, record, where)
        try:
            number = to_number(raw)
        except ValueError as exc:
            raise _parse_error(plan.line, f"{name} ({path}) {exc}") from None
        values[name] = None if number is None else number * factor
    at = now
    if plan.at is not None:
        raw = _resolve(plan, "at", plan.at.path, payload, record, where)
        if raw is not None:
            try:
                at = parse_timestamp(raw, plan.at.unit, plan.at.timezone)
            except ValueError as exc:
                raise _parse_error(plan.line, f"at ({plan.at.path}) {exc}") from None
    try:
        return compose_stats(plan.line, at, values, plan.window, round_counts=False)
    except ValueError as exc:
        raise _parse_error(plan.line, str(exc)) from None


def _resolve(plan: _Plan, name: str, path: JsonPath, payload: Any, record: Any, where: str) -> Any:
    try:
        return path.resolve(payload, record, where)
    except PathError as exc:
        raise _parse_error(plan.line, f'{name}: path "{path}" not found: {exc}') from None


def parse_timestamp(raw: Any, unit: str = "s", tz: ZoneInfo | None = None) -> datetime:
    """A feed's timestamp as an aware UTC datetime.

    ISO 8601 text (``2026-01-05T09:00:00Z``, ``…+01:00``; without an offset only when ``tz``
    says which zone it is in), or an epoch number (or numeric text) in ``unit`` ``s``/``ms``.
    Raises ``ValueError`` saying why not.
    """
    if isinstance(raw, str) and not _looks_numeric(raw):
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(
                f"is {_shown(raw)}, not a timestamp (ISO 8601 such as "
                "2026-01-05T09:00:00Z, or epoch seconds)"
            ) from None
        if when.tzinfo is None:
            if tz is None:
                raise ValueError(
                    f"is {_shown(raw)}, which has no UTC offset (set the timezone it is in, "
                    "e.g. at: {path: ..., timezone: Europe/London})"
                )
            when = when.replace(tzinfo=tz)
        return when.astimezone(UTC)
    number = to_number(raw)
    if number is None:
        raise ValueError(f"is {_shown(raw)}, not a timestamp")
    if unit == "s" and number > 1e11:
        raise ValueError(f"is {_num(number)}, which looks like milliseconds (set unit: ms)")
    seconds = number / 1000 if unit == "ms" else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"is {_num(number)}, out of range for a timestamp") from None


def _looks_numeric(text: str) -> bool:
    return text.strip().replace(".", "", 1).isdigit()


def _parse_error(line: str, message: str) -> SourceError:
    return SourceError(f'line "{line}": {message}', reason="parse", retryable=False)


def key_text(value: Any) -> str | None:
    """A record's key as text for matching a line's ``queue`` (numbers as written)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return None


# --------------------------------------------------------------------------- the source


class HttpJsonSource:
    """Polls one JSON feed (or one request per line) and maps its records to ``QueueStats``."""

    def __init__(
        self,
        name: str,
        settings: HttpJsonSettings,
        lines: Mapping[str, HttpJsonLine],
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Serve ``lines``; ``policy`` replaces the default retries (tests make them quick)."""
        self.name = name
        self.settings = settings
        self._clock = clock
        self._plans = _plans(settings, lines)
        self._client = PlatformClient(
            name, auth=build_auth(settings.auth, clock), headers=settings.headers, policy=policy
        )
        self.requests = 0

    async def poll(self) -> PollResult:
        """Fetch and map every line (see the module docstring)."""
        now = self._clock.now()
        if self.settings.per_line:
            return await self._poll_per_line(now)
        payload = await self._fetch(self.settings.url, self.settings.body)
        if len(self._plans) >= MAP_IN_THREAD_FROM:
            # Thousands of lines take a second or more to map: in a worker thread the event
            # loop still answers /healthz and runs other sources' polls meanwhile.
            return await asyncio.to_thread(self._map, payload, now)
        return self._map(payload, now)

    def _map(self, payload: Any, now: datetime) -> PollResult:
        """Every line's figures from one document (pure: safe in a worker thread)."""
        records = self._index(payload)
        if isinstance(records, SourceError):
            raise records  # the feed's shape is wrong for every line alike
        result: dict[str, QueueStats | SourceError] = {}
        for plan in self._plans:
            result[plan.line] = self._line(plan, payload, records, now)
        return result

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    # -------------------------------------------------------------- helpers

    async def _fetch(self, url: str, body: Any, deadline: float | None = None) -> Any:
        budget = self.settings.request_budget.total_seconds()
        if deadline is not None:
            budget = max(0.0, deadline - time.monotonic())
        self.requests += 1
        return await self._client.json(self.settings.method, url, budget=budget, json=body)

    def _index(self, payload: Any) -> dict[str, tuple[str, Any] | None] | SourceError:
        """Records by queue, each with where it is (None for a queue found more than once);
        or why the records cannot be found."""
        lines_at = self.settings.lines_at
        if lines_at is None:  # one request per line: the response is the record
            return {}
        try:
            container = lines_at.resolve(payload, payload, "")
        except PathError as exc:
            return SourceError(
                f'lines_at: path "{lines_at}" not found: {exc}', reason="parse", retryable=False
            )
        base = "" if lines_at.text == "$" else lines_at.text.removeprefix("$.")
        key = self.settings.key
        items: list[tuple[str | int, Any]]
        if isinstance(container, list):
            if key is None:
                return SourceError(
                    f'lines_at "{lines_at}" is a list: set key to the field of each record '
                    "that names its queue (e.g. key: id)",
                    reason="parse",
                    retryable=False,
                )
            items = list(enumerate(container))
        elif isinstance(container, dict):
            items = list(container.items())
        else:
            return SourceError(
                f'lines_at "{lines_at}" is {_kind(container)}, not a list or an object of records',
                reason="parse",
                retryable=False,
            )
        records: dict[str, tuple[str, Any] | None] = {}
        for step, record in items:
            where = join_path(base, step) if base else join_path("$", step)
            if key is None:
                queue = str(step)
            else:
                try:
                    queue_value = key.resolve(payload, record, where)
                except PathError:
                    continue  # a record without the key is not one of ours
                found = key_text(queue_value)
                if found is None:
                    continue
                queue = found
            # Two records for one queue: which is right is a guess, so the line fails instead.
            records[queue] = None if queue in records else (where, record)
        return records

    def _line(
        self,
        plan: _Plan,
        payload: Any,
        records: dict[str, tuple[str, Any] | None] | SourceError,
        now: datetime,
    ) -> QueueStats | SourceError:
        if plan.problem is not None:
            return SourceError(
                f'line "{plan.line}": {plan.problem}', reason="config", retryable=False
            )
        if isinstance(records, SourceError):
            return SourceError(f'line "{plan.line}": {records}', reason="parse", retryable=False)
        if self.settings.lines_at is None:
            found: tuple[str, Any] | None = ("", payload)
        else:
            found = records.get(plan.queue)
        if found is None:
            by = f" by {self.settings.key}" if self.settings.key is not None else ""
            what = "more than one record" if plan.queue in records else "no record"
            return _parse_error(
                plan.line,
                f'{what} for queue "{plan.queue}" in {self.settings.lines_at}{by}',
            )
        where, record = found
        try:
            return read_record(plan, payload, record, where, now)
        except SourceError as exc:
            return exc

    async def _poll_per_line(self, now: datetime) -> PollResult:
        deadline = time.monotonic() + self.settings.request_budget.total_seconds()
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(plan: _Plan) -> QueueStats | SourceError:
            if plan.problem is not None:
                return SourceError(
                    f'line "{plan.line}": {plan.problem}', reason="config", retryable=False
                )
            url = self.settings.url.replace("{queue}", quote(plan.queue, safe=""))
            body = _fill(self.settings.body, plan.queue)
            try:
                async with gate:
                    payload = await self._fetch(url, body, deadline)
            except SourceError as exc:
                if exc.reason == "parse":
                    return _parse_error(plan.line, str(exc))
                return exc
            return self._line(plan, payload, self._index(payload), now)

        results = await asyncio.gather(*(one(p) for p in self._plans))
        failures = [r for r in results if isinstance(r, SourceError)]
        # Every request failing, none for its own content, is the platform down: say so once.
        if (
            failures
            and len(failures) == len(results)
            and all(f.reason not in ("parse", "config") for f in failures)
        ):
            raise failures[0]
        return {plan.line: r for plan, r in zip(self._plans, results, strict=True)}


def _fill(body: Any, queue: str) -> Any:
    """``body`` with ``{queue}`` replaced in every text (keys and values)."""
    if isinstance(body, str):
        return body.replace("{queue}", queue)
    if isinstance(body, list):
        return [_fill(v, queue) for v in body]
    if isinstance(body, dict):
        return {_fill(k, queue): _fill(v, queue) for k, v in body.items()}
    return body


def _build(
    name: str, settings: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext
) -> StatsSource:
    settings = settings_as(HttpJsonSettings, settings, f"http_json {name!r}")
    own = lines_as(HttpJsonLine, lines, f"http_json {name!r}")
    return HttpJsonSource(name, settings, own, ctx.clock)


PLUGIN = SourcePlugin(
    type="http_json",
    settings_model=HttpJsonSettings,
    line_model=HttpJsonLine,
    build=_build,
    provides=frozenset(MEASURES),
    description="Any JSON feed (wallboard, in-house API): figures mapped by JSON paths.",
)
