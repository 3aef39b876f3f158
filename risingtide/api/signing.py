"""HMAC-SHA256 signatures for session cookies, CSRF values and acknowledgement links.

One secret (``server.secret_key``) signs several kinds of value. Each kind names its
*purpose*, and the key for a purpose is derived from the secret and that name, so a
signature made for one kind can never be replayed as another: a session cookie's
signature is useless as an acknowledgement link's, and the other way round.

Signatures are URL-safe base64 without padding (43 characters for SHA-256), so they can sit
in URLs, cookies and form fields unescaped. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The purposes; each one gets its own derived key.
SESSION = "session"
SESSION_CSRF = "session-csrf"
LOGIN_CSRF = "login-csrf"
ACK_LINK = "ack-link"
ACK_FORM = "ack-form"


def b64encode(data: bytes) -> str:
    """URL-safe base64 without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """The inverse of :func:`b64encode`; ``ValueError`` for anything that is not one."""
    if not text.isascii():
        raise ValueError("not base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise ValueError("not base64") from exc


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), purpose.encode("ascii"), hashlib.sha256).digest()


def sign(secret: str, purpose: str, message: str) -> str:
    """The signature of ``message`` for ``purpose`` (43 URL-safe characters)."""
    mac = hmac.new(_key(secret, purpose), message.encode("utf-8"), hashlib.sha256)
    return b64encode(mac.digest())


def verify(secret: str, purpose: str, message: str, signature: str) -> bool:
    """True when ``signature`` is ``sign(secret, purpose, message)``, compared in constant time."""
    expected = sign(secret, purpose, message)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
