"""Signed acknowledgement links: "acknowledge this tier" in a message, without signing in.

A notification about tier 2 on Council Tax can carry a link such as::

    https://risingtide.council.example/ack/council_tax.2.14.1767700800.Vt0m…

The token names the line, the tier and the episode (the count of rises from calm, so a
link from yesterday's flood cannot acknowledge today's), and when the link expires; an
HMAC-SHA256 over all of them, keyed from ``server.secret_key``, stops anyone changing them.
Line and person ids are ``[a-z0-9_-]`` (the config insists), so the token is URL-safe as
it stands.

A link in a message addressed to one person also names that person
(``council_tax.2.14.1767700800.dora.Vt0m…``, ``personal_link``): the acknowledgement is
recorded as theirs, whatever name is typed (that is kept as a note). A link without a
person — one made before persons were added to links, or sent to a channel or to several
people — still works, and records the typed name marked as unverified.

Following the link only *shows* a confirmation page; the acknowledgement happens when the
person presses the button on it (a POST), so a mail scanner that fetches every link in an
email never acknowledges anything. Whether the link still applies (the episode moved on,
the tier is already acknowledged) is decided against the line's state when it is used —
see ``risingtide.api.pages``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from risingtide.api import signing
from risingtide.domain.model import ResponseOrder
from risingtide.ports import Notice, Notifier, Responder, ResponderPlugin, ResponseContext

__all__ = [
    "AckClaims",
    "LinkError",
    "LinkExpiredError",
    "LinkInvalidError",
    "ack_form_token",
    "check_ack_form_token",
    "make_ack_link",
    "make_ack_token",
    "personal_link",
    "personalise_notice",
    "read_ack_token",
    "with_personal_links",
]

_TOKEN = re.compile(
    r"(?P<line>[a-z0-9_-]{1,200})\.(?P<tier>[0-9]{1,3})\.(?P<episode>[0-9]{1,12})"
    r"\.(?P<expires>[0-9]{1,12})(?:\.(?P<person>[a-z0-9_-]{1,200}))?"
    r"\.(?P<sig>[A-Za-z0-9_-]{43})"
)
_ACK_PATH = "/ack/"
_ID = re.compile(r"[a-z0-9_-]{1,200}")


@dataclass(frozen=True, slots=True)
class AckClaims:
    """What a valid link says: acknowledge ``tier`` of ``episode`` on ``line``, until expiry."""

    line: str
    tier: int
    episode: int
    expires_at: datetime
    #: The person the link was sent to, or None (a channel, several people, an old link).
    person: str | None = None


class LinkError(ValueError):
    """A link that cannot be used; the message can be shown as it is."""


class LinkInvalidError(LinkError):
    """Not a link this daemon signed: mistyped, cut short, or tampered with."""


class LinkExpiredError(LinkError):
    """A genuine link past its expiry time; ``claims`` says what it was for."""

    def __init__(self, claims: AckClaims) -> None:
        """Expired at ``claims.expires_at``."""
        super().__init__("this link has expired")
        self.claims = claims


def _payload(line: str, tier: int, episode: int, expires: int, person: str | None) -> str:
    # Ids have no dots, so a payload with a person can never equal one without.
    base = f"{line}.{tier}.{episode}.{expires}"
    return base if person is None else f"{base}.{person}"


def make_ack_token(
    secret: str,
    line: str,
    tier: int,
    episode: int,
    expires_at: datetime,
    person: str | None = None,
) -> str:
    """The signed token for acknowledging ``tier`` of ``episode`` on ``line``.

    ``expires_at`` is kept to the second (rounded down); ``person`` (an id from
    ``people:``) binds the link to the person it is sent to.
    """
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = _payload(line, tier, episode, int(expires_at.timestamp()), person)
    return f"{payload}.{signing.sign(secret, signing.ACK_LINK, payload)}"


def make_ack_link(
    secret: str,
    public_url: str,
    line: str,
    tier: int,
    episode: int,
    expires_at: datetime,
    person: str | None = None,
) -> str:
    """The full URL of an acknowledgement link under ``public_url``."""
    token = make_ack_token(secret, line, tier, episode, expires_at, person)
    return f"{public_url.rstrip('/')}{_ACK_PATH}{token}"


def personal_link(secret: str, url: str, person: str) -> str | None:
    """The link ``url`` (one this daemon signed) bound to ``person``; None if it is not one.

    Used when a message is built for one person: the acknowledgement is then recorded
    as theirs. Only the daemon, holding the secret, can make one.
    """
    base, found, token = url.rpartition(_ACK_PATH)
    if not found or not _ID.fullmatch(person):
        return None
    try:
        claims = _verified(secret, token)
    except LinkInvalidError:
        return None
    return make_ack_link(
        secret, base, claims.line, claims.tier, claims.episode, claims.expires_at, person
    )


def personalise_notice(secret: str | None, notice: Notice) -> Notice:
    """``notice`` with its acknowledgement links bound to its one person, if it has one.

    A notice paging several people (or none) is sent as one message to all of them, so
    its links stay unbound: nobody could say which of them followed the link.
    """
    if secret is None or len(notice.people) != 1:
        return notice
    person = notice.people[0].id
    items = []
    for order, context in notice.items:
        url = context.extra.get("ack_url")
        bound = personal_link(secret, url, person) if isinstance(url, str) else None
        if bound is not None:
            context = replace(context, extra={**context.extra, "ack_url": bound})
        items.append((order, context))
    return replace(notice, items=tuple(items))


class _PersonalLinks:
    """A notifier whose notices to one person carry links bound to that person."""

    def __init__(self, inner: Notifier, secret: Callable[[], str | None]) -> None:
        self._inner = inner
        self._secret = secret
        self.name = inner.name
        self.undoable = inner.undoable

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """``notify`` about one order (nobody paged: its link stays unbound)."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Send ``notice`` through the notifier, its links bound to its one person."""
        return await self._inner.notify(personalise_notice(self._secret(), notice))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # anything else is the notifier's own


def with_personal_links(
    responder: Responder,
    plugin: ResponderPlugin,
    settings: BaseModel,
    secret: Callable[[], str | None],
) -> Responder:
    """``responder``, sending person-bound links when a notice goes to one person alone.

    Only notifiers that deliver to a person's own address (e-mail, a mobile: the plugin's
    ``address``) and have no fixed ``to:`` recipients do: a channel post (Slack, Teams, a
    webhook) or a message also sent to a shared mailbox is read by others, so its links
    stay unbound. ``secret`` is read on each notice (a reload may change it).
    """
    personal = plugin.address(settings) is not None and not getattr(settings, "to", None)
    if not personal or not isinstance(responder, Notifier):
        return responder
    return _PersonalLinks(responder, secret)


def read_ack_token(secret: str, token: str, now: datetime) -> AckClaims:
    """The claims of a genuine, unexpired token (with or without a person).

    Raises ``LinkInvalidError`` when the token was not signed with ``secret`` (or is malformed),
    and ``LinkExpiredError`` when it was but ``now`` is at or past its expiry. The signature is
    checked first, so an expired *forgery* is reported as invalid, never as expired.
    """
    claims = _verified(secret, token)
    if now >= claims.expires_at:
        raise LinkExpiredError(claims)
    return claims


def _verified(secret: str, token: str) -> AckClaims:
    """The claims of a token signed with ``secret``, expired or not."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise LinkInvalidError("this link is not complete or not valid")
    line, tier, episode, expires, person = (
        match["line"], int(match["tier"]), int(match["episode"]), int(match["expires"]),
        match["person"],
    )  # fmt: skip
    payload = _payload(line, tier, episode, expires, person)
    if not signing.verify(secret, signing.ACK_LINK, payload, match["sig"]):
        raise LinkInvalidError("this link is not valid; it may have been changed or cut short")
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):  # pragma: no cover - 12 digits fit
        raise LinkInvalidError("this link is not valid") from None
    return AckClaims(line, tier, episode, expires_at, person)


def ack_form_token(secret: str, token: str) -> str:
    """The CSRF value the confirmation page's form carries, bound to the link's token."""
    return signing.sign(secret, signing.ACK_FORM, token)


def check_ack_form_token(secret: str, token: str, value: str) -> bool:
    """True when ``value`` is the form's CSRF value for ``token``."""
    return signing.verify(secret, signing.ACK_FORM, token, value)
