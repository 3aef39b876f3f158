"""The per-line series of ``/metrics``, and the few aggregates a board counts instead.

Twelve series a line at most (DESIGN.md's budget): ``line_tier``, three flags a rule or a
board acts on, the line's target (labelled with the line's display name: the two static
facts of a line share one series), six figures and the capacity gap. A scrape writes them as
text straight from the line views (the client library's generic path costs ~30 µs a sample,
too slow at 100,000 samples); the same families are also offered as client ``Metric``
objects, so a registry read (``get_sample_value``) sees what a scrape sees. Agents needed is
the capacity model's smoothed figure (``risingtide.domain.demand``) where the line has one,
else Erlang C over the latest window, kept per line until its figures change.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from risingtide.config.model import Config
from risingtide.domain.capacity import agents_needed_from_stats
from risingtide.domain.model import QueueStats
from risingtide.view import LineView

PREFIX = "risingtide_"
#: The family whose series also carries the line's display name (for legends).
NAMED = "line_target_wait_seconds"


class NeededCache:
    """Agents needed per line, worked out again only when the line's figures change."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[QueueStats, float, int | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, view: LineView) -> int | None:
        """Agents Erlang C says the line needs, or None when its figures do not say."""
        stats = view.stats
        if stats is None:
            return None
        with self._lock:
            hit = self._known.get(view.id)
        if hit is not None and hit[0] is stats and hit[1] == view.target_wait:
            return hit[2]
        value = stats.agents_needed
        if value is None:
            value = agents_needed_from_stats(stats, view.target_wait)
        with self._lock:
            self._known[view.id] = (stats, view.target_wait, value)
        return value

    def keep_only(self, lines: set[str]) -> None:
        """Forget lines a reload removed."""
        with self._lock:
            for lid in set(self._known) - lines:
                del self._known[lid]


@dataclass(frozen=True, slots=True)
class Family:
    """One per-line gauge: its name (after the prefix), help, and how a view gives it."""

    name: str
    doc: str
    value: Callable[[LineView, NeededCache], float | None]


def _figure(measure: str) -> Callable[[LineView, NeededCache], float | None]:
    def value(v: LineView, _: NeededCache) -> float | None:
        x = None if v.stats is None else getattr(v.stats, measure)
        return None if x is None else float(x)

    return value


#: Every per-line family, in exposition order (12).
FAMILIES: tuple[Family, ...] = (
    Family("line_tier", "Current tier of the line (0 calm .. highest).",
           lambda v, _: v.state.tier),
    Family("line_tier_acknowledged", "1 when the line's current tier is acknowledged.",
           lambda v, _: 1.0 if v.state.acknowledged else 0.0),
    Family("line_silenced", "1 while the line is silenced.",
           lambda v, _: 1.0 if v.silenced else 0.0),
    Family("line_stale", "1 while the line's stats are stale (tier held).",
           lambda v, _: 1.0 if v.state.stale else 0.0),
    Family(NAMED, "The line's target average wait; the name label is its display name.",
           lambda v, _: v.target_wait),
    Family("line_avg_wait_seconds", "Average wait before answer over the window.",
           _figure("avg_wait")),
    Family("line_longest_wait_seconds", "Age of the oldest call waiting now.",
           _figure("longest_wait")),
    Family("line_calls_waiting", "Calls waiting now.", _figure("calls_waiting")),
    Family("line_agents_available", "Agents available now.", _figure("agents_available")),
    Family("line_abandon_ratio", "Abandoned / offered calls over the window.",
           _figure("abandon_rate")),
    Family("line_agents_needed", "Agents Erlang C says the line needs to meet its target.",
           lambda v, needed: needed(v)),
    Family("line_capacity_gap", "Agents needed minus agents staffed (negative: spare).",
           _figure("capacity_gap")),
)  # fmt: skip


def _escape(value: str) -> str:
    if "\\" not in value and '"' not in value and "\n" not in value:
        return value
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(x: float) -> str:
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x)}.0"
    text: str = floatToGoString(x)  # type: ignore[no-untyped-call]
    return text


def line_text(views: Sequence[LineView], needed: NeededCache) -> str:
    """The per-line families in the text format (0.0.4), ready to append to a scrape.

    One pass over the lines, each sample one f-string: the same values as ``FAMILIES``
    (a test holds the two to agreement), written without a function call per sample.
    """
    names = [PREFIX + f.name for f in FAMILIES]
    rows: list[list[str]] = [[] for _ in FAMILIES]
    (tier, acked, silenced, stale, target, avg, longest, waiting, available, abandon,
     need, gap) = rows  # fmt: skip
    (n_tier, n_acked, n_sil, n_stale, n_target, n_avg, n_long, n_wait, n_avail, n_ab, n_need,
     n_gap) = names  # fmt: skip
    for v in views:
        lab = f'{{line="{_escape(v.id)}"}} '
        st = v.state
        tier.append(f"{n_tier}{lab}{st.tier}.0\n")
        acked.append(f"{n_acked}{lab}{_FLAG[st.acknowledged]}\n")
        silenced.append(f"{n_sil}{lab}{_FLAG[v.silenced]}\n")
        stale.append(f"{n_stale}{lab}{_FLAG[st.stale]}\n")
        named = f'{{line="{_escape(v.id)}",name="{_escape(v.name)}"}} '
        target.append(f"{n_target}{named}{_number(float(v.target_wait))}\n")
        x = v.stats
        if x is None:
            continue
        for rows_of, name, value in (
            (avg, n_avg, x.avg_wait),
            (longest, n_long, x.longest_wait),
            (waiting, n_wait, x.calls_waiting),
            (available, n_avail, x.agents_available),
            (abandon, n_ab, x.abandon_rate),
            (need, n_need, needed(v)),
            (gap, n_gap, x.capacity_gap),
        ):
            if value is not None and value == value:  # NaN != NaN: no sample
                shown = f"{value}.0" if type(value) is int else _number(float(value))
                rows_of.append(f"{name}{lab}{shown}\n")
    out: list[str] = []
    for fam, name, fam_rows in zip(FAMILIES, names, rows, strict=True):
        out.append(f"# HELP {name} {fam.doc}\n# TYPE {name} gauge\n")
        out.extend(fam_rows)
    return "".join(out)


_FLAG = ("0.0", "1.0")


def line_families(views: Sequence[LineView], needed: NeededCache) -> Iterator[Metric]:
    """The same families as client objects (for registry reads; slower than the text)."""
    for fam in FAMILIES:
        named = fam.name == NAMED
        gauge = GaugeMetricFamily(
            PREFIX + fam.name, fam.doc, labels=["line", "name"] if named else ["line"]
        )
        for v in views:
            x = fam.value(v, needed)
            if x is not None:
                gauge.add_metric([v.id, v.name] if named else [v.id], float(x))
        yield gauge


def window_count_families(views: Sequence[LineView]) -> Iterator[Metric]:
    """Calls offered and answered over each line's stats window: two more series a line, so
    only with ``server.per_line_counters`` (a small centre's choice; the budget of 12 a line
    holds without it, and the API and episode pages carry the counts either way)."""
    for measure, doc in (
        ("offered", "Calls offered over the line's stats window."),
        ("answered", "Calls answered over the line's stats window."),
    ):
        gauge = GaugeMetricFamily(PREFIX + f"line_{measure}", doc, labels=["line"])
        for v in views:
            x = None if v.stats is None else getattr(v.stats, measure)
            if x is not None:
                gauge.add_metric([v.id], float(x))
        yield gauge


def aggregate_families(views: Sequence[LineView], config: Config | None) -> Iterator[Metric]:
    """What a board counts rather than reads per line: a handful of series in all."""
    at_tier = GaugeMetricFamily(
        PREFIX + "lines_at_tier", "Lines at each tier now.", labels=["tier"]
    )
    tiers = Tally(v.state.tier for v in views)
    for t in range(max((v.max_tier for v in views), default=0) + 1):
        at_tier.add_metric([str(t)], tiers.get(t, 0))
    yield at_tier
    yield GaugeMetricFamily(
        PREFIX + "lines_open",
        "Lines within their opening hours now.",
        value=sum(1 for v in views if v.state.open),
    )
    live = GaugeMetricFamily(
        PREFIX + "switches_live",
        "Lines with the switch response on now (applied, undo not yet through).",
        labels=["response"],
    )
    switches = Tally(s for v in views if v.state.live or v.undo_pending for s in v.live_switches)
    names = set(config.switches) if config is not None else set()
    for response in sorted(names | set(switches)):
        live.add_metric([response], switches.get(response, 0))
    yield live
    yield _source_age(views, config)


def _source_age(views: Sequence[LineView], config: Config | None) -> Metric:
    age = GaugeMetricFamily(
        PREFIX + "source_stats_age_seconds",
        "Age of the oldest figures among the source's lines that have any.",
        labels=["source"],
    )
    if config is None:
        return age
    oldest: dict[str, LineView] = {}  # per source, the line whose figures are oldest
    for v in views:
        lc = config.lines.get(v.id)
        if lc is None or v.stats is None:
            continue
        held = oldest.get(lc.source)
        if held is None or (held.stats is not None and v.stats.at < held.stats.at):
            oldest[lc.source] = v
    for source in sorted(oldest):
        age.add_metric([source], oldest[source].stats_age or 0.0)
    return age
