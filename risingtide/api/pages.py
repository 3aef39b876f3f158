"""The HTML pages: sign in, sign out, and the page behind an acknowledgement link.

``GET /login`` / ``POST /login`` / ``POST /logout``
    A plain form (en-GB, labelled fields, an error summary that names each problem in
    words). The form carries a CSRF value: an HMAC of a nonce kept in a short-lived
    ``rt_login`` cookie, so only a page this daemon served can sign anyone in. Success sets
    the session cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` under an https
    ``public_url``) and redirects to ``next`` (a path on this site only).

``GET /ack/{token}`` / ``POST /ack/{token}``
    The GET only *shows* what would be acknowledged, so a mail scanner fetching every link
    acknowledges nothing. The page's form POSTs the token back with a CSRF value bound to
    it; only that acknowledges, as "PERSON (via link)" when the link was sent to a person
    (the name typed is kept in the note as "typed: …"), else as "NAME (via link)" with the
    note marked unverified. A link whose alert is over, already
    acknowledged, overtaken by a higher tier, or expired answers 410 with a page that says
    which; a link this daemon did not sign answers 400.

Every page is sent with ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (a
link's token must not leak through the Referer header) and a frame ban.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from risingtide.api import auth, links, signing
from risingtide.api.access import Gate
from risingtide.api.daemon import DaemonControl
from risingtide.config.model import UserConfig
from risingtide.domain.commands import CommandRejected
from risingtide.domain.model import Acknowledgement
from risingtide.domain.tiers import tier_label
from risingtide.relay import NoLeader

log = structlog.get_logger(__name__)

#: The HTTP side's page templates (``api/templates``), HTML-escaped, strict about names.
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
#: Times on pages are shown as the centre's staff read them.
UK = ZoneInfo("Europe/London")
MAX_NAME = 80
MAX_NOTE = 500
MAX_USERNAME = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def page(
    template: str,
    status: int = 200,
    *,
    title: str,
    errors: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` as a complete page with the security headers."""
    html = TEMPLATES.get_template(template).render(
        title=title,
        errors=list(errors),
        field_errors={f: m for f, m in errors if f},
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={**_HEADERS, **(headers or {})})


def message(status: int, title: str, *paragraphs: str, board_link: bool = True) -> HTMLResponse:
    """A page that just says something."""
    return page(
        "message.html", status, title=title, paragraphs=list(paragraphs), board_link=board_link
    )


def uk_time(t: datetime) -> str:
    """``09:14 on Monday 5 January 2026`` in UK time."""
    local = t.astimezone(UK)
    return f"{local:%H:%M} on {local:%A} {local.day} {local:%B %Y}"


def safe_next(value: str) -> str:
    """A path on this site to go to after signing in; anything else becomes ``/``."""
    ok = (
        value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and len(value) <= 200
        and not _CONTROL.search(value)
    )
    return value if ok else "/"


def client_of(request: Request) -> str:
    """Who a sign-in is counted against: the address it came from (uvicorn puts a trusted
    proxy's forwarded one here), an IPv6 one as its /64."""
    return auth.client_key(request.client.host) if request.client is not None else "unknown"


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


async def _form(request: Request) -> FormData | None:
    """The posted form (small, no files), or None when it cannot be read."""
    try:
        return await request.form(max_files=0, max_fields=20, max_part_size=64 * 1024)
    except Exception:  # malformed multipart, bad encoding, a cut-off body: all the sender's
        return None


def page_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """The sign-in, sign-out and acknowledgement-link pages over ``daemon``."""
    sign_in = SignInPages(daemon, gate)
    ack = AckLinkPages(daemon, gate)
    return [
        Route("/login", sign_in.login_page, methods=["GET"]),
        Route("/login", sign_in.login, methods=["POST"]),
        Route("/logout", sign_in.logout, methods=["POST"]),
        Route("/ack/{token}", ack.ack_page, methods=["GET"]),
        Route("/ack/{token}", ack.ack_confirm, methods=["POST"]),
    ]


class SignInPages:
    """``/login`` (the form and its POST) and ``POST /logout``."""

    def __init__(self, daemon: DaemonControl, gate: Gate) -> None:
        """Serve sign-in for ``daemon``, checking people with ``gate``."""
        self.daemon = daemon
        self.gate = gate
        self.throttle = auth.LoginThrottle(daemon.clock)
        self.checker = auth.PasswordChecker()

    def secure(self) -> bool:
        """True when cookies must be ``Secure`` (an https ``public_url``)."""
        return self.daemon.public_url.startswith("https://")

    def not_set_up(self) -> HTMLResponse:
        """The page for a daemon without users."""
        return message(
            404,
            "Signing in is not set up",
            "This Rising Tide has no users yet. An administrator adds them under users: in "
            "the config file; see docs/configuration.md.",
        )

    def login_form(
        self,
        request: Request,
        status: int = 200,
        *,
        errors: Sequence[tuple[str, str]] = (),
        username: str = "",
        next_url: str = "/",
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """The sign-in form, with a CSRF value bound to the browser's nonce cookie."""
        secret = self.gate.secret
        assert secret is not None  # users need a secret_key (the config insists)
        # Keep the browser's nonce if it has one, so two open sign-in tabs both work.
        nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
        if not _NONCE.fullmatch(nonce):
            nonce = secrets.token_urlsafe(16)
        who = self.gate.identify(request)
        signed_in = isinstance(who, auth.Principal) and who.session is not None
        response = page(
            "login.html",
            status,
            title="Sign in",
            errors=errors,
            headers=headers,
            csrf_token=auth.login_csrf(secret, nonce),
            next=next_url,
            username=username,
            signed_in_as=who.user.name if isinstance(who, auth.Principal) and signed_in else "",
            logout_csrf=auth.session_csrf(secret, who.session)
            if isinstance(who, auth.Principal) and who.session is not None
            else "",
        )
        response.set_cookie(
            auth.LOGIN_COOKIE, nonce, max_age=3600, path="/login",
            httponly=True, samesite="strict", secure=self.secure(),
        )  # fmt: skip
        return response

    async def login_page(self, request: Request) -> Response:
        """``GET /login``."""
        if not self.gate.users_configured:
            return self.not_set_up()
        return self.login_form(request, next_url=safe_next(request.query_params.get("next", "/")))

    async def login(self, request: Request) -> Response:
        """``POST /login``: check the form, the throttle and the password; set the session."""
        if not self.gate.users_configured:
            return self.not_set_up()
        secret = self.gate.secret
        assert secret is not None
        form = await _form(request)
        if form is None:
            return self.login_form(
                request, 400, errors=[("", "The form could not be read. Try again.")]
            )
        username = _text(form, "username").strip()
        password = _text(form, "password")
        next_url = safe_next(_text(form, "next"))
        nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
        if not nonce or not signing.verify(
            secret, signing.LOGIN_CSRF, nonce, _text(form, "csrf_token")
        ):
            self.refuse("form")
            return self.login_form(
                request, 400, username=username[:MAX_USERNAME], next_url=next_url,
                errors=[("", "This sign-in page had expired or did not come from Rising Tide. "
                             "Try again.")],
            )  # fmt: skip
        problems = []
        if not username:
            problems.append(("username", "Enter your username"))
        elif len(username) > MAX_USERNAME:
            problems.append(("username", f"Your username must be {MAX_USERNAME} characters "
                                         "or fewer"))  # fmt: skip
        if not password:
            problems.append(("password", "Enter your password"))
        if problems:
            return self.login_form(
                request, 400, errors=problems, username=username[:MAX_USERNAME],
                next_url=next_url,
            )  # fmt: skip
        client = client_of(request)
        user = await self.check_password(request, client, username, password, next_url)
        if isinstance(user, Response):
            return user
        self.throttle.succeeded(client, username)
        cookie, _session = auth.make_session_cookie(secret, user, self.daemon.clock.now())
        log.info("signed in", user=user.id)
        response = RedirectResponse(next_url, status_code=303, headers=_HEADERS)
        response.set_cookie(
            auth.SESSION_COOKIE, cookie, max_age=int(auth.SESSION_TTL.total_seconds()),
            path="/", httponly=True, samesite="strict", secure=self.secure(),
        )  # fmt: skip
        response.delete_cookie(
            auth.LOGIN_COOKIE, path="/login", httponly=True, samesite="strict", secure=self.secure()
        )
        return response

    def refuse(self, reason: str) -> None:
        """Count a refused sign-in on ``/metrics``."""
        self.daemon.metrics.signin_refusals.labels(reason=reason).inc()

    async def check_password(
        self, request: Request, client: str, username: str, password: str, next_url: str
    ) -> UserConfig | Response:
        """The user when ``password`` is ``username``'s, else the page that refuses it."""
        lockout = self.throttle.locked_until(client, username)
        if lockout is not None:
            self.refuse("locked")
            return self._locked(request, username, lockout, next_url)
        user = self.daemon.config.users.get(username)
        if len(password) > auth.MAX_PASSWORD:  # a failure, without spending a hash on it
            ok, reason = False, "too_long"
        else:
            try:
                ok, reason = await self.checker.check(client, user, password), "wrong_password"
            except auth.CheckerBusyError:
                self.refuse("busy")
                return self.login_form(
                    request, 429, username=username, next_url=next_url,
                    errors=[("", "Rising Tide is already checking sign-ins from your "
                                 "address. Wait a moment and try again.")],
                    headers={"Retry-After": "5"},
                )  # fmt: skip
        if ok and user is not None:
            return user
        self.refuse(reason)
        # The username is logged only when it is a real one: people sometimes type
        # their password into the username box.
        log.warning("sign-in failed", user=username if user else "(unknown)", client=client)
        lockout = self.throttle.failed(client, username)
        if lockout is not None:
            log.warning("sign-in locked", user=username if user else "(unknown)",
                        client=client, whole_client=lockout.whole_client)  # fmt: skip
            return self._locked(request, username, lockout, next_url)
        return self.login_form(
            request, 401, username=username, next_url=next_url,
            errors=[("password", "The username or password is not right")],
            headers={"WWW-Authenticate": 'FormBased realm="Rising Tide"'},
        )  # fmt: skip

    def _locked(
        self, request: Request, username: str, lockout: auth.Lockout, next_url: str
    ) -> Response:
        until = lockout.until
        wait = max(1, int((until - self.daemon.clock.now()).total_seconds()))
        minutes = (wait + 59) // 60
        whom = "from your address" if lockout.whole_client else "for this username"
        return self.login_form(
            request, 429, username=username, next_url=next_url,
            errors=[("username", f"There have been too many wrong passwords {whom}. "
                                 f"You can try again in {minutes} minute"
                                 f"{'' if minutes == 1 else 's'}, after "
                                 f"{until.astimezone(UK):%H:%M}.")],
            headers={"Retry-After": str(wait)},
        )  # fmt: skip

    async def logout(self, request: Request) -> Response:
        """``POST /logout``: revoke the session (CSRF-checked) and drop its cookie."""
        who = self.gate.identify(request)
        if isinstance(who, auth.Principal) and who.session is not None:
            form = await _form(request)
            if not self.gate.csrf_ok(request, who, _text(form, "csrf_token") if form else ""):
                return message(
                    403, "You have not been signed out",
                    "The sign-out button did not come from this site's page. Go back to the "
                    "duty board and use its sign-out button.",
                )  # fmt: skip
            self.gate.revocations.revoke(who.session, self.daemon.clock.now())
            log.info("signed out", user=who.user.id)
        response = RedirectResponse("/login", status_code=303, headers=_HEADERS)
        response.delete_cookie(
            auth.SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure()
        )
        return response


class AckLinkPages:
    """``/ack/{token}``: the page behind an acknowledgement link, and its confirmation."""

    def __init__(self, daemon: DaemonControl, gate: Gate) -> None:
        """Serve acknowledgement links for ``daemon``."""
        self.daemon = daemon
        self.gate = gate

    def link_refusal(self, token: str) -> tuple[links.AckClaims | None, Response | None]:
        """The link's claims if it can still acknowledge, else the page that says why not."""
        secret = self.gate.secret
        if secret is None:
            return None, message(
                404, "Acknowledgement links are not switched on",
                "This Rising Tide has no server.secret_key, so it does not send or accept "
                "acknowledgement links.",
            )  # fmt: skip
        now = self.daemon.clock.now()
        try:
            claims = links.read_ack_token(secret, token, now)
        except links.LinkExpiredError as exc:
            return None, message(
                410, "This link has expired",
                f"It stopped working at {uk_time(exc.claims.expires_at)}. If the line still "
                "needs acknowledging, use the duty board.",
            )  # fmt: skip
        except links.LinkInvalidError:
            return None, message(
                400, "This link is not valid",
                "It may have been copied without its end, or changed. Open it from the "
                "message again, or use the duty board.",
            )  # fmt: skip
        return claims, self.gone_because(claims)

    def gone_because(self, claims: links.AckClaims) -> Response | None:
        """The 410 page when the link's alert is over, acknowledged or overtaken; else None."""
        lc = self.daemon.config.lines.get(claims.line)
        state = self.daemon.states.get(claims.line)
        if lc is None or state is None:
            return message(
                410, "This line is no longer watched",
                f"{claims.line} is not in Rising Tide's config any more, so there is "
                "nothing to acknowledge.",
            )  # fmt: skip
        name = lc.name
        if state.episode != claims.episode or state.tier == 0:
            return message(
                410, "This alert is over",
                f"{name} has fallen back to calm since this link was sent"
                + (", and has risen again as a new alert: that alert's message has its own link."
                   if state.tier > 0 else ".")
                + " There is nothing to acknowledge from this link.",
            )  # fmt: skip
        if state.acknowledged and state.ack is not None:
            return message(
                410, "Already acknowledged",
                f"{tier_label(lc.framework, state.tier)} on {name} was acknowledged by "
                f"{state.ack.by} at {uk_time(state.ack.at)}.",
            )  # fmt: skip
        if state.tier > claims.tier:
            return message(
                410, "The line has risen since this link was sent",
                f"{name} is now at {tier_label(lc.framework, state.tier)}. The message about "
                "that tier has its own link, or you can acknowledge it on the duty board.",
            )  # fmt: skip
        return None

    def confirm_page(
        self,
        request: Request,
        claims: links.AckClaims,
        token: str,
        status: int = 200,
        *,
        name: str | None = None,
        note: str = "",
        errors: Sequence[tuple[str, str]] = (),
    ) -> HTMLResponse:
        """The page that shows what a link would acknowledge, with its form."""
        secret = self.gate.secret
        assert secret is not None
        lc = self.daemon.config.lines[claims.line]
        state = self.daemon.states[claims.line]
        person = self.sent_to(claims)
        if name is None:
            who = self.gate.identify(request)
            name = person or (who.user.name if isinstance(who, auth.Principal) else "")
        view = self.daemon.view(claims.line)
        stats = view.stats if view is not None else None
        figures = []
        if stats is not None:
            if stats.avg_wait is not None:
                figures.append(("Average wait", _duration(stats.avg_wait)
                                + f" (target {_duration(lc.target_wait)})"))  # fmt: skip
            if stats.longest_wait is not None:
                figures.append(("Longest wait", _duration(stats.longest_wait)))
            if stats.calls_waiting is not None:
                figures.append(("Calls waiting", str(stats.calls_waiting)))
        return page(
            "ack.html", status,
            title=f"Acknowledge {lc.name}", errors=errors,
            line_name=lc.name, tier_label=tier_label(lc.framework, state.tier),
            entered_at=uk_time(state.entered_at) if state.entered_at else "",
            figures=figures, token=token, csrf_token=links.ack_form_token(secret, token),
            name=name, note=note, sent_to=person or "",
        )  # fmt: skip

    def sent_to(self, claims: links.AckClaims) -> str | None:
        """The name of the person the link was sent to, if it names one still configured."""
        person = self.daemon.config.directory.people.get(claims.person or "")
        return person.name if person is not None else None

    def ack_record(self, claims: links.AckClaims, typed: str, note: str) -> tuple[str, str]:
        """Who the acknowledgement is recorded as, and its note.

        A link sent to a person records that person; what was typed is kept in the note.
        A link without one records the typed name, marked in the note as unverified.
        """
        person = self.sent_to(claims)
        if person is not None:
            extra = f"typed: {typed}" if typed != person else ""
            return f"{person} (via link)", "; ".join(p for p in (note, extra) if p)
        marker = "unverified: the name was typed on a link not sent to one person"
        return f"{typed} (via link)", "; ".join(p for p in (note, marker) if p)

    async def ack_page(self, request: Request) -> Response:
        """``GET /ack/{token}``: show, never acknowledge (mail scanners fetch links)."""
        token = request.path_params["token"]
        claims, refusal = self.link_refusal(token)
        if refusal is not None or claims is None:
            return refusal or message(400, "This link is not valid")
        return self.confirm_page(request, claims, token)

    async def ack_confirm(self, request: Request) -> Response:
        """``POST /ack/{token}``: acknowledge as "NAME (via link)"."""
        token = request.path_params["token"]
        claims, refusal = self.link_refusal(token)
        if refusal is not None or claims is None:
            return refusal or message(400, "This link is not valid")
        secret = self.gate.secret
        assert secret is not None
        form = await _form(request)
        if form is None or not links.check_ack_form_token(secret, token, _text(form, "csrf_token")):
            return message(
                403, "Not acknowledged",
                "This confirmation did not come from the acknowledgement page. Open the link "
                "from the message again and press the button there.",
            )  # fmt: skip
        name = " ".join(_CONTROL.sub(" ", _text(form, "name")).split())
        note = _text(form, "note").strip()
        problems = []
        if not name:
            problems.append(("name", "Enter your name"))
        elif len(name) > MAX_NAME:
            problems.append(("name", f"Your name must be {MAX_NAME} characters or fewer"))
        if len(note) > MAX_NOTE:
            problems.append(("note", f"The note must be {MAX_NOTE} characters or fewer"))
        if problems:
            return self.confirm_page(
                request, claims, token, 400, name=name[:MAX_NAME], note=note[:MAX_NOTE],
                errors=problems,
            )  # fmt: skip
        by, note = self.ack_record(claims, name, note)
        try:
            reason = await self.daemon.command(claims.line, "acknowledge", by=by, note=note)
        except (KeyError, CommandRejected):  # changed since the checks above
            return self.gone_because(claims) or message(410, "This link can no longer be used")
        except NoLeader:
            return message(
                503, "Not recorded yet", "It could not be recorded just now. Try again in a minute."
            )
        log.info("acknowledged from a link", line=claims.line, by=by)
        lc = self.daemon.config.lines[claims.line]
        return message(
            200, f"{lc.name}: acknowledged",
            f"{reason}, recorded at {uk_time(self.daemon.clock.now())}.",
            "Reminders and escalation for this tier have stopped"
            + _until_handover(self.daemon.states[claims.line].ack)
            + ". If the line rises to a higher tier, you will be asked again.",
        )  # fmt: skip


def _until_handover(ack: Acknowledgement | None) -> str:
    """``, until the duty rota's handover at 14:00 on …`` when the acknowledgement lapses."""
    if ack is None or ack.expires is None:
        return ""
    return f", until the duty rota's handover at {uk_time(ack.expires)}"


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} seconds" if s != 1 else "1 second"
    m, s = divmod(s, 60)
    return f"{m} min {s} s" if s else f"{m} min"
