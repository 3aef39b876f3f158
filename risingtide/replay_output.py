"""Pick the writer for ``risingtide replay``: the timeline, or a comparison, as text,
JSON or an HTML page."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from risingtide.anticipation import uses_capacity_measures
from risingtide.config.model import Config
from risingtide.replay import LineRows, replay_lines, rows_by_line, timeline_json, timeline_text
from risingtide.replay_rows import read_line_rows

FORMATS = ("text", "json", "html")


def render(
    config: Config, stats: Path, fmt: str, proposed: Config | None = None, *, jobs: int = 1
) -> str:
    """The replay of ``stats`` through ``config`` (compared with ``proposed`` when given)
    in ``fmt``, the lines spread over ``jobs`` processes for the timeline. Raises
    ``CsvStatsError`` or ``OSError`` when the file cannot be read."""
    if fmt == "html" or proposed is not None:
        return _scored(config, stats, fmt, proposed)
    result = replay_lines(config, *_rows(config, stats), jobs=jobs)
    if fmt == "json":
        return json.dumps(timeline_json(result, config), indent=2) + "\n"
    return timeline_text(config, result)


def _rows(config: Config, stats: Path) -> tuple[Mapping[str, LineRows], int]:
    """The file's rows by line: as columns, whose marks let replay visit only the rows that
    can change anything; row by row, with the capacity figures worked out as the daemon
    works them out, when a condition reads one (the columns carry the file's figures only)."""
    if uses_capacity_measures(config):
        from risingtide.sources.csv_file import read_rows

        return rows_by_line(read_rows(stats), config)
    return read_line_rows(stats)


def _scored(config: Config, stats: Path, fmt: str, proposed: Config | None) -> str:
    """The page, or the comparison: every row's figures are kept for the scores and charts."""
    from risingtide.replay_compare import compare, comparison_json, run
    from risingtide.replay_html import report_html
    from risingtide.replay_tables import comparison_text
    from risingtide.sources.csv_file import read_rows

    if fmt == "html":
        today = run(config, read_rows(stats))
        other = None if proposed is None else run(proposed, read_rows(stats))
        return report_html(today, other)
    assert proposed is not None
    c = compare(run(config, read_rows(stats)), run(proposed, read_rows(stats)))
    if fmt == "json":
        return json.dumps(comparison_json(c), indent=2, ensure_ascii=False) + "\n"
    return comparison_text(c)
