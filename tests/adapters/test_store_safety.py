"""The state file is opened safely: one daemon per real file, no silent fresh start, no
corrupt file taken on, and nobody but its owner can read it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from risingtide.clock import FakeClock
from risingtide.store import Store, StoreError, StoreLocked
from tests.adapters.loopback import free_port
from tests.adapters.test_store import evaluation, order

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUN_CONFIG = """
server: {{ state_file: {state}, evaluate_every: 1s }}
sources:
  demo: {{ type: scripted }}
lines:
  council_tax: {{ name: Council Tax, framework: f, source: {{ use: demo, avg_wait: 10 }} }}
frameworks:
  f:
    tiers:
      - {{ level: 1, name: high, when: {{ avg_wait: {{ above: 300s }} }}, responses: [note] }}
responses:
  note: {{ type: log, message: hello }}
"""


def filled(path: Path, rows: int = 1) -> None:
    """Write a store at ``path`` with one line's state and ``rows`` outbox orders; close it."""
    with Store(path, FakeClock(T0)) as store:
        states, events, _ = evaluation()
        store.commit(states, events, [order(f"revenues/{i}") for i in range(rows)])


def run_daemon(tmp_path: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``risingtide run`` on ``state``; it is expected to refuse at start (exit 1)."""
    config = tmp_path / "rising-tide.yaml"
    config.write_text(RUN_CONFIG.format(state=state))
    return subprocess.run(
        [sys.executable, "-m", "risingtide", "run", "-c", str(config),
         "--listen", "127.0.0.1:0", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_symlink_to_a_locked_state_file_is_locked_out(tmp_path: Path) -> None:
    """Two names for one file (a symlink) meet at the same lock: the second store refuses."""
    real = tmp_path / "real" / "state.sqlite"
    link = tmp_path / "link.sqlite"
    with Store(real, FakeClock(T0)):
        link.symlink_to(real)
        with pytest.raises(StoreLocked, match="another Rising Tide"):
            Store(link, FakeClock(T0))


def test_a_zero_byte_state_file_is_refused_unless_told_to_start_afresh(tmp_path: Path) -> None:
    """A 0-byte state file is an error naming --fresh-state; with fresh=True it is a new store."""
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match=r"0 bytes.*--fresh-state"):
        Store(path, FakeClock(T0))
    assert path.stat().st_size == 0, "a refused file must be left as it was"
    with Store(path, FakeClock(T0), fresh=True) as store:
        assert store.load_states() == {}


def test_a_missing_state_file_is_still_created(tmp_path: Path) -> None:
    """No file at all is a first start: the store is created without being asked."""
    path = tmp_path / "new" / "state.sqlite"
    with Store(path, FakeClock(T0)) as store:
        assert store.load_states() == {}
    assert path.stat().st_size > 0


def test_run_refuses_a_zero_byte_state_file_and_fresh_state_accepts_it(tmp_path: Path) -> None:
    """``risingtide run`` exits 1 with the reason on a 0-byte file; --fresh-state gets past it."""
    state = tmp_path / "state.sqlite"
    state.write_bytes(b"")
    refused = run_daemon(tmp_path, state)
    assert refused.returncode == 1
    assert "0 bytes" in refused.stderr and "--fresh-state" in refused.stderr
    assert state.stat().st_size == 0
    port = free_port()
    config = tmp_path / "rising-tide.yaml"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "risingtide", "run", "-c", str(config),
         "--listen", f"127.0.0.1:{port}", "--fresh-state"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        ready = False
        while not ready and time.monotonic() < deadline and daemon.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready, "the daemon did not start with --fresh-state"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)
    assert state.stat().st_size > 0


def test_a_corrupt_state_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    """A damaged page fails SQLite's quick check at open, with a message that says what to do."""
    path = tmp_path / "state.sqlite"
    filled(path, rows=400)
    size = path.stat().st_size
    assert size > 8 * 4096
    with path.open("r+b") as f:
        f.seek(4 * 4096)
        f.write(os.urandom(3 * 4096))
    with pytest.raises(StoreError, match="quick check"):
        Store(path, FakeClock(T0))


def test_run_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    """``risingtide run`` on a file of garbage exits 1 naming the file and the way out."""
    state = tmp_path / "state.sqlite"
    state.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    refused = run_daemon(tmp_path, state)
    assert refused.returncode == 1
    assert str(state) in refused.stderr and "quick check" in refused.stderr


def test_the_state_file_and_its_side_files_are_created_owner_only(tmp_path: Path) -> None:
    """The database, its -wal, -shm and .lock are created 0600 whatever the umask allows."""
    path = tmp_path / "state.sqlite"
    old = os.umask(0o022)
    try:
        with Store(path, FakeClock(T0)) as store:
            states, events, orders = evaluation()
            store.commit(states, events, orders)
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.lock")]
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        os.umask(old)
    assert modes == {f.name: 0o600 for f in files}
