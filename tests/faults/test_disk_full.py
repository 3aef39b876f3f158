"""The state file's disk fills up mid-surge: the daemon keeps running, logs the failure once
(with its traceback) and counts the rest, resends nothing on every pass, and when space is
freed it logs the recovery once and carries on to calm with every switch undone.

The disk is a real 2 MB tmpfs, which only root may mount. CI runs the suite as root; run as
anyone else this test fails, saying so, rather than passing without trying.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from risingtide.clock import SystemClock
from risingtide.store import Store
from tests.faults.harness import Daemon, Platform, write_config

SIZE = "2m"


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    """A ``SIZE`` tmpfs mounted at ``where`` for the block."""
    if os.geteuid() != 0:
        pytest.fail(
            "the disk-full fault test needs root to mount a 2 MB tmpfs "
            "(`mount -t tmpfs -o size=2m`); CI runs it as root: run it as root, e.g. in CI"
        )
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> int:
    """Write zeros to ``path`` until the disk is full; return the bytes written."""
    written = 0
    chunk = b"\0" * 16384
    with path.open("wb", buffering=0) as f:
        for _ in range(1024):  # 16 MB at most, far past a 2 MB disk
            try:
                written += f.write(chunk)
            except OSError:
                break
    return written


def count(log: Path, text: str) -> int:
    return sum(text in line for line in log.read_text(errors="replace").splitlines())


def test_a_full_disk_is_logged_once_counted_survived_and_recovered(tmp_path: Path) -> None:
    """Disk full mid-surge: one logged failure, errors counted, no key sent more than twice;
    space freed: "store recovered" once, the surge ends calm with no switch on."""
    log = tmp_path / "daemon.log"
    with small_disk(tmp_path / "disk") as disk, Platform() as platform:
        state = disk / "rising-tide.sqlite"
        config = write_config(tmp_path / "rising-tide.yaml", platform.url, state)
        platform.surge(200.0)  # tier 1: reminders every 2 s keep the store writing
        daemon = Daemon(config, log, tmp_path)
        try:
            daemon.ready()
            daemon.wait_until("tier 1 everywhere", lambda: set(daemon.tiers().values()) == {1})
            filler = disk / "filler"
            assert fill(filler) > 0
            daemon.wait_until(
                "three store errors",
                lambda: (daemon.metric("risingtide_store_errors_total") or 0) >= 3,
            )
            assert count(log, "state store failing") == 1
            filler.unlink()
            daemon.wait_until("the store's recovery", lambda: count(log, "store recovered") == 1)
            platform.surge(10.0)
            daemon.wait_until("calm everywhere", lambda: set(daemon.tiers().values()) == {0})
            daemon.wait_until("every switch undone", lambda: not platform.flags, timeout=20)
        finally:
            assert daemon.stop() == 0
        assert count(log, "state store failing") == 1
        twice = {k: n for k, n in platform.keys.items() if n > 2}
        assert not twice, f"keys delivered more than twice: {twice}"
        with Store(state, SystemClock()) as store:  # opens: the quick check passes
            assert {s.tier for s in store.load_states().values()} == {0}
