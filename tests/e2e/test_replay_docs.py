"""docs/replay.md quotes real output: each ``$ risingtide replay …`` example must still print
what the page shows (the page may leave lines out at the end, never change them)."""

from __future__ import annotations

import shlex

from tests.e2e.test_cli import ROOT, risingtide

DOC = ROOT / "docs" / "replay.md"


def examples() -> list[tuple[str, str]]:
    """Each fenced ``$ risingtide replay`` example: its command (continuations joined) and
    the output quoted under it."""
    found = []
    blocks = DOC.read_text(encoding="utf-8").split("```")
    for block in blocks[1::2]:  # the insides of the fences
        lines = block.splitlines()[1:]  # after the language tag
        if not lines or not lines[0].startswith("$ risingtide replay"):
            continue
        command = lines[0].removeprefix("$ ")
        i = 1
        while command.endswith("\\"):
            command = command[:-1] + lines[i].strip()
            i += 1
        found.append((command, "\n".join(lines[i:]) + "\n"))
    return found


def test_the_worked_example_quotes_what_replay_prints_today():
    """Both worked-example outputs are what the commands print now, line for line."""
    quoted = examples()
    assert len(quoted) == 2
    for command, shown in quoted:
        args = shlex.split(command)[1:]
        result = risingtide(*args)
        assert result.returncode == 0, result.stderr
        assert shown in result.stdout, (
            f"docs/replay.md is stale for `{command}`; it now prints:\n{result.stdout}"
        )
