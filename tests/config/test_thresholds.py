"""The threshold grammar: numbers, durations, percentages and expressions of target."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risingtide.config.thresholds import Threshold, ThresholdError, Unit, parse_threshold


@pytest.mark.parametrize(
    ("value", "unit", "target", "expected"),
    [
        (300, "seconds", 180, 300.0),
        ("300", "seconds", 180, 300.0),
        ("300s", "seconds", 180, 300.0),
        ("5m", "seconds", 180, 300.0),
        ("1h30m", "seconds", 180, 5400.0),
        ("target", "seconds", 180, 180.0),
        ("0.8 * target", "seconds", 120, 96.0),
        ("0.8*target", "seconds", 120, 96.0),
        ("target * 1.5", "seconds", 120, 180.0),
        ("target + 60s", "seconds", 180, 240.0),
        ("target+60", "seconds", 180, 240.0),
        ("target - 1m", "seconds", 180, 120.0),
        ("2 * target - 30s", "seconds", 180, 330.0),
        (5, "count", 180, 5.0),
        ("2.5", "count", 180, 2.5),
        ("10%", "ratio", 180, 0.10),
        ("12.5 %", "ratio", 180, 0.125),
        (0.1, "ratio", 180, 0.1),
        (1, "ratio", 180, 1.0),
    ],
)
def test_resolves_against_the_line_target(
    value: object, unit: Unit, target: float, expected: float
) -> None:
    """Each form of threshold resolves to the right absolute value for a line's target."""
    assert parse_threshold(value, unit).resolve(target) == pytest.approx(expected)


def test_thresholds_stay_symbolic_until_resolved() -> None:
    """A threshold using target keeps its factor and offset; a plain one does not use target."""
    assert parse_threshold("0.8 * target + 10s", "seconds") == Threshold(
        offset=10.0, factor=0.8, text="0.8 * target + 10s"
    )
    assert parse_threshold("0.8 * target", "seconds").uses_target
    assert not parse_threshold("300s", "seconds").uses_target


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        ("target", "ratio", "target (the line's target wait) applies only to avg_wait"),
        ("2 * target", "count", "applies only to avg_wait, longest_wait, predicted_wait and "),
        ("10%", "seconds", "a percentage applies only to abandon_rate and answered_rate"),
        ("10%", "count", "a percentage applies only to abandon_rate and answered_rate"),
        ("5m", "count", "this measure is a count, not a time"),
        ("5m", "ratio", "this measure is a ratio, not a time"),
        (10, "ratio", "is not a ratio between 0 and 1"),
        ("150%", "ratio", "is not a percentage between 0% and 100%"),
        (-1, "count", "is negative"),
        ("-5s", "seconds", "is negative"),
        ("1.5 x target", "seconds", "is not a threshold"),
        ("2 * target * 3", "seconds", "is not a threshold"),
        ("0 * target", "seconds", "the multiple of target must be more than 0"),
        ("target + lots", "seconds", '"lots" is not a duration'),
        ("lots", "count", "is not a threshold (use a number, e.g. 5)"),
        (True, "seconds", "true is not a threshold"),
        ({"a": 1}, "seconds", "a mapping is not a threshold"),
        (float("inf"), "seconds", "is not a threshold"),
    ],
)
def test_rejects_thresholds_that_do_not_suit_the_measure(
    value: object, unit: Unit, message: str
) -> None:
    """A threshold outside the grammar, or unfit for its measure, says why."""
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(value, unit)
    assert message in str(caught.value)


@given(
    st.floats(min_value=0.01, max_value=100, allow_nan=False),
    st.integers(min_value=0, max_value=3600),
    st.integers(min_value=1, max_value=3600),
)
def test_target_expressions_resolve_linearly(factor: float, offset: int, target: int) -> None:
    """`F * target + Ds` resolves to F × target + D for any line target."""
    threshold = parse_threshold(f"{factor!r} * target + {offset}s", "seconds")
    assert threshold.resolve(target) == pytest.approx(factor * target + offset)


@given(
    st.one_of(st.text(), st.floats(), st.integers()), st.sampled_from(["seconds", "count", "ratio"])
)
def test_junk_never_raises_anything_but_threshold_error(value: object, unit: Unit) -> None:
    """Whatever it is given, parse_threshold returns a threshold or raises ThresholdError."""
    try:
        threshold = parse_threshold(value, unit)
    except ThresholdError:
        return
    assert threshold.resolve(180) >= 0 or threshold.uses_target


@given(st.text(alphabet="0123456789.+-*% targetmshd", max_size=20))
def test_near_miss_text_never_raises_anything_but_threshold_error(text: str) -> None:
    """Text built from the grammar's own characters is parsed or rejected, never crashes."""
    units: tuple[Unit, ...] = ("seconds", "count", "ratio")
    for unit in units:
        with contextlib.suppress(ThresholdError):
            parse_threshold(text, unit)
