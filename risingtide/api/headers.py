"""Security headers on every answer, and a same-origin rule for cookie-authenticated changes.

One ASGI middleware wraps the whole app, so no route can forget either:

* **Headers.** Every answer gets a Content-Security-Policy with ``frame-ancestors 'none'``,
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` and ``Cache-Control: no-store`` (figures and names are
  the council's; no cache or proxy should keep them). A header a route set itself is kept
  (the sign-in and acknowledgement pages send a stricter CSP and ``no-referrer``), and
  ``/static/`` files keep their own caching. The default CSP allows only this origin's
  scripts, styles, images and ``fetch`` calls, so the board's own ``/static/`` files load
  and nothing foreign does.
* **Origin.** A request that changes state (any method but GET, HEAD, OPTIONS) and carries
  one of the daemon's cookies but no ``Authorization`` header must come from this origin:
  a ``Sec-Fetch-Site`` other than ``same-origin`` or ``none`` (when the browser sends one),
  else an ``Origin`` other than this daemon's (its ``public_url`` or the ``Host`` the
  request was sent to), is refused 403 with a reason. Another port of the same host is
  *same-site* to a browser, so its ``SameSite=Strict`` cookies would go along; this rule
  refuses it. A request with neither header (an older client), or with ``Origin: null``
  only, is left to the CSRF value every change already needs.
  Bearer-token calls are not affected: a browser never adds that header on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_CSP", "SECURITY_HEADERS", "SecurityHeaders", "cross_origin_reason"]

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Sent with every answer unless the route chose its own value.
SECURITY_HEADERS = {
    "Content-Security-Policy": DEFAULT_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})
_STATIC = "/static/"
REFUSED = (
    "this change came from another site ({why}); Rising Tide accepts changes made with a "
    "sign-in cookie only from its own pages. Scripts send an API token instead "
    "(Authorization: Bearer <token>)"
)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin_reason(
    headers: Headers, scheme: str, public_url: str, cookies: frozenset[str]
) -> str | None:
    """Why a state-changing request must be refused as cross-origin, or None if it may pass.

    Only requests that carry one of ``cookies`` and no ``Authorization`` header are judged.
    """
    if "authorization" in headers or not _has_cookie(headers.get("cookie", ""), cookies):
        return None
    # A browser that sends Sec-Fetch-Site says exactly where the request came from, and no
    # page script can set it: it decides. (Such a browser also sends "Origin: null" from a
    # page with "Referrer-Policy: no-referrer", as the sign-in page is.)
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site.lower() in _SAME_ORIGIN_FETCHES:
            return None
        return f"Sec-Fetch-Site: {fetch_site[:40]}"
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return None
    allowed = {_origin_of(public_url)}
    host = headers.get("host")
    if host:
        allowed.add(f"{scheme}://{host}".lower())
    if origin.lower().rstrip("/") not in allowed:
        return f"Origin: {origin[:100]}"
    return None


def _has_cookie(header: str, names: frozenset[str]) -> bool:
    if not header:
        return False
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:  # an unreadable cookie header: look for the names as text
        return any(f"{name}=" in header for name in names)
    return any(name in jar for name in names)


class SecurityHeaders:
    """ASGI middleware: the security headers on every answer, and the same-origin rule."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: Callable[[], str],
        cookies: frozenset[str],
        refuse_page: Callable[[str, str], tuple[bytes, str]],
    ) -> None:
        """Wrap ``app``; ``public_url`` is read per request (a reload may change it);
        ``refuse_page(path, reason)`` gives the body and content type of a refusal."""
        self.app = app
        self.public_url = public_url
        self.cookies = cookies
        self.refuse_page = refuse_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``scope``, adding the headers; refuse a cross-origin cookie change."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        keep_cache = path.startswith(_STATIC)

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name == "Cache-Control" and keep_cache:
                        continue
                    if name.lower() not in headers:
                        headers[name] = value
            await send(message)

        if scope["method"] not in _SAFE_METHODS:
            why = cross_origin_reason(
                Headers(scope=scope), scope.get("scheme", "http"), self.public_url(), self.cookies
            )
            if why is not None:
                await self._refuse(path, why, send_hardened)
                return
        await self.app(scope, receive, send_hardened)

    async def _refuse(self, path: str, why: str, send: Send) -> None:
        reason = REFUSED.format(why=why)
        if path.startswith(("/api/", "/-/")):
            body, content_type = json.dumps({"error": reason}).encode(), "application/json"
        else:
            body, content_type = self.refuse_page(path, reason)
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
