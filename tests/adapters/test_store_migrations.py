"""The store's tables are migrated by Alembic on both backends, and older files upgrade.

``data/store_v3.sqlite`` is a state file written by the Rising Tide that shipped before
Alembic (schema version 3; ``data/make_store_v3.py`` says how it was made), with rows in
every table.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from risingtide.clock import FakeClock
from risingtide.store import SchemaTooNewError, Store, StoreError
from risingtide.store.migrate import head
from risingtide.store.schema import metadata
from tests.adapters.test_store import OUTBOX_V2, T0, order

SHIPPED = Path(__file__).parent / "data" / "store_v3.sqlite"
OLD_TABLES = ("line_state", "history", "outbox", "samples", "meta")
NEW_TABLES = ("lease", "replica", "command")


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table in the file, ordered, by table (``sqlite_*`` included)."""
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def schema_sql(path: Path) -> list[tuple[str, str, str | None]]:
    """The file's table and index definitions."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def revision(store: Store) -> str:
    """The store's Alembic revision."""
    with store.transaction(write=False) as conn:
        found: str = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    return found


def drift(store: Store) -> list[object]:
    """What differs between the store's database and ``schema.metadata`` (nothing, we hope)."""
    with store.transaction(write=False) as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the file the shipped version wrote."""
    copy = tmp_path / "state.sqlite"
    shutil.copyfile(SHIPPED, copy)
    return copy


def test_the_fixture_is_what_the_shipped_version_wrote() -> None:
    """The committed file has no Alembic table and none of the replicas' tables, and rows
    in every table of version 3."""
    rows = dump(SHIPPED)
    assert "alembic_version" not in rows and not set(NEW_TABLES) & set(rows)
    assert all(rows[t] for t in OLD_TABLES)
    assert ("schema_version", "3") in rows["meta"]


def test_a_file_from_the_shipped_version_upgrades_keeping_every_row(shipped: Path) -> None:
    """Every row survives, the file ends at Alembic's head with the replicas' tables, and
    the store reads and writes it as before."""
    before = dump(shipped)
    with Store(shipped, FakeClock(T0)) as store:
        assert revision(store) == head() == "0002"
        assert drift(store) == []
        assert set(store.load_states()) == {"revenues", "waste"}
        assert {e.order.key for e in store.pending()} == {"pending", "batch-a", "batch-b"}
        assert store.dead_count() == 1 and store.observed_at() is not None
        assert len(store.samples("revenues")) == 3
    after = dump(shipped)
    for table in OLD_TABLES:
        assert after[table] == before[table], table
    assert after["alembic_version"] == [("0002",)]
    assert all(after[t] == [] for t in NEW_TABLES)


def test_opening_an_upgraded_file_again_changes_nothing(shipped: Path) -> None:
    """A second open of an upgraded file finds it at head: no table, index or row changes."""
    Store(shipped, FakeClock(T0)).close()
    rows, schema = dump(shipped), schema_sql(shipped)
    with Store(shipped, FakeClock(T0)) as store:
        assert revision(store) == head()
    assert (dump(shipped), schema_sql(shipped)) == (rows, schema)


def test_a_version_2_file_from_before_alembic_upgrades_to_head(shipped: Path) -> None:
    """A version 2 file (the outbox's CHECK knows no "dismissed") takes the hand-written
    step to version 3, then Alembic's revisions; every outbox row keeps its id and values."""
    with sqlite3.connect(shipped) as conn:
        conn.execute("UPDATE outbox SET status = 'dead' WHERE status = 'dismissed'")
        conn.executescript(
            "BEGIN; ALTER TABLE outbox RENAME TO old; DROP INDEX ix_outbox_status_next;"
            + OUTBOX_V2
            + "; INSERT INTO outbox SELECT * FROM old; DROP TABLE old;"
            " CREATE INDEX ix_outbox_status_next ON outbox (status, next_attempt_at);"
            " UPDATE meta SET value = '2' WHERE key = 'schema_version'; COMMIT;"
        )
    before = dump(shipped)["outbox"]
    with Store(shipped, FakeClock(T0)) as store:
        assert revision(store) == head()
        assert drift(store) == []
        assert store.dismiss("gone", T0, "Priya Shah", "").status == "dismissed"
    rows = dump(shipped)
    assert ("schema_version", "3") in rows["meta"]
    assert [r for r in rows["outbox"] if r[1] != "gone"] == [r for r in before if r[1] != "gone"]


def test_a_new_store_matches_the_schema_on_both_backends(store_target: Path | str) -> None:
    """An empty database is migrated to head, and its tables are exactly ``schema.py``'s."""
    with Store(store_target, FakeClock(T0)) as store:
        assert revision(store) == head()
        assert drift(store) == []
        with store.transaction(write=False) as conn:
            assert (
                conn.exec_driver_sql(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).scalar_one()
                == "3"
            )


def test_a_revision_this_version_does_not_know_is_refused(store_target: Path | str) -> None:
    """A database a newer Rising Tide migrated past our head is not opened, nor changed."""
    with Store(store_target, FakeClock(T0)) as store:
        store.commit([], [], [order("k1")])
        with store.transaction(write=True) as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(SchemaTooNewError, match=r"database revision 0099; this version knows"):
        Store(store_target, FakeClock(T0))
    with pytest.raises(SchemaTooNewError):
        Store.read_only(store_target, FakeClock(T0))


def test_a_newer_schema_version_is_refused_on_postgresql(pg_url: str) -> None:
    """``meta.schema_version`` above 3 is refused on PostgreSQL as on SQLite."""
    with Store(pg_url, FakeClock(T0)) as store, store.transaction(write=True) as conn:
        conn.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaTooNewError, match=r"schema version 99; this version reads up"):
        Store(pg_url, FakeClock(T0))


def test_read_only_on_postgresql_reads_and_never_writes(pg_url: str) -> None:
    """A report's store on PostgreSQL sees the daemon's rows, and its writes are refused."""
    with Store(pg_url, FakeClock(T0)) as daemon:
        daemon.commit([], [], [order("k1")])
        with Store.read_only(pg_url, FakeClock(T0)) as report:
            assert [e.order.key for e in report.pending()] == ["k1"]
            with pytest.raises(StoreError, match="read-only transaction"):
                report.commit([], [], [order("k2")])
    with Store.read_only(pg_url, FakeClock(T0)) as later:  # after the daemon stopped
        assert [e.order.key for e in later.pending()] == ["k1"]


def test_read_only_refuses_an_empty_database(pg_url: str) -> None:
    """A database no Rising Tide has written says so, rather than failing on a missing table."""
    with pytest.raises(StoreError, match=r"holds no Rising Tide store"):
        Store.read_only(pg_url, FakeClock(T0))
