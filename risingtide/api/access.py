"""Who may do what over HTTP: the one gate every API route passes.

=====================  ======================  ========================================
route                  no ``users:``           with ``users:``
=====================  ======================  ========================================
reads (``GET /api``)   open                    ``viewer`` or better
changes (ack, …)       403: add a user first   ``duty_manager`` or better
``POST /-/reload``     403: add a user first   ``admin``
health, metrics, spec  open                    open
=====================  ======================  ========================================

Reads are open without users because the daemon listens on 127.0.0.1 by default; a
daemon that has users has been opened up to people, and then the figures are theirs to
see, not the network's. Changes always need a person to record as ``by``.

Answers: 401 (with ``WWW-Authenticate``) when the caller is not authenticated, 403 when
they are but their role does not allow it, or a cookie-authenticated change lacks its
``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse

from risingtide.api import auth
from risingtide.api.daemon import DaemonControl

READ = "viewer"
CHANGE = "duty_manager"
ADMIN = "admin"

_ROLE_WORDS = {"viewer": "a viewer", "duty_manager": "a duty manager", "admin": "an admin"}
WWW_AUTHENTICATE = 'Bearer realm="Rising Tide"'
NO_USERS = (
    "no users are configured, so nobody can be recorded as making this change: add a "
    'users: section with a duty_manager (see docs/configuration.md, "users"), set '
    "server.secret_key, and reload"
)


def error(status: int, reason: str) -> JSONResponse:
    """The API's error answer: ``{"error": reason}``."""
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if status == 401 else None
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


@dataclass(frozen=True, slots=True)
class Open:
    """A read allowed without users (none are configured)."""


class Gate:
    """Checks each request against the current config's users (reload-aware)."""

    def __init__(self, daemon: DaemonControl) -> None:
        """Guard ``daemon``; sign-outs are remembered here."""
        self.daemon = daemon
        self.revocations = auth.Revocations()

    @property
    def users_configured(self) -> bool:
        """True when the config has a ``users:`` section with someone in it."""
        return bool(self.daemon.config.users)

    @property
    def secret(self) -> str | None:
        """``server.secret_key``, when set."""
        return self.daemon.config.server.secret_key

    def identify(self, request: Request) -> auth.Principal | auth.Refusal:
        """Who is asking, by token or cookie, without deciding whether they may."""
        return auth.identify(
            request,
            self.daemon.config.users,
            self.secret,
            self.daemon.clock.now(),
            self.revocations,
        )

    def check(self, request: Request, role: str) -> auth.Principal | Open | JSONResponse:
        """The caller if they may act as ``role`` here, else the answer to send."""
        changes = role != READ
        if not self.users_configured:
            return error(403, NO_USERS) if changes else Open()
        who = self.identify(request)
        if isinstance(who, auth.Refusal):
            return error(401, who.reason)
        if not who.user.may(role):
            return error(
                403,
                f"{who.user.name} is {_ROLE_WORDS[who.user.role]}; this needs "
                f"{_ROLE_WORDS[role]} or above",
            )
        if changes and who.via == "session" and not self.csrf_ok(request, who):
            return error(
                403,
                f"a change made with a sign-in cookie needs the {auth.CSRF_HEADER} header "
                "(its value is csrf_token from GET /api/v1/session)",
            )
        return who

    def csrf_ok(self, request: Request, who: auth.Principal, form_value: str = "") -> bool:
        """True when the request carries the session's CSRF value (header or form field)."""
        if who.session is None or self.secret is None:
            return False
        sent = request.headers.get(auth.CSRF_HEADER) or form_value
        expected = auth.session_csrf(self.secret, who.session)
        return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())
