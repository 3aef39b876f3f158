"""Frameworks: the checks that span a framework's tiers, and compiling one for a line.

A framework is written once with symbolic thresholds (``0.8 * target``) and compiled per
line: every threshold resolved against that line's target wait, every default filled in
(``clear`` defaults to ``Not(when)``, ``clear_for`` to ``for``). Lines with the same target
share one compiled ``Framework``.

The hysteresis check lives here too: a tier whose clear threshold is not on the calm side
of its entry threshold would enter and leave on the same figures, and flap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from risingtide.config.document import Path
from risingtide.config.durations import format_duration
from risingtide.config.report import Report
from risingtide.config.schema import ConditionBlock, FrameworkBlock, FrameworkHead, TierBlock
from risingtide.config.thresholds import Threshold
from risingtide.domain.model import (
    MEASURE_UNITS,
    MEASURES,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    EscalationStep,
    Framework,
    Measure,
    Not,
    Op,
    Tier,
)

_RISING = (Op.ABOVE, Op.AT_LEAST)  # entered when the figure goes up
_FALLING = (Op.BELOW, Op.AT_MOST)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One comparison as written: ``measure op threshold``, at ``path``."""

    measure: Measure
    op: Op
    threshold: Threshold
    path: Path


def leaves(cond: ConditionBlock, path: Path) -> Iterator[Leaf]:
    """Every comparison in a condition, however deeply nested in ``any``/``all``."""
    for measure in MEASURES:
        comparison = getattr(cond, measure)
        if comparison is not None:
            for op, threshold in comparison.items():
                yield Leaf(measure, Op(op), threshold, (*path, measure, op))
    for key, parts in (("any", cond.any_), ("all", cond.all_)):
        for i, part in enumerate(parts or ()):
            yield from leaves(part, (*path, key, i))


def compile_condition(cond: ConditionBlock, target: float) -> Condition:
    """The domain condition for one line: thresholds resolved, several parts → ``AllOf``."""
    parts: list[Condition] = []
    for measure in MEASURES:
        comparison = getattr(cond, measure)
        if comparison is not None:
            for op, threshold in comparison.items():
                parts.append(Compare(measure, Op(op), threshold.resolve(target)))
    if cond.any_:
        options = tuple(compile_condition(c, target) for c in cond.any_)
        parts.append(options[0] if len(options) == 1 else AnyOf(options))
    for c in cond.all_ or ():
        parts.append(compile_condition(c, target))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def compile_framework(name: str, block: FrameworkBlock, target: float) -> Framework:
    """The framework with every threshold resolved for a line whose target is ``target`` s."""
    return Framework(
        name=name,
        tiers=tuple(_compile_tier(t, target) for t in block.tiers),
        step_down=block.step_down,
        stale_after=block.stale_after,
        stale_alert_after=block.stale_alert_after,
        calm_name=block.calm_name,
        stale_responses=tuple(block.stale_responses),
        ack_expires_at_handover=block.ack_expires == "at_handover",
    )


def _compile_tier(tier: TierBlock, target: float) -> Tier:
    when = compile_condition(tier.when, target)
    clear = compile_condition(tier.clear, target) if tier.clear is not None else Not(when)
    return Tier(
        level=tier.level,
        name=tier.name,
        when=when,
        for_=tier.for_,
        clear=clear,
        clear_for=tier.clear_for if tier.clear_for is not None else tier.for_,
        responses=tuple(tier.responses),
        on_exit=tuple(tier.on_exit),
        repeat_every=tier.repeat.every if tier.repeat else None,
        repeat_responses=tuple(tier.repeat.responses) if tier.repeat else (),
        escalation=tuple(EscalationStep(s.after, tuple(s.responses)) for s in tier.escalate),
    )


def response_refs(
    stale_responses: Sequence[str], tiers: Sequence[TierBlock | None], path: Path
) -> Iterator[tuple[Path, str]]:
    """Every response id a framework names, with the path where it is named.

    ``tiers`` may hold None for tiers that failed validation; they are skipped.
    """
    for i, rid in enumerate(stale_responses):
        yield (*path, "stale_responses", i), rid
    for t, tier in enumerate(tiers):
        if tier is None:
            continue
        tp = (*path, "tiers", t)
        for key in ("responses", "on_exit"):
            for i, rid in enumerate(cast("list[str]", getattr(tier, key))):
                yield (*tp, key, i), rid
        if tier.repeat is not None:
            for i, rid in enumerate(tier.repeat.responses):
                yield (*tp, "repeat", "responses", i), rid
        for s, step in enumerate(tier.escalate):
            for i, rid in enumerate(step.responses):
                yield (*tp, "escalate", s, "responses", i), rid


def measures_read(framework: Framework) -> frozenset[str]:
    """The measures any tier's entry or clear condition reads."""
    found: set[str] = set()
    for tier in framework.tiers:
        found |= tier.when.measures() | tier.clear.measures()
    return frozenset(found)


def check_framework(
    report: Report, head: FrameworkHead | None, tiers: Sequence[TierBlock | None], path: Path
) -> None:
    """Report the rules within one framework that its schema cannot express.

    Works on what validated: ``head`` (None if the framework's own keys failed) and each
    tier (None where that tier failed), so one broken tier does not hide other mistakes.
    """
    for i, tier in enumerate(tiers):
        if tier is not None and tier.level != i + 1:
            report.error(
                (*path, "tiers", i, "level"),
                f"tiers out of order: expected level {i + 1} here, found {tier.level} "
                "(levels run 1, 2, 3… from the first tier)",
            )
            break
    seen: dict[str, int] = {}
    for i, tier in enumerate(tiers):
        if tier is None:
            continue
        if tier.name in seen:
            report.error(
                (*path, "tiers", i, "name"),
                f'tier name "{tier.name}" is already used by tiers[{seen[tier.name]}]',
            )
        seen.setdefault(tier.name, i)
        steps = tier.escalate
        for s in range(1, len(steps)):
            if steps[s].after <= steps[s - 1].after:
                report.error(
                    (*path, "tiers", i, "escalate", s, "after"),
                    f"escalation steps must come later and later: {format_duration(steps[s].after)}"
                    f" is not after the previous step's {format_duration(steps[s - 1].after)}",
                )
    if head is not None and head.stale_alert_after < head.stale_after:
        report.error(
            (*path, "stale_alert_after"),
            f"{format_duration(head.stale_alert_after)} is shorter than stale_after "
            f"({format_duration(head.stale_after)}); stale_alert_after counts from when the "
            "line goes stale, so the alert comes stale_after + stale_alert_after after the "
            "last fresh figures: give it at least stale_after",
        )
    check_hysteresis(report, tiers, path, line=None)


def _show(measure: Measure, value: float) -> str:
    unit = MEASURE_UNITS[measure]
    if unit == "seconds":
        return format_duration(timedelta(seconds=value)) if value >= 0 else f"{value:g}s"
    if unit == "ratio":
        return f"{value * 100:g}%"
    return f"{value:g}"


def _describe(leaf: Leaf, value: float) -> str:
    if leaf.threshold.uses_target:
        return f'"{leaf.threshold.text}" = {_show(leaf.measure, value)}'
    return _show(leaf.measure, value)


def check_hysteresis(
    report: Report,
    tiers: Sequence[TierBlock | None],
    path: Path,
    line: tuple[str, float] | None,
) -> None:
    """Report clear thresholds that are not on the calm side of their entry thresholds.

    With ``line=None`` only thresholds that do not use ``target`` are compared (once per
    framework); with ``line=(id, target)`` the pairs that use ``target`` are compared for
    that line. Also reports ``target - D`` thresholds that come out negative for the line.
    """
    target = line[1] if line else 0.0
    for t, tier in enumerate(tiers):
        if tier is None:
            continue
        tp = (*path, "tiers", t)
        entry = list(leaves(tier.when, (*tp, "when")))
        if line is not None:
            for leaf in entry:
                _check_negative(report, leaf, line)
        if tier.clear is None:
            continue
        for leaf in leaves(tier.clear, (*tp, "clear")):
            if line is not None:
                _check_negative(report, leaf, line)
            rising = leaf.op in _FALLING  # a falling clear pairs with a rising entry
            opposite = [
                e
                for e in entry
                if e.measure == leaf.measure
                and e.op in (_RISING if rising else _FALLING)
                and (e.threshold.uses_target or leaf.threshold.uses_target) == (line is not None)
            ]
            if not opposite:
                continue
            value = leaf.threshold.resolve(target)
            pick = min if rising else max
            worst = pick(opposite, key=lambda e: e.threshold.resolve(target))
            limit = worst.threshold.resolve(target)
            if (value < limit) if rising else (value > limit):
                continue
            side = "below" if rising else "above"
            where = ""
            if line is not None:
                where = f'for line "{line[0]}" (target {_show("avg_wait", line[1])}), '
            report.error(
                leaf.path,
                f"{where}the clear threshold {_describe(leaf, value)} must be {side} the entry "
                f"threshold {_describe(worst, limit)} (when: {worst.measure} "
                f"{worst.op.value} {worst.threshold.text}), or the tier would flap",
            )


def _check_negative(report: Report, leaf: Leaf, line: tuple[str, float]) -> None:
    if leaf.threshold.uses_target and leaf.threshold.resolve(line[1]) < 0:
        report.error(
            leaf.path,
            f'for line "{line[0]}" (target {_show("avg_wait", line[1])}), '
            f'"{leaf.threshold.text}" comes to '
            f"{_show(leaf.measure, leaf.threshold.resolve(line[1]))}; a threshold must be 0 "
            "or more",
        )
