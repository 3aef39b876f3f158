"""``server.database``, ``server.partitions`` and ``server.lease``: loaded, defaulted, and the
database's password never shown.

The error cases are fixtures (``bad_replicas``, ``partitions_without_database``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from config_fakes import FIXTURES, ONE_LINE, check, load, write

BASE = ONE_LINE
PASSWORD = "Pg-pass-from-the-environment-71"


def test_without_a_database_the_store_is_the_state_file(tmp_path: Path) -> None:
    """No ``database``: one daemon on SQLite, one partition, a 10 s lease."""
    server = load(write(tmp_path, BASE)).server
    assert (server.database, server.partitions, server.lease) == (None, 1, timedelta(seconds=10))


def test_the_database_url_takes_its_password_from_the_environment(tmp_path: Path) -> None:
    """``${DB_PASSWORD}`` fills the URL's password; partitions and lease load as written,
    and the config's ``repr`` never shows the password."""
    text = BASE + (
        "server:\n"
        '  database: "postgresql://risingtide:${DB_PASSWORD}@db:5432/risingtide"\n'
        "  partitions: 8\n"
        "  lease: 15s\n"
    )
    config = load(write(tmp_path, text), {"DB_PASSWORD": PASSWORD})
    server = config.server
    assert server.database == f"postgresql://risingtide:{PASSWORD}@db:5432/risingtide"
    assert (server.partitions, server.lease) == (8, timedelta(seconds=15))
    assert PASSWORD not in repr(config) + repr(server)


def test_psycopg_urls_and_urls_without_a_password_are_accepted(tmp_path: Path) -> None:
    """``postgresql+psycopg://`` works too, and a URL may leave the password to PGPASSWORD."""
    for url in ("postgresql+psycopg://rt@db/rt", "postgresql://rt@db/rt?sslmode=require"):
        text = BASE + f'server:\n  database: "{url}"\n'
        assert load(write(tmp_path, text)).server.database == url


def test_a_wrong_url_is_reported_without_its_password() -> None:
    """A URL that is not PostgreSQL's is an error at its line that does not echo it."""
    _, errors, _ = check(FIXTURES / "bad_replicas.yaml")
    (database,) = [e for e in errors if "server.database" in e.message]
    assert database.line == 2
    assert "hunter2-secret" not in str(errors)


def test_a_url_with_a_port_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    """``db:54x2`` is caught by ``check``, not at the first connection, and not echoed."""
    text = BASE + 'server:\n  database: "postgresql://rt:hunter2-secret@db:54x2/rt"\n'
    _, errors, _ = check(write(tmp_path, text))
    assert [e.message for e in errors] == [
        "server.database: has a port that is not a number from 1 to 65535 "
        "(e.g. postgresql://risingtide:${DB_PASSWORD}@db:5432/risingtide)"
    ]
