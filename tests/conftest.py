"""Fixtures every test directory may use: a real PostgreSQL cluster on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgcluster import Cluster, running_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the whole session (started on first use)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """The URL of a new, empty database of its own on the session's cluster."""
    return pg_cluster.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's store lives, once per backend: ``state.sqlite`` in the test's own
    directory, or a new, empty PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "state.sqlite"
    return str(request.getfixturevalue("pg_url"))
