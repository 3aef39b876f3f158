"""Bringing a store's database to the tables this version uses, each time a store opens.

The tables' history is Alembic's (``risingtide/store/migrations``), for SQLite and
PostgreSQL alike, run in code on the store's own connection and transaction (no
``alembic.ini``). Opening:

- an empty database is upgraded to the newest revision (head);
- a SQLite file written before Alembic (tables, but no ``alembic_version``) is first
  brought to schema version 3 by the hand-written ``schema.MIGRATIONS``, then revision
  ``0001`` adopts it and the later revisions run;
- a database from a newer Rising Tide — ``meta.schema_version`` above 3, or an
  ``alembic_version`` this version does not know — is refused (``SchemaTooNewError``)
  before anything is written, rather than misread.

``meta.schema_version`` stays 3: a Rising Tide from before Alembic reads only that number,
and the revisions since add tables it never touches, so an operator who rolls back still
gets a working daemon. Bump it only for a change an older version would misread.

Alembic is imported here, when a store opens, never at import time: ``risingtide check``
must stay quick.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, select, text, update

from risingtide.store.errors import SchemaTooNewError, StoreError
from risingtide.store.schema import MIGRATIONS, SCHEMA_VERSION, meta

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

#: Where the revisions live, as Alembic finds a package's resources.
SCRIPT_LOCATION = "risingtide.store:migrations"

#: The key of the PostgreSQL advisory lock held while a store migrates: two replicas
#: starting together on an empty database take turns instead of both creating tables.
MIGRATION_LOCK = 0x5254_0001


@dataclass(frozen=True, slots=True)
class Found:
    """What a database holds before migrating: its tables, Alembic revision, schema version."""

    tables: frozenset[str]
    revision: str | None
    schema_version: int | None


@functools.cache
def _scripts() -> ScriptDirectory:
    # Alembic's own INFO lines (its plugins, "non-transactional DDL" — untrue here, the
    # store's transaction holds it all) are noise in the daemon's log; ``migrate`` logs one
    # line of its own. Left alone if someone set Alembic's level on purpose.
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head() -> str:
    """The newest revision this version knows."""
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def check(conn: Connection, shown: str) -> Found:
    """What the database holds; ``SchemaTooNewError`` when a newer Rising Tide wrote it,
    ``StoreError`` when its schema version is not a number. Writes nothing."""
    tables = frozenset(inspect(conn).get_table_names())
    version: int | None = None
    if "meta" in tables:
        raw = conn.execute(
            select(meta.c.value).where(meta.c.key == "schema_version")
        ).scalar_one_or_none()
        if raw is not None:
            try:
                version = int(raw)
            except ValueError:
                raise StoreError(
                    f"{shown} has a schema version Rising Tide cannot read: {raw!r}"
                ) from None
    # Checked before anything is created: a newer schema may have renamed tables, and
    # creating ours beside them would only confuse the newer version later.
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{shown} was written by a newer Rising Tide (schema version {version}; this "
            f"version reads up to {SCHEMA_VERSION}); upgrade Rising Tide, or point this one "
            "at another state file"
        )
    revision = None
    if "alembic_version" in tables:
        revisions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        known = {script.revision for script in _scripts().walk_revisions()}
        unknown = [r for r in revisions if r not in known]
        if unknown:
            raise SchemaTooNewError(
                f"{shown} was written by a newer Rising Tide (database revision "
                f"{', '.join(unknown)}; this version knows up to {head()}); upgrade Rising "
                "Tide, or point this one at another database"
            )
        revision = revisions[0] if revisions else None
    return Found(tables=tables, revision=revision, schema_version=version)


def migrate(conn: Connection, shown: str) -> None:
    """Bring the database to head inside the caller's (write) transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    found = check(conn, shown)
    if found.schema_version is not None and found.schema_version < SCHEMA_VERSION:
        _before_alembic(conn, found.schema_version)
    if found.revision != head():
        from alembic import command

        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        # Through the standard library, not structlog: unconfigured (a script, a test's
        # child process) it stays silent rather than printing on stdout; in the daemon it
        # joins the log like any other line.
        log.info("store migrated: %s from revision %s to %s", shown, found.revision, head())


def _before_alembic(conn: Connection, found: int) -> None:
    """The hand-written steps that bring a file from before Alembic to version 3."""
    for step in range(found + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS.get(step, ()):
            conn.execute(text(statement))
    conn.execute(
        update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )
