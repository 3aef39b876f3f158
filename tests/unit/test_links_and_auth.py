"""Signed links, session cookies, token hashes and the sign-in lockout, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from risingtide.api import auth, signing
from risingtide.api.links import (
    LinkExpiredError,
    LinkInvalidError,
    ack_form_token,
    check_ack_form_token,
    make_ack_link,
    make_ack_token,
    read_ack_token,
)
from risingtide.clock import FakeClock
from risingtide.config.model import UserConfig

SECRET = "unit-secret-Zq8LmW3nXv7RtY2pKs9HdF4jBc6"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PRIYA = UserConfig(
    id="priya", name="Priya Shah", role="duty_manager",
    password_hash=CHEAP.hash("first password"), token_hashes=frozenset(),
)  # fmt: skip


def test_an_ack_link_is_url_safe_and_reads_back_its_claims() -> None:
    """The link sits under public_url and its token gives back line, tier, episode and expiry."""
    expires = NOW + timedelta(hours=24)
    link = make_ack_link(SECRET, "https://rt.council.example/", "council_tax", 2, 14, expires)
    assert link.startswith("https://rt.council.example/ack/council_tax.2.14.")
    token = link.rsplit("/", 1)[1]
    assert all(c.isalnum() or c in "._-" for c in token)
    claims = read_ack_token(SECRET, token, NOW)
    assert (claims.line, claims.tier, claims.episode, claims.expires_at) == (
        "council_tax", 2, 14, expires,
    )  # fmt: skip


def test_an_expired_link_is_expired_but_an_expired_forgery_is_invalid() -> None:
    """Expiry is checked only after the signature, so a forgery never passes as "expired"."""
    token = make_ack_token(SECRET, "waste", 1, 3, NOW + timedelta(minutes=5))
    with pytest.raises(LinkExpiredError) as caught:
        read_ack_token(SECRET, token, NOW + timedelta(minutes=5))
    assert caught.value.claims.line == "waste"
    with pytest.raises(LinkInvalidError):
        read_ack_token("another secret that is long enough!!", token, NOW + timedelta(hours=1))


@pytest.mark.parametrize("bad", ["", "waste", "waste.1.3.1767603600", "Waste.1.3.1.x", "a" * 500])
def test_malformed_tokens_are_invalid(bad: str) -> None:
    """Anything that is not line.tier.episode.expiry.signature is invalid."""
    with pytest.raises(LinkInvalidError):
        read_ack_token(SECRET, bad, NOW)


def test_a_signature_for_one_purpose_is_useless_for_another() -> None:
    """Cookies, CSRF values and links are signed with keys derived per purpose."""
    message = "waste.1.3.1767603600"
    link_sig = signing.sign(SECRET, signing.ACK_LINK, message)
    assert signing.verify(SECRET, signing.ACK_LINK, message, link_sig)
    assert not signing.verify(SECRET, signing.SESSION, message, link_sig)
    assert not signing.verify(SECRET, signing.ACK_FORM, message, link_sig)
    token = make_ack_token(SECRET, "waste", 1, 3, NOW + timedelta(hours=1))
    form = ack_form_token(SECRET, token)
    assert check_ack_form_token(SECRET, token, form)
    assert not check_ack_form_token(SECRET, token + "x", form)


def test_a_session_cookie_reads_back_until_it_expires() -> None:
    """A cookie names its user for 12 hours, then no one."""
    users = {"priya": PRIYA}
    cookie, session = auth.make_session_cookie(SECRET, PRIYA, NOW)
    found = auth.read_session_cookie(SECRET, users, cookie, NOW + timedelta(hours=11))
    assert found is not None and found[0] is PRIYA and found[1] == session
    assert auth.read_session_cookie(SECRET, users, cookie, NOW + timedelta(hours=12)) is None
    assert auth.read_session_cookie("other " * 8, users, cookie, NOW) is None
    assert auth.read_session_cookie(SECRET, users, "priya.1.2", NOW) is None


def test_changing_a_users_password_signs_out_their_sessions() -> None:
    """The cookie's signature covers the password hash, so a new hash invalidates it."""
    cookie, _ = auth.make_session_cookie(SECRET, PRIYA, NOW)
    changed = UserConfig(
        id="priya", name="Priya Shah", role="duty_manager",
        password_hash=CHEAP.hash("second password"),
    )  # fmt: skip
    assert auth.read_session_cookie(SECRET, {"priya": changed}, cookie, NOW) is None
    assert auth.read_session_cookie(SECRET, {}, cookie, NOW) is None  # user removed


def test_tokens_are_long_random_and_stored_only_as_sha256() -> None:
    """``new_token`` is 256 random bits; the config holds ``sha256:<hex>`` and finds its user."""
    token = auth.new_token()
    assert token.startswith("rt_") and len(token) >= 40
    assert token != auth.new_token()
    digest = auth.hash_token(token)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64 and token not in digest
    user = UserConfig(id="bot", name="Bot", role="viewer", token_hashes=frozenset({digest}))
    assert auth.user_for_token({"bot": user}, token) is user
    assert auth.user_for_token({"bot": user}, token + "x") is None


def test_passwords_check_against_argon2id_hashes_only() -> None:
    """The right password matches; a wrong one, a missing hash or a malformed hash never do."""
    assert auth.password_matches(PRIYA.password_hash, "first password")
    assert not auth.password_matches(PRIYA.password_hash, "second password")
    assert not auth.password_matches(None, "first password")
    assert not auth.password_matches("$argon2id$garbage", "first password")


def test_the_lockout_counts_five_failures_in_15_minutes_per_client_and_username() -> None:
    """The fifth failure from one client locks that username there; other clients may try."""
    clock = FakeClock(NOW)
    throttle = auth.LoginThrottle(clock)
    for _ in range(4):
        assert throttle.failed("10.0.0.9", "priya") is None
        clock.advance(60)
    until = clock.now() + timedelta(minutes=15)
    assert throttle.failed("10.0.0.9", "priya") == auth.Lockout(until, whole_client=False)
    assert throttle.locked_until("10.0.0.9", "priya") == auth.Lockout(until, whole_client=False)
    assert throttle.locked_until("10.0.0.9", "sam") is None
    assert throttle.locked_until("10.0.0.1", "priya") is None  # the duty manager's own PC
    clock.advance(timedelta(minutes=15))
    assert throttle.locked_until("10.0.0.9", "priya") is None
    assert throttle.failed("10.0.0.9", "priya") is None  # counting starts afresh after a lockout


def test_many_usernames_from_one_client_lock_the_client() -> None:
    """Twenty failures from one client, whatever the usernames, lock out only that client."""
    clock = FakeClock(NOW)
    throttle = auth.LoginThrottle(clock)
    for i in range(auth.CLIENT_MAX_FAILURES - 1):
        assert throttle.failed("10.0.0.9", f"guess{i}") is None
    lockout = throttle.failed("10.0.0.9", "guess-last")
    assert lockout is not None and lockout.whole_client
    assert throttle.locked_until("10.0.0.9", "priya") == lockout
    assert throttle.locked_until("10.0.0.1", "priya") is None


def test_a_right_password_clears_the_count_and_memory_stays_bounded() -> None:
    """Success resets a client's count for a username; only ``max_tracked`` are remembered."""
    clock = FakeClock(NOW)
    throttle = auth.LoginThrottle(clock, max_tracked=3)
    for _ in range(4):
        throttle.failed("10.0.0.9", "priya")
    throttle.succeeded("10.0.0.9", "priya")
    for _ in range(4):
        assert throttle.failed("10.0.0.9", "priya") is None
    for name in ("a", "b", "c", "d"):
        throttle.failed(f"10.0.0.{name}", name)
    assert len(throttle._pairs) == 3 and len(throttle._clients) == 3


def test_sign_ins_are_counted_per_ipv4_address_and_per_ipv6_64() -> None:
    """Stepping through one IPv6 /64 does not escape the count; IPv4 stays per address."""
    assert auth.client_key("192.0.2.7") == "192.0.2.7"
    assert auth.client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert auth.client_key("2001:db8:1:2::1") == auth.client_key("2001:db8:1:2:ffff::9")
    assert auth.client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert auth.client_key("2001:db8:1:3::1") != auth.client_key("2001:db8:1:2::1")
    assert auth.client_key("testclient") == "testclient"
