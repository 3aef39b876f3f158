"""The forecast: will the average wait cross a threshold within the next minutes?

Not a straight line through the recent waits. A queueing model over what drives the wait:

* **arrivals and their trend** — two time-aware exponentially weighted means of the arrival
  rate, a fast one (τ 5 min) and the capacity model's slow one (τ 15 min). For a rate
  changing linearly, a mean with time constant τ lags it by τ, so the slope is
  ``(fast − slow) ÷ (τ_slow − τ_fast)`` and the rate now is ``fast + slope × τ_fast`` —
  counting only the part of the difference that Poisson noise does not explain (with no
  trend beyond noise, the rate is the steadier slow mean);
* **staffing** — the agents staffed now, each answering a call per handle time;
* **the calls already waiting** — beyond the queue Erlang C expects at this load, they are
  a backlog the agents must clear first.

Minute by minute over the horizon, the backlog grows by the arrivals the agents cannot take
(a fluid queue: ``dQ = (λ(t) − N ÷ AHT) dt``, never below 0) and a caller arriving then waits
for the backlog ahead (``Q × AHT ÷ N``) plus Erlang C's average wait at that minute's rate.
``forecast_wait`` is the worst of those waits within the horizon, capped like
``predicted_wait``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from datetime import timedelta

from risingtide.domain.capacity import predicted_wait

#: The fast mean of the arrival rate; against the slow one (``demand.SMOOTHING``) it gives
#: the trend.
FAST = timedelta(minutes=5)
#: How many standard deviations of noise the two means must differ by to show a trend.
NOISE = 2.0
#: The forecast's step through the horizon, seconds.
STEP = 60.0
#: Erlang C's steady state is read at most at this utilisation: beyond it the fluid backlog
#: (which grows at the excess rate) carries the overload, as it builds minute by minute,
#: rather than Erlang C's infinite wait at once.
MAX_UTILISATION = 0.95


def trend(
    slow: float, fast: float, slow_tau: timedelta, fast_tau: timedelta = FAST
) -> tuple[float, float]:
    """(rate now, slope per second) from a slow and a fast mean of the arrival rate.

    Rates in calls per hour; the slope in calls per hour per second. On a small line the
    fast mean wanders by Poisson noise alone, and the horizon multiplies any slope, so the
    difference counts only beyond ``NOISE`` standard deviations of what noise gives two
    such means of a steady rate: ``λ (1/2τf + 1/2τs − 2/(τf + τs))``.
    """
    tf, ts = fast_tau.total_seconds(), slow_tau.total_seconds()
    if ts <= tf:
        return max(0.0, slow), 0.0
    per_second = max(slow, 0.0) / 3600.0
    spread = math.sqrt(per_second * (1 / (2 * tf) + 1 / (2 * ts) - 2 / (tf + ts))) * 3600.0
    excess = max(0.0, abs(fast - slow) - NOISE * spread)
    if excess == 0.0:  # no trend beyond noise: the steadier slow mean is the level
        return max(0.0, slow), 0.0
    slope = math.copysign(excess, fast - slow) / (ts - tf)
    return max(0.0, fast + slope * tf), slope  # a real trend: the fast mean, lagging less


def forecast_wait(
    rate_per_hour: float,
    slope_per_second: float,
    handle_time: float,
    staffed: int,
    waiting: int,
    horizon: float,
    cap: float,
) -> float:
    """The worst average wait (s) of a caller arriving within ``horizon`` seconds.

    ``rate_per_hour`` now, changing by ``slope_per_second`` (calls per hour, per second);
    ``waiting`` calls in the queue now; at most ``cap``.
    """
    if handle_time <= 0:
        raise ValueError("handle_time must be above 0")
    if staffed <= 0:
        return cap if rate_per_hour > 0 or waiting > 0 else 0.0
    clear_rate = staffed / handle_time  # calls a second the agents answer when all busy
    backlog = max(0.0, waiting - _expected_queue(rate_per_hour, handle_time, staffed))
    worst = _wait(backlog, rate_per_hour, handle_time, staffed, cap)
    s = 0.0
    while s < horizon and worst < cap:
        step = min(STEP, horizon - s)
        mid = max(0.0, rate_per_hour + slope_per_second * (s + step / 2))
        backlog = max(0.0, backlog + (mid / 3600.0 - clear_rate) * step)
        s += step
        rate = max(0.0, rate_per_hour + slope_per_second * s)
        worst = max(worst, _wait(backlog, rate, handle_time, staffed, cap))
    return min(worst, cap)


def _steady(rate_per_hour: float, handle_time: float, staffed: int) -> tuple[float, float]:
    """(rate, Erlang C's average wait) with the utilisation held to ``MAX_UTILISATION``."""
    most = MAX_UTILISATION * staffed / handle_time * 3600.0
    rate = min(rate_per_hour, most)
    return rate, predicted_wait(rate, handle_time, staffed)


def _expected_queue(rate_per_hour: float, handle_time: float, staffed: int) -> float:
    """Erlang C's mean queue length at this load (Little: λ × ASA)."""
    rate, asa = _steady(rate_per_hour, handle_time, staffed)
    return rate / 3600.0 * asa


def _wait(backlog: float, rate: float, handle_time: float, staffed: int, cap: float) -> float:
    """The wait of a caller arriving now: the backlog ahead, then Erlang C's average."""
    ahead = backlog * handle_time / staffed
    return min(cap, ahead + _steady(rate, handle_time, staffed)[1])
