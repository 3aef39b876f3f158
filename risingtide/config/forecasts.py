"""``forecast_wait: {above: target, within: 15m}``: a framework's forecast horizon.

The forecast is worked out once per poll for the line's horizon, so the conditions of one
framework must share one ``within``; ``check_forecasts`` reports a second one where it was
written, and ``forecast_within`` gives the line its horizon.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

from risingtide.config.document import Path
from risingtide.config.durations import format_duration
from risingtide.config.report import Report
from risingtide.config.schema import ConditionBlock, FrameworkBlock, TierBlock


def _horizons(cond: ConditionBlock | None, path: Path) -> Iterator[tuple[Path, timedelta]]:
    if cond is None:
        return
    if cond.forecast_wait is not None:
        yield (*path, "forecast_wait", "within"), cond.forecast_wait.within
    for key, parts in (("any", cond.any_), ("all", cond.all_)):
        for i, part in enumerate(parts or ()):
            yield from _horizons(part, (*path, key, i))


def _all(tiers: Sequence[TierBlock | None], path: Path) -> Iterator[tuple[Path, timedelta]]:
    for i, tier in enumerate(tiers):
        if tier is not None:
            yield from _horizons(tier.when, (*path, "tiers", i, "when"))
            yield from _horizons(tier.clear, (*path, "tiers", i, "clear"))


def check_forecasts(report: Report, tiers: Sequence[TierBlock | None], path: Path) -> None:
    """Report each ``within`` that differs from the framework's first one."""
    first: timedelta | None = None
    for where, within in _all(tiers, path):
        if first is None:
            first = within
        elif within != first:
            report.error(
                where,
                f"every forecast_wait of a framework looks the same distance ahead: this says "
                f"{format_duration(within)}, an earlier one {format_duration(first)}",
            )


def forecast_within(block: FrameworkBlock) -> float | None:
    """The framework's forecast horizon in seconds, or None when nothing reads the forecast."""
    for _, within in _all(block.tiers, ("frameworks",)):
        return within.total_seconds()
    return None
