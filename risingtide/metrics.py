"""Prometheus metrics on an injected registry (no global state between tests or reloads).

Per-line gauges are collected at scrape time from the runtime's current line views, so a
line removed by a reload disappears from ``/metrics`` instead of freezing at its last value.
Counters and the poll histogram are ordinary client objects on the same registry.

The names are a public contract (DESIGN.md): Grafana boards depend on them. Add, never rename.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from risingtide import __version__
from risingtide.config.model import Config
from risingtide.domain.model import Framework
from risingtide.view import LineView

PREFIX = "risingtide_"


class _LineCollector(Collector):
    """Reads every line's view at scrape time."""

    def __init__(self, views: Callable[[], Iterable[LineView]]) -> None:
        self._views = views

    def collect(self) -> Iterator[GaugeMetricFamily]:
        def family(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=["line"])

        tier = family("line_tier", "Current tier of the line (0 calm .. highest).")
        acked = family("line_tier_acknowledged", "1 when the line's current tier is acknowledged.")
        avg = family("line_avg_wait_seconds", "Average wait before answer over the window.")
        longest = family("line_longest_wait_seconds", "Age of the oldest call waiting now.")
        waiting = family("line_calls_waiting", "Calls waiting now.")
        available = family("line_agents_available", "Agents available now.")
        staffed = family("line_agents_staffed", "Agents staffed now.")
        abandon = family("line_abandon_ratio", "Abandoned / offered calls over the window.")
        target = family("line_target_wait_seconds", "The line's target average wait.")
        age = family("line_stats_age_seconds", "Seconds since the line's stats were true.")
        silenced = family("line_silenced", "1 while the line is silenced.")
        stale = family("line_stale", "1 while the line's stats are stale (tier held).")
        open_ = family("line_open", "1 while the line is within its opening hours.")
        declared = family("line_declared_tier", "Declared tier in force, 0 when none.")
        live = family("line_live_switches", "Switch responses applied and not yet undone.")
        needed = family(
            "line_agents_needed", "Agents Erlang C says the line needs to meet its target."
        )
        for v in self._views():
            labels = [v.id]
            st = v.state
            tier.add_metric(labels, st.tier)
            acked.add_metric(labels, 1.0 if st.acknowledged else 0.0)
            target.add_metric(labels, v.target_wait)
            silenced.add_metric(labels, 1.0 if v.silenced else 0.0)
            stale.add_metric(labels, 1.0 if st.stale else 0.0)
            open_.add_metric(labels, 1.0 if st.open else 0.0)
            declared.add_metric(labels, v.declared_level)
            live.add_metric(labels, len(v.live_switches))
            s = v.stats
            if s is None:
                continue
            if v.stats_age is not None:
                age.add_metric(labels, v.stats_age)
            for fam, value in (
                (avg, s.avg_wait),
                (longest, s.longest_wait),
                (waiting, s.calls_waiting),
                (available, s.agents_available),
                (staffed, s.agents_staffed),
                (abandon, s.abandon_rate),
                (needed, v.agents_needed),
            ):
                if value is not None:
                    fam.add_metric(labels, float(value))
        yield from (
            tier, acked, avg, longest, waiting, available, staffed, abandon, target, age,
            silenced, stale, open_, declared, live, needed,
        )  # fmt: skip


class Metrics:
    """Every metric the daemon exports, registered on ``registry``."""

    def __init__(
        self, registry: CollectorRegistry, views: Callable[[], Iterable[LineView]]
    ) -> None:
        """Register the counters, gauges and the per-line collector."""
        self.registry = registry
        registry.register(_LineCollector(views))
        self.tier_transitions = Counter(
            PREFIX + "tier_transitions",
            "Tier changes by line and direction.",
            ["line", "from_tier", "to_tier"],
            registry=registry,
        )
        self.response_runs = Counter(
            PREFIX + "response_runs",
            "Response runs by line, response and outcome (ok, retry, dead).",
            ["line", "response", "outcome"],
            registry=registry,
        )
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

    def prime(self, config: Config) -> None:
        """Create every labelled counter the config can move, at zero.

        A counter series born on its first increment hides that increment from ``rate()``
        and ``increase()``, and a panel shows "No data" until then; born at zero, the first
        tier change of the day is counted like every other.
        """
        for lid, lc in config.lines.items():
            levels = range(lc.framework.max_level + 1)
            for a in levels:
                for b in levels:
                    if a != b:
                        self.tier_transitions.labels(line=lid, from_tier=str(a), to_tier=str(b))
            for response in _responses_of(lc.framework):
                for outcome in OUTCOMES:
                    self.response_runs.labels(line=lid, response=response, outcome=outcome)
        for rc in config.responses.values():
            if not rc.undoable:
                for outcome in OUTCOMES:
                    self.notifications.labels(channel=rc.type, outcome=outcome)


#: What became of one run of a response.
OUTCOMES = ("ok", "retry", "dead")
#: Why a sign-in was refused: a wrong username or password, a password too long to check,
#: a lockout in force, too many checks at once, or a form not from this daemon's page.
SIGNIN_REFUSALS = ("wrong_password", "too_long", "locked", "busy", "form")


def _responses_of(framework: Framework) -> set[str]:
    names = set(framework.stale_responses)
    for t in framework.tiers:
        names.update(t.responses, t.on_exit, t.repeat_responses)
        for step in t.escalation:
            names.update(step.responses)
    return names
