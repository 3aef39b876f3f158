"""The ``apprise`` responder against real receivers on 127.0.0.1, through the real library.

Apprise's ``json://`` plugin posts to a small Starlette receiver (served by uvicorn on
loopback), which records each payload and answers as the test asks; ``mailto://`` talks
to an aiosmtpd server on loopback without TLS or login (Apprise's "local relay" form).
Nothing is mocked: the messages go through Apprise's own plugins.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import apprise
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from risingtide.clock import SystemClock
from risingtide.config import check_config, load_config
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.ports import BuildContext, Notice, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.apprise_channel import EXTRA_NEEDED, AppriseSettings
from tests.adapters.loopback import Loopback, free_port

T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
KEY = "council_tax/3/tier_changed/2/1-2@2026-01-05T09:25:00+00:00/tell_ops/apply"
BATCH = "batch/tell_ops/2026-01-05T09:25:00+00:00"
#: A token Apprise's own log masking leaves whole (it masks some shapes, not all).
SECRET = "opensesametoken"


def _order(
    line: str = "council_tax", tier: int = 2, action: Action = Action.APPLY
) -> ResponseOrder:
    key = f"{line}/3/tier_changed/{tier}/{tier - 1}-{tier}@2026-01-05T09:25:00+00:00/tell_ops"
    return ResponseOrder(
        key=f"{key}/{action.value}", line=line, response="tell_ops", action=action,
        tier=tier, episode=3, trigger="tier_changed", at=T0,
        reason="avg_wait 400s > 300s for 5m",
    )  # fmt: skip


def _context(
    line: str = "council_tax", name: str = "Council Tax", tier_name: str = "high"
) -> ResponseContext:
    return ResponseContext(
        line_name=name,
        tier_name=tier_name,
        stats=QueueStats(line=line, at=T0, calls_waiting=14, avg_wait=400.0, window=900.0),
        target_wait=180.0,
        extra={"ack_url": f"https://rt.example/ack/{line}"},
    )


CONTEXT = _context()


@dataclass
class Receiver:
    """Records what Apprise posts to ``/a`` and ``/b``; answers ``status[path]``."""

    status: dict[str, int] = field(default_factory=lambda: {"a": 200, "b": 200})
    delay: float = 0.0
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            path = request.path_params["path"]
            body = json.loads(await request.body())
            self.seen.append((path, {k.lower(): v for k, v in request.headers.items()}, body))
            if self.delay:
                await asyncio.sleep(self.delay)
            return PlainTextResponse("ok", status_code=self.status.get(path, 404))

        return Starlette(routes=[Route("/{path}", hook, methods=["POST"])])

    def payloads(self, path: str = "a") -> list[dict[str, Any]]:
        return [body for p, _, body in self.seen if p == path]


def _json_url(base: str, path: str = "a") -> str:
    return base.replace("http://", "json://", 1) + f"/{path}"


def _responder(*urls: str, **settings: Any) -> Any:
    plugin = RESPONDER_TYPES["apprise"]
    validated = plugin.settings_model.model_validate({"urls": list(urls), **settings})
    return plugin.build("tell_ops", validated, BuildContext(clock=SystemClock()))


# --------------------------------------------------------------------------- json://


async def test_posts_the_json_payload_apprise_documents() -> None:
    """One post: Apprise's version/title/message/type, the key in the body's footer."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        assert await _responder(_json_url(base)).run(_order(), CONTEXT) == (
            "sent through 1 Apprise URL"
        )
    [(_, headers, payload)] = receiver.seen
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Rising Tide"
    assert payload["version"] == "1.0"
    assert payload["title"] == "Council Tax raised to tier 2 (high) from tier 1"
    assert payload["type"] == "warning"
    message = payload["message"]
    # The headline is the title, not repeated as the body's first line.
    assert message.splitlines()[0] == "Average wait 6m 40s (target 3m)"
    assert "Why: avg_wait 400s > 300s for 5m" in message
    assert "Acknowledge: https://rt.example/ack/council_tax" in message
    assert message.splitlines()[-1] == f"Rising Tide · council_tax · {KEY}"


async def test_a_digest_of_two_lines_arrives_as_one_post() -> None:
    """A notice about two lines is one message: both lines, the notice's key, worst type."""
    receiver = Receiver()
    notice = Notice(
        BATCH,
        (
            (_order(), CONTEXT),
            (_order("revenues", 3), _context("revenues", "Revenues", "flood")),
        ),
    )
    async with Loopback(receiver.app()) as base:
        assert await _responder(_json_url(base)).notify(notice) == "sent through 1 Apprise URL"
    [payload] = receiver.payloads()
    assert payload["title"] == "2 lines: Revenues tier 3, Council Tax tier 2"
    assert payload["type"] == "failure"  # tier 3 is the worse of the two
    message = payload["message"]
    assert "Revenues raised to tier 3 (flood)" in message
    assert "Council Tax raised to tier 2 (high)" in message
    assert message.splitlines()[-1] == f"Rising Tide · revenues, council_tax · {BATCH}"


async def test_markdown_and_html_bodies_carry_the_key() -> None:
    """``format`` declares the body: escaped Markdown with the key in a code span, or HTML."""
    receiver = Receiver()
    digest = Notice(BATCH, ((_order(), CONTEXT), (_order("revenues", 3), _context("revenues"))))
    async with Loopback(receiver.app()) as base:
        await _responder(_json_url(base), format="markdown").run(_order(), CONTEXT)
        await _responder(_json_url(base), format="html").run(_order(), CONTEXT)
        await _responder(_json_url(base), format="html").notify(digest)
    markdown, single, several = (p["message"] for p in receiver.payloads())
    assert r"Why: avg\_wait 400s \> 300s for 5m" in markdown
    assert markdown.endswith(f"Rising Tide · council\\_tax · `{KEY}`")
    assert single.startswith("<!DOCTYPE html>")
    assert single.count(KEY) == 1  # the built-in HTML's own footer
    assert f"&middot; 2 lines &middot; {BATCH}</p>" in several  # the digest HTML's footer
    assert several.count(BATCH) == 1 and several.index(BATCH) < several.index("</body>")


async def test_a_custom_template_and_subject_are_used() -> None:
    """``template`` and ``subject_template`` replace the built-in text and title."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        responder = _responder(
            _json_url(base),
            subject_template="CSC: {{ line_name }} at {{ tier_label }}",
            template="{{ calls_waiting }} waiting on {{ line_name }}.",
        )
        await responder.run(_order(), CONTEXT)
    [payload] = receiver.payloads()
    assert payload["title"] == "CSC: Council Tax at tier 2 (high)"
    footer = f"Rising Tide · council_tax · {KEY}"
    assert payload["message"] == f"14 waiting on Council Tax.\n\n{footer}"


async def test_back_to_calm_is_a_success_type() -> None:
    """The notify type follows the message kind: back to calm is ``success``."""
    receiver = Receiver()
    calm = replace(_order(), tier=0, key=KEY.replace("1-2@", "2-0@"))
    async with Loopback(receiver.app()) as base:
        await _responder(_json_url(base)).run(calm, _context(tier_name="calm"))
    [payload] = receiver.payloads()
    assert payload["type"] == "success"


# --------------------------------------------------------------------------- failures


async def test_a_500_is_a_retryable_apprise_failure() -> None:
    """Apprise reports only failure: the service is named, the URL is not."""
    receiver = Receiver(status={"a": 500})
    async with Loopback(receiver.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(_json_url(base)).run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("apprise_failed", True)
    assert str(caught.value) == "response 'tell_ops': Apprise urls[0] failed (JSON)"
    assert len(receiver.seen) == 1  # Apprise itself does not retry (retry=0)


async def test_connection_refused_is_retryable() -> None:
    """Nothing listening: a retryable failure, quickly."""
    with pytest.raises(ResponseError) as caught:
        await _responder(f"json://127.0.0.1:{free_port()}/a").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("apprise_failed", True)


async def test_a_service_slower_than_the_timeout_is_a_retryable_timeout() -> None:
    """No result within ``timeout``: reason ``timeout``, retryable."""
    receiver = Receiver(delay=1.5)
    async with Loopback(receiver.app()) as base:
        with pytest.raises(ResponseError) as caught:
            await _responder(_json_url(base), timeout="300ms").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("timeout", True)
    assert "urls[0] gave no result within 0.3s" in str(caught.value)


async def test_a_retry_sends_only_to_the_urls_that_failed() -> None:
    """With two URLs and one failing, the retry of the same key goes to that one alone."""
    receiver = Receiver(status={"a": 200, "b": 503})
    async with Loopback(receiver.app()) as base:
        responder = _responder(_json_url(base, "a"), _json_url(base, "b"))
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
        assert str(caught.value) == (
            "response 'tell_ops': Apprise urls[1] failed (JSON); sent through 1 other(s)"
        )
        receiver.status["b"] = 200
        assert await responder.run(_order(), CONTEXT) == (
            "sent through 1 Apprise URL (1 had it already)"
        )
        assert await responder.run(_order(), CONTEXT) == "already sent through all 2 Apprise URLs"
        # A new key is a new message, to both.
        await responder.notify(Notice(BATCH, ((_order(), CONTEXT),)))
    # (The two URLs are sent to at once, so only the counts are certain, not the order.)
    assert len(receiver.payloads("a")) == 2 and len(receiver.payloads("b")) == 3


async def test_an_undo_sends_nothing() -> None:
    """An UNDO takes nothing back; in a mixed notice only the APPLY line is told."""
    receiver = Receiver()
    undo = _order("revenues", action=Action.UNDO)
    async with Loopback(receiver.app()) as base:
        responder = _responder(_json_url(base))
        assert await responder.run(undo, CONTEXT) == (
            "nothing to undo: a notification is not taken back"
        )
        assert receiver.seen == []
        mixed = Notice(BATCH, ((undo, _context("revenues", "Revenues")), (_order(), CONTEXT)))
        await responder.notify(mixed)
    [payload] = receiver.payloads()
    assert payload["title"] == "Council Tax raised to tier 2 (high) from tier 1"
    assert "Revenues" not in payload["message"]


async def test_a_template_that_fails_at_run_time_is_not_retried() -> None:
    """A template error is the response's own fault: reason ``template``, not retryable."""
    # Fine for the config check's sample figures (14 waiting, or none); not for 13.
    template = "{{ 1 // (calls_waiting - 13) if calls_waiting else '' }}"
    responder = _responder(f"json://127.0.0.1:{free_port()}/a", template=template)
    assert CONTEXT.stats is not None
    thirteen = replace(CONTEXT, stats=replace(CONTEXT.stats, calls_waiting=13))
    with pytest.raises(ResponseError) as caught:
        await responder.run(_order(), thirteen)
    assert (caught.value.reason, caught.value.retryable) == ("template", False)


# --------------------------------------------------------------------------- mailto://


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps every message it is given."""

    received: list[tuple[str, list[str], EmailMessage, bool]] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), parsed, session.ssl is not None)
        )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    """Run aiosmtpd on 127.0.0.1 (its own thread) for the block; yield the port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


async def test_mailto_reaches_an_smtp_server_on_loopback() -> None:
    """``mailto://host:port?from=…&to=…``: a plain-SMTP relay, no login, no TLS."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        url = (
            f"mailto://127.0.0.1:{port}?from=rising-tide@council.example"
            "&to=csc.duty@council.example"
        )
        assert await _responder(url).run(_order(), CONTEXT) == "sent through 1 Apprise URL"
    [(sender, recipients, message, tls)] = mailbox.received
    assert (sender, recipients, tls) == (
        "rising-tide@council.example", ["csc.duty@council.example"], False,
    )  # fmt: skip
    assert message["Subject"] == "Council Tax raised to tier 2 (high) from tier 1"
    assert message["X-Application"] == "Rising Tide"
    body = message.get_body(("plain", "html"))
    assert body is not None
    assert f"Rising Tide · council_tax · {KEY}" in body.get_content()


# --------------------------------------------------------------------------- settings


def test_an_unknown_scheme_is_refused_without_echoing_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only the scheme is quoted; Apprise's own log line (the whole URL) is held back."""
    bad = f"xyz://{SECRET}@chat.example/room"
    with caplog.at_level(logging.DEBUG, logger="apprise"):
        with pytest.raises(ValidationError) as caught:
            AppriseSettings.model_validate({"urls": ["json://127.0.0.1/a", bad]})
        assert SECRET not in caplog.text
        # The check is meaningful: left alone, Apprise logs the URL in full.
        apprise.Apprise().add(bad)
        assert SECRET in caplog.text
    [error] = caught.value.errors()
    assert error["loc"] == ("urls", 1)
    assert error["msg"].startswith("Value error, 'xyz://…' is not a URL Apprise understands")
    assert SECRET not in str(caught.value)


def test_a_bad_url_among_several_in_one_entry_is_named_by_its_scheme() -> None:
    """One entry may hold several URLs (as Apprise allows); the refused one is named."""
    good = "json://127.0.0.1/a"
    settings = AppriseSettings.model_validate({"urls": f"{good} json://127.0.0.1/b"})
    assert len(settings.urls) == 1  # one entry, two services
    with pytest.raises(ValidationError, match=r"'tgram://…' is not a URL Apprise") as caught:
        AppriseSettings.model_validate({"urls": f"{good}, tgram://{SECRET}/"})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"urls": []}, "must list at least one Apprise URL"),
        ({"urls": [""]}, "must not be empty"),
        ({"urls": ["just words"]}, r"'…' is not a URL Apprise understands"),
        ({"format": "rtf"}, "Input should be 'text', 'markdown' or 'html'"),
        ({"timeout": "0s"}, "must be longer than 0s"),
        ({"template": "{{ nope }}"}, "'nope' is undefined"),
        ({"channel": "#csc"}, "Extra inputs are not permitted"),
    ],
)
def test_settings_are_checked_when_the_config_is_loaded(
    settings: dict[str, Any], message: str
) -> None:
    """URLs, format, timeout and templates are validated up front."""
    with pytest.raises(ValidationError, match=message):
        AppriseSettings.model_validate({"urls": ["json://127.0.0.1/a"], **settings})


def test_without_apprise_the_settings_ask_for_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``apprise`` not importable, validation fails once, saying how to install it."""
    monkeypatch.setitem(sys.modules, "apprise", None)  # `import apprise` now raises
    with pytest.raises(ValidationError) as caught:
        AppriseSettings.model_validate({"urls": ["json://127.0.0.1/a"]})
    [error] = caught.value.errors()
    assert error["loc"] == ()
    assert error["msg"] == f"Value error, {EXTRA_NEEDED}"
    assert EXTRA_NEEDED == (
        "the apprise channel needs the \"apprise\" extra: pip install 'risingtide[apprise]'"
    )


def test_the_plugin_table_imports_without_apprise() -> None:
    """The daemon runs without the extra: the responders package imports all the same."""
    code = (
        "import sys; sys.modules['apprise'] = None\n"
        "from risingtide.responders import RESPONDER_TYPES\n"
        "print('apprise' in RESPONDER_TYPES)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "True"


# --------------------------------------------------------------------------- the config


def _config(tmp_path: Path, urls: str) -> Path:
    path = tmp_path / "centre.yaml"
    path.write_text(
        f"""\
sources:
  demo: {{ type: scripted }}
lines:
  council_tax: {{ name: Council Tax, source: demo, framework: standard }}
frameworks:
  standard:
    tiers:
      - {{ level: 1, name: rising, when: {{ avg_wait: {{ above: target }} }},
          responses: [tell_ops] }}
responses:
  tell_ops:
    type: apprise
    urls: {urls}
    format: markdown
    timeout: 5s
""",
        encoding="utf-8",
    )
    return path


async def test_a_config_with_an_apprise_response_loads_and_sends(tmp_path: Path) -> None:
    """The loader validates the block (URL from the environment); the built responder sends."""
    receiver = Receiver()
    async with Loopback(receiver.app()) as base:
        path = _config(tmp_path, '["${APPRISE_URL}"]')
        config = load_config(path, env={"APPRISE_URL": _json_url(base)}, today=date(2026, 1, 5))
        response = config.responses["tell_ops"]
        assert response.type == "apprise" and response.undoable is False
        settings = response.settings
        assert isinstance(settings, AppriseSettings)
        assert settings.format == "markdown" and settings.timeout.total_seconds() == 5
        assert settings.urls[0].get_secret_value() == _json_url(base)
        assert _json_url(base) not in repr(settings)
        plugin = RESPONDER_TYPES["apprise"]
        responder = plugin.build("tell_ops", settings, BuildContext(clock=SystemClock()))
        await responder.run(_order(), CONTEXT)
    assert len(receiver.payloads()) == 1


def test_check_reports_a_bad_url_where_it_is_written_without_the_secret(tmp_path: Path) -> None:
    """``check`` names the file, line and column, and only the URL's scheme."""
    path = _config(tmp_path, '["${APPRISE_URL}"]')
    config, errors, _ = check_config(
        path, env={"APPRISE_URL": f"xyz://{SECRET}@chat.example"}, today=date(2026, 1, 5)
    )
    assert config is None
    [error] = errors
    assert str(error).startswith(
        f"{path}:13:12: responses.tell_ops.urls[0]: 'xyz://…' is not a URL Apprise understands"
    )
    assert SECRET not in str(error)
