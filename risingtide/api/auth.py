"""Who is asking, and may they: passwords, API tokens, session cookies, CSRF and lockout.

Credentials, strongest first:

* **API tokens** (``Authorization: Bearer rt_…``) for scripts and the CLI. The config holds
  only ``sha256:<hex>`` of each token. Tokens are 256 random bits, so nobody can guess one
  from its hash however fast the hash is; a slow hash (argon2) would add nothing but
  CPU on every request.
* **Passwords** for people signing in to the board, stored as argon2id hashes: passwords
  are chosen by people and guessable, so the hash must be slow. Verification runs in a
  worker thread, a few at a time (each costs tens of MiB), so sign-in attempts can neither
  block the event loop nor exhaust memory.
* **Session cookies**, set by ``POST /login``: ``user.expiry.nonce.signature``, an HMAC over
  the user, expiry and nonce *and* the user's current password hash (so changing a password
  in the config and reloading signs that user out everywhere). 12 hours. ``POST /logout``
  revokes the nonce until the cookie would have expired.

CSRF: a cookie-authenticated request that changes state must carry ``X-CSRF-Token`` (or,
from an HTML form, ``csrf_token``) equal to an HMAC of the session's nonce. Bearer-token
requests need none: a browser never adds that header on its own.

Lockout: five wrong passwords for one username within 15 minutes refuse sign-in for that
username for 15 minutes, counted in memory (a restart forgets them) on the injected clock.

Nothing here logs or stores a password, token, secret or cookie value.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from risingtide.api import signing
from risingtide.clock import Clock
from risingtide.config.model import UserConfig

SESSION_COOKIE = "rt_session"
LOGIN_COOKIE = "rt_login"  # the sign-in form's CSRF nonce
SESSION_TTL = timedelta(hours=12)
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "rt_"

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
#: Usernames tracked at once; beyond this the stalest are forgotten (memory stays bounded).
MAX_TRACKED = 10_000
#: Password checks running at once (argon2id's default costs 64 MiB each).
MAX_CONCURRENT_VERIFICATIONS = 2

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the username is unknown, so a wrong username takes as long as a
    # wrong password and sign-in does not reveal which usernames exist.
    return _hasher.hash(secrets.token_urlsafe(16))


# --------------------------------------------------------------------------- tokens, passwords


def new_token() -> str:
    """A new API token: ``rt_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """``sha256:<hex>`` of a token, as the config stores it."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with argon2-cffi's default (RFC 9106) costs."""
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or malformed hash never matches."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def user_for_token(users: Mapping[str, UserConfig], token: str) -> UserConfig | None:
    """The user holding ``token``, or None."""
    # A lookup by hash is safe against timing: an attacker cannot steer the hash's bytes.
    wanted = hash_token(token)
    for user in users.values():
        if wanted in user.token_hashes:
            return user
    return None


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: whose, until when, and the nonce its CSRF value derives from."""

    user: str
    expires_at: datetime
    nonce: str


def _session_message(user: UserConfig, expires: int, nonce: str) -> str:
    return f"{user.id}\x00{expires}\x00{nonce}\x00{user.password_hash or ''}"


def make_session_cookie(secret: str, user: UserConfig, now: datetime) -> tuple[str, Session]:
    """A new session for ``user`` starting ``now``: the cookie value and the session."""
    expires = int((now + SESSION_TTL).timestamp())
    nonce = secrets.token_urlsafe(16)
    sig = signing.sign(secret, signing.SESSION, _session_message(user, expires, nonce))
    session = Session(user=user.id, expires_at=datetime.fromtimestamp(expires, UTC), nonce=nonce)
    return f"{user.id}.{expires}.{nonce}.{sig}", session


def read_session_cookie(
    secret: str, users: Mapping[str, UserConfig], value: str, now: datetime
) -> tuple[UserConfig, Session] | None:
    """The user and session of a genuine, unexpired cookie, else None."""
    parts = value.split(".")
    if len(parts) != 4 or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    uid, expires_text, nonce, sig = parts
    user = users.get(uid)
    if user is None:
        return None
    expires = int(expires_text)
    if not signing.verify(secret, signing.SESSION, _session_message(user, expires, nonce), sig):
        return None
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        return None
    return user, Session(user=uid, expires_at=expires_at, nonce=nonce)


def session_csrf(secret: str, session: Session) -> str:
    """The CSRF value for requests made with ``session``'s cookie."""
    return signing.sign(secret, signing.SESSION_CSRF, session.nonce)


def login_csrf(secret: str, nonce: str) -> str:
    """The sign-in form's CSRF value for the nonce in its ``rt_login`` cookie."""
    return signing.sign(secret, signing.LOGIN_CSRF, nonce)


class Revocations:
    """Sessions signed out before they expired, remembered until they would have expired."""

    def __init__(self) -> None:
        """Nothing revoked yet."""
        self._until: dict[str, datetime] = {}

    def revoke(self, session: Session, now: datetime) -> None:
        """Refuse ``session`` from now on."""
        self._prune(now)
        self._until[session.nonce] = session.expires_at

    def revoked(self, session: Session) -> bool:
        """True when ``session`` was signed out."""
        return session.nonce in self._until

    def _prune(self, now: datetime) -> None:
        for nonce in [n for n, t in self._until.items() if t <= now]:
            del self._until[nonce]


# --------------------------------------------------------------------------- lockout


class LoginThrottle:
    """Five wrong passwords for one username within 15 minutes lock it for 15 minutes.

    Counted per username (known or not, so a lockout reveals nothing), in memory, on the
    injected clock. A right password before the lockout clears the count; during one, even
    the right password is refused.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = MAX_FAILURES,
        window: timedelta = FAILURE_WINDOW,
        lockout: timedelta = LOCKOUT,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        """Count failures on ``clock``."""
        self._clock = clock
        self._max = max_failures
        self._window = window
        self._lockout = lockout
        self._max_tracked = max_tracked
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._locked: dict[str, datetime] = {}

    def locked_until(self, username: str) -> datetime | None:
        """When ``username``'s lockout ends, or None if it may try now."""
        until = self._locked.get(username)
        if until is None:
            return None
        if self._clock.now() >= until:
            del self._locked[username]
            return None
        return until

    def failed(self, username: str) -> datetime | None:
        """Count a wrong password; return the lockout's end if this one started it."""
        now = self._clock.now()
        times = self._failures.pop(username, None) or deque()
        while times and now - times[0] >= self._window:
            times.popleft()
        times.append(now)
        if len(times) >= self._max:
            self._locked[username] = now + self._lockout
            return self._locked[username]
        self._failures[username] = times  # re-inserted last: the most recently active
        while len(self._failures) > self._max_tracked:
            self._failures.popitem(last=False)
        return None

    def succeeded(self, username: str) -> None:
        """A right password: start counting afresh."""
        self._failures.pop(username, None)


class PasswordChecker:
    """Checks passwords off the event loop, a few at a time."""

    def __init__(self, concurrency: int = MAX_CONCURRENT_VERIFICATIONS) -> None:
        """Allow ``concurrency`` checks at once."""
        self._slots = asyncio.Semaphore(concurrency)

    async def check(self, user: UserConfig | None, password: str) -> bool:
        """True when ``user`` exists, has a password, and ``password`` is it."""
        async with self._slots:
            ok = await run_in_threadpool(
                password_matches, user.password_hash if user else None, password
            )
        return ok and user is not None


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user, and how they proved it."""

    user: UserConfig
    via: Literal["token", "session"]
    session: Session | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not authenticated (a 401's reason)."""

    reason: str


def identify(
    request: Request,
    users: Mapping[str, UserConfig],
    secret: str | None,
    now: datetime,
    revocations: Revocations,
) -> Principal | Refusal:
    """Authenticate ``request`` by bearer token, else by session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Refusal("use Authorization: Bearer <token>")
        user = user_for_token(users, token.strip())
        if user is None:
            return Refusal("the API token is not valid")
        return Principal(user=user, via="token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return Refusal("sign in, or send an API token as Authorization: Bearer <token>")
    found = read_session_cookie(secret, users, cookie, now) if secret else None
    if found is None or revocations.revoked(found[1]):
        return Refusal("your session has expired or you signed out; sign in again")
    return Principal(user=found[0], via="session", session=found[1])
