"""The replay report's chart data: thinning a month of tier changes to what a chart shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.config import load_config
from risingtide.domain.model import Action, Cause, ResponseOrder, TierChanged
from risingtide.replay_html import MAX_MARKS, MAX_POINTS, chart_marks, describe

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def flapping(n: int) -> list[TierChanged]:
    """``n`` changes a minute apart, 0 → 1 → 0 …, with one rise to tier 3 in the middle."""
    out = []
    tier = 0
    for i in range(n):
        to = 3 if i == n // 2 else (0 if tier else 1)
        out.append(TierChanged("revenues", T0 + timedelta(minutes=i), tier, to, Cause.RAISED,
                               "test", 1))  # fmt: skip
        tier = to
    return out


def test_a_few_changes_are_kept_exactly():
    """Under MAX_MARKS changes, every band edge is a change's own second."""
    changes = flapping(10)
    order = ResponseOrder("k", "revenues", "notify", Action.APPLY, 1, 1, "tier_changed",
                          T0 + timedelta(minutes=1), "r")  # fmt: skip
    span = (T0.timestamp(), (T0 + timedelta(minutes=20)).timestamp())
    bands, marks, responses = chart_marks(span, changes, [order])
    assert [b[0] for b in bands[1:]] == [int(c.at.timestamp()) for c in changes]
    assert bands[-1][1] == int(span[1])
    assert len(marks) == 10 and responses == [[int(order.at.timestamp()), 1]]


def test_a_month_of_flapping_is_thinned_and_keeps_its_peak():
    """Forty thousand changes become at most MAX_POINTS bands, the tier 3 minute still shaded."""
    n = 40_000
    assert n > MAX_MARKS
    changes = flapping(n)
    span = (T0.timestamp(), (T0 + timedelta(minutes=n)).timestamp())
    bands, marks, _ = chart_marks(span, changes, [])
    assert len(bands) <= MAX_POINTS
    assert max(b[2] for b in bands) == 3
    assert len(marks) <= 2 * MAX_POINTS
    assert [b[0] for b in bands] == sorted(b[0] for b in bands)


def test_conditions_are_described_in_words():
    """``describe`` writes a tier's condition as the legend shows it."""
    fw = load_config(EXAMPLES / "csv-replay.yaml").lines["council_tax"].framework
    assert describe(fw.tiers[0].when) == "avg_wait > 180s"
    assert describe(fw.tiers[1].when) == (
        "avg_wait > 300s or (abandon_rate > 10.0% and offered ≥ 20)"
    )
    assert describe(fw.tiers[1].clear) == "avg_wait < 240s and abandon_rate < 8.0%"
