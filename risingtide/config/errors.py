"""Configuration errors and warnings, each tied to a place in the file.

Every problem the loader finds is a ``ConfigError``: the file, a 1-based line and column,
and a message that already names the offending key path, e.g.::

    rising-tide.yaml:14:9: lines.revenues.source: unknown key "queue_idd"

Warnings are ``ConfigError`` values with ``warning=True``; they print with ``warning:``
after the position and never stop a config from loading. ``ConfigErrors`` carries every
error of one load at once, sorted by position, so the analyst fixes them in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True, order=True)
class ConfigError:
    """One problem in a config file, printed as ``FILE:LINE:COL: message``.

    Lines and columns are 1-based; problems with no place in the text (a missing file)
    are reported at line 1, column 1.
    """

    file: str
    line: int
    column: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        """``FILE:LINE:COL: message`` (``FILE:LINE:COL: warning: message`` for warnings)."""
        kind = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}:{self.column}: {kind}{self.message}"


def sort_errors(errors: Iterable[ConfigError]) -> list[ConfigError]:
    """The distinct errors, ordered by file, line, column and message."""
    return sorted(set(errors))


class ConfigErrors(Exception):  # noqa: N818 - the public name the CLI and runtime use
    """A config could not be loaded; ``errors`` lists every reason, in file order."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        """Keep the distinct errors, sorted by file, line and column."""
        self.errors: list[ConfigError] = sort_errors(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def show(value: object) -> str:
    """A value as a message shows it: text in double quotes, YAML words for the rest."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
