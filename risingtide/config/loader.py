"""Load a YAML config into a checked ``Config``, or say everything that is wrong with it.

The steps, each reporting into one ``Report`` so that every mistake is found in one pass::

    read file ─▶ parse YAML (positions, ${VAR}) ─▶ validate each block (pydantic)
              ─▶ cross-block checks (references, tiers, hysteresis, timings)
              ─▶ compile (thresholds per line, calendars, plugin models) ─▶ Config

Each block (one line, one framework, one source…) is validated on its own, so one broken
block never hides mistakes elsewhere, and checks that need a block simply skip it when it
was broken (its own errors are already reported). Plugins are looked up in
``SOURCE_TYPES``/``RESPONDER_TYPES`` at call time, since those tables grow.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from risingtide.config.calendars import CalendarError, bank_holidays, parse_days, week
from risingtide.config.demand import Known, compile_demand, compile_feeds
from risingtide.config.document import Document, Path, parse_document
from risingtide.config.durations import format_duration
from risingtide.config.envvars import redact
from risingtide.config.errors import ConfigError, ConfigErrors, show, sort_errors
from risingtide.config.forecasts import check_forecasts, forecast_within
from risingtide.config.frameworks import (
    check_framework,
    check_hysteresis,
    compile_framework,
    measures_read,
    response_refs,
)
from risingtide.config.model import (
    Config,
    DemandFeed,
    LineConfig,
    ResponseConfig,
    ServerConfig,
    SourceConfig,
    UserConfig,
)
from risingtide.config.people import GroupBlock, PersonBlock, describe_gap
from risingtide.config.report import Report
from risingtide.config.reports import compile_reports, responses_named
from risingtide.config.schema import (
    REQUIRED_SECTIONS,
    RESPONSE_COMMON_KEYS,
    SECTIONS,
    SOURCE_COMMON_KEYS,
    CalendarBlock,
    DefaultsBlock,
    FrameworkBlock,
    FrameworkHead,
    LineBlock,
    ResponseBlock,
    ServerBlock,
    SourceBlock,
    TierBlock,
    UserBlock,
)
from risingtide.domain.demand_calendar import DemandEvent
from risingtide.domain.model import ALWAYS_OPEN, Calendar, Framework
from risingtide.domain.people import Directory, Group, Person, uncovered
from risingtide.gcpause import collector_paused
from risingtide.ports import ResponderPlugin, SourcePlugin

#: Ids become metric labels and URL parts, so they stay plain.
ID_PATTERN = re.compile(r"[a-z0-9_-]+")
DEFAULT_TARGET_WAIT = timedelta(seconds=180)
MIN_INTERVAL = timedelta(seconds=1)
MAX_TIMEOUT = timedelta(seconds=10)
MIB = 1024 * 1024
#: The largest config file read; a council's is tens of KiB (docs/configuration.md).
MAX_CONFIG_BYTES = 4 * MIB
#: Bank holidays are resolved from last year to five years ahead.
YEARS_BEFORE, YEARS_AFTER = 1, 5


def load_config(
    path: pathlib.Path | str,
    env: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
    source_types: Mapping[str, SourcePlugin] | None = None,
    responder_types: Mapping[str, ResponderPlugin] | None = None,
) -> Config:
    """Load and check the config at ``path``; raise ``ConfigErrors`` listing every error.

    ``env`` (default ``os.environ``) supplies ``${VAR}`` values; ``today`` (default: today,
    UTC) picks the years of bank holidays. ``source_types`` and ``responder_types`` replace
    the plugin tables (for tests); by default the packages' tables are used.
    """
    config, errors, _warnings = check_config(
        path, env, today=today, source_types=source_types, responder_types=responder_types
    )
    if config is None:
        raise ConfigErrors(errors)
    return config


def check_config(
    path: pathlib.Path | str,
    env: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
    source_types: Mapping[str, SourcePlugin] | None = None,
    responder_types: Mapping[str, ResponderPlugin] | None = None,
) -> tuple[Config | None, list[ConfigError], list[ConfigError]]:
    """Check the config at ``path``: ``(config or None, errors, warnings)``, each list sorted.

    The config is None exactly when there are errors. Warnings never stop a config from
    loading; they are also in ``Config.warnings`` as ``FILE:LINE:COL: warning: …``.
    """
    with collector_paused():  # many long-lived objects: see risingtide.gcpause
        return _check_config(
            path, env, today=today, source_types=source_types, responder_types=responder_types
        )


def _check_config(
    path: pathlib.Path | str,
    env: Mapping[str, str] | None,
    *,
    today: date | None,
    source_types: Mapping[str, SourcePlugin] | None,
    responder_types: Mapping[str, ResponderPlugin] | None,
) -> tuple[Config | None, list[ConfigError], list[ConfigError]]:
    file = str(path)
    text, problem = _read(file)
    if problem is not None or text is None:
        return None, [problem] if problem else [], []
    doc, parse_errors = parse_document(text, file, os.environ if env is None else env)
    if doc is None:
        return None, sort_errors(parse_errors), []
    if source_types is None or responder_types is None:
        # Imported here, not at the top: plugin modules may import config helpers.
        from risingtide.responders import RESPONDER_TYPES
        from risingtide.sources import SOURCE_TYPES

        source_types = SOURCE_TYPES if source_types is None else source_types
        responder_types = RESPONDER_TYPES if responder_types is None else responder_types
    report = Report(doc)
    report.errors.extend(parse_errors)
    compiler = _Compiler(
        report,
        today or datetime.now(UTC).date(),
        source_types,
        responder_types,
    )
    config = compiler.run(pathlib.Path(path))
    # A secret put in the wrong field must not be printed by the message about it.
    errors = _redacted(report.errors, doc.substituted)
    warnings = _redacted(report.warnings, doc.substituted)
    if errors or config is None:
        return None, errors, warnings
    return replace(config, warnings=tuple(str(w) for w in warnings)), [], warnings


def _redacted(problems: list[ConfigError], found: Mapping[str, str]) -> list[ConfigError]:
    """``problems`` sorted, each message with the substituted values in ``found`` hidden."""
    return sort_errors(replace(p, message=redact(p.message, found)) for p in problems)


def _read(file: str) -> tuple[str | None, ConfigError | None]:
    """The file's text, or why it cannot be read (at line 1, column 1).

    A file over ``MAX_CONFIG_BYTES`` is refused before it is parsed; only that much (and
    one byte) is ever read, whatever the file's size claims.
    """
    try:
        with pathlib.Path(file).open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                size = max(os.fstat(f.fileno()).st_size, len(data))
                return None, _too_large(file, size)
    except FileNotFoundError:
        return None, ConfigError(file, 1, 1, "file not found")
    except IsADirectoryError:
        return None, ConfigError(file, 1, 1, "this is a directory, not a config file")
    except PermissionError:
        return None, ConfigError(file, 1, 1, "permission denied: cannot read the file")
    except OSError as exc:
        return None, ConfigError(file, 1, 1, f"cannot read the file: {exc.strerror or exc}")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        return None, ConfigError(file, line, column, f"not UTF-8 text (byte 0x{byte:02x})")


def _too_large(file: str, size: int) -> ConfigError:
    mib = math.ceil(size * 10 / MIB) / 10  # rounded up: 4 MiB and a byte is not "4.0"
    return ConfigError(
        file, 1, 1,
        f"the config is {mib:.1f} MiB, more than the {MAX_CONFIG_BYTES // MIB} MiB allowed",
    )  # fmt: skip


def _handle_time(block: LineBlock, defaults: DefaultsBlock) -> float | None:
    """The line's ``handle_time:`` (or the defaults'), in seconds, or None."""
    handle = block.handle_time or defaults.handle_time
    return None if handle is None else handle.total_seconds()


def _text(value: Any) -> str | None:
    """``value`` if it is non-empty text, else None."""
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class _SourceRef:
    """Which source a line uses and its per-line parameters, with where each came from."""

    use: str | None
    use_path: Path
    params: dict[str, Any]
    origins: dict[str, Path]


class _Compiler:
    """One pass over a parsed document: validates, checks and compiles every section."""

    def __init__(
        self,
        report: Report,
        today: date,
        source_types: Mapping[str, SourcePlugin],
        responder_types: Mapping[str, ResponderPlugin],
    ) -> None:
        self.report = report
        self.doc: Document = report.doc
        self.years = (today.year - YEARS_BEFORE, today.year + YEARS_AFTER)
        self.source_types = source_types
        self.responder_types = responder_types
        self.calendars: dict[str, Calendar | None] = {}
        self.sources: dict[str, SourceConfig | None] = {}
        self.source_plugins: dict[str, SourcePlugin] = {}
        self.responses: dict[str, ResponseConfig | None] = {}
        self.people: dict[str, Person] = {}
        #: People whose own block has an error (already reported): known, but not built.
        self.broken_people: set[str] = set()
        self.groups: dict[str, Group | None] = {}
        self.frameworks: dict[str, FrameworkBlock | None] = {}
        self.defaults = DefaultsBlock()
        self.default_source: _SourceRef | None = None
        self.default_refs_ok = {"hours": True, "framework": True, "source": True}

    # ------------------------------------------------------------------ the whole file

    def run(self, path: pathlib.Path) -> Config | None:
        root = self.doc.data
        if not isinstance(root, dict):
            self.report.error(
                (),
                "the file must be a mapping of sections: " + ", ".join(SECTIONS),
            )
            return None
        for key in root:
            if key not in SECTIONS:
                self.report.unknown_key((), key, SECTIONS, what="section")
        for key in REQUIRED_SECTIONS:
            if key not in root:
                self.report.error((), f'missing required section "{key}"')
        server = self._server(root.get("server"))
        self._calendars(self._section(root, "calendars"))
        self._people(self._section(root, "people"))
        self._groups(self._section(root, "groups"))
        self._responses(self._section(root, "responses"))
        self._sources(self._section(root, "sources", required=True))
        self._frameworks(self._section(root, "frameworks", required=True))
        self._defaults(root.get("defaults"))
        lines = self._lines(self._section(root, "lines", required=True))
        report_section = self._section(root, "reports")
        reports = compile_reports(self.report, report_section, self.responses)
        written = root.get("lines")
        line_ids = set(written) if isinstance(written, dict) else set()
        known = Known(line_ids, set(self.responses), lines)
        demand = compile_demand(self.report, root.get("demand"), known)
        feeds = compile_feeds(self.report, root.get("demand_feeds"), known, path.parent)
        self._unused_responses(responses_named(report_section), demand, feeds)
        users = self._users(self._section(root, "users"))
        self._users_need_a_secret(root, users)
        if self.report.errors:
            return None
        return Config(
            path=path,
            server=server,
            lines=lines,
            sources={k: v for k, v in self.sources.items() if v is not None},
            responses={k: v for k, v in self.responses.items() if v is not None},
            users=users,
            directory=Directory(
                people=self.people,
                groups={k: v for k, v in self.groups.items() if v is not None},
            ),
            reports=reports,
            demand=demand,
            demand_feeds=feeds,
        )

    def _section(
        self, root: dict[str, Any], name: str, *, required: bool = False
    ) -> dict[str, Any]:
        """A section of ``id: block`` entries, with every id checked."""
        raw = root.get(name)
        if raw is None:
            if required and name in root:
                self._needs_one(name)
            return {}
        if not isinstance(raw, dict):
            self.report.error((name,), f"expected a mapping of id: settings, got {show(raw)}")
            return {}
        if required and not raw:
            self._needs_one(name)
        for key in raw:
            if not ID_PATTERN.fullmatch(key):
                self.report.error(
                    (name,),
                    f'"{key}" is not a valid id (use lower-case letters, digits, _ and -)',
                    pos=self.report.pos((name, key), key=True),
                )
        return raw

    def _needs_one(self, name: str) -> None:
        self.report.error(
            (name,),
            f"needs at least one {name.removesuffix('s')}",
            pos=self.report.pos((name,), key=True),
        )

    def _known(self, what: str, known: Mapping[str, object] | set[str], name: str) -> str:
        return f'unknown {what} "{name}" (known: {", ".join(sorted(known)) or "none"})'

    # ------------------------------------------------------------------ server, defaults

    def _server(self, raw: Any) -> ServerConfig:
        block = self.report.validate(ServerBlock, {} if raw is None else raw, ("server",))
        if block is None:
            return ServerConfig()
        host, port = block.listen
        return ServerConfig(
            host=host,
            port=port,
            state_file=pathlib.Path(block.state_file),
            log_format=block.log_format,
            log_level=block.log_level,
            evaluate_every=block.evaluate_every,
            secret_key=block.secret_key,
            public_url=block.public_url,
            ack_link_ttl=block.ack_link_ttl,
            history_retention=block.history_retention,
            per_line_counters=block.per_line_counters,
            database=block.database,
            partitions=block.partitions,
            lease=block.lease,
        )

    def _defaults(self, raw: Any) -> None:
        path: Path = ("defaults",)
        block = self.report.validate(DefaultsBlock, {} if raw is None else raw, path)
        if block is None:
            self.default_refs_ok = dict.fromkeys(self.default_refs_ok, False)
            return
        self.defaults = block
        if block.hours is not None and block.hours not in self.calendars:
            self.report.error(
                (*path, "hours"), self._known("calendar", self.calendars, block.hours)
            )
            self.default_refs_ok["hours"] = False
        if block.framework is not None and block.framework not in self.frameworks:
            self.report.error(
                (*path, "framework"), self._known("framework", self.frameworks, block.framework)
            )
            self.default_refs_ok["framework"] = False
        ref = self._source_ref(block.source, (*path, "source"))
        if ref is not None:
            if ref.use is None:
                self.report.missing_key((*path, "source"), "use")
                self.default_refs_ok["source"] = False
            elif ref.use not in self.sources:
                self.report.error(ref.use_path, self._known("source", self.sources, ref.use))
                self.default_refs_ok["source"] = False
        self.default_source = ref

    def _source_ref(self, raw: Any, path: Path) -> _SourceRef | None:
        """``source: demo`` or ``source: {use: demo, …}``; None when absent or malformed."""
        if raw is None:
            return None
        if isinstance(raw, str):
            return _SourceRef(raw, path, {}, {})
        if isinstance(raw, dict):
            use = raw.get("use")
            params = {k: v for k, v in raw.items() if k != "use"}
            if use is not None and not isinstance(use, str):
                self.report.error((*path, "use"), f"expected a source id, got {show(use)}")
                use = None
            return _SourceRef(use, (*path, "use"), params, dict.fromkeys(params, path))
        self.report.error(
            path,
            f"expected a source id or a mapping with use: (e.g. {{use: demo}}), got {show(raw)}",
        )
        return None

    # ------------------------------------------------------------------ calendars

    def _calendars(self, section: dict[str, Any]) -> None:
        self.calendars["always"] = ALWAYS_OPEN
        for cid, raw in section.items():
            path: Path = ("calendars", cid)
            if cid == "always":
                self.report.error(
                    ("calendars",),
                    '"always" is built in (open 24/7) and cannot be redefined',
                    pos=self.report.pos(path, key=True),
                )
                continue
            self.calendars[cid] = None
            block = self.report.validate(CalendarBlock, raw, path)
            raw_hours = raw.get("hours") if isinstance(raw, dict) else None
            day_keys: dict[str, tuple[int, ...]] = {}
            for key in raw_hours if isinstance(raw_hours, dict) else {}:
                try:
                    day_keys[key] = parse_days(key)
                except CalendarError as exc:
                    self.report.error(
                        (*path, "hours"),
                        str(exc),
                        pos=self.report.pos((*path, "hours", key), key=True),
                    )
            if block is None or len(day_keys) != len(block.hours):
                continue
            days = week((day_keys[key], hours) for key, hours in block.hours.items())
            closed = bank_holidays(block.bank_holidays, *self.years) | frozenset(block.closed_dates)
            self.calendars[cid] = Calendar(name=cid, tz=block.timezone, hours=days, closed=closed)
            if not any(days):
                self.report.warn(
                    path,
                    f'calendar "{cid}" has no opening hours at all; lines using it are never '
                    "evaluated",
                    pos=self.report.pos(path, key=True),
                )

    # ------------------------------------------------------------------ plugins

    def _split(
        self, raw: Any, path: Path, common: tuple[str, ...]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if not isinstance(raw, dict):
            self.report.error(path, f"expected a mapping (key: value), got {show(raw)}")
            return None
        return (
            {k: v for k, v in raw.items() if k in common},
            {k: v for k, v in raw.items() if k not in common},
        )

    def _responses(self, section: dict[str, Any]) -> None:
        for rid, raw in section.items():
            path: Path = ("responses", rid)
            self.responses[rid] = None
            split = self._split(raw, path, RESPONSE_COMMON_KEYS)
            if split is None:
                continue
            block = self.report.validate(ResponseBlock, split[0], path)
            kind = block.type if block is not None else _text(split[0].get("type"))
            if kind is None:
                continue
            plugin = self.responder_types.get(kind)
            if plugin is None:
                self.report.error(
                    (*path, "type"), self._known("response type", self.responder_types, kind)
                )
                continue
            settings = self.report.validate(
                plugin.settings_model, split[1], path, also_known=RESPONSE_COMMON_KEYS
            )
            if settings is not None and block is not None:
                undoable = plugin.undoable(settings)
                if not self._response_delivery(block, plugin, settings, undoable, path):
                    continue
                wait = block.group_wait
                self.responses[rid] = ResponseConfig(
                    id=rid,
                    type=block.type,
                    settings=settings,
                    undoable=undoable,
                    fallback=block.fallback,
                    page=tuple(block.page or ()),
                    group_wait=(
                        timedelta(0)
                        if undoable
                        else plugin.default_group_wait
                        if wait is None
                        else wait
                    ),
                    rate_limit=block.rate_limit or plugin.default_rate_limit,
                    title=block.title or "",
                )
        self._check_fallbacks()

    def _response_delivery(
        self,
        block: ResponseBlock,
        plugin: ResponderPlugin,
        settings: BaseModel,
        undoable: bool,
        path: Path,
    ) -> bool:
        """Check ``page`` and ``group_wait`` against the kind of response; False on an error."""
        ok = True
        if undoable:
            for key in ("page", "group_wait"):
                if getattr(block, key) is not None:
                    self.report.error(
                        (*path, key),
                        f"{key} is for notifications; this response is a switch, which runs "
                        "once per line and is undone on the way down",
                    )
                    ok = False
            return ok
        needs = plugin.address(settings)
        if needs is not None and not block.page and not getattr(settings, "to", None):
            self.report.error(
                path,
                f"needs someone to send to: page: [a group or person] or to: [{needs} addresses]",
                pos=self.report.pos(path, key=True),
            )
            ok = False
        for i, name in enumerate(block.page or ()):
            where: Path = (*path, "page", i)
            group = self.groups.get(name)
            if name in self.broken_people:
                ok = False
                continue
            if name not in self.groups and name not in self.people:
                known = sorted({*self.groups, *self.people})
                self.report.error(
                    where,
                    f'unknown group or person "{name}" (known: {", ".join(known) or "none"})',
                )
                ok = False
                continue
            if needs is None:
                continue
            ids = group.members if group is not None else (name,)
            lacking = [p for p in ids if p in self.people and self.people[p].address(needs) is None]
            if lacking:
                who = ", ".join(f'"{p}"' for p in lacking)
                inside = f' (in group "{name}")' if group is not None else ""
                self.report.error(
                    where,
                    f"{who}{inside} {'has' if len(lacking) == 1 else 'have'} no {needs}, and "
                    f"this {block.type} response sends to {needs}",
                )
                ok = False
        return ok

    # ------------------------------------------------------------------ people, groups

    def _people(self, section: dict[str, Any]) -> None:
        for pid, raw in section.items():
            block = self.report.validate(PersonBlock, raw, ("people", pid))
            if block is None:
                # Reported once here; a group or page naming them is not a second mistake.
                self.broken_people.add(pid)
            else:
                self.people[pid] = Person(
                    id=pid,
                    name=block.name,
                    email=block.email,
                    mobile=block.mobile,
                    teams=block.teams,
                    slack=block.slack,
                )

    def _groups(self, section: dict[str, Any]) -> None:
        for gid, raw in section.items():
            path: Path = ("groups", gid)
            self.groups[gid] = None
            if gid in self.people or gid in self.broken_people:
                self.report.error(
                    ("groups",),
                    f'"{gid}" is also a person\'s id; a page: entry must name one or the other',
                    pos=self.report.pos(path, key=True),
                )
                continue
            block = self.report.validate(GroupBlock, raw, path)
            if block is None:
                continue
            members = block.member_ids()
            ok = self._known_people(block.members or (), (*path, "members"))
            ok = self._known_people(block.otherwise or (), (*path, "otherwise")) and ok
            for i, shift in enumerate(block.rota):
                where: Path = (*path, "rota", i, "on_duty")
                ok = self._known_people(shift.on_duty, where) and ok
                strays = [p for p in shift.on_duty if p not in members]
                if strays and ok:
                    self.report.error(
                        where,
                        f'"{strays[0]}" is not a member of this group (add them to members:)',
                    )
                    ok = False
            if not ok:
                continue
            rota = tuple(shift.shift() for shift in block.rota)
            self.groups[gid] = Group(
                id=gid,
                name=block.name or gid.replace("_", " "),
                members=members,
                rota=rota,
                otherwise=block.otherwise,
                tz=block.timezone or ZoneInfo("Europe/London"),
            )
            gaps = uncovered(rota) if rota else []
            if gaps:
                shown = "; ".join(describe_gap(a, b) for a, b in gaps[:3])
                more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
                who = "everyone in the group" if block.otherwise is None else "otherwise:"
                self.report.warn(
                    (*path, "rota"),
                    f"no shift covers {shown}{more}; {who} is paged then",
                    pos=self.report.pos((*path, "rota"), key=True),
                )

    def _known_people(self, ids: tuple[str, ...], path: Path) -> bool:
        ok = True
        for pid in ids:
            if pid in self.broken_people:
                ok = False
            elif pid not in self.people:
                self.report.error(path, self._known("person", self.people, pid))
                ok = False
        return ok

    def _check_fallbacks(self) -> None:
        """A fallback names another response that has no fallback of its own.

        One level only: a dead letter's fallback that also failed should be seen, not
        passed along a chain (or round a loop).
        """
        for rid, rc in self.responses.items():
            if rc is None or rc.fallback is None:
                continue
            path: Path = ("responses", rid, "fallback")
            target = self.responses.get(rc.fallback, None)
            if rc.fallback not in self.responses:
                self.report.error(path, self._known("response", self.responses, rc.fallback))
                self.responses[rid] = None
            elif rc.fallback == rid:
                self.report.error(path, "a response cannot be its own fallback")
                self.responses[rid] = None
            elif target is not None and target.fallback is not None:
                self.report.error(
                    path,
                    f'"{rc.fallback}" has a fallback of its own; a fallback must not (one '
                    "level only, so a failure that reaches it is seen)",
                )
                self.responses[rid] = None

    def _sources(self, section: dict[str, Any]) -> None:
        for sid, raw in section.items():
            path: Path = ("sources", sid)
            self.sources[sid] = None
            split = self._split(raw, path, SOURCE_COMMON_KEYS)
            if split is None:
                continue
            block = self.report.validate(SourceBlock, split[0], path)
            kind = block.type if block is not None else _text(split[0].get("type"))
            if kind is None:
                continue
            plugin = self.source_types.get(kind)
            if plugin is None:
                self.report.error(
                    (*path, "type"), self._known("source type", self.source_types, kind)
                )
                continue
            self.source_plugins[sid] = plugin
            settings = self.report.validate(
                plugin.settings_model, split[1], path, also_known=SOURCE_COMMON_KEYS
            )
            if block is None:
                continue
            ok = settings is not None
            if block.interval < MIN_INTERVAL:
                self.report.error(
                    (*path, "interval"),
                    f"{format_duration(block.interval)} is too short; poll at most once a second",
                )
                ok = False
            if block.jitter >= block.interval:
                self.report.error(
                    (*path, "jitter"),
                    f"{format_duration(block.jitter)} must be shorter than the interval "
                    f"({format_duration(block.interval)})",
                )
                ok = False
            if settings is None or not ok:
                continue
            timeout = block.timeout or min(MAX_TIMEOUT, block.interval)
            settings = self._fit_request_budget(settings, timeout, split[1], path)
            if settings is None:
                continue
            self.sources[sid] = SourceConfig(
                id=sid,
                type=block.type,
                interval=block.interval,
                timeout=timeout,
                jitter=block.jitter,
                settings=settings,
            )

    def _fit_request_budget(
        self, settings: BaseModel, timeout: timedelta, raw: dict[str, Any], path: Path
    ) -> BaseModel | None:
        """Keep a platform source's ``request_budget`` inside the poll's ``timeout``.

        The budget bounds the source's own retries; the poll is cut off at ``timeout``, so
        a budget at or above it would never get to say why it failed. A budget written in
        the file must be shorter (an error otherwise); a default one is shortened to 80 %
        of the timeout.
        """
        budget = getattr(settings, "request_budget", None)
        if not isinstance(budget, timedelta) or budget < timeout:
            return settings
        if "request_budget" in raw:
            self.report.error(
                (*path, "request_budget"),
                f"{format_duration(budget)} must be shorter than the poll timeout "
                f"({format_duration(timeout)}), so a slow platform is given up on, and "
                "said so, before the poll is cut off",
            )
            return None
        return settings.model_copy(update={"request_budget": timeout * 0.8})

    # ------------------------------------------------------------------ frameworks

    def _frameworks(self, section: dict[str, Any]) -> None:
        for fid, raw in section.items():
            path: Path = ("frameworks", fid)
            self.frameworks[fid] = None
            head = self.report.validate(FrameworkHead, raw, path)
            raw_tiers = raw.get("tiers") if isinstance(raw, dict) else None
            tiers = [
                self.report.validate(TierBlock, t, (*path, "tiers", i))
                for i, t in enumerate(raw_tiers if isinstance(raw_tiers, list) else [])
            ]
            check_framework(self.report, head, tiers, path)
            check_forecasts(self.report, tiers, path)
            stale_responses = head.stale_responses if head is not None else []
            for ref_path, rid in response_refs(stale_responses, tiers, path):
                if rid not in self.responses:
                    self.report.error(ref_path, self._known("response", self.responses, rid))
            if head is not None and all(t is not None for t in tiers):
                self.frameworks[fid] = FrameworkBlock.model_construct(
                    **{**dict(head), "tiers": tiers}
                )

    def _unused_responses(
        self,
        by_reports: set[str],
        demand: tuple[DemandEvent, ...] = (),
        feeds: tuple[DemandFeed, ...] = (),
    ) -> None:
        if any(b is None for b in self.frameworks.values()):
            return  # a broken framework's references are unknown; don't guess
        calendar = {r for e in (*demand, *(f.template for f in feeds)) for r in e.responses}
        used = (
            by_reports
            | calendar
            | {
                rid
                for fid, block in self.frameworks.items()
                if block is not None
                for _, rid in response_refs(block.stale_responses, block.tiers, ("frameworks", fid))
            }
        )
        for rid in self.responses:
            if rid not in used:
                self.report.warn(
                    ("responses", rid),
                    f'response "{rid}" is defined but never used by any framework',
                    pos=self.report.pos(("responses", rid), key=True),
                )

    # ------------------------------------------------------------------ users

    def _users(self, section: dict[str, Any]) -> dict[str, UserConfig]:
        users: dict[str, UserConfig] = {}
        owners: dict[str, str] = {}  # token hash -> user id, so a token names one user
        for uid, raw in section.items():
            path: Path = ("users", uid)
            block = self.report.validate(UserBlock, raw, path)
            if block is None:
                continue
            for i, token in enumerate(block.tokens):
                if token in owners:
                    whose = "this user" if owners[token] == uid else f'user "{owners[token]}"'
                    self.report.error(
                        (*path, "tokens", i),
                        f"this token hash is already listed for {whose}; a token belongs to "
                        "one user, once",
                    )
                else:
                    owners[token] = uid
            users[uid] = UserConfig(
                id=uid,
                name=block.name,
                role=block.role,
                password_hash=block.password_hash,
                token_hashes=frozenset(block.tokens),
            )
        return users

    def _users_need_a_secret(self, root: dict[str, Any], users: dict[str, UserConfig]) -> None:
        """Users sign in with cookies signed by ``server.secret_key``, so it must be set."""
        raw_users = root.get("users")
        if not isinstance(raw_users, dict) or not raw_users:
            return
        server = root.get("server")
        if isinstance(server, dict) and server.get("secret_key") is not None:
            return  # set; if it is weak, the server block said so
        self.report.error(
            ("users",),
            "server.secret_key is required when users are defined (it signs sign-in cookies "
            'and acknowledgement links): add secret_key: "${RISINGTIDE_SECRET_KEY}" under '
            "server: and set that variable to at least 32 random characters",
            pos=self.report.pos(("users",), key=True),
        )

    # ------------------------------------------------------------------ lines

    def _lines(self, section: dict[str, Any]) -> dict[str, LineConfig]:
        compiled: dict[tuple[str, float], Framework] = {}
        checked: set[tuple[str, float]] = set()
        # What many lines share is worked out once: per framework and target, the measures
        # read; per framework, the forecast horizon.
        reads: dict[tuple[str, float], frozenset[str]] = {}
        horizons: dict[str, float | None] = {}
        lines: dict[str, LineConfig] = {}
        for lid, raw in section.items():
            path: Path = ("lines", lid)
            block = self.report.validate(LineBlock, raw, path)
            if block is None:
                if isinstance(raw, dict):
                    self._partial_line(raw, path)
                continue
            target = block.target_wait or self.defaults.target_wait or DEFAULT_TARGET_WAIT
            seconds = target.total_seconds()
            calendar = self._line_calendar(block, path)
            fid = self._line_framework(block, path)
            source = self._line_source(block, path)
            framework_block = self.frameworks.get(fid) if fid else None
            framework = None
            if fid is not None and framework_block is not None:
                if (fid, seconds) not in checked:
                    checked.add((fid, seconds))
                    check_hysteresis(
                        self.report, framework_block.tiers, ("frameworks", fid), (lid, seconds)
                    )
                framework = compiled.get((fid, seconds))
                if framework is None:
                    framework = compile_framework(fid, framework_block, seconds)
                    compiled[(fid, seconds)] = framework
            if framework is None or calendar is None or source is None:
                continue
            assert fid is not None  # a framework was compiled: it has an id and a block
            assert framework_block is not None
            sid, params = source
            read = reads.get((fid, seconds))
            if read is None:
                read = reads[(fid, seconds)] = measures_read(framework)
            if fid not in horizons:
                horizons[fid] = forecast_within(framework_block)
            missing = read - self.source_plugins[sid].provides
            if missing:
                plugin = self.source_plugins[sid]
                self.report.warn(
                    path,
                    f'framework "{fid}" reads {", ".join(sorted(missing))}, which source "{sid}" '
                    f"(type {plugin.type}) never provides; conditions on "
                    f"{'it' if len(missing) == 1 else 'them'} will never hold",
                    pos=self.report.pos(path, key=True),
                )
            lines[lid] = LineConfig(
                id=lid,
                name=block.name,
                target_wait=seconds,
                framework=framework,
                calendar=calendar,
                source=sid,
                source_params=params,
                handle_time=_handle_time(block, self.defaults),
                forecast_within=horizons[fid],
            )
        return lines

    def _partial_line(self, raw: dict[str, Any], path: Path) -> None:
        """Check the references of a line that failed validation (its errors are reported)."""
        usable = {k: raw.get(k) for k in ("hours", "framework") if isinstance(raw.get(k), str)}
        partial = LineBlock.model_construct(name="", source=raw.get("source"), **usable)
        if "hours" not in raw or "hours" in usable:
            self._line_calendar(partial, path)
        if "framework" not in raw or "framework" in usable:
            self._line_framework(partial, path)
        self._line_source(partial, path)

    def _line_calendar(self, block: LineBlock, path: Path) -> Calendar | None:
        if block.hours is not None:
            if block.hours not in self.calendars:
                self.report.error(
                    (*path, "hours"), self._known("calendar", self.calendars, block.hours)
                )
                return None
            return self.calendars[block.hours]
        if not self.default_refs_ok["hours"]:
            return None
        return self.calendars.get(self.defaults.hours or "always")

    def _line_framework(self, block: LineBlock, path: Path) -> str | None:
        if block.framework is not None:
            if block.framework not in self.frameworks:
                self.report.error(
                    (*path, "framework"),
                    self._known("framework", self.frameworks, block.framework),
                )
                return None
            return block.framework
        if self.defaults.framework is None:
            if self.default_refs_ok["framework"]:
                self.report.missing_key(path, "framework", " (or set defaults.framework)")
            return None
        return self.defaults.framework if self.default_refs_ok["framework"] else None

    def _line_source(self, block: LineBlock, path: Path) -> tuple[str, BaseModel] | None:
        own = self._source_ref(block.source, (*path, "source"))
        if own is None and block.source is not None:
            return None  # malformed; reported
        inherited = self.default_source
        if own is None and inherited is None:
            if self.default_refs_ok["source"]:
                self.report.missing_key(path, "source", " (or set defaults.source)")
            return None
        ref = own or inherited
        assert ref is not None
        if own is not None and inherited is not None and own.use in (None, inherited.use):
            # The line refines the default source: its keys win over the defaults' keys.
            ref = _SourceRef(
                inherited.use,
                inherited.use_path if own.use is None else own.use_path,
                {**inherited.params, **own.params},
                {**inherited.origins, **own.origins},
            )
        if ref.use is None:
            self.report.missing_key((*path, "source"), "use")
            return None
        if ref.use not in self.sources:
            if ref is own or ref.use_path[0] == "lines":
                self.report.error(ref.use_path, self._known("source", self.sources, ref.use))
            return None
        plugin = self.source_plugins.get(ref.use)
        if plugin is None:
            return None  # the source itself is broken; reported there
        params = self.report.validate(
            plugin.line_model,
            ref.params,
            (*path, "source"),
            origins=ref.origins,
            also_known=("use",),
        )
        if params is None or self.sources[ref.use] is None:
            return None
        return ref.use, params
