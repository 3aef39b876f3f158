"""Logging: JSON off a terminal, readable key=value on one, stdlib loggers in the same format."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from risingtide.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    """Put structlog and the root logger back as they were for the other tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_writes_json_when_not_on_a_terminal():
    """``auto`` off a terminal gives one JSON object per line, with the fields as keys."""
    out = io.StringIO()
    configure_logging("auto", "info", stream=out)
    structlog.get_logger("risingtide.test").info(
        "tier changed", line="revenues", tier=2, from_tier=0, to_tier=2, reason="avg_wait"
    )
    record = json.loads(out.getvalue().strip().splitlines()[-1])
    assert record["event"] == "tier changed"
    assert (record["line"], record["tier"], record["from_tier"], record["to_tier"]) == (
        "revenues", 2, 0, 2,
    )  # fmt: skip
    assert record["level"] == "info"
    assert record["timestamp"].endswith("Z")


def test_auto_writes_key_value_on_a_terminal_and_stdlib_logs_follow():
    """On a terminal the line reads ``key=value``; a stdlib logger comes out the same way."""
    out = Terminal()
    configure_logging("auto", "info", stream=out)
    structlog.get_logger("risingtide.test").warning("source failing", source="genesys")
    logging.getLogger("uvicorn.error").warning("port busy")
    text = out.getvalue()
    assert "source failing" in text and "source=genesys" in text
    assert "port busy" in text
    assert not text.lstrip().startswith("{")


def test_level_filters_debug_out():
    """At ``info`` a debug line is not written."""
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    structlog.get_logger("risingtide.test").debug("noise")
    assert out.getvalue() == ""


def test_request_urls_from_httpx_stay_out_of_the_log():
    """httpx logs each request's URL at INFO; for Slack and Teams the URL is the credential,
    so only its warnings and errors come through."""
    out = io.StringIO()
    configure_logging("json", "debug", stream=out)
    secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', secret)
    logging.getLogger("httpcore.connection").debug("connect_tcp.started host=%s", secret)
    logging.getLogger("httpx").warning("something httpx warns about")
    text = out.getvalue()
    assert "XXXXSECRET" not in text
    assert "something httpx warns about" in text
