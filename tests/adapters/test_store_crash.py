"""Crash safety: after a ``kill -9`` nothing committed is lost and nothing completed repeats."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from risingtide.clock import FakeClock
from risingtide.dispatch import Dispatcher
from risingtide.domain.model import Cause, LineState, ResponseOrder, TierChanged
from risingtide.ports import ResponseContext
from risingtide.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# Shared by the child script and the parent's assertions.
PRELUDE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from risingtide.clock import FakeClock
    from risingtide.dispatch import Dispatcher
    from risingtide.domain.model import Action, Cause, LineState, ResponseOrder, TierChanged
    from risingtide.ports import ResponseContext
    from risingtide.store import Store

    T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def orders(n):
        return [
            ResponseOrder(f"rev/{n}/notify", "revenues", "notify", Action.APPLY, 2, n,
                          "tier_changed", T0, "avg_wait 412s > 300s"),
            ResponseOrder(f"rev/{n}/ivr", "revenues", "notify", Action.APPLY, 2, n,
                          "tier_changed", T0, "avg_wait 412s > 300s"),
        ]

    def evaluation(n):
        state = LineState(line="revenues", tier=2, entered_at=T0, episode=n)
        events = [
            TierChanged("revenues", T0, 0, 2, Cause.RAISED, "avg_wait 412s > 300s", n),
            TierChanged("revenues", T0, 2, 2, Cause.DECLARED, f"marker {n}", n),
        ]
        return [state], events, orders(n)

    def context_for(order):
        return ResponseContext(line_name="Revenues", tier_name="high", stats=None,
                               target_wait=180)
    """
)

# Commits one evaluation, then dispatches it: the responder writes each key it is given
# to a file (fsync'd), and on its second call kills the process after sending but before
# the dispatcher can record the outcome.
KILLED_WHILE_DISPATCHING = PRELUDE + textwrap.dedent(
    """
    db, sent = Path(sys.argv[1]), Path(sys.argv[2])

    class SendsThenDies:
        name = "notify"
        undoable = False
        calls = 0

        async def run(self, order, context):
            SendsThenDies.calls += 1
            with sent.open("a") as f:
                f.write(order.key + "\\n")
                f.flush()
                os.fsync(f.fileno())
            if SendsThenDies.calls == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return "sent"

    clock = FakeClock(T0)
    store = Store(db, clock)
    store.commit(*evaluation(1))
    asyncio.run(Dispatcher(store, {"notify": SendsThenDies()}, context_for, clock).run_due())
    sys.exit("not killed")
    """
)

# Commits evaluation after evaluation until it is killed, saying once it is well under way.
KILLED_WHILE_COMMITTING = PRELUDE + textwrap.dedent(
    """
    store = Store(Path(sys.argv[1]), FakeClock(T0))
    n = 0
    while True:
        n += 1
        store.commit(*evaluation(n))
        if n == 50:
            print("under way", flush=True)
    """
)


class Recording:
    """A responder that appends each key it runs to the same file as the child did."""

    name = "notify"
    undoable = False

    def __init__(self, sent: Path) -> None:
        self.sent = sent

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        with self.sent.open("a") as f:
            f.write(order.key + "\n")
        return "sent"


def context_for(order: ResponseOrder) -> ResponseContext:
    """A plain context."""
    return ResponseContext(line_name="Revenues", tier_name="high", stats=None, target_wait=180)


def test_kill_between_sending_and_recording_repeats_once_with_same_key(tmp_path: Path) -> None:
    """A response sent but not recorded runs once more after restart; a recorded one never."""
    db, sent = tmp_path / "state" / "rt.sqlite", tmp_path / "sent.txt"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_DISPATCHING, str(db), str(sent)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, f"child did not die by SIGKILL:\n{out}\n{err}"
    assert sent.read_text().split() == ["rev/1/notify", "rev/1/ivr"]

    clock = FakeClock(T0)
    with Store(db, clock) as store:  # the kernel released the dead process's lock
        # The evaluation is all there.
        assert store.load_states() == {
            "revenues": LineState(line="revenues", tier=2, entered_at=T0, episode=1)
        }
        events = [e.event() for e in store.history(kinds=["tier_changed"])]
        assert [e.reason for e in events if isinstance(e, TierChanged)] == [
            "marker 1",
            "avg_wait 412s > 300s",
        ]
        assert all(isinstance(e, TierChanged) and e.cause in Cause for e in events)
        # The first order was recorded before the kill; the second was sent, not recorded.
        first, second = store.outbox_entry("rev/1/notify"), store.outbox_entry("rev/1/ivr")
        assert first is not None
        assert second is not None
        assert (first.status, second.status, second.attempts) == ("done", "pending", 0)

        dispatcher = Dispatcher(store, {"notify": Recording(sent)}, context_for, clock)
        assert asyncio.run(dispatcher.run_due()) == 1
        assert asyncio.run(dispatcher.run_due()) == 0
        assert store.pending_count() == 0

    keys = sent.read_text().split()
    assert keys.count("rev/1/notify") == 1, "a recorded response ran again"
    assert keys == ["rev/1/notify", "rev/1/ivr", "rev/1/ivr"], "repeated with the same key"


def test_kill_while_committing_leaves_whole_evaluations(tmp_path: Path) -> None:
    """Killed at an arbitrary point of a stream of commits, the file holds whole evaluations.

    Every evaluation n writes state episode n, two events and two orders of episode n; after
    the kill, the last state's episode N must come with exactly the events and orders of
    evaluations 1..N — none half-written.
    """
    db = tmp_path / "rt.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_COMMITTING, str(db)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "under way\n", child.stderr.read() if child.stderr else ""
    finally:
        child.kill()  # SIGKILL, mid-stream
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL

    with Store(db, FakeClock(T0)) as store:
        last = store.load_states()["revenues"].episode
        assert last >= 50
        events = store.history(limit=10 * last + 10)
        assert sorted(e.data["episode"] for e in events) == sorted(
            [n for n in range(1, last + 1)] * 2
        )
        orders = store.due(T0, limit=10 * last + 10)
        assert sorted(e.order.key for e in orders) == sorted(
            f"rev/{n}/{r}" for n in range(1, last + 1) for r in ("notify", "ivr")
        )
