"""The figures a replay saw, kept per line for scoring and for charts.

``replay()`` consumes its rows and keeps only the timeline, so the scores
(``replay_compare``) and the HTML report (``replay_html``) watch the rows as they pass on
their way in. Only what those need is kept, in compact arrays (8 bytes a figure): a 30-day
file of 20 lines costs about 20 MB here, not the rows themselves.

A row older than the line's last one is skipped here too, as replay skips it.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from risingtide.domain.model import QueueStats


@dataclass(slots=True)
class LineSeries:
    """One line's figures in time order: unix seconds, and NaN where a figure is unknown."""

    times: array[float] = field(default_factory=lambda: array("d"))
    avg_wait: array[float] = field(default_factory=lambda: array("d"))
    abandon_rate: array[float] = field(default_factory=lambda: array("d"))

    def __len__(self) -> int:
        """The number of rows kept."""
        return len(self.times)


class SeriesRecorder:
    """Keeps each line's figures while passing its rows on unchanged."""

    def __init__(self) -> None:
        """Start with no lines."""
        self.lines: dict[str, LineSeries] = {}

    def watch(self, rows: Iterable[QueueStats]) -> Iterator[QueueStats]:
        """Yield every row, recording the figures of each as it goes by."""
        lines = self.lines
        nan = math.nan
        for row in rows:
            series = lines.get(row.line)
            if series is None:
                series = lines[row.line] = LineSeries()
            t = row.at.timestamp()
            if not series.times or t >= series.times[-1]:
                series.times.append(t)
                wait = row.avg_wait
                series.avg_wait.append(nan if wait is None else float(wait))
                rate = row.abandon_rate
                series.abandon_rate.append(nan if rate is None else rate)
            yield row
