"""Erlang C: how long callers wait for a given staffing, and how many agents the target needs.

The M/M/N queue (Poisson arrivals, exponential handle times, N agents, nobody abandons) is
the contact-centre industry's planning model. It is pessimistic when callers abandon (the
ones who hang up shorten everyone else's wait), which is the safe side for "how many agents
would it take to get back under target", the figure the duty board shows.

Traffic ``A`` in erlangs is ``arrivals_per_hour × handle_time_s / 3600``. With ``N`` agents:

* Erlang B by the stable recursion ``B(0) = 1``, ``B(n) = A·B(n−1) / (n + A·B(n−1))`` — no
  factorials, so thousands of agents are fine;
* Erlang C (probability a caller waits) ``C = N·B / (N − A·(1 − B))`` for ``N > A``, else 1;
* mean wait of all callers (ASA) ``C · AHT / (N − A)``;
* service level (share answered within ``t``) ``1 − C · exp(−(N − A) · t / AHT)``.

Pure: no I/O and no third-party imports.
"""

from __future__ import annotations

import math
from datetime import timedelta

from risingtide.domain.model import QueueStats


def traffic(arrivals_per_hour: float, handle_time_s: float) -> float:
    """Offered load in erlangs: the number of agents the calls would keep busy."""
    if arrivals_per_hour < 0 or handle_time_s < 0:
        raise ValueError("arrivals and handle time must not be negative")
    return arrivals_per_hour * handle_time_s / 3600.0


def erlang_b(agents: int, traffic_erlangs: float) -> float:
    """Probability that all ``agents`` are busy in a loss system (Erlang B)."""
    _check(agents, traffic_erlangs)
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic_erlangs * b / (n + traffic_erlangs * b)
    return b


def erlang_c(agents: int, traffic_erlangs: float) -> float:
    """Probability that a caller has to wait (Erlang C); 1.0 when the agents cannot keep up."""
    _check(agents, traffic_erlangs)
    if traffic_erlangs == 0:
        return 0.0
    if agents <= traffic_erlangs:
        return 1.0
    return _c_from_b(agents, traffic_erlangs, erlang_b(agents, traffic_erlangs))


def predicted_wait(arrivals_per_hour: float, handle_time_s: float, agents: int) -> float:
    """Mean wait of all callers (ASA) in seconds; ``inf`` when agents ≤ traffic."""
    a = traffic(arrivals_per_hour, handle_time_s)
    if a == 0:
        return 0.0
    if agents <= a:
        return math.inf
    return erlang_c(agents, a) * handle_time_s / (agents - a)


def service_level(
    arrivals_per_hour: float, handle_time_s: float, agents: int, target_s: float
) -> float:
    """Share of callers answered within ``target_s`` seconds (0–1); 0 when overloaded."""
    if target_s < 0:
        raise ValueError("target_s must not be negative")
    a = traffic(arrivals_per_hour, handle_time_s)
    if a == 0:
        return 1.0
    if agents <= a:
        return 0.0
    c = erlang_c(agents, a)
    return max(0.0, 1.0 - c * math.exp(-(agents - a) * target_s / handle_time_s))


def agents_needed(arrivals_per_hour: float, handle_time_s: float, target_wait_s: float) -> int:
    """The fewest agents whose predicted mean wait is within ``target_wait_s``.

    0 when there are no calls. The search starts just above the traffic and steps Erlang B
    forward one agent at a time, so it costs O(N) however large N is.
    """
    if target_wait_s <= 0:
        raise ValueError("target_wait_s must be above 0")
    a = traffic(arrivals_per_hour, handle_time_s)
    if a == 0:
        return 0
    n = math.floor(a) + 1
    b = erlang_b(n, a)
    while True:
        c = _c_from_b(n, a, b)
        if c * handle_time_s / (n - a) <= target_wait_s:
            return n
        n += 1
        b = a * b / (n + a * b)


def agents_needed_from_stats(stats: QueueStats, target_wait: float | timedelta) -> int | None:
    """``agents_needed`` with demand and handle time estimated from a line's stats.

    The arrival rate is ``offered / window`` (offered includes calls later abandoned, which
    is the demand to plan for); the handle time is ``avg_handle_time``. None when either is
    unknown.
    """
    if stats.offered is None or not stats.window or stats.window <= 0:
        return None
    if stats.avg_handle_time is None or stats.avg_handle_time <= 0:
        return None
    target = target_wait.total_seconds() if isinstance(target_wait, timedelta) else target_wait
    arrivals_per_hour = stats.offered * 3600.0 / stats.window
    return agents_needed(arrivals_per_hour, stats.avg_handle_time, target)


def _c_from_b(agents: int, a: float, b: float) -> float:
    return agents * b / (agents - a * (1.0 - b))


def _check(agents: int, traffic_erlangs: float) -> None:
    if agents < 0:
        raise ValueError("agents must not be negative")
    if traffic_erlangs < 0 or not math.isfinite(traffic_erlangs):
        raise ValueError("traffic must be a finite number of erlangs, ≥ 0")
