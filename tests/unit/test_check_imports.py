"""``risingtide check`` stays quick: it imports nothing that only ``run`` needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Packages and modules only the daemon uses (the HTTP server, the store, the scheduler,
#: the metrics, notification libraries, the HTTP client, message templates, the event
#: loop, the logger), or only channels and platforms the demo does not use (JWT, SMTP):
#: ``check`` and ``--help`` must not pay for them.
RUN_ONLY = (
    "uvicorn", "starlette", "sqlalchemy", "alembic", "psycopg", "apprise", "apscheduler",
    "prometheus_client", "botocore", "httpx", "jinja2", "jwt", "aiosmtplib", "numpy",
    "icalendar", "structlog", "rich", "asyncio", "holidays",
    "risingtide.runtime", "risingtide.store", "risingtide.api", "risingtide.remote",
    "risingtide.messages", "risingtide.replay", "risingtide.sources.webclient",
    "risingtide.sources.http_json", "risingtide.responders.email",
)  # fmt: skip

_PROBE = """
import json, sys
from risingtide.cli import main
code = main(["check", "-c", sys.argv[1]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_check_of_the_demo_config_imports_no_run_only_module() -> None:
    """A fresh interpreter checking the demo config ends with none of RUN_ONLY imported."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "config" / "rising-tide.yaml")],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    modules = result["modules"]
    assert "risingtide.config" in modules  # it did check
    loaded = [m for m in modules if any(m == r or m.startswith(r + ".") for r in RUN_ONLY)]
    assert loaded == []


#: What replay never needs: the daemon's server, store, scheduler and metrics, the HTTP
#: client, message templates and the logger (it prints; it logs only a feed it cannot read).
REPLAY_NEVER = (
    "uvicorn", "starlette", "sqlalchemy", "alembic", "psycopg", "apscheduler",
    "prometheus_client", "httpx", "jinja2", "jwt", "aiosmtplib", "structlog", "holidays",
    "risingtide.runtime", "risingtide.store", "risingtide.api", "risingtide.remote",
)  # fmt: skip

_REPLAY_PROBE = """
import contextlib, io, json, sys
from risingtide.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(["replay", "-c", sys.argv[1], sys.argv[2]])
print(json.dumps({"code": code, "said": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_replay_of_the_demo_config_imports_nothing_only_the_daemon_needs() -> None:
    """A fresh interpreter replaying a stats file ends with none of REPLAY_NEVER imported."""
    done = subprocess.run(
        [sys.executable, "-c", _REPLAY_PROBE, str(ROOT / "config" / "rising-tide.yaml"),
         str(ROOT / "tests" / "data" / "replay-council-tax.csv")],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    assert "council_tax" in result["said"]  # it did replay
    modules = result["modules"]
    loaded = [m for m in modules if any(m == r or m.startswith(r + ".") for r in REPLAY_NEVER)]
    assert loaded == []
