"""The loaded, checked configuration, as the rest of the daemon uses it.

The loader (``risingtide.config.loader``) turns YAML into these frozen values: every
threshold already resolved against its line's target, every duration a ``timedelta``,
every calendar a ``Calendar`` with bank holidays as dates, every plugin block validated by
its plugin's own model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from risingtide.domain.demand_calendar import DemandEvent
from risingtide.domain.model import Calendar, Framework
from risingtide.domain.people import Directory


@dataclass(frozen=True, slots=True)
class LineConfig:
    """One call line: its framework (thresholds resolved for its target), hours, source."""

    id: str
    name: str
    target_wait: float
    framework: Framework
    calendar: Calendar
    source: str
    source_params: BaseModel
    #: Seconds of handle time to plan with where the platform gives none (``handle_time:``).
    handle_time: float | None = None
    #: How far ahead its ``forecast_wait`` conditions look, seconds (None: none does).
    forecast_within: float | None = None


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One source under ``sources:``; its lines are those whose ``source.use`` names it."""

    id: str
    type: str
    interval: timedelta
    timeout: timedelta
    jitter: timedelta
    settings: BaseModel


@dataclass(frozen=True, slots=True)
class ResponseConfig:
    """One response under ``responses:``."""

    id: str
    type: str
    settings: BaseModel
    undoable: bool
    #: Another response to run when this one is given up on (e.g. email when SMS fails).
    fallback: str | None = None
    #: Groups and people (ids) a notification pages; the rota picks who is on duty.
    page: tuple[str, ...] = ()
    #: How long a notification waits for other lines' orders, to go out as one message.
    group_wait: timedelta = timedelta(0)
    #: At most ``count`` runs per ``period`` (None: no limit of its own).
    rate_limit: tuple[int, timedelta] | None = None
    #: What people read for it on the board ("Call-back offered"); "" means the id in words.
    title: str = ""

    @property
    def label(self) -> str:
        """The response's title, or its id in words (``callback_on`` reads "Callback on")."""
        return self.title or humanise(self.id)


def humanise(identifier: str) -> str:
    """An id in words: ``page_surge_staff`` reads "Page surge staff"."""
    words = identifier.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The daemon's HTTP listener, store, logging, and what signs cookies and links.

    ``secret_key`` and ``database`` (whose URL may hold a password) are kept out of
    ``repr`` so that a logged config never shows them.
    ``public_url`` is None when not configured (links then use the listen address).
    """

    host: str = "127.0.0.1"
    port: int = 9470
    state_file: Path = Path("state/rising-tide.sqlite")
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    evaluate_every: timedelta = timedelta(seconds=5)
    secret_key: str | None = field(default=None, repr=False)
    public_url: str | None = None
    ack_link_ttl: timedelta = timedelta(hours=24)
    #: History older than this is deleted (hourly); a year and a day by default.
    history_retention: timedelta = timedelta(days=366)
    #: Label the tier-transition and response-run counters by line too (small centres only).
    per_line_counters: bool = False
    #: The PostgreSQL database replicas share (``postgresql://…``), or None for the SQLite
    #: ``state_file``. Out of ``repr``: the URL may hold the database's password.
    database: str | None = field(default=None, repr=False)
    #: How many parts the lines are shared out in, each with its own lease (1..256).
    partitions: int = 1
    #: How long a replica's lead lasts without renewal.
    lease: timedelta = timedelta(seconds=10)


#: The roles, least to most powerful; each may do everything the ones before it may.
ROLES = ("viewer", "duty_manager", "admin")


@dataclass(frozen=True, slots=True)
class UserConfig:
    """One user of the board and the API.

    ``id`` is the key under ``users:`` (what they type to sign in); ``name`` is what the
    history records as ``by``. ``token_hashes`` are ``sha256:<hex>`` of their API tokens.
    Credentials stay out of ``repr``.
    """

    id: str
    name: str
    role: str  # one of ROLES
    password_hash: str | None = field(default=None, repr=False)
    token_hashes: frozenset[str] = field(default=frozenset(), repr=False)

    def may(self, role: str) -> bool:
        """True when this user's role includes everything ``role`` may do."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """One report under ``reports:``: due each ``weekday`` (0 is Monday) at ``at`` in
    ``timezone``, sent through ``responses`` (notifications); see ``risingtide.weekly``."""

    id: str
    weekday: int
    at: time
    timezone: ZoneInfo
    responses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DemandFeed:
    """One iCalendar feed under ``demand_feeds:``: where it is, and what its events mean.

    Each VEVENT becomes a copy of ``template`` with the VEVENT's summary, start and end
    (times without a zone in ``timezone``).
    """

    where: str  # a file path, or an http(s) URL
    is_url: bool
    template: DemandEvent
    timezone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, valid configuration."""

    path: Path
    server: ServerConfig
    lines: Mapping[str, LineConfig]
    sources: Mapping[str, SourceConfig]
    responses: Mapping[str, ResponseConfig]
    warnings: tuple[str, ...] = field(default=())
    users: Mapping[str, UserConfig] = field(default_factory=dict)
    #: ``people:`` and ``groups:``: who notifications reach.
    directory: Directory = field(default_factory=Directory)
    #: ``reports:``: summaries sent on a schedule.
    reports: Mapping[str, ReportConfig] = field(default_factory=dict)
    #: ``demand:`` — the demand calendar's events (relative ones not yet resolved).
    demand: tuple[DemandEvent, ...] = ()
    #: ``demand_feeds:`` — iCalendar files and URLs read at start and reload.
    demand_feeds: tuple[DemandFeed, ...] = ()

    def lines_of(self, source_id: str) -> dict[str, LineConfig]:
        """The lines bound to a source, by line id."""
        return {k: v for k, v in self.lines.items() if v.source == source_id}

    @property
    def switches(self) -> frozenset[str]:
        """The responses that change the world and are undone on the way down."""
        return frozenset(k for k, v in self.responses.items() if v.undoable)
