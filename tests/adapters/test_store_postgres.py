"""The store on PostgreSQL as replicas use it: shared by several at once, row locks where
a method reads and then writes, the fence on every effect-causing write, the password
never shown."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Collection
from pathlib import Path

import pytest
from sqlalchemy import Connection

from risingtide.clock import FakeClock
from risingtide.config.model import ServerConfig
from risingtide.domain.model import LineState
from risingtide.store import Fenced, Store, StoreError, StoreLocked, open_store
from tests.adapters.test_store import T0, evaluation, order
from tests.pgcluster import Cluster


class Fence:
    """A fence that records the lines each check was asked about, pausing ``pause`` seconds
    inside the transaction; with ``refuse`` it raises ``Fenced`` instead."""

    def __init__(self, *, pause: float = 0.0, refuse: bool = False) -> None:
        self.calls: list[set[str]] = []
        self.pause = pause
        self.refuse = refuse

    def check(self, conn: Connection, lines: Collection[str]) -> None:
        """Record the call; pause; refuse if told to."""
        assert conn.in_transaction()
        self.calls.append(set(lines))
        time.sleep(self.pause)
        if self.refuse:
            raise Fenced("another replica leads partition 0", partitions={0})


def test_two_replicas_share_one_database(pg_url: str) -> None:
    """Two stores open the same database at once (no lock), and each sees the other's writes."""
    with Store(pg_url, FakeClock(T0)) as one, Store(pg_url, FakeClock(T0)) as two:
        assert one.shared and two.shared
        one.commit(*evaluation("revenues"))
        two.commit(*evaluation("waste"))
        assert set(one.load_states()) == set(two.load_states()) == {"revenues", "waste"}
        assert len(two.pending()) == 4
        two.record_success("revenues/1", "sent", T0)
        done = one.outbox_entry("revenues/1")
        assert done is not None and done.status == "done"


def test_a_sqlite_store_is_not_shared(tmp_path: Path) -> None:
    """A SQLite file is one daemon's: not shared, and a second store is locked out."""
    with Store(tmp_path / "s.sqlite", FakeClock(T0)) as store:
        assert not store.shared and store.describe == str(tmp_path / "s.sqlite")
        with pytest.raises(StoreLocked):
            Store(tmp_path / "s.sqlite", FakeClock(T0))


def race(stores: list[Store], act: str, *args: object) -> list[str]:
    """Run ``act`` on each store at the same moment, each in its own thread; what each got
    ("ok" or the error's message), in the stores' order."""
    results = [""] * len(stores)
    start = threading.Barrier(len(stores))

    def run(i: int) -> None:
        start.wait()
        try:
            getattr(stores[i], act)(*args)
            results[i] = "ok"
        except StoreError as exc:
            results[i] = str(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_recording_the_same_entry_from_two_replicas_one_wins(pg_url: str) -> None:
    """Both record the same send at once: the row lock makes the second wait and then find
    it done, so exactly one succeeds and the history holds one outcome."""
    with Store(pg_url, FakeClock(T0)) as one, Store(pg_url, FakeClock(T0)) as two:
        one.commit([], [], [order("k1")])
        # The fence pauses each transaction after it read the entry: without the row lock,
        # both would read it pending and both would mark it done.
        one.fence, two.fence = Fence(pause=0.3), Fence(pause=0.3)
        results = race([one, two], "record_success", "k1", "sent", T0)
        assert sorted(results) == ["ok", "the outbox entry 'k1' is already done"]
        assert len(one.history(kinds=["response"])) == 1
        entry = one.outbox_entry("k1")
        assert entry is not None and (entry.status, entry.attempts) == ("done", 1)


def test_requeueing_the_same_dead_letter_from_two_replicas_one_wins(pg_url: str) -> None:
    """Two duty managers requeue one dead letter through two replicas: one requeue only."""
    with Store(pg_url, FakeClock(T0)) as one, Store(pg_url, FakeClock(T0)) as two:
        one.commit([], [], [order("k1")])
        one.record_failure("k1", "HTTP 400", "http_4xx", T0, None)
        results = race([one, two], "requeue", "k1", T0, "Priya Shah")
        assert sorted(results)[1:] == ["ok"]
        assert "it is still pending" in sorted(results)[0]
        assert len(one.history(kinds=["response_requeued"])) == 1


def test_the_fence_is_asked_about_every_effect_causing_write(store_target: Path | str) -> None:
    """A tier change, a claim and a recorded send each ask the fence about their lines,
    inside their transaction."""
    with Store(store_target, FakeClock(T0)) as store:
        store.fence = fence = Fence()
        store.commit(*evaluation("revenues"))
        store.claim(["revenues/1"])
        store.record_success("revenues/1", "sent", T0)
        assert fence.calls == [{"revenues"}] * 3


def test_a_fenced_write_writes_nothing(store_target: Path | str) -> None:
    """When the fence refuses, the tier change, the claim and the recorded send raise
    ``Fenced`` and leave the store as it was."""
    with Store(store_target, FakeClock(T0)) as store:
        store.commit([], [], [order("k1")])
        store.fence = Fence(refuse=True)
        before = (store.load_states(), store.history(), store.pending())
        with pytest.raises(Fenced) as caught:
            store.commit([LineState(line="revenues", tier=2)], [], [order("k2")])
        assert caught.value.partitions == {0}
        with pytest.raises(Fenced):
            store.claim(["k1"])
        with pytest.raises(Fenced):
            store.record_success("k1", "sent", T0)
        assert (store.load_states(), store.history(), store.pending()) == before


def test_the_password_is_never_shown(pg_cluster: Cluster, pg_url: str) -> None:
    """``describe`` and the config's ``repr`` hide the URL's password, and so does the
    error of a database that cannot be reached."""
    secret = "s3cret-Pw-9"
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    with Store(url, FakeClock(T0)) as store:  # the test cluster trusts any password
        assert store.describe == url.replace(secret, "***")
    assert secret not in repr(ServerConfig(database=url))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket closes
    down = f"postgresql://postgres:{secret}@127.0.0.1:{closed}/nothing"
    with pytest.raises(StoreError) as caught:
        Store(down, FakeClock(T0))
    assert secret not in str(caught.value) and "***" in str(caught.value)


def test_open_store_follows_the_config(tmp_path: Path, pg_url: str) -> None:
    """``state_file`` without ``database`` opens SQLite; with ``database``, PostgreSQL."""
    clock = FakeClock(T0)
    with open_store(ServerConfig(state_file=tmp_path / "s.sqlite"), clock) as store:
        assert not store.shared and store.path == tmp_path / "s.sqlite"
    shared = ServerConfig(state_file=tmp_path / "unused.sqlite", database=pg_url)
    with open_store(shared, clock) as store:
        assert store.shared and store.path is None and store.describe == pg_url
    assert not (tmp_path / "unused.sqlite").exists()


def test_size_and_checkpoint_on_postgresql(pg_url: str) -> None:
    """The size is the database's (``pg_database_size``); a checkpoint does nothing."""
    with Store(pg_url, FakeClock(T0)) as store:
        store.checkpoint()
        with store.transaction(write=False) as conn:
            size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
        assert store.size_bytes() == size > 0


@pytest.mark.parametrize("url", ["postgresql://rt:s3cret@db:54x2/rt", "postgresql://rt:s3cret@"])
def test_a_malformed_url_is_a_store_error_that_hides_it(url: str) -> None:
    """A URL SQLAlchemy cannot read is refused as a ``StoreError`` without its password."""
    with pytest.raises(StoreError) as caught:
        Store(url, FakeClock(T0))
    assert "s3cret" not in str(caught.value)


def test_replicas_starting_together_on_an_empty_database_both_open(pg_url: str) -> None:
    """Three stores opening an empty database at once migrate it one after another (an
    advisory lock), rather than all creating the same tables."""
    opened: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(Store(pg_url, FakeClock(T0)))
        except BaseException as exc:  # the test reports whatever it was
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(opened) == 3
        opened[0].commit(*evaluation())
        assert all(set(s.load_states()) == {"revenues"} for s in opened)
    finally:
        for store in opened:
            store.close()
