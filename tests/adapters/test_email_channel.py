"""The ``email`` responder against a real SMTP server (aiosmtpd) on 127.0.0.1.

A self-signed certificate for 127.0.0.1 is made once per session with the ``openssl``
command, for STARTTLS and implicit TLS; the server refuses chosen recipients with 550
(permanent) or 451 (temporary) replies and checks AUTH with an authenticator.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import ValidationError

from risingtide.clock import FakeClock
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.ports import BuildContext, ResponseContext, ResponseError
from risingtide.responders import RESPONDER_TYPES
from risingtide.responders.email import EmailSettings, message_id
from tests.adapters import notices
from tests.adapters.loopback import free_port
from tests.adapters.notices import ASHA, BATCH_KEY, BEN, BOARD, CHLOE, HEADLINES

T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
FROM = "Rising Tide <rising-tide@council.example>"
DUTY = "csc.duty@council.example"
HEAD = "head.csc@council.example"
ACK = "https://rt.example/ack/council_tax"


def _order(key_suffix: str = "") -> ResponseOrder:
    return ResponseOrder(
        key=f"council_tax/3/tier_changed/2/1-2@2026-01-05T09:25:00+00:00/email_duty/apply{key_suffix}",
        line="council_tax", response="email_duty", action=Action.APPLY, tier=2, episode=3,
        trigger="tier_changed", at=T0, reason="avg_wait 400s > 300s for 5m",
    )  # fmt: skip


CONTEXT = ResponseContext(
    line_name="Council Tax",
    tier_name="high",
    stats=QueueStats(line="council_tax", at=T0, calls_waiting=14, avg_wait=400.0),
    target_wait=180.0,
    extra={"ack_url": ACK},
)


# --------------------------------------------------------------------------- the server


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


@dataclass
class Mailbox:
    """An aiosmtpd handler: refuses ``unknown@`` (550) and ``busy@`` (451) recipients."""

    busy: bool = True
    received: list[tuple[str, list[str], EmailMessage, bool, bool]] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("unknown@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("busy@") and self.busy:
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((
            str(envelope.mail_from), list(envelope.rcpt_tos), parsed,
            session.ssl is not None, bool(session.authenticated),
        ))  # fmt: skip
        return "250 Message accepted for delivery"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"risingtide", b"correct horse battery staple",
    )  # fmt: skip
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(mailbox: Mailbox, **kwargs: Any) -> Iterator[int]:
    """Run aiosmtpd on 127.0.0.1 (its own thread) for the block; yield the port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _responder(port: int, **settings: Any) -> Any:
    """An email responder to the relay on ``port``; ``to=None`` leaves ``to`` out."""
    plugin = RESPONDER_TYPES["email"]
    data = {"host": "127.0.0.1", "port": port, "security": "none", "from": FROM, "to": [DUTY]}
    data = {k: v for k, v in {**data, **settings}.items() if v is not None}
    validated = plugin.settings_model.model_validate(data)
    return plugin.build("email_duty", validated, BuildContext(clock=FakeClock(T0)))


# --------------------------------------------------------------------------- sending


async def test_sends_a_multipart_message_with_every_header() -> None:
    """From, To, Subject, Date, Message-ID, X-Rising-Tide-Key; plain text and HTML parts."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        outcome = await _responder(port, to=[DUTY, f"Head of CSC <{HEAD}>"]).run(_order(), CONTEXT)
    assert outcome == "sent to 2 recipients"
    sender, recipients, msg, _, _ = mailbox.received[0]
    assert (sender, recipients) == ("rising-tide@council.example", [DUTY, HEAD])
    assert msg["From"] == FROM
    assert msg["To"] == f"{DUTY}, Head of CSC <{HEAD}>"
    assert msg["Subject"] == "Council Tax raised to tier 2 (high) from tier 1"
    assert msg["Date"] == "Mon, 05 Jan 2026 09:25:00 +0000"
    assert msg["Message-ID"] == message_id(_order().key, FROM)
    assert msg["Message-ID"].endswith("@council.example>")
    assert msg["X-Rising-Tide-Key"] == _order().key
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "Average wait 6m 40s (target 3m)" in plain.get_content()
    assert f'href="{ACK}"' in html.get_content()


async def test_the_same_key_gives_the_same_message_id() -> None:
    """A repeat of an order is recognisable: same key, same Message-ID; another key differs."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        first = _responder(port)
        await first.run(_order(), CONTEXT)
        await _responder(port).run(_order(), CONTEXT)  # a restarted daemon's repeat
        await first.run(_order("-other"), CONTEXT)
    ids = [msg["Message-ID"] for _, _, msg, _, _ in mailbox.received]
    assert ids[0] == ids[1] != ids[2]


async def test_a_custom_template_and_subject_are_used() -> None:
    """subject_template and template replace the defaults; the HTML part shows the text."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        responder = _responder(
            port, subject_template="[RT] {{ line_name }} T{{ tier }}",
            template="{{ line_name }} <b>{{ avg_wait_text }}</b>",
        )  # fmt: skip
        await responder.run(_order(), CONTEXT)
    msg = mailbox.received[0][2]
    assert msg["Subject"] == "[RT] Council Tax T2"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().strip() == "Council Tax <b>6m 40s</b>"
    assert "Council Tax &lt;b&gt;6m 40s&lt;/b&gt;" in html.get_content()


# --------------------------------------------------------------------------- TLS and AUTH


async def test_starttls_with_auth_against_a_private_ca(certificate: tuple[Path, Path]) -> None:
    """STARTTLS is required by the server; the login crosses TLS; ca_file trusts the cert."""
    mailbox = Mailbox()
    server = {"tls_context": _server_tls(certificate), "require_starttls": True,
              "authenticator": _authenticator, "auth_required": True}  # fmt: skip
    with smtp_server(mailbox, **server) as port:
        responder = _responder(
            port, security="starttls", ca_file=str(certificate[0]), username="risingtide",
            password="correct horse battery staple",
        )  # fmt: skip
        assert await responder.run(_order(), CONTEXT) == "sent to 1 recipient"
    _, _, _, over_tls, authenticated = mailbox.received[0]
    assert over_tls and authenticated


async def test_a_wrong_password_is_an_auth_failure_not_retried(
    certificate: tuple[Path, Path],
) -> None:
    """535 on AUTH: reason "auth", not retryable."""
    server = {"tls_context": _server_tls(certificate), "authenticator": _authenticator,
              "auth_required": True}  # fmt: skip
    with smtp_server(Mailbox(), **server) as port:
        responder = _responder(port, security="starttls", ca_file=str(certificate[0]),
                               username="risingtide", password="wrong")  # fmt: skip
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("auth", False)
    assert "535" in str(caught.value) and "wrong" not in str(caught.value)


async def test_implicit_tls_mode(certificate: tuple[Path, Path]) -> None:
    """security: ssl speaks TLS from the first byte (port 465 style)."""
    mailbox = Mailbox()
    with smtp_server(mailbox, ssl_context=_server_tls(certificate)) as port:
        responder = _responder(port, security="ssl", ca_file=str(certificate[0]))
        assert await responder.run(_order(), CONTEXT) == "sent to 1 recipient"
    assert len(mailbox.received) == 1


async def test_an_untrusted_certificate_is_not_retried(certificate: tuple[Path, Path]) -> None:
    """Without ca_file the self-signed certificate fails verification: reason "tls"."""
    server = smtp_server(Mailbox(), ssl_context=_server_tls(certificate))
    with server as port, pytest.raises(ResponseError) as caught:
        await _responder(port, security="ssl").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("tls", False)
    assert "certificate" in str(caught.value)


async def test_starttls_asked_of_a_server_without_it_is_a_config_problem() -> None:
    """security: starttls never falls back to clear text."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port, pytest.raises(ResponseError) as caught:
        await _responder(port, security="starttls").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("tls", False)
    assert mailbox.received == []


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("recipient", "reason", "retryable", "code"),
    [
        ("unknown@council.example", "smtp_permanent", False, "550"),
        ("busy@council.example", "smtp_temporary", True, "451"),
    ],
)
async def test_refusals_are_permanent_or_temporary_by_reply_code(
    recipient: str, reason: str, retryable: bool, code: str
) -> None:
    """550 unknown recipient is not retried; 451 try-later is."""
    with smtp_server(Mailbox()) as port, pytest.raises(ResponseError) as caught:
        await _responder(port, to=[recipient]).run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert f"{recipient} ({code} " in str(caught.value)


async def test_a_retry_after_a_partial_refusal_mails_only_the_rest() -> None:
    """One recipient accepted, one told 451: the retry goes to the second one only."""
    mailbox = Mailbox()
    busy = "busy@council.example"
    with smtp_server(mailbox) as port:
        responder = _responder(port, to=[DUTY, busy])
        with pytest.raises(ResponseError) as caught:
            await responder.run(_order(), CONTEXT)
        assert (caught.value.reason, caught.value.retryable) == ("smtp_temporary", True)
        assert "sent to 1 other" in str(caught.value)
        mailbox.busy = False
        assert await responder.run(_order(), CONTEXT) == "sent to 1 recipient (1 had it already)"
        assert await responder.run(_order(), CONTEXT) == "already sent to all 2 recipients"
    assert [rcpts for _, rcpts, _, _, _ in mailbox.received] == [[DUTY], [busy]]


async def test_connection_refused_is_retryable() -> None:
    """Nothing listening: reason "network", retryable."""
    with pytest.raises(ResponseError) as caught:
        await _responder(free_port()).run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("network", True)


async def test_a_server_that_never_greets_times_out() -> None:
    """A relay that accepts the connection and says nothing: reason "timeout", retryable."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never sends the 220 greeting; returns when the client leaves
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(ResponseError) as caught:
            await _responder(port, timeout="300ms").run(_order(), CONTEXT)
    assert (caught.value.reason, caught.value.retryable) == ("timeout", True)


async def test_an_undo_sends_nothing() -> None:
    """Notifications are not undone: an UNDO order connects to nothing."""
    undo = replace(_order(), action=Action.UNDO)
    assert "nothing to undo" in await _responder(free_port()).run(undo, CONTEXT)


# --------------------------------------------------------------------------- notices


def _plain(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_digest_of_three_lines_is_one_message_to_to_and_the_people_paged() -> None:
    """Three lines at three tiers: one email, highest tier first, keyed by the notice, to
    ``to`` and every paged person with an email address (Chloe has none: skipped)."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        outcome = await _responder(port).notify(notices.digest("email_duty"))
    assert outcome == "sent to 3 recipients"
    assert len(mailbox.received) == 1
    _, recipients, msg, _, _ = mailbox.received[0]
    assert recipients == [DUTY, ASHA.email, BEN.email]
    assert msg["To"] == f"{DUTY}, Asha Patel <{ASHA.email}>, Ben Okafor <{BEN.email}>"
    assert msg["Subject"] == (
        "3 lines: Revenues & Benefits tier 3, Council Tax tier 2, Waste & Recycling tier 1"
    )
    assert msg["X-Rising-Tide-Key"] == BATCH_KEY
    assert msg["Message-ID"] == message_id(BATCH_KEY, FROM)
    assert msg["X-Rising-Tide-Tier"] == "3"
    plain = _plain(msg)
    positions = [plain.index(h) for h in HEADLINES]
    assert positions == sorted(positions)
    assert "Acknowledge: https://rt.example/ack/waste" in plain
    assert plain.rstrip().endswith(f"Duty board: {BOARD}")
    html = msg.get_body(("html",))
    assert html is not None and BATCH_KEY in html.get_content()


async def test_without_to_the_people_paged_are_the_recipients() -> None:
    """``to`` is optional: a notice about one line goes to the paged people alone."""
    mailbox = Mailbox()
    notice = notices.mixed("email_duty", people=(CHLOE, BEN))
    with smtp_server(mailbox) as port:
        assert await _responder(port, to=None).notify(notice) == "sent to 1 recipient"
    assert mailbox.received[0][1] == [BEN.email]


async def test_a_person_also_in_to_gets_one_copy() -> None:
    """Recipients are de-duplicated by address, ``to`` first."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        responder = _responder(port, to=[f"Asha <{ASHA.email.upper()}>"])
        await responder.notify(notices.digest("email_duty", people=(ASHA,)))
    assert mailbox.received[0][1] == [ASHA.email.upper()]


async def test_a_name_with_a_comma_and_an_accent_stays_one_address() -> None:
    """``To:`` is written by the email package from addresses, so a paged person called
    "Siân O'Neil, Jr" is one recipient to every mail client, not two."""
    mailbox = Mailbox()
    sian = replace(ASHA, name="Siân O'Neil, Jr", email="sian@council.example")
    with smtp_server(mailbox) as port:
        await _responder(port).notify(notices.digest("email_duty", people=(sian,)))
    to = mailbox.received[0][2]["To"]
    assert [a.addr_spec for a in to.addresses] == [DUTY, "sian@council.example"]
    assert to.addresses[1].display_name == "Siân O'Neil, Jr"


async def test_a_notice_of_undos_only_sends_nothing() -> None:
    """UNDOs of a notification take nothing back: no connection is made."""
    outcome = await _responder(free_port()).notify(notices.undo_only("email_duty"))
    assert outcome == "nothing to undo: a notification is not taken back"


async def test_a_notice_mixing_apply_and_undo_talks_about_the_apply_lines_only() -> None:
    """One APPLY among UNDOs is an ordinary single-line message, keyed by the notice."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        await _responder(port).notify(notices.mixed("email_duty"))
    msg = mailbox.received[0][2]
    assert msg["Subject"] == "Council Tax raised to tier 2 (high)"
    assert msg["X-Rising-Tide-Key"] == BATCH_KEY
    assert "Waste" not in _plain(msg) and "Revenues" not in _plain(msg)


async def test_nobody_to_send_to_is_a_final_failure() -> None:
    """No ``to`` and nobody paged with an email: reason "no_recipients", not retried."""
    with pytest.raises(ResponseError) as caught:
        await _responder(free_port(), to=None).notify(notices.digest("email_duty", (CHLOE,)))
    assert (caught.value.reason, caught.value.retryable) == ("no_recipients", False)


async def test_digest_templates_replace_the_digest_and_the_line_templates_do_not() -> None:
    """digest_subject_template and digest_template write a digest; a single-line
    ``template`` (which sees other variables) is not used for it."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        responder = _responder(
            port, template="{{ line_name }} only",
            digest_subject_template="[RT] {{ count }} lines, worst tier {{ lines[0].tier }}",
            digest_template="{% for l in lines %}{{ l.line_name }} T{{ l.tier }}\n{% endfor %}"
            "{{ key }}",
        )  # fmt: skip
        await responder.notify(notices.digest("email_duty"))
    msg = mailbox.received[0][2]
    assert msg["Subject"] == "[RT] 3 lines, worst tier 3"
    assert _plain(msg).splitlines() == [
        "Revenues & Benefits T3", "Council Tax T2", "Waste & Recycling T1", BATCH_KEY,
    ]  # fmt: skip


def test_the_plugin_sends_to_a_persons_email() -> None:
    """The loader refuses paging someone without the address the channel needs."""
    plugin = RESPONDER_TYPES["email"]
    settings = plugin.settings_model.model_validate({"host": "h.example", "from": FROM})
    assert plugin.address(settings) == "email"
    assert settings.to == ()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"to": ["not-an-address"]}, '"not-an-address" is not an email address'),
        ({"to": ["a@b"]}, '"a@b" is not an email address'),
        ({"to": []}, "must not be empty"),
        ({"to": [DUTY, f"Duty <{DUTY}>"]}, "is listed twice"),
        ({"from": "rising tide"}, "is not an email address"),
        ({"username": "u"}, "username and password go together"),
        ({"username": "u", "password": "p", "security": "none"}, "need security"),
        ({"ca_file": "/no/such/ca.pem"}, "is not a file"),
        ({"security": "tls"}, "Input should be 'starttls', 'ssl' or 'none'"),
        ({"port": 70000}, "less than or equal to 65535"),
        ({"template": "{{ nope }}"}, "'nope' is undefined"),
        ({"html_template": "{{ ''.__class__ }}"}, "not allowed in a template"),
        ({"digest_template": "{{ line_name }}"}, "'line_name' is undefined"),
        ({"digest_subject_template": "{% for l in lines %}"}, "syntax error"),
    ],
)
def test_settings_are_checked_when_the_config_is_loaded(
    settings: dict[str, Any], message: str
) -> None:
    """Addresses, credentials, TLS options and templates are validated up front."""
    data = {"host": "smtp.council.example", "from": FROM, "to": [DUTY], **settings}
    with pytest.raises(ValidationError, match=message):
        EmailSettings.model_validate(data)


def test_the_port_follows_the_security_mode() -> None:
    """587 for starttls, 465 for ssl, 25 for none, unless a port is given."""
    ports = [
        EmailSettings.model_validate(
            {"host": "h.example", "from": FROM, "to": [DUTY], "security": s}
        ).effective_port
        for s in ("starttls", "ssl", "none")
    ]
    assert ports == [587, 465, 25]
