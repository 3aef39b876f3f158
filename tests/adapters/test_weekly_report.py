"""The weekly report: due on Monday at 08:00, mailed once through a real SMTP server.

The daemon runs on a FakeClock with its report loop looking every 50 ms (``CHECK_EVERY``),
a line rises on Sunday, the clock crosses Monday 08:00 and the summary arrives at an
aiosmtpd relay on 127.0.0.1; a restart later that Monday sends nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risingtide import weekly
from risingtide.cli import main
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import QueueStats
from risingtide.report_send import send_report
from risingtide.runtime import Runtime
from risingtide.sources.scripted import ScriptedSource
from tests.adapters.test_email_channel import Mailbox, smtp_server

SUNDAY = datetime(2026, 1, 4, 10, 0, tzinfo=UTC)  # GMT: UK time is UTC in January
MONDAY_8 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

CONFIG = """
server:
  state_file: {state}
sources:
  fast: {{ type: scripted, interval: 1s, timeout: 1s }}
lines:
  revenues: {{ name: Revenues & Benefits, source: {{ use: fast, avg_wait: 100 }} }}
frameworks:
  standard:
    tiers:
      - level: 1
        name: rising
        when: {{ avg_wait: {{ above: target }} }}
        for: 10s
        responses: [notify]
defaults:
  framework: standard
responses:
  notify: {{ type: log, message: duty manager please look }}
  email_managers:
    type: email
    host: 127.0.0.1
    port: {port}
    security: none
    from: Rising Tide <rising-tide@council.example>
    to: [managers@council.example]
reports:
  weekly:
    every: mon 08:00
    timezone: Europe/London
    responses: [email_managers]
"""


@pytest.fixture
def relay() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP relay on loopback that keeps what it is sent."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        yield mailbox, port


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "rising-tide.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.sqlite", port=port))
    return path


async def _raise(rt: Runtime, clock: FakeClock) -> None:
    """Hold a long wait on revenues past the tier's 10 s."""
    source = rt.sources["fast"]
    assert isinstance(source, ScriptedSource) and rt.poller is not None
    for _ in range(4):
        source.push(QueueStats(line="revenues", at=clock.now(), avg_wait=400))
        await rt.poller.poll("fast")
        rt.evaluate_all(clock.now())
        clock.advance(5)


async def _until(check: object, seconds: float = 10.0) -> None:
    """Wait (bounded) until ``check()`` is true."""
    assert callable(check)
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_the_weekly_report_goes_out_once_at_monday_8(
    tmp_path: Path, relay: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crossing Monday 08:00 mails the week's summary once; a restart that Monday does not
    mail it again; the next Monday mails the next week's."""
    mailbox, port = relay
    monkeypatch.setattr(weekly, "CHECK_EVERY", 0.05)
    config = _config(tmp_path, port)
    clock = FakeClock(SUNDAY)
    rt = Runtime(load_config(config), clock=clock)
    await rt.start(serve_http=False, schedule=False)
    try:
        await _raise(rt, clock)
        assert rt.states["revenues"].tier == 1
        clock.set(MONDAY_8 - timedelta(seconds=1))
        await asyncio.sleep(0.3)  # several looks of the loop: not due yet
        assert mailbox.received == []
        clock.set(MONDAY_8 + timedelta(seconds=1))
        await _until(lambda: len(mailbox.received) == 1)
    finally:
        await rt.shutdown()
    _, recipients, msg, _, _ = mailbox.received[0]
    assert recipients == ["managers@council.example"]
    assert msg["Subject"] == (
        "Rising Tide weekly report: 1 episode from Mon 29 Dec 2025 08:00 to Mon 5 Jan 2026 08:00"
    )
    assert msg["X-Rising-Tide-Key"] == "report/weekly/2026-W02/email_managers"
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Sun 4 Jan 2026 10:00: Revenues & Benefits, episode 1, peak tier 1 (rising)" in text
    assert "not acknowledged" in text
    assert "In all: 1 episode on 1 line" in text

    # A restart later on Monday: the week's report is in the outbox already.
    clock2 = FakeClock(MONDAY_8 + timedelta(hours=2))
    rt2 = Runtime(load_config(config), clock=clock2)
    await rt2.start(serve_http=False, schedule=False)
    try:
        assert await weekly.send_due(rt2) == []
        await asyncio.sleep(0.3)
        assert len(mailbox.received) == 1
        assert rt2.store is not None
        entry = rt2.store.outbox_entry("report/weekly/2026-W02/email_managers")
        assert entry is not None and entry.status == "done"
        # The next Monday is a new week and a new report.
        clock2.set(MONDAY_8 + timedelta(days=7, seconds=1))
        await _until(lambda: len(mailbox.received) == 2)
    finally:
        await rt2.shutdown()
    assert mailbox.received[1][2]["X-Rising-Tide-Key"] == "report/weekly/2026-W03/email_managers"


async def test_a_report_missed_by_more_than_a_day_is_skipped(
    tmp_path: Path, relay: tuple[Mailbox, int]
) -> None:
    """A daemon that was down all Monday does not send Monday's report on Tuesday."""
    _, port = relay
    rt = Runtime(
        load_config(_config(tmp_path, port)),
        clock=FakeClock(MONDAY_8 + timedelta(days=1, minutes=1)),
    )
    await rt.start(serve_http=False, schedule=False)
    try:
        assert await weekly.send_due(rt) == []
        assert rt.store is not None and rt.store.pending() == []
    finally:
        await rt.shutdown()


def test_report_send_mails_the_summary_for_the_period_once(
    tmp_path: Path, relay: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """``risingtide report --send`` mails the period's summary straight through the response;
    an unknown response or a switch is refused with exit code 1."""
    mailbox, port = relay
    config = _config(tmp_path, port)

    async def surge() -> None:
        clock = FakeClock(SUNDAY)
        rt = Runtime(load_config(config), clock=clock)
        await rt.start(serve_http=False, schedule=False)
        try:
            await _raise(rt, clock)
        finally:
            await rt.shutdown()

    asyncio.run(surge())
    code = main([
        "report", "-c", str(config), "--since", "2026-01-04T00:00Z", "--until",
        "2026-01-05T00:00Z", "--send", "email_managers",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert len(mailbox.received) == 1
    msg = mailbox.received[0][2]
    assert msg["Subject"] == (
        "Rising Tide report: 1 episode from Sun 4 Jan 2026 00:00 to Mon 5 Jan 2026 00:00"
    )
    assert msg["X-Rising-Tide-Key"] == (
        "report/manual/2026-01-04T00:00+00:00--2026-01-05T00:00+00:00/email_managers"
    )
    assert send_report(config, since="7d", until=None, response="nobody", now=MONDAY_8) == 1
    assert "'nobody' is not in the config (notifications: email_managers, notify)" in (
        capsys.readouterr().err
    )
    assert len(mailbox.received) == 1
