"""Writes ``store_v3.sqlite``: a state file as Rising Tide wrote it before Alembic.

Run with the package as it was at commit 3834bd4 (schema version 3, the last before the
store moved to Alembic) first on the path, e.g.::

    git archive 3834bd4 risingtide | tar -x -C /tmp/rt-old
    PYTHONPATH=/tmp/rt-old .venv/bin/python tests/adapters/data/make_store_v3.py

It puts rows in every table: two lines' states, events and responses in the history, an
outbox entry in each status (one pair sent as a batch), samples, and ``observed_at``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.domain.model import Action, Cause, LineState, ResponseOrder, TierChanged
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OUT = Path(__file__).with_name("store_v3.sqlite")


def order(key: str, line: str) -> ResponseOrder:
    """A notification order at T0."""
    return ResponseOrder(
        key=key, line=line, at=T0, response="notify_duty_manager", action=Action.APPLY,
        tier=1, episode=1, trigger="tier_changed", reason="avg_wait 200s > 180s",
    )  # fmt: skip


def main() -> None:
    """Write the file afresh."""
    assert "rt-old" in str(sys.modules["risingtide"].__file__), "run with the old package"
    for part in (OUT, Path(f"{OUT}-wal"), Path(f"{OUT}-shm"), Path(f"{OUT}.lock")):
        part.unlink(missing_ok=True)
    with Store(OUT, FakeClock(T0)) as store:
        states = [
            LineState(line="revenues", tier=1, entered_at=T0, episode=1, when_since=(T0, None)),
            LineState(line="waste", live=frozenset({"ivr_deflection"})),
        ]
        event = TierChanged("revenues", T0, 0, 1, Cause.RAISED, "avg_wait over target", 1)
        keys = ("pending", "done", "dead", "gone", "batch-a", "batch-b")
        store.commit(
            states, [event], [order(k, "revenues" if k != "batch-b" else "waste") for k in keys]
        )
        store.record_success("done", "posted", T0 + timedelta(seconds=1))
        store.record_failure("dead", "HTTP 400", "http_4xx", T0, None)
        store.record_failure("gone", "HTTP 401", "http_4xx", T0, None)
        store.dismiss("gone", T0 + timedelta(minutes=1), "Priya Shah", "told by phone")
        store.assign_batch(["batch-a", "batch-b"], "notify/batch/1")
        store.record_failure(
            ["batch-a", "batch-b"], "HTTP 503", "http_5xx", T0, T0 + timedelta(minutes=1)
        )
        store.write_samples(
            [("revenues", T0 + timedelta(minutes=m), {"avg_wait": 100.0 + m}) for m in range(3)]
        )
        store.note_observed(T0 + timedelta(minutes=2))
        store.checkpoint()
    Path(f"{OUT}.lock").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
