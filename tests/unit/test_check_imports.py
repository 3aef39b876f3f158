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
