"""Who is asking, and may they: passwords, API tokens, session cookies, CSRF and lockout.

Credentials, strongest first:

* **API tokens** (``Authorization: Bearer rt_…``) for scripts and the CLI. The config holds
  only ``sha256:<hex>`` of each token. Tokens are 256 random bits, so nobody can guess one
  from its hash however fast the hash is; a slow hash (argon2) would add nothing but
  CPU on every request.
* **Passwords** for people signing in to the board, stored as argon2id hashes: passwords
  are chosen by people and guessable, so the hash must be slow. Verification runs in a
  worker thread, a few at a time (each costs tens of MiB) and a couple per client (more
  are refused at once, not queued), so sign-in attempts can neither block the event loop,
  nor exhaust memory, nor make a real sign-in wait behind a flood. A password over 1,024
  characters is refused without being hashed.
* **Session cookies**, set by ``POST /login``: ``user.expiry.nonce.signature``, an HMAC over
  the user, expiry and nonce *and* the user's current password hash (so changing a password
  in the config and reloading signs that user out everywhere). 12 hours. ``POST /logout``
  revokes the nonce until the cookie would have expired.

CSRF: a cookie-authenticated request that changes state must carry ``X-CSRF-Token`` (or,
from an HTML form, ``csrf_token``) equal to an HMAC of the session's nonce. Bearer-token
requests need none: a browser never adds that header on its own.

Lockout: five wrong passwords for one username from one client within 15 minutes refuse
that username from that client for 15 minutes; twenty from one client refuse the client.
Never per username alone, so a stranger cannot lock a duty manager out. Counted in memory
(a restart forgets them) on the injected clock.

Nothing here logs or stores a password, token, secret or cookie value.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import secrets
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
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
#: Wrong passwords from one client, whatever the usernames, that lock the client out.
CLIENT_MAX_FAILURES = 20
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
#: Clients (and client, username pairs) tracked at once; beyond this the stalest are
#: forgotten, so memory stays bounded.
MAX_TRACKED = 10_000
#: Password checks running at once (argon2id's default costs 64 MiB each).
MAX_CONCURRENT_VERIFICATIONS = 4
#: Checks one client may have running or waiting; more are refused, not queued.
MAX_CHECKS_PER_CLIENT = 2
#: Checks running or waiting from everyone; more are refused, not queued.
MAX_WAITING_CHECKS = 32
#: Longest password checked; a longer one is a failure without being hashed.
MAX_PASSWORD = 1024

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


@dataclass(frozen=True, slots=True)
class Lockout:
    """Sign-in refused until ``until``: for this username from this client, or for the client."""

    until: datetime
    whole_client: bool


class _Failures:
    """Failure times per key within a window; keys beyond ``max_tracked`` are forgotten."""

    def __init__(self, window: timedelta, max_tracked: int) -> None:
        self._window = window
        self._max_tracked = max_tracked
        self._times: OrderedDict[object, deque[datetime]] = OrderedDict()

    def add(self, key: object, now: datetime) -> int:
        """Count a failure for ``key`` at ``now``; return how many fall within the window."""
        times = self._times.pop(key, None) or deque()
        while times and now - times[0] >= self._window:
            times.popleft()
        times.append(now)
        self._times[key] = times  # re-inserted last: the most recently active
        while len(self._times) > self._max_tracked:
            self._times.popitem(last=False)
        return len(times)

    def clear(self, key: object) -> None:
        """Start counting ``key`` afresh."""
        self._times.pop(key, None)

    def __len__(self) -> int:
        """How many keys are tracked."""
        return len(self._times)


class LoginThrottle:
    """Wrong passwords lock out the client that sent them, never the username for everyone.

    Five wrong passwords for one username *from one client* within 15 minutes refuse that
    username from that client for 15 minutes; twenty from one client (whatever usernames)
    refuse that client altogether. A stranger's flood therefore locks out the stranger,
    and the duty manager still signs in from their own machine. The client is the
    connection's address (behind a reverse proxy on this host, the forwarded one).
    Counted in memory (bounded), on the injected clock; a right password before a lockout
    clears that username's count from that client.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = MAX_FAILURES,
        client_max_failures: int = CLIENT_MAX_FAILURES,
        window: timedelta = FAILURE_WINDOW,
        lockout: timedelta = LOCKOUT,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        """Count failures on ``clock``."""
        self._clock = clock
        self._max = max_failures
        self._client_max = client_max_failures
        self._lockout = lockout
        self._max_tracked = max_tracked
        self._pairs = _Failures(window, max_tracked)
        self._clients = _Failures(window, max_tracked)
        self._locked: OrderedDict[object, datetime] = OrderedDict()

    def locked_until(self, client: str, username: str) -> Lockout | None:
        """The lockout in force for ``username`` from ``client``, or None if it may try now."""
        now = self._clock.now()
        for key, whole in ((client, True), ((client, username), False)):
            until = self._locked.get(key)
            if until is not None and now < until:
                return Lockout(until, whole)
            if until is not None:
                del self._locked[key]
        return None

    def failed(self, client: str, username: str) -> Lockout | None:
        """Count a wrong password; return the lockout if this one started it."""
        now = self._clock.now()
        until = now + self._lockout
        if self._clients.add(client, now) >= self._client_max:
            self._clients.clear(client)  # counting starts afresh after the lockout
            self._lock(client, until)
            return Lockout(until, whole_client=True)
        if self._pairs.add((client, username), now) >= self._max:
            self._pairs.clear((client, username))
            self._lock((client, username), until)
            return Lockout(until, whole_client=False)
        return None

    def succeeded(self, client: str, username: str) -> None:
        """A right password: count this username from this client afresh."""
        self._pairs.clear((client, username))

    def _lock(self, key: object, until: datetime) -> None:
        self._locked.pop(key, None)
        self._locked[key] = until
        while len(self._locked) > self._max_tracked:
            self._locked.popitem(last=False)


def client_key(host: str) -> str:
    """The client a sign-in is counted against: its IPv4 address, or its IPv6 /64.

    One IPv6 subscriber usually holds a whole /64, and could step through its addresses
    to escape a per-address count; a name that is no address is counted as it is.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class CheckerBusyError(Exception):
    """Too many password checks are waiting (from this client, or from everyone)."""


class PasswordChecker:
    """Checks passwords off the event loop, a few at a time, a couple per client.

    A client that already has ``per_client`` checks in flight (or waiting) is refused at
    once rather than queued, and so is anyone when ``max_waiting`` are already waiting, so
    a flood of sign-ins cannot make a real one wait behind it.
    """

    def __init__(
        self,
        concurrency: int = MAX_CONCURRENT_VERIFICATIONS,
        *,
        per_client: int = MAX_CHECKS_PER_CLIENT,
        max_waiting: int = MAX_WAITING_CHECKS,
    ) -> None:
        """Allow ``concurrency`` checks at once."""
        self._slots = asyncio.Semaphore(concurrency)
        self._per_client = per_client
        self._max_waiting = max_waiting
        self._in_flight: dict[str, int] = {}

    async def check(self, client: str, user: UserConfig | None, password: str) -> bool:
        """True when ``user`` exists, has a password, and ``password`` is it.

        Raises ``CheckerBusyError`` instead of queueing behind a flood.
        """
        busy = self._in_flight.get(client, 0)
        if busy >= self._per_client or sum(self._in_flight.values()) >= self._max_waiting:
            raise CheckerBusyError(client)
        self._in_flight[client] = busy + 1
        try:
            async with self._slots:
                ok = await asyncio.to_thread(
                    password_matches, user.password_hash if user else None, password
                )
        finally:
            left = self._in_flight[client] - 1
            if left:
                self._in_flight[client] = left
            else:
                del self._in_flight[client]
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
