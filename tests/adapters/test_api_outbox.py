"""Dead letters over real HTTP: listed, retried once the cause is fixed, or dismissed.

A daemon with users sends its notification to a webhook on a loopback receiver that
answers 400 (so the response is given up on at once), and its IVR switch to a flag
endpoint on the same receiver. The tests then fix the receiver, retry or dismiss through
the API, and check the outbox, the history and the ``risingtide_outbox_*`` gauges.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from risingtide.api.models import OutboxDone, OutboxOut
from risingtide.clock import FakeClock
from risingtide.config import load_config
from risingtide.domain.model import Action, ResponseOrder
from risingtide.runtime import Runtime
from risingtide.store import Store
from tests.adapters.desk import ENV, SECRET, T0, Desk, bearer, free_port, write_config
from tests.adapters.loopback import Loopback

PRIYA, VERA = bearer("priya"), bearer("vera")
DEAD = "/api/v1/outbox?status=dead"


@dataclass
class Receiver:
    """The far end: answers each path with its scripted status and keeps what it got."""

    status: dict[str, int] = field(default_factory=lambda: {"hook": 400, "flag": 200})
    got: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def receive(request: Request) -> JSONResponse:
            kind = request.path_params["kind"]
            key = request.headers.get("idempotency-key", "")
            self.got.append((kind, key, await request.json()))
            code = self.status[kind]
            return JSONResponse({"ok": code < 300}, status_code=code)

        return Starlette(routes=[Route("/{kind}/{rest:path}", receive, methods=["POST", "PUT"])])


@asynccontextmanager
async def outbox_desk(tmp_path: Path, receiver_url: str) -> AsyncIterator[Desk]:
    """The desk daemon (tests.adapters.desk) with a webhook notification and an IVR switch."""
    path = write_config(tmp_path)
    text = path.read_text()
    old = "notify: { type: log, message: duty manager please look }"
    assert old in text
    text = text.replace(
        old,
        f"notify: {{ type: webhook, url: {receiver_url}/hook/x }}\n"
        f'  ivr: {{ type: json_flag, url: "{receiver_url}/flag/{{{{ line }}}}" }}',
    )
    # Tier 2 also switches on the IVR deflection message.
    text = re.sub(r"(name: high\n(?:.*\n)*?\s+responses: )\[notify\]", r"\1[notify, ivr]", text)
    assert "[notify, ivr]" in text
    path.write_text(text)
    saved = os.environ.get("RISINGTIDE_SECRET_KEY")
    os.environ["RISINGTIDE_SECRET_KEY"] = SECRET
    clock = FakeClock(T0)
    rt = Runtime(load_config(path, ENV), clock=clock, port=free_port())
    await rt.start(schedule=False)
    url = f"http://127.0.0.1:{rt.port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Desk(rt=rt, clock=clock, http=http, url=url)
    finally:
        await rt.shutdown()
        if saved is None:
            del os.environ["RISINGTIDE_SECRET_KEY"]
        else:
            os.environ["RISINGTIDE_SECRET_KEY"] = saved


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    async with Loopback(r.app()) as url:
        yield r, url


@pytest.fixture
async def desk(tmp_path: Path, receiver: tuple[Receiver, str]) -> AsyncIterator[Desk]:
    async with outbox_desk(tmp_path, receiver[1]) as d:
        yield d


def store_of(desk: Desk) -> Store:
    assert desk.rt.store is not None
    return desk.rt.store


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (real time, at most 10 s) for the dispatcher's background loop to get there."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting until {what}")


def gauges(desk: Desk) -> tuple[float | None, float | None]:
    """``(risingtide_outbox_pending, risingtide_outbox_dead)`` as /metrics has them."""
    registry = desk.rt.registry
    return (
        registry.get_sample_value("risingtide_outbox_pending"),
        registry.get_sample_value("risingtide_outbox_dead"),
    )


async def a_dead_notification(desk: Desk, line: str = "revenues") -> str:
    """Raise ``line`` to tier 2; its notification is refused (HTTP 400) and given up on."""
    store = store_of(desk)
    before = {e.order.key for e in store.dead()}
    await desk.raise_line(line)
    await until(lambda: any(e.order.line == line for e in store.dead()), "it is dead")
    (key,) = {e.order.key for e in store.dead() if e.order.response == "notify"} - before
    return key


def retry_path(key: str, action: str = "retry") -> str:
    return f"/api/v1/outbox/{quote(key, safe='')}/{action}"


async def test_a_dead_letter_is_listed_retried_after_the_fix_and_done(
    desk: Desk, receiver: tuple[Receiver, str]
) -> None:
    """Refused by the receiver: dead, listed for a viewer, and the dead gauge is 1. Once the
    receiver is fixed, a duty manager's retry sends it again (same key), it is recorded
    done, the gauges go back to 0, and the history says who retried it and why."""
    r, _ = receiver
    key = await a_dead_notification(desk)
    assert gauges(desk) == (0, 1)

    listed = await desk.http.get(DEAD, headers=VERA)
    assert listed.status_code == 200, listed.text
    page = OutboxOut.model_validate(listed.json())
    assert (page.status, page.total, len(page.entries)) == ("dead", 1, 1)
    entry = listed.json()["entries"][0]
    assert {k: entry[k] for k in ("key", "status", "line", "tier", "response", "action",
                                  "attempts", "batch")} == {
        "key": key, "status": "dead", "line": "revenues", "tier": 2, "response": "notify",
        "action": "apply", "attempts": 1, "batch": None,
    }  # fmt: skip
    assert "400" in entry["last_error"]
    assert entry["finished_at"] == desk.clock.now().isoformat()
    # status defaults to dead
    assert (await desk.http.get("/api/v1/outbox", headers=VERA)).json() == listed.json()

    r.status["hook"] = 200
    sent_before = len([g for g in r.got if g[0] == "hook"])
    resp = await desk.http.post(retry_path(key), headers=PRIYA, json={"note": "key rotated"})
    assert resp.status_code == 200, resp.text
    done = OutboxDone.model_validate(resp.json())
    assert done.reason == "notify (apply) for revenues, tier 2, requeued to run now by Priya Shah"
    assert (done.entry.key, done.entry.attempts, done.entry.last_error) == (key, 0, None)
    assert gauges(desk)[1] == 0

    await until(lambda: (e := store_of(desk).outbox_entry(key)) is not None
                and e.status == "done", "the retry is done")  # fmt: skip
    hooks = [g for g in r.got if g[0] == "hook"]
    assert len(hooks) == sent_before + 1
    assert hooks[-1][1] == key  # the same idempotency key as before
    assert hooks[-1][2]["line"] == "revenues"
    await until(lambda: gauges(desk) == (0, 0), "the gauges are back to 0")
    assert (await desk.http.get(DEAD, headers=VERA)).json()["entries"] == []

    (record,) = store_of(desk).history(kinds=["response_requeued"])
    assert (record.data["by"], record.data["note"], record.data["key"]) == (
        "Priya Shah", "key rotated", key,
    )  # fmt: skip
    outcomes = [h.data["outcome"] for h in store_of(desk).history(kinds=["response"])
                if h.data["key"] == key]  # fmt: skip
    assert outcomes == ["ok", "dead"]

    again = await desk.http.post(retry_path(key), headers=PRIYA)
    assert (again.status_code, again.json()["error"]) == (
        409, f"cannot requeue {key!r}: it is done (it ran successfully); only a dead letter "
        "can be requeued",
    )  # fmt: skip


async def test_dismiss_takes_a_dead_letter_off_the_count_for_good(desk: Desk) -> None:
    """Dismissed with a note: not listed, not counted, never run; the history says who."""
    key = await a_dead_notification(desk)
    resp = await desk.http.post(
        retry_path(key, "dismiss"), headers=PRIYA, json={"note": "phoned the duty manager"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["reason"] == "notify (apply) for revenues, tier 2, dismissed by Priya Shah"
    assert resp.json()["entry"]["status"] == "dismissed"
    assert gauges(desk) == (0, 0)
    assert (await desk.http.get(DEAD, headers=VERA)).json() == {
        "status": "dead", "total": 0, "entries": [],
    }  # fmt: skip
    (record,) = store_of(desk).history(kinds=["response_dismissed"])
    assert (record.data["by"], record.data["note"]) == ("Priya Shah", "phoned the duty manager")
    twice = await desk.http.post(retry_path(key, "dismiss"), headers=PRIYA)
    assert twice.status_code == 409
    assert "it was dismissed; only a dead letter can be dismissed" in twice.json()["error"]
    retried = await desk.http.post(retry_path(key), headers=PRIYA)
    assert retried.status_code == 409


async def test_keys_with_slashes_colons_and_at_signs_round_trip(desk: Desk) -> None:
    """A key with /, :, @, +, %, ? and a space is found URL-encoded, and with its slashes
    as they are; a key that itself ends in /dismiss is still retried by /retry."""
    store = store_of(desk)
    keys = [
        "revenues/1/reassert/2/2026-01-05T09:00:00+00:00@3/notify/apply",
        "revenues/1/odd key?50%/x/dismiss",
    ]
    for key in keys:
        store.commit([], [], [ResponseOrder(
            key=key, line="revenues", response="notify", action=Action.APPLY, tier=2,
            episode=1, trigger="reassert", at=T0, reason="test",
        )])  # fmt: skip
        store.record_failure(key, "HTTP 400", "http_4xx", T0, None)
    listed = (await desk.http.get(DEAD, headers=VERA)).json()["entries"]
    assert sorted(e["key"] for e in listed) == sorted(keys)

    plain = await desk.http.post(f"/api/v1/outbox/{keys[0]}/dismiss", headers=PRIYA)
    assert plain.status_code == 200, plain.text
    assert plain.json()["entry"]["key"] == keys[0]
    encoded = await desk.http.post(retry_path(keys[1]), headers=PRIYA)
    assert encoded.status_code == 200, encoded.text
    assert encoded.json()["entry"]["key"] == keys[1]
    assert encoded.json()["entry"]["status"] == "pending"


async def test_who_may_do_what(desk: Desk) -> None:
    """A viewer may list but not retry or dismiss (403); no token is 401; a sign-in cookie
    needs its CSRF header; an unknown key is 404; a bad body 400."""
    key = await a_dead_notification(desk)
    for action in ("retry", "dismiss"):
        refused = await desk.http.post(retry_path(key, action), headers=VERA)
        assert (refused.status_code, refused.json()["error"]) == (
            403, "Vera Viewer is a viewer; this needs a duty manager or above",
        )  # fmt: skip
    assert (await desk.http.post(retry_path(key))).status_code == 401
    assert (await desk.http.get(DEAD)).status_code == 401

    async with httpx.AsyncClient(base_url=desk.url, timeout=10) as browser:
        assert (await desk.sign_in("priya", client=browser)).status_code == 303
        no_csrf = await browser.post(retry_path(key, "dismiss"))
        assert no_csrf.status_code == 403
        assert "X-CSRF-Token" in no_csrf.json()["error"]
        csrf = (await browser.get("/api/v1/session")).json()["csrf_token"]
        ok = await browser.post(retry_path(key, "dismiss"), headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text

    unknown = await desk.http.post(retry_path("revenues/nope"), headers=PRIYA)
    assert (unknown.status_code, unknown.json()["error"]) == (
        404, "no outbox entry has the key 'revenues/nope'",
    )  # fmt: skip
    bad = await desk.http.post(retry_path(key), headers=PRIYA, json={"note": 5})
    assert (bad.status_code, bad.json()["error"]) == (400, '"note" must be text')
    for query, reason in (("status=done", "status must be one of dead, pending, not 'done'"),
                          ("limit=0", "limit must be between 1 and 1000"),
                          ("limit=x", "limit must be a whole number")):  # fmt: skip
        got = await desk.http.get(f"/api/v1/outbox?{query}", headers=VERA)
        assert (got.status_code, got.json()["error"]) == (400, reason), query


async def test_a_switch_the_line_has_moved_on_from_is_not_applied_again(
    desk: Desk, receiver: tuple[Receiver, str]
) -> None:
    """The IVR switch's APPLY died; the line has since fallen and the switch was undone.
    Applying it now would leave it on with nothing to undo it: 409, and it can be dismissed."""
    r, _ = receiver
    r.status.update(hook=200, flag=400)
    store = store_of(desk)
    await desk.raise_line("revenues")
    await until(lambda: any(e.order.response == "ivr" for e in store.dead()), "the IVR is dead")
    (apply,) = [e.order.key for e in store.dead() if e.order.response == "ivr"]

    r.status["flag"] = 200
    await desk.raise_line("revenues", avg_wait=100)  # tier 2 is left: the UNDO is planned
    assert "ivr" not in desk.rt.states["revenues"].live
    refused = await desk.http.post(retry_path(apply), headers=PRIYA)
    assert refused.status_code == 409
    assert refused.json()["error"].startswith(
        "ivr is no longer on for revenues (it has been undone since this was given up on), "
        "so applying it now would leave it on with nothing to undo it"
    )
    entry = store.outbox_entry(apply)
    assert entry is not None and entry.status == "dead"
    assert (await desk.http.post(retry_path(apply, "dismiss"), headers=PRIYA)).status_code == 200


async def test_a_dead_switch_may_be_retried_while_its_tier_holds(
    desk: Desk, receiver: tuple[Receiver, str]
) -> None:
    """While the line is still at the tier that wants the IVR on, its dead APPLY may go again."""
    r, _ = receiver
    r.status.update(hook=200, flag=400)
    store = store_of(desk)
    await desk.raise_line("revenues")
    await until(lambda: any(e.order.response == "ivr" for e in store.dead()), "the IVR is dead")
    (apply,) = [e.order.key for e in store.dead() if e.order.response == "ivr"]
    r.status["flag"] = 200
    desk.clock.advance(timedelta(minutes=10))
    resp = await desk.http.post(retry_path(apply), headers=PRIYA)
    assert resp.status_code == 200, resp.text
    await until(lambda: (e := store.outbox_entry(apply)) is not None and e.status == "done",
                "the IVR is on")  # fmt: skip
    assert [g[2] for g in r.got if g[0] == "flag"][-1] == {"enabled": True}
