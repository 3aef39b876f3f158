"""The scores of replays as tables: rows of labelled cells, and aligned text.

Shared by the text output and the HTML report, so both show the same figures under the
same labels. Minutes are shown to one decimal; a line missing from a config shows ``—``.
"""

from __future__ import annotations

from dataclasses import dataclass

from risingtide.domain.model import Framework
from risingtide.replay_compare import Comparison, LineScore, difference, ignored


@dataclass(frozen=True, slots=True)
class TableRow:
    """One figure as shown: its label and its cells (one per score, then the change)."""

    key: str
    label: str
    cells: tuple[str, ...]


def table(
    names: Framework | None, scores: tuple[LineScore | None, ...], *, change: bool
) -> list[TableRow]:
    """The rows of a score table: a column per score (``—`` where a line is missing), and
    with ``change`` a last column, the second minus the first. ``names`` names the tiers."""
    figures = [None if s is None else s.figures() for s in scores]
    keys: list[str] = []
    for f in figures:
        keys.extend(k for k in (f or {}) if k not in keys)
    keys.sort(key=_order)
    diff = None
    if change and len(figures) == 2 and figures[0] is not None and figures[1] is not None:
        diff = difference(figures[0], figures[1])
    rows: list[TableRow] = []
    for key in keys:
        cells = [_cell(key, None if f is None else f.get(key, 0), names) for f in figures]
        if change:
            cells.append("" if diff is None else _signed(key, diff[key]))
        rows.append(TableRow(key, _label(key, names), tuple(cells)))
    return rows


_KEY_ORDER = (
    "episodes",
    "peak_tier",
    "minutes_in_tier",
    "minutes_above_target_unnotified",
    "notifications",
    "notifications_to",
    "switches_applied",
    "short_episodes",
)


def _order(key: str) -> tuple[int, float | str]:
    head, _, tail = key.partition(".")
    rank = _KEY_ORDER.index(head)
    return (rank, float(tail) if head == "minutes_in_tier" else tail)


def _label(key: str, names: Framework | None) -> str:
    head, _, tail = key.partition(".")
    if head == "minutes_in_tier":
        level = int(tail)
        named = f" {names.tier_name(level)}" if names is not None else ""
        return f"minutes in tier {level}{named}"
    if head == "notifications_to":
        return f"  to {tail}"
    return {
        "episodes": "episodes",
        "peak_tier": "peak tier",
        "minutes_above_target_unnotified": "minutes above target before first notification",
        "notifications": "notifications",
        "switches_applied": "switches applied",
        "short_episodes": "short episodes (likely false alarms)",
    }[head]


def _cell(key: str, value: float | None, names: Framework | None) -> str:
    if value is None:
        return "—"
    if key == "peak_tier" and names is not None:
        return f"{int(value)} {names.tier_name(int(value))}"
    if key.startswith("minutes"):
        return f"{value:.1f}"
    return f"{int(value)}"


def _signed(key: str, value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:+.1f}" if key.startswith("minutes") else f"{int(value):+d}"


def comparison_text(c: Comparison) -> str:
    """The comparison as aligned tables, one per line and one for the total."""
    out = [
        f"today:    {c.today.config.path}",
        f"proposed: {c.proposed.config.path}",
        f"{c.today.result.rows:,} rows; change = proposed − today; nothing was sent.",
    ]
    for lc in c.lines:
        names = _framework(c, lc.line)
        title = f"{lc.name} ({lc.line})"
        if lc.only_in is not None:
            title += f" — only in {lc.only_in}"
        out += ["", *_aligned(title, table(names, (lc.today, lc.proposed), change=True))]
    rows = table(None, (c.total_today, c.total_proposed), change=True)
    out += ["", *_aligned(f"Total ({len(c.lines)} lines)", rows)]
    for line, n in ignored(c).items():
        out.append(f"  {line}: {n:,} rows ignored — no such line in either config")
    return "\n".join(out) + "\n"


def _framework(c: Comparison, line: str) -> Framework | None:
    for config in (c.today.config, c.proposed.config):
        if line in config.lines:
            return config.lines[line].framework
    return None


def _aligned(title: str, rows: list[TableRow]) -> list[str]:
    heads = ("today", "proposed", "change")
    width = max([len(title), *(len(r.label) + 2 for r in rows)])
    cols = [max([len(h), *(len(r.cells[i]) for r in rows)]) for i, h in enumerate(heads)]
    line = title.ljust(width) + "".join(f"  {h:>{w}}" for h, w in zip(heads, cols, strict=True))
    out = [line]
    for r in rows:
        cells = "".join(f"  {v:>{w}}" for v, w in zip(r.cells, cols, strict=True))
        out.append((f"  {r.label}".ljust(width) + cells).rstrip())
    return out
