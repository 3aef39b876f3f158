"""An acknowledgement link sent to one person records that person, not the name typed.

Over real HTTP on a FakeClock: the runtime's link for a notice paging one person is bound
to them (``personalise_notice``); pressing the button records their name from
``people:`` and keeps what was typed as "typed: …" in the note. Links without a person,
including ones in the format sent before persons were added, still work and are marked
unverified; a person cannot be added to, changed in or removed from a link.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from risingtide.api import signing
from risingtide.api.links import (
    make_ack_link,
    personal_link,
    personalise_notice,
    read_ack_token,
    with_personal_links,
)
from risingtide.clock import FakeClock
from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import BuildContext, Notice, Notifier
from risingtide.responders import RESPONDER_TYPES
from tests.adapters import notices
from tests.adapters.desk import SECRET, T0, Desk, running_desk
from tests.adapters.test_ack_links import confirm, path_of
from tests.adapters.test_email_channel import Mailbox, smtp_server

PEOPLE = """
people:
  dora: { name: Dora Duty, email: dora@council.example }
  sam: { name: Sam Okafor, email: sam@council.example }
"""


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(tmp_path, tweak=lambda text: text + PEOPLE) as d:
        yield d


def notice_for(desk: Desk, *people: str) -> Notice:
    """The notice the dispatcher would send about revenues' tier 2 to ``people``."""
    order = ResponseOrder(
        key="k", line="revenues", response="notify", action=Action.APPLY, tier=2, episode=1,
        trigger="tier_changed", at=desk.clock.now(), reason="r",
    )  # fmt: skip
    directory = desk.rt.config.directory
    return Notice.of(order, desk.rt._context_for(order), tuple(directory.people[p] for p in people))


def link_in(notice: Notice) -> str:
    url = notice.items[0][1].extra["ack_url"]
    assert isinstance(url, str)
    return url


async def test_a_link_sent_to_one_person_records_that_person(desk: Desk) -> None:
    """Dora's link acknowledges as Dora Duty, whatever is typed; the typing is kept as a note."""
    await desk.raise_line()
    link = link_in(personalise_notice(SECRET, notice_for(desk, "dora")))
    assert read_ack_token(SECRET, link.rsplit("/", 1)[1], desk.clock.now()).person == "dora"
    page = await desk.http.get(path_of(link))
    assert "This link was sent to <strong>Dora Duty</strong>" in page.text
    assert 'value="Dora Duty"' in page.text
    done = await confirm(desk, link, "Sam Okafor", "on it")
    assert done.status_code == 200, done.text
    ack = desk.rt.states["revenues"].ack
    assert ack is not None
    assert (ack.by, ack.note) == ("Dora Duty (via link)", "on it; typed: Sam Okafor")


async def test_a_person_typing_their_own_name_gets_no_typed_note(desk: Desk) -> None:
    """When the name typed is the person's own, the note is just theirs."""
    await desk.raise_line()
    link = link_in(personalise_notice(SECRET, notice_for(desk, "sam")))
    done = await confirm(desk, link, "Sam Okafor", "")
    assert done.status_code == 200, done.text
    ack = desk.rt.states["revenues"].ack
    assert ack is not None and (ack.by, ack.note) == ("Sam Okafor (via link)", "")


async def test_a_notice_to_several_people_or_none_keeps_its_link_unbound(desk: Desk) -> None:
    """One message to two people (or a channel) cannot say who followed it: no person."""
    await desk.raise_line()
    plain = link_in(notice_for(desk))
    assert link_in(personalise_notice(SECRET, notice_for(desk, "dora", "sam"))) == plain
    assert link_in(personalise_notice(SECRET, notice_for(desk))) == plain
    assert link_in(personalise_notice(None, notice_for(desk, "dora"))) == plain


async def test_an_old_format_link_still_acknowledges_marked_unverified(desk: Desk) -> None:
    """A link signed in the format used before persons (five parts) keeps working."""
    await desk.raise_line()
    expires = int(T0.timestamp()) + 24 * 3600
    payload = f"revenues.2.1.{expires}"
    old = f"{desk.url}/ack/{payload}.{signing.sign(SECRET, signing.ACK_LINK, payload)}"
    done = await confirm(desk, old, "Priya Shah", "")
    assert done.status_code == 200, done.text
    ack = desk.rt.states["revenues"].ack
    assert ack is not None and ack.by == "Priya Shah (via link)"
    assert ack.note == "unverified: the name was typed on a link not sent to one person"


async def test_the_person_cannot_be_added_changed_or_removed(desk: Desk) -> None:
    """Editing the person in a link, or stripping it out, makes the link invalid (400)."""
    await desk.raise_line()
    dora = link_in(personalise_notice(SECRET, notice_for(desk, "dora")))
    plain = link_in(notice_for(desk))
    head, sig = dora.rsplit(".", 1)
    forged = [
        dora.replace(".dora.", ".sam."),
        head.rsplit(".", 1)[0] + "." + sig,  # the person taken out, signature kept
        plain.rsplit(".", 1)[0] + ".dora." + plain.rsplit(".", 1)[1],  # a person put in
    ]
    for link in forged:
        page = await desk.http.get(path_of(link))
        assert page.status_code == 400, link
    assert personal_link("another-secret-of-thirty-two-chars!", plain, "dora") is None
    assert personal_link(SECRET, plain, "Not An Id") is None


def mailed_links(mailbox: Mailbox) -> list[str]:
    """Every acknowledgement link in the plain-text part of the mails received."""
    found = []
    for _sender, _rcpt, msg, _tls, _auth in mailbox.received:
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None
        found += re.findall(r"https://rt\.example/ack/\S+", body.get_content())
    return found


async def test_an_email_to_one_person_carries_their_link_and_to_a_mailbox_does_not() -> None:
    """A real e-mail to Ben alone names him in its link; one also sent to ``to:`` does not."""
    plugin = RESPONDER_TYPES["email"]
    expires = notices.T0 + timedelta(hours=24)
    plain = make_ack_link(SECRET, "https://rt.example", "council_tax", 2, 3, expires)
    order = notices.order("council_tax", 2, "email_duty")
    context = notices.context("council_tax", "Council Tax", "high", 400.0, 14)
    context = replace(context, extra={**context.extra, "ack_url": plain})
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        for to in (None, ["csc.duty@council.example"]):
            data = {"host": "127.0.0.1", "port": port, "security": "none",
                    "from": "rising-tide@council.example"}  # fmt: skip
            if to:
                data["to"] = to
            settings = plugin.settings_model.model_validate(data)
            built = plugin.build("email_duty", settings, BuildContext(clock=FakeClock(notices.T0)))
            responder = with_personal_links(built, plugin, settings, lambda: SECRET)
            assert isinstance(responder, Notifier)
            await responder.notify(Notice.of(order, context, (notices.BEN,)))
    personal, shared = mailed_links(mailbox)
    token = personal.rsplit("/", 1)[1]
    assert read_ack_token(SECRET, token, notices.T0).person == "ben"
    assert shared == plain


def test_channels_keep_their_links_unbound() -> None:
    """A Slack post mentions people in a channel everyone reads: it is not wrapped."""
    plugin = RESPONDER_TYPES["slack"]
    settings = plugin.settings_model.model_validate(
        {"url": "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"}
    )
    built = plugin.build("slack", settings, BuildContext(clock=FakeClock(notices.T0)))
    assert with_personal_links(built, plugin, settings, lambda: SECRET) is built
