"""A line removed from the config of a running daemon (SIGHUP), or while it was stopped, has
its switches undone at the platform; added back, it starts calm with nothing switched on."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.faults.harness import Daemon, Platform, write_config

ALL = ["council_tax", "waste", "revenues"]


def flags_of(platform: Platform, line: str) -> set[str]:
    with platform.lock:
        return {name for name in platform.flags if name.startswith(f"{line}-")}


def test_removing_a_line_undoes_its_switches_by_sighup_and_across_a_restart(
    tmp_path: Path,
) -> None:
    """SIGHUP without ``waste`` at tier 2 switches its flags off and back calm; ``revenues``
    removed while the daemon was stopped has its flags switched off at the next start."""
    state = tmp_path / "state" / "rising-tide.sqlite"
    log = tmp_path / "daemon.log"
    config = tmp_path / "rising-tide.yaml"
    with Platform() as platform:
        write_config(config, platform.url, state)
        platform.surge(400.0, ["waste", "revenues"])
        daemon = Daemon(config, log, tmp_path)
        try:
            daemon.ready()
            daemon.wait_until(
                "waste and revenues at tier 2 with both switches on",
                lambda: (
                    flags_of(platform, "waste") == {"waste-ivr", "waste-deflect"}
                    and len(flags_of(platform, "revenues")) == 2
                ),
            )
            write_config(config, platform.url, state, ["council_tax", "revenues"])
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_until("waste's switches undone", lambda: not flags_of(platform, "waste"))
            assert "waste" not in daemon.tiers()

            platform.surge(10.0, ["waste"])
            write_config(config, platform.url, state, ALL)
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_until("waste back", lambda: "waste" in daemon.tiers())
            back = daemon.get("/api/v1/lines/waste")
            assert (back["tier"], back["live_switches"]) == (0, [])
            time.sleep(2)  # two evaluations: a wrong APPLY would have gone out by now
            assert not flags_of(platform, "waste")
        finally:
            assert daemon.stop() == 0

        write_config(config, platform.url, state, ["council_tax", "waste"])
        daemon = Daemon(config, log, tmp_path)
        try:
            daemon.ready()
            daemon.wait_until(
                "revenues' switches undone at start", lambda: not flags_of(platform, "revenues")
            )
        finally:
            assert daemon.stop() == 0
    assert "line removed" in log.read_text()
