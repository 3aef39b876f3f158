"""``risingtide check`` never prints a value substituted from the environment or a file.

A secret put by mistake in a field that fails validation is named by its ``${…}``
reference in the message, which still gives FILE:LINE:COL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from risingtide.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "rising-tide.yaml"
SECRET = "hunter2-Zq8LmW3nXv7RtY2p"
FILE_SECRET = 'file "secret" \\ Kp9HdF4jBc6'


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_check_names_the_reference_never_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Secrets in a duration, an address and a target are hidden; each error keeps its place."""
    secret_file = tmp_path / "notify_key"
    secret_file.write_text(FILE_SECRET + "\n")
    text = DEMO.read_text()
    text = text.replace("interval: 10s", "interval: ${SECRET}", 1)
    text = text.replace("listen: 127.0.0.1:9470", 'listen: "127.0.0.1:${SECRET}"', 1)
    text = text.replace("target_wait: 120s", f'target_wait: "${{file:{secret_file}}}"', 1)
    config = tmp_path / "rising-tide.yaml"
    config.write_text(text)
    monkeypatch.setenv("SECRET", SECRET)
    monkeypatch.chdir(ROOT)

    assert main(["check", "-c", str(config)]) == 1
    out, err = capsys.readouterr()
    for shown in (out, err):
        assert SECRET not in shown
        assert "hunter2" not in shown
        assert "Kp9HdF4jBc6" not in shown
    errors = re.findall(rf"^{re.escape(str(config))}:(\d+):(\d+): (?!warning:)(.*)$", err, re.M)
    by_line = {int(line): message for line, _col, message in errors}
    assert "${SECRET}" in by_line[line_of(text, "interval: ${SECRET}")]
    assert "not a duration" in by_line[line_of(text, "interval: ${SECRET}")]
    assert "${SECRET}" in by_line[line_of(text, 'listen: "127.0.0.1:${SECRET}"')]
    assert f"${{file:{secret_file}}}" in by_line[line_of(text, 'target_wait: "${file:')]
