"""The HA chapter's backup recipe tried for real: pg_dump and pg_restore on a real PostgreSQL."""

from __future__ import annotations

import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from risingtide.store import schema
from tests.deploy.conftest import REPO, tool

GUIDE = REPO / "docs" / "operations.md"
#: How the guide's commands reach the database in the compose stack.
COMPOSE_EXEC = "exec -T postgres "


def guide_command(program: str) -> list[str]:
    """The guide's one compose command that runs ``program`` in the postgres service."""
    lines = [
        ln
        for ln in GUIDE.read_text(encoding="utf-8").splitlines()
        if ln.startswith("docker compose") and COMPOSE_EXEC + program in ln
    ]
    assert len(lines) == 1, f"the guide should give one {program} command: {lines}"
    words = shlex.split(lines[0].split(COMPOSE_EXEC, 1)[1].split(" > ")[0].split(" < ")[0])
    assert words[0] == program
    return words


def aimed_at(words: list[str], url: str) -> list[str]:
    """The command with the compose stack's user and database swapped for ``url``'s."""
    assert words[words.index("-U") + 1] == "risingtide" == words[words.index("-d") + 1]
    out = list(words)
    out[0] = tool(words[0])
    out[out.index("-U") + 1] = "postgres"
    out[out.index("-d") + 1] = url
    return out


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def contents(engine: sa.Engine) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as conn:
        return (
            list(conn.execute(sa.select(schema.line_state.c.line, schema.line_state.c.state))),
            list(conn.execute(sa.select(schema.lease).order_by(schema.lease.c.partition))),
            list(conn.execute(sa.select(schema.history.c.line, schema.history.c.kind))),
        )


def test_pg_dump_and_pg_restore_bring_the_store_back(pg_url: str, tmp_path: Path) -> None:
    """The guide's pg_dump of a store, then its pg_restore over a changed one, restores it."""
    engine = engine_for(pg_url)
    now = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    try:
        schema.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.line_state), [
                {"line": "council_tax", "state": {"tier": 2}, "updated_at": now},
                {"line": "waste", "state": {"tier": 0}, "updated_at": now},
            ])  # fmt: skip
            conn.execute(sa.insert(schema.lease), [
                {"partition": 0, "holder": "rising-tide-a", "token": 7, "expires_at": now},
            ])  # fmt: skip
            conn.execute(sa.insert(schema.history), [
                {"at": now, "line": "council_tax", "kind": "tier", "tier": 2, "data": {}},
            ])  # fmt: skip
        backed_up = contents(engine)

        dump = tmp_path / "rising-tide.dump"
        with dump.open("wb") as out:
            done = subprocess.run(
                aimed_at(guide_command("pg_dump"), pg_url),
                stdout=out, stderr=subprocess.PIPE, timeout=120,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert dump.stat().st_size > 0

        # what happens after the backup: a tier changes, a lead changes hands, a line goes
        with engine.begin() as conn:
            conn.execute(sa.update(schema.line_state).values(state={"tier": 4}))
            conn.execute(sa.update(schema.lease).values(holder="rising-tide-b", token=8))
            conn.execute(sa.delete(schema.line_state).where(schema.line_state.c.line == "waste"))
        assert contents(engine) != backed_up

        engine.dispose()  # the replicas are stopped before a restore
        with dump.open("rb") as source:
            done = subprocess.run(
                aimed_at(guide_command("pg_restore"), pg_url),
                stdin=source, capture_output=True, timeout=120,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert contents(engine) == backed_up
    finally:
        engine.dispose()
