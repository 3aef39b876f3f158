"""SIGHUP reloads the config of a running daemon; a bad file keeps the old one running."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.e2e.test_restart import CONFIG, Daemon, free_port


def metric(url: str, name: str) -> float:
    for row in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if row.startswith(name + " "):
            return float(row.split()[1])
    raise AssertionError(f"{name} not exported")


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(tmp_path: Path) -> None:
    """A renamed tier shows after SIGHUP; a broken file then sets the reload metric to 0."""
    config = tmp_path / "rising-tide.yaml"
    config.write_text(CONFIG.read_text())
    daemon = Daemon(tmp_path, free_port(), "daemon", config=config)
    try:
        daemon.ready()
        daemon.wait_until("tier 1", lambda: daemon.get("/api/v1/lines/council_tax")["tier"] == 1)
        config.write_text(CONFIG.read_text().replace("name: rising", "name: busy"))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_until(
            "the new tier name",
            lambda: daemon.get("/api/v1/lines/council_tax")["tier_name"] == "busy",
        )
        assert metric(daemon.url, "risingtide_config_last_reload_successful") == 1

        config.write_text("lines: [broken\n")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_until(
            "the failed reload",
            lambda: metric(daemon.url, "risingtide_config_last_reload_successful") == 0,
        )
        time.sleep(0.5)
        line = daemon.get("/api/v1/lines/council_tax")
        assert (line["tier"], line["tier_name"]) == (1, "busy")
        assert "config reload failed" in daemon.log.read_text()
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(20) == 0
