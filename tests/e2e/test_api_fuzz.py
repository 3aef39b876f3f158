"""Fuzzing the live HTTP API from its own OpenAPI document: nothing it receives gets a 5xx.

Schemathesis reads ``/openapi.json`` from a real daemon process and, for every operation,
sends generated requests that fit the document (positive) and that do not (negative),
authenticated as a duty manager. Each answer must not be a server error, and its status,
content type and body must be ones the document describes.

Random line ids are all unknown (404 before any body is read), so each line-scoped
operation is also fuzzed with every real line id fixed, and ``/ack/{token}`` with a
genuine signed token: then the bodies, commands and pages behind them are reached.

Bounded so it cannot hang: a fixed number of examples per operation, no shrinking, a
timeout on every request, and an overall deadline.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from risingtide.api.links import make_ack_token
from tests.e2e.desk_daemon import SECRET, TOKENS, Daemon, desk_daemon

EXAMPLES = 12
REQUEST_TIMEOUT = 5
DEADLINE = 180  # seconds for the whole run; about 80 on a busy 2-core machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with desk_daemon(tmp_path_factory.mktemp("fuzz")) as d:
        yield d


def outbox_key(daemon: Daemon) -> str:
    """The key of an outbox entry of the running daemon (Council Tax's first notification)."""
    path = daemon.config.parent / "state" / "rising-tide.sqlite"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT key FROM outbox ORDER BY id LIMIT 1").fetchone()
    assert row is not None, "the daemon has planned nothing yet"
    return str(row[0])


def test_no_operation_answers_5xx_or_off_its_documented_shape(daemon: Daemon) -> None:
    """Every operation, fed valid and invalid requests, answers as documented and never 5xx."""
    schema = schemathesis.openapi.from_url(f"{daemon.url}/openapi.json", timeout=REQUEST_TIMEOUT)
    headers = {"Authorization": f"Bearer {TOKENS['priya']}"}
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    # every route and method but /openapi.json itself, which schemathesis leaves out
    assert len(operations) == 35

    # Council Tax is at tier 2 of its first episode from the daemon's first evaluation.
    token = make_ack_token(SECRET, "council_tax", 2, 1, datetime(2099, 1, 1, tzinfo=UTC))
    runs: list[tuple[Any, dict[str, str] | None]] = []
    for operation in operations:
        runs.append((operation, None))
        if "{line}" in operation.path:
            runs += [(operation, {"line": lid}) for lid in ("council_tax", "waste", "highways")]
        if "{token}" in operation.path:
            runs.append((operation, {"token": token}))
        if "{id}" in operation.path:  # Council Tax's first episode: lessons bodies are reached
            runs.append((operation, {"id": "council_tax-1"}))
        if "{key}" in operation.path:  # a real entry: bodies, then 409, are reached
            runs.append((operation, {"key": outbox_key(daemon)}))

    for operation, fixed in runs:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            assert time.monotonic() - started < DEADLINE, "the fuzz run is taking too long"

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
            def exercise(case: schemathesis.Case) -> None:
                response = case.call(base_url=daemon.url, headers=headers, timeout=REQUEST_TIMEOUT)
                case.validate_response(response, checks=CHECKS)

            try:
                exercise()
            except Unsatisfiable:
                # Negative mode has nothing to break on an operation that takes no input.
                if mode is not GenerationMode.NEGATIVE:
                    raise

    assert daemon.proc.poll() is None, "the daemon died under fuzzing"
    assert "Traceback" not in daemon.log.read_text()
