"""The systemd unit: hardened, state and config directories, SIGHUP reload, systemd-analyze."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.deploy.conftest import DEPLOY, run, tool

UNIT = DEPLOY / "systemd" / "rising-tide.service"
INSTALLED_BINARY = "/opt/rising-tide/venv/bin/risingtide"


def settings() -> dict[str, list[str]]:
    """Every key's values in the [Service] section (a key may be given more than once)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_is_hardened() -> None:
    """The unit runs as its own user with the file system, home, tmp and privileges locked down."""
    s = settings()
    expected = {
        "DynamicUser": "yes", "User": "rising-tide", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
        "StateDirectory": "rising-tide", "ConfigurationDirectory": "rising-tide",
        "Restart": "on-failure", "ExecReload": "/bin/kill -HUP $MAINPID",
        "EnvironmentFile": "-/etc/rising-tide/env",
    }  # fmt: skip
    assert {k: s.get(k, [""])[-1] for k in expected} == expected
    assert s["CapabilityBoundingSet"] == [""]


def test_unit_runs_the_daemon_on_its_config_in_its_state_directory() -> None:
    """ExecStart runs risingtide on the file in ConfigurationDirectory, from StateDirectory."""
    s = settings()
    (start,) = s["ExecStart"]
    assert re.fullmatch(rf"{INSTALLED_BINARY} run -c /etc/rising-tide/rising-tide\.yaml", start)
    assert s["WorkingDirectory"] == ["/var/lib/rising-tide"]
    assert s["ExecStartPre"] == [f"{INSTALLED_BINARY} check -c /etc/rising-tide/rising-tide.yaml"]


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """systemd-analyze verify has nothing to say about the unit (binary pointed at this venv)."""
    # verify insists the ExecStart binary exists: point it at the risingtide of this venv.
    here = str(Path(sys.executable).parent / "risingtide")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED_BINARY, here))
    result = run([tool("systemd-analyze"), "verify", str(unit)])
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
