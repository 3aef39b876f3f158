"""A stranger cannot lock a duty manager out, or stall their sign-in, with wrong passwords.

Over real HTTP on loopback: the "stranger" connects from 127.0.0.2 (any 127/8 address
reaches the daemon's 127.0.0.1), the duty manager from 127.0.0.1. Failures are counted per
(client, username) and per client; a password over 1,024 characters is a failure without
being hashed; a client gets at most a couple of password checks at once, the rest are
refused at once rather than queued; every refusal is counted on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from risingtide.api.auth import CLIENT_MAX_FAILURES
from tests.adapters.desk import Desk, running_desk

STRANGER = "127.0.0.2"


@asynccontextmanager
async def client_from(desk: Desk, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from ``address``."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=desk.url, transport=transport, timeout=60) as c:
        yield c


async def sign_in_as(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Fetch the sign-in form on ``client`` and post ``username`` and ``password``."""
    form = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    data = {"username": username, "password": password, "csrf_token": csrf.group(1)}
    return await client.post("/login", data=data)


def refusals(metrics_text: str) -> dict[str, float]:
    """``risingtide_signin_refusals_total`` by reason."""
    found = re.findall(r'^risingtide_signin_refusals_total\{reason="(\w+)"\} (\S+)$',
                       metrics_text, re.M)  # fmt: skip
    return {reason: float(value) for reason, value in found}


async def test_a_wrong_password_flood_from_one_client_does_not_lock_out_another(
    tmp_path: Path,
) -> None:
    """Long wrong passwords lock the stranger out of priya; priya still signs in elsewhere."""
    async with running_desk(tmp_path) as desk, client_from(desk, STRANGER) as stranger:
        statuses = [
            (await desk.sign_in("priya", "x" * 2000, client=stranger)).status_code for _ in range(6)
        ]
        assert statuses[:4] == [401] * 4 and statuses[4:] == [429, 429]
        still_locked = await desk.sign_in("priya", client=stranger)
        assert still_locked.status_code == 429
        mine = await desk.sign_in("priya")
        assert (mine.status_code, mine.headers["location"]) == (303, "/")
        counted = refusals((await desk.http.get("/metrics")).text)
    assert counted["too_long"] == 5  # the attempts made while locked are not looked at
    assert counted["locked"] == 2
    assert counted["wrong_password"] == 0


async def test_one_client_trying_many_usernames_is_locked_out_itself(tmp_path: Path) -> None:
    """Wrong passwords spread over many usernames lock that client, and only that client."""
    async with running_desk(tmp_path) as desk, client_from(desk, STRANGER) as stranger:
        for i in range(CLIENT_MAX_FAILURES - 1):
            # Over-long passwords: failures that cost no hashing, so the test is quick.
            wrong = await sign_in_as(stranger, f"guess{i}", "x" * 1025)
            assert wrong.status_code == 401, i
        last = await sign_in_as(stranger, "one-more-guess", "wrong")
        assert last.status_code == 429
        assert "too many wrong passwords from your address" in last.text
        assert (await desk.sign_in("ada", client=stranger)).status_code == 429
        assert (await desk.sign_in("ada")).status_code == 303


async def test_simultaneous_wrong_sign_ins_are_refused_not_queued(tmp_path: Path) -> None:
    """Forty sign-ins at once from one client: most refused as busy, a real one gets in."""
    async with running_desk(tmp_path) as desk, client_from(desk, STRANGER) as stranger:
        form = await stranger.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None

        async def wrong(i: int) -> httpx.Response:
            # Unknown usernames are checked against a full-cost argon2 hash.
            data = {"username": f"nobody{i}", "password": "wrong", "csrf_token": csrf.group(1)}
            return await stranger.post("/login", data=data)

        flood = [asyncio.create_task(wrong(i)) for i in range(40)]
        mine = await desk.sign_in("priya")
        answers = await asyncio.gather(*flood)
        assert (mine.status_code, mine.headers["location"]) == (303, "/")
        busy = [a for a in answers if a.status_code == 429 and "already checking" in a.text]
        checked = [a for a in answers if a.status_code == 401]
        assert busy and checked
        assert {a.status_code for a in answers} <= {401, 429}
        counted = refusals((await desk.http.get("/metrics")).text)
    assert counted["busy"] == len(busy)
