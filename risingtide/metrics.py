"""Prometheus metrics on an injected registry (no global state between tests or reloads).

Per-line series are a budget: at most 12 a line (DESIGN.md), rendered at scrape time straight
from the runtime's line views (``risingtide.line_metrics``) — no labelled child object per
line, and a line removed by a reload disappears from ``/metrics`` instead of freezing. Each line
has ``line_tier``, the three flags a rule or a board acts on (``line_tier_acknowledged``,
``line_silenced``, ``line_stale``), ``line_target_wait_seconds{line,name}`` (the target,
labelled with the display name) and the figures a board draws (waits, calls waiting, agents
available and needed, abandon ratio, the capacity gap). What a board can count or read
elsewhere is aggregated instead: lines at each tier, lines open, live switches by response,
the oldest figures by source. A line's own story (its episodes, runs, switches) is in the API
and the history.

Counters count by tier, response and channel, not by line: ``server.per_line_counters``
adds a ``line`` label to the tier-transition and response-run counters for a small centre.
The ``_created`` series are not exported (they double every counter's series for nothing
a board or rule uses). Names are a public contract (DESIGN.md): Grafana boards and the rules
in ``deploy/prometheus`` depend on them; a rename goes in the CHANGELOG with them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from risingtide import __version__
from risingtide.config.model import Config
from risingtide.domain.model import Framework
from risingtide.line_metrics import (
    NeededCache,
    aggregate_families,
    line_families,
    line_text,
    window_count_families,
)
from risingtide.view import LineView

PREFIX = "risingtide_"

#: What became of one run of a response.
OUTCOMES = ("ok", "retry", "dead")

#: A failure reason is a short class name (``timeout``, ``http_5xx``…); anything else a
#: plugin might pass is counted as ``other`` so a label can never carry free text.
_REASON = re.compile(r"[a-z0-9_]{1,32}")

# Counters are born without a ``_created`` sample; the switch is process-wide in
# client_python, and nothing in Rising Tide reads ``_created``.
disable_created_metrics()  # type: ignore[no-untyped-call]


def reason_label(outcome: str, detail: str) -> str:
    """The ``reason`` label of a run: "" for ok, else the failure's class (or "other")."""
    if outcome == "ok":
        return ""
    return detail if _REASON.fullmatch(detail) else "other"


class _LineCollector(Collector):
    """The per-line families and the aggregates, from the views (or a pinned snapshot)."""

    def __init__(
        self, views: Callable[[], Iterable[LineView]], config: Callable[[], Config | None]
    ) -> None:
        self._views = views
        self._config = config
        self.needed = NeededCache()
        #: Views taken on the event loop for the scrape now rendering in a thread.
        self.pinned: Sequence[LineView] | None = None
        #: While a scrape renders, the per-line families are written as text instead.
        self.as_text = False

    def collect(self) -> Iterator[Metric]:
        views = self.pinned if self.pinned is not None else list(self._views())
        if not self.as_text:
            yield from line_families(views, self.needed)
        config = self._config()
        yield from aggregate_families(views, config)
        if config is not None and config.server.per_line_counters:
            yield from window_count_families(views)


class Metrics:
    """Every metric the daemon exports, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        views: Callable[[], Iterable[LineView]],
        config: Callable[[], Config | None] = lambda: None,
    ) -> None:
        """Register the counters, gauges and the per-line collector."""
        self.registry = registry
        self._lines = _LineCollector(views, config)
        self._render_lock = threading.Lock()
        registry.register(self._lines)
        self.per_line = False
        self.tier_transitions, self.response_runs = self._line_counters(per_line=False)
        self.notifications = Counter(
            PREFIX + "notifications",
            "Notifications by channel (responder type) and outcome (ok, retry, dead).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            PREFIX + "outbox_pending", "Responses waiting to run.", registry=registry
        )
        self.outbox_dead = Gauge(
            PREFIX + "outbox_dead", "Responses given up on (dead letters).", registry=registry
        )
        self.poll_duration = Histogram(
            PREFIX + "poll_duration_seconds",
            "How long each poll of a source took.",
            ["source"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.poll_errors = Counter(
            PREFIX + "poll_errors",
            "Failed polls (or failed lines within a poll) by source and reason.",
            ["source", "reason"],
            registry=registry,
        )
        self.config_reload_ok = Gauge(
            PREFIX + "config_last_reload_successful",
            "1 when the last configuration load succeeded.",
            registry=registry,
        )
        self.config_reload_time = Gauge(
            PREFIX + "config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=registry,
        )
        self.evaluations = Counter(
            PREFIX + "evaluations",
            "Evaluation ticks run (every line is evaluated on each).",
            registry=registry,
        )
        self.store_errors = Counter(
            PREFIX + "store_errors",
            "Evaluation passes that failed because the state store did (disk full, I/O).",
            registry=registry,
        )
        self.store_bytes = Gauge(
            PREFIX + "store_bytes",
            "Bytes the state store takes on disk (the file and its write-ahead log).",
            registry=registry,
        )
        self.build_info = Gauge(
            PREFIX + "build_info", "Always 1; the version as a label.", ["version"],
            registry=registry,
        )  # fmt: skip
        self.build_info.labels(version=__version__).set(1)
        self.signin_refusals = Counter(
            PREFIX + "signin_refusals",
            "Sign-ins refused, by reason (" + ", ".join(SIGNIN_REFUSALS) + ").",
            ["reason"],
            registry=registry,
        )
        for reason in SIGNIN_REFUSALS:
            self.signin_refusals.labels(reason=reason)

    def _line_counters(self, *, per_line: bool) -> tuple[Counter, Counter]:
        by_line = ["line"] if per_line else []
        transitions = Counter(
            PREFIX + "tier_transitions",
            "Tier changes by direction" + (" and line." if per_line else "."),
            [*by_line, "from_tier", "to_tier"],
            registry=self.registry,
        )
        runs = Counter(
            PREFIX + "response_runs",
            "Response runs by response, action (apply, undo), outcome (ok, retry, dead) and "
            'failure reason ("" for ok)' + (", and line." if per_line else "."),
            [*by_line, "response", "action", "outcome", "reason"],
            registry=self.registry,
        )
        return transitions, runs

    def set_per_line(self, per_line: bool) -> None:
        """Label the transition and run counters by line (or stop); they restart at zero."""
        if per_line == self.per_line:
            return
        self.registry.unregister(self.tier_transitions)
        self.registry.unregister(self.response_runs)
        self.tier_transitions, self.response_runs = self._line_counters(per_line=per_line)
        self.per_line = per_line

    def count_transition(self, line: str, from_tier: int, to_tier: int) -> None:
        """One tier change of ``line``."""
        labels = {"from_tier": str(from_tier), "to_tier": str(to_tier)}
        if self.per_line:
            labels["line"] = line
        self.tier_transitions.labels(**labels).inc()

    def count_run(self, line: str, response: str, action: str, outcome: str, detail: str) -> None:
        """One run of a response; ``detail`` is the failure reason for retry and dead."""
        labels = {
            "response": response,
            "action": action,
            "outcome": outcome,
            "reason": reason_label(outcome, detail),
        }
        if self.per_line:
            labels["line"] = line
        self.response_runs.labels(**labels).inc()

    def _prime_counters(
        self, config: Config, frameworks: Sequence[Framework], by_line: dict[str, str]
    ) -> None:
        """Tier changes between the frameworks' tiers and their responses' successes, at 0."""
        for a, b in _tier_pairs(frameworks):
            self.tier_transitions.labels(**by_line, from_tier=a, to_tier=b)
        responses: set[str] = set().union(*map(_responses_of, frameworks))
        for response in sorted(responses):
            rc = config.responses.get(response)
            for action in ("apply", "undo") if rc is not None and rc.undoable else ("apply",):
                self.response_runs.labels(
                    **by_line, response=response, action=action, outcome="ok", reason=""
                )

    def render(self, views: Sequence[LineView] | None = None) -> bytes:
        """The text exposition; ``views`` taken on the event loop lets this run in a thread.

        One scrape renders at a time, so two overlapping scrapes never hold two copies.
        """
        with self._render_lock:
            views = list(self._lines._views()) if views is None else views
            self._lines.pinned = views
            self._lines.as_text = True
            try:
                head = generate_latest(self.registry)
            finally:
                self._lines.pinned = None
                self._lines.as_text = False
            return head + line_text(views, self._lines.needed).encode()

    def prime(self, config: Config) -> None:
        """Create every labelled counter the config can move, at zero.

        A counter series born on its first increment hides that increment from ``rate()``
        and ``increase()``, and a panel shows "No data" until then; born at zero, the first
        tier change of the day is counted like every other. Failures are not primed: their
        reason is not known in advance (the rules treat a missing failure series as none).
        """
        self.set_per_line(config.server.per_line_counters)
        self._lines.needed.keep_only(set(config.lines))
        if self.per_line:
            for lid, lc in config.lines.items():
                self._prime_counters(config, [lc.framework], {"line": lid})
        else:
            self._prime_counters(config, [lc.framework for lc in config.lines.values()], {})
        for rc in config.responses.values():
            if not rc.undoable:
                for outcome in OUTCOMES:
                    self.notifications.labels(channel=rc.type, outcome=outcome)


#: Why a sign-in was refused: a wrong username or password, a password too long to check,
#: a lockout in force, too many checks at once, or a form not from this daemon's page.
SIGNIN_REFUSALS = ("wrong_password", "too_long", "locked", "busy", "form")


def _tier_pairs(frameworks: Sequence[Framework]) -> Iterator[tuple[str, str]]:
    top = max((f.max_level for f in frameworks), default=0)
    return ((str(a), str(b)) for a in range(top + 1) for b in range(top + 1) if a != b)


def _responses_of(framework: Framework) -> set[str]:
    names = set(framework.stale_responses)
    for t in framework.tiers:
        names.update(t.responses, t.on_exit, t.repeat_responses)
        for step in t.escalation:
            names.update(step.responses)
    return names
