"""Erlang C, checked against the independent ``pyworkforce`` implementation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyworkforce.queuing import ErlangC

from risingtide.domain.capacity import (
    agents_needed,
    agents_needed_from_stats,
    erlang_b,
    erlang_c,
    predicted_wait,
    service_level,
    traffic,
)
from risingtide.domain.model import QueueStats

# (agents, calls per hour, handle time in minutes): light to near-saturated, small to large.
GRID = [
    (n, calls, aht)
    for n, calls, aht in [
        (1, 6, 5), (2, 12, 5), (3, 30, 4), (5, 50, 5), (8, 84, 5), (10, 102, 5),
        (10, 108, 5), (12, 140, 5), (15, 120, 6), (20, 216, 5), (25, 280, 5),
        (40, 450, 5), (60, 700, 5), (100, 1150, 5), (150, 1700, 5), (12, 10, 3),
    ]
]


def _pyworkforce(calls: float, aht_min: float, target_min: float = 3.0) -> ErlangC:
    return ErlangC(transactions=calls, aht=aht_min, asa=target_min, interval=60)


@pytest.mark.parametrize(("agents", "calls", "aht"), GRID)
def test_probability_of_waiting_matches_pyworkforce(agents: int, calls: float, aht: float):
    """Erlang C's probability of waiting agrees with pyworkforce to 1e-6 across the grid."""
    ref = _pyworkforce(calls, aht)
    assert erlang_c(agents, traffic(calls, aht * 60)) == pytest.approx(
        ref.waiting_probability(agents), abs=1e-6
    )


@pytest.mark.parametrize(("agents", "calls", "aht"), GRID)
def test_mean_wait_and_service_level_match_pyworkforce(agents: int, calls: float, aht: float):
    """ASA is Pw·AHT/(N−A) and the service level within 3 minutes matches pyworkforce's."""
    ref = _pyworkforce(calls, aht, target_min=3.0)
    a = ref.intensity
    expected_wait = ref.waiting_probability(agents) * aht * 60 / (agents - a)
    assert predicted_wait(calls, aht * 60, agents) == pytest.approx(expected_wait, rel=1e-6)
    assert service_level(calls, aht * 60, agents, 180) == pytest.approx(
        ref.service_level(agents), abs=1e-6
    )


def test_erlang_b_recursion_matches_the_factorial_formula():
    """The recursion gives the textbook A^N/N! / Σ A^k/k! for small cases."""
    for n in range(0, 12):
        for a in (0.5, 3.0, 7.5):
            exact = (a**n / math.factorial(n)) / sum(a**k / math.factorial(k) for k in range(n + 1))
            assert erlang_b(n, a) == pytest.approx(exact, rel=1e-12)


def test_large_centres_do_not_overflow():
    """Thousands of agents compute without overflow and give a probability."""
    c = erlang_c(3000, 2950.0)
    assert 0.0 < c < 1.0
    assert math.isfinite(predicted_wait(2950 * 12, 300, 3000))


def test_overload_and_no_traffic_are_the_limits():
    """Agents at or below the traffic always wait (inf ASA); no traffic never waits."""
    assert erlang_c(10, 10.0) == 1.0
    assert erlang_c(10, 12.0) == 1.0
    assert predicted_wait(120, 300, 10) == math.inf
    assert service_level(120, 300, 10, 180) == 0.0
    assert erlang_c(5, 0.0) == 0.0
    assert predicted_wait(0, 300, 5) == 0.0
    assert agents_needed(0, 300, 180) == 0


def test_bad_inputs_are_rejected():
    """Negative agents or traffic, or a zero target, are errors rather than nonsense."""
    with pytest.raises(ValueError, match="agents"):
        erlang_c(-1, 2.0)
    with pytest.raises(ValueError, match="traffic"):
        erlang_c(3, -2.0)
    with pytest.raises(ValueError, match="target_wait_s"):
        agents_needed(100, 300, 0)


def test_agents_needed_for_the_councils_target():
    """12 agents at 140 calls/hour of 5 minutes wait long; the answer is the first N under 180s."""
    n = agents_needed(140, 300, 180)
    assert predicted_wait(140, 300, n) <= 180 < predicted_wait(140, 300, n - 1)
    assert n == 13  # A = 11.67 erlangs: 12 agents give ~800s, 13 give ~139s


@given(
    calls=st.floats(min_value=1, max_value=5000),
    aht=st.floats(min_value=30, max_value=1800),
    target=st.floats(min_value=1, max_value=1800),
)
def test_agents_needed_is_the_smallest_sufficient_staffing(
    calls: float, aht: float, target: float
):
    """``agents_needed`` meets the target, and one agent fewer does not."""
    n = agents_needed(calls, aht, target)
    assert predicted_wait(calls, aht, n) <= target
    assert predicted_wait(calls, aht, n - 1) > target


def test_agents_needed_from_stats_estimates_demand_from_the_window():
    """35 offered in 15 minutes is 140/hour; with a 300s handle time that needs 13 agents."""
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    stats = QueueStats(line="ct", at=at, offered=35, window=900, avg_handle_time=300)
    assert agents_needed_from_stats(stats, 180) == 13
    assert agents_needed_from_stats(stats, timedelta(minutes=3)) == 13


def test_agents_needed_from_stats_is_unknown_without_the_figures():
    """Without offered, window or handle time the estimate is None, not a guess."""
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert agents_needed_from_stats(QueueStats(line="x", at=at), 180) is None
    assert agents_needed_from_stats(
        QueueStats(line="x", at=at, offered=10, window=900), 180
    ) is None
    assert agents_needed_from_stats(
        QueueStats(line="x", at=at, offered=10, avg_handle_time=300), 180
    ) is None
