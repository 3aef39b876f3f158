"""Signed acknowledgement links: "acknowledge this tier" in a message, without signing in.

A notification about tier 2 on Council Tax can carry a link such as::

    https://risingtide.council.example/ack/council_tax.2.14.1767700800.Vt0m…

The token names the line, the tier and the episode (the count of rises from calm, so a
link from yesterday's flood cannot acknowledge today's), and when the link expires; an
HMAC-SHA256 over all four, keyed from ``server.secret_key``, stops anyone changing them.
Line ids are ``[a-z0-9_-]`` (the config insists), so the token is URL-safe as it stands.

Following the link only *shows* a confirmation page; the acknowledgement happens when the
person presses the button on it (a POST), so a mail scanner that fetches every link in an
email never acknowledges anything. Whether the link still applies (the episode moved on,
the tier is already acknowledged) is decided against the line's state when it is used —
see ``risingtide.api.pages``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from risingtide.api import signing

__all__ = [
    "AckClaims",
    "LinkError",
    "LinkExpiredError",
    "LinkInvalidError",
    "ack_form_token",
    "check_ack_form_token",
    "make_ack_link",
    "make_ack_token",
    "read_ack_token",
]

_TOKEN = re.compile(
    r"(?P<line>[a-z0-9_-]{1,200})\.(?P<tier>[0-9]{1,3})\.(?P<episode>[0-9]{1,12})"
    r"\.(?P<expires>[0-9]{1,12})\.(?P<sig>[A-Za-z0-9_-]{43})"
)


@dataclass(frozen=True, slots=True)
class AckClaims:
    """What a valid link says: acknowledge ``tier`` of ``episode`` on ``line``, until expiry."""

    line: str
    tier: int
    episode: int
    expires_at: datetime


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


def _payload(line: str, tier: int, episode: int, expires: int) -> str:
    return f"{line}.{tier}.{episode}.{expires}"


def make_ack_token(secret: str, line: str, tier: int, episode: int, expires_at: datetime) -> str:
    """The signed token for acknowledging ``tier`` of ``episode`` on ``line``.

    ``expires_at`` is kept to the second (rounded down).
    """
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = _payload(line, tier, episode, int(expires_at.timestamp()))
    return f"{payload}.{signing.sign(secret, signing.ACK_LINK, payload)}"


def make_ack_link(
    secret: str, public_url: str, line: str, tier: int, episode: int, expires_at: datetime
) -> str:
    """The full URL of an acknowledgement link under ``public_url``."""
    token = make_ack_token(secret, line, tier, episode, expires_at)
    return f"{public_url.rstrip('/')}/ack/{token}"


def read_ack_token(secret: str, token: str, now: datetime) -> AckClaims:
    """The claims of a genuine, unexpired token.

    Raises ``LinkInvalidError`` when the token was not signed with ``secret`` (or is malformed),
    and ``LinkExpiredError`` when it was but ``now`` is at or past its expiry. The signature is
    checked first, so an expired *forgery* is reported as invalid, never as expired.
    """
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise LinkInvalidError("this link is not complete or not valid")
    line, tier, episode, expires = (
        match["line"], int(match["tier"]), int(match["episode"]), int(match["expires"])
    )  # fmt: skip
    payload = _payload(line, tier, episode, expires)
    if not signing.verify(secret, signing.ACK_LINK, payload, match["sig"]):
        raise LinkInvalidError("this link is not valid; it may have been changed or cut short")
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):  # pragma: no cover - 12 digits fit
        raise LinkInvalidError("this link is not valid") from None
    claims = AckClaims(line=line, tier=tier, episode=episode, expires_at=expires_at)
    if now >= expires_at:
        raise LinkExpiredError(claims)
    return claims


def ack_form_token(secret: str, token: str) -> str:
    """The CSRF value the confirmation page's form carries, bound to the link's token."""
    return signing.sign(secret, signing.ACK_FORM, token)


def check_ack_form_token(secret: str, token: str, value: str) -> bool:
    """True when ``value`` is the form's CSRF value for ``token``."""
    return signing.verify(secret, signing.ACK_FORM, token, value)
