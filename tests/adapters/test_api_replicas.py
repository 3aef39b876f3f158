"""``GET /api/v1/replicas`` and the ``risingtide_leader`` gauge of a daemon alone on SQLite
(the same answer among replicas on PostgreSQL is checked in ``tests/ha``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from risingtide.api.replicas import ReplicasOut
from tests.adapters.desk import Desk, bearer, running_desk


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path) as d:
        yield d


async def test_alone_it_leads_its_one_partition(desk: Desk) -> None:
    """Alone on its file the daemon names itself as the leader of partition 0, with no
    partition unled, in the documented shape; and its gauge says so."""
    resp = await desk.http.get("/api/v1/replicas", headers=bearer("vera"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    ReplicasOut.model_validate(body)
    me = desk.rt.leadership.replica
    assert body["replica"] == me
    assert body["partitions"] == 1 and body["leads"] == [0] and body["unled"] == []
    assert [(r["name"], r["leads"]) for r in body["replicas"]] == [(me, [0])]
    metrics = (await desk.http.get("/metrics", headers=bearer("vera"))).text
    assert 'risingtide_leader{partition="0"} 1.0' in metrics
    assert "risingtide_replicas 1.0" in metrics


async def test_a_viewer_is_needed(desk: Desk) -> None:
    """With users configured, who leads is not shown to anyone unsigned."""
    resp = await desk.http.get("/api/v1/replicas")
    assert resp.status_code == 401
