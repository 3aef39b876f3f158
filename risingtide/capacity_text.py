"""The capacity figures in words, for messages and the board.

"Needs 4 more agents to get back under 3m (12 needed, 8 staffed; predicted wait 6m 40s)":
the gap (agents needed − staffed, from the smoothed capacity model), the target it is
measured against, and Erlang C's mean wait with the agents staffed now.
"""

from __future__ import annotations

from typing import Any

from risingtide.domain.demand import PREDICTED_WAIT_CAP
from risingtide.message_wording import format_duration


def _duration(seconds: float) -> str:
    return format_duration(seconds)


def gap_percent(ratio: float | None) -> str | None:
    """The gap as a whole percentage of agents needed, ``"8%"``, or None."""
    return None if ratio is None else f"{round(ratio * 100)}%"


def predicted_wait_text(seconds: float | None) -> str | None:
    """``"6m 40s"``; past the cap, "over 1h" (the queue outgrows the agents); None unknown."""
    if seconds is None:
        return None
    if seconds >= PREDICTED_WAIT_CAP:
        return f"over {_duration(PREDICTED_WAIT_CAP)}"
    return _duration(seconds)


def _agents(n: int) -> str:
    return f"{n} agent{'' if n == 1 else 's'}"


def capacity_line(
    needed: int | None, gap: int | None, target_wait: float, predicted: float | None
) -> str | None:
    """One sentence on the line's capacity, or None when agents needed is not known."""
    if needed is None:
        return None
    target = _duration(target_wait)
    if gap is None:
        return f"{_agents(needed)} needed to keep the wait under {target}"
    staffed = needed - gap
    wait = predicted_wait_text(predicted)
    tail = f"; predicted wait {wait}" if wait else ""
    if gap > 0:
        return (
            f"Needs {gap} more agent{'' if gap == 1 else 's'} to get back under {target} "
            f"({needed} needed, {staffed} staffed{tail})"
        )
    return f"Enough agents for {target} ({needed} needed, {staffed} staffed{tail})"


def forecast_line(forecast: float | None, target_wait: float) -> str | None:
    """ "Forecast to pass 3m: up to 6m 40s" when the forecast is over the target, else None."""
    if forecast is None or forecast <= target_wait:
        return None
    return f"Forecast to pass {_duration(target_wait)}: up to {predicted_wait_text(forecast)}"


def capacity_variables(
    needed: int | None,
    gap: int | None,
    ratio: float | None,
    target_wait: float,
    predicted: float | None,
    forecast: float | None = None,
) -> dict[str, Any]:
    """The template variables derived from the capacity figures."""
    return {
        "capacity_gap_percent": gap_percent(ratio),
        "predicted_wait_text": predicted_wait_text(predicted),
        "forecast_wait_text": predicted_wait_text(forecast),
        "capacity_line": capacity_line(needed, gap, target_wait, predicted),
    }
