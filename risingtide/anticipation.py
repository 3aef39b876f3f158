"""Where the capacity model meets the config: a line's inputs, enriching polled figures and
replay rows alike, and whether a config's conditions read the capacity measures."""

from __future__ import annotations

from collections.abc import Mapping

from risingtide.config.frameworks import measures_read
from risingtide.config.model import Config, LineConfig
from risingtide.domain.demand import CAPACITY_MEASURES, CapacityInputs, CapacityTracker
from risingtide.domain.model import QueueStats


def inputs_of(line: LineConfig) -> CapacityInputs:
    """The capacity model's inputs for a configured line."""
    return CapacityInputs(
        target_wait=line.target_wait,
        handle_time=line.handle_time,
        forecast_within=line.forecast_within,
    )


def enrich_polled(
    tracker: CapacityTracker, config: Config, stats: Mapping[str, QueueStats]
) -> dict[str, QueueStats]:
    """One poll's figures, each configured line's enriched (others passed through)."""
    out: dict[str, QueueStats] = {}
    for line, s in stats.items():
        lc = config.lines.get(line)
        out[line] = s if lc is None else tracker.observe(s, inputs_of(lc))
    return out


def uses_capacity_measures(config: Config) -> bool:
    """True when a line's conditions read a capacity measure (so replay must enrich rows:
    the columnar fast path carries only the source's own figures)."""
    return any(measures_read(lc.framework) & CAPACITY_MEASURES for lc in config.lines.values())
