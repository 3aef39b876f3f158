"""The operations guide's recipes tried for real: online backups of a running daemon's state."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from tests.deploy.conftest import REPO, Stack, run, tool

GUIDE = REPO / "docs" / "operations.md"


def check_backup(path: Path, lines: list[str]) -> None:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in db.execute("SELECT line FROM line_state")}
        history = db.execute("SELECT count(*) FROM history").fetchone()[0]
    assert stored == set(lines) and history > 0


def test_sqlite3_backup_of_a_running_daemon_is_consistent(stack: Stack, tmp_path: Path) -> None:
    """The guide's sqlite3 ".backup" copies a live WAL-mode state file into a sound database."""
    assert ".backup" in GUIDE.read_text(encoding="utf-8")
    backup = tmp_path / "backup.sqlite"
    result = run([tool("sqlite3"), str(stack.state_file), f".backup '{backup}'"])
    assert result.returncode == 0, result.stderr
    assert stack.daemon.popen.poll() is None, "the backup must not disturb the daemon"
    check_backup(backup, stack.lines)


def test_python_backup_for_images_without_sqlite3_is_consistent(
    stack: Stack, tmp_path: Path
) -> None:
    """The guide's Python one-liner (for the container image) backs up the live file as well."""
    guide = GUIDE.read_text(encoding="utf-8")
    source = "/var/lib/rising-tide/rising-tide.sqlite"
    target = "/var/lib/rising-tide/backup.sqlite"
    (one_liner,) = [
        ln for ln in guide.splitlines() if ln.startswith("docker exec") and ".backup(" in ln
    ]
    code = one_liner.split('python -c "', 1)[1].rsplit('"', 1)[0]
    backup = tmp_path / "backup.sqlite"
    code = code.replace(source, str(stack.state_file)).replace(target, str(backup))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    check_backup(backup, stack.lines)
