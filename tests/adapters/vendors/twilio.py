"""A fake Twilio TaskRouter for adapter tests: TaskQueue real-time (bulk) and cumulative
statistics.

It checks what the adapter sends — HTTP Basic ``AccountSid:AuthToken`` on every request,
the bulk body as the docs' example sends it (``Content-Type: application/json``,
``{"queueSids": [...]}``, 1 to 50 ``WQ…`` SIDs, else 400), ``Minutes`` and
``TaskChannel`` on the cumulative query — and answers with the documented shapes
(``task_queue_bulk_real_time_statistics``, ``task_queue_cumulative_statistics``, checked
against their documented keys by ``conform`` before they are sent) and Twilio's error body
(``{"code", "message", "more_info", "status"}``).

Queue figures live in ``FakeTwilio.queues``; misbehaviour is scripted per endpoint with
``faults`` (answered instead of the real thing, one per request) and ``mangle`` (edits the
JSON about to be sent).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = "https://taskrouter.twilio.com/v1"
_WQ = re.compile(r"WQ[0-9a-fA-F]{32}")

_NUMBER = (int, float)
_COUNTS = dict  # {"pending": 1, …}: the spec leaves these maps' keys open
_DURATIONS = {"avg": _NUMBER, "min": _NUMBER, "max": _NUMBER, "total": _NUMBER}
#: ``task_queue_bulk_real_time_statistics``, ``task_queue_data`` items as its description
#: lists them.
BULK_RESPONSE = {
    "account_sid": str, "workspace_sid": str, "task_queue_response_count": int, "url": str,
    "task_queue_data": [{
        "task_queue_sid": str, "total_available_workers": int, "total_eligible_workers": int,
        "total_tasks": int, "longest_task_waiting_age": int, "longest_task_waiting_sid": str,
        "tasks_by_status": _COUNTS, "tasks_by_priority": _COUNTS,
        "activity_statistics": [{"friendly_name": str, "workers": int, "sid": str}],
    }],
}  # fmt: skip
#: ``task_queue_cumulative_statistics``.
CUMULATIVE_RESPONSE = {
    "account_sid": str, "workspace_sid": str, "task_queue_sid": str, "url": str,
    "start_time": str, "end_time": str, "avg_task_acceptance_time": int,
    "reservations_created": int, "reservations_accepted": int, "reservations_rejected": int,
    "reservations_timed_out": int, "reservations_canceled": int, "reservations_rescinded": int,
    "tasks_canceled": int, "tasks_completed": int, "tasks_deleted": int, "tasks_entered": int,
    "tasks_moved": int, "split_by_wait_time": dict,
    "wait_duration_until_accepted": _DURATIONS, "wait_duration_until_canceled": _DURATIONS,
    "wait_duration_in_queue_until_accepted": _DURATIONS,
}  # fmt: skip


def conform(value: Any, schema: Any, where: str) -> list[str]:
    """How ``value`` strays from ``schema`` (documented keys and types); [] when it does not.

    A schema is a dict of the documented keys, a one-item list for an array, or a type;
    ``null`` is always allowed (the spec marks these fields nullable).
    """
    if value is None:
        return []
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where} is not an object"]
        return [
            problem
            for key, item in value.items()
            for problem in (
                conform(item, schema[key], f"{where}.{key}") if key in schema
                else [f"{where}.{key} is not documented"]
            )
        ]  # fmt: skip
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where} is not a list"]
        return [p for i, v in enumerate(value) for p in conform(v, schema[0], f"{where}[{i}]")]
    if isinstance(value, bool):
        return [f"{where} is {value!r}, not {schema}"]
    return [] if isinstance(value, schema) else [f"{where} is {value!r}, not {schema}"]


@dataclass
class Fault:
    """An answer given instead of the real one: a status, a raw body, headers, a delay."""

    status: int = 500
    body: str = '{"code": 20500, "message": "Internal Server Error", "status": 500}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class TaskQueue:
    """One TaskQueue's figures: tasks by status, workers, and the cumulative window."""

    pending: int = 0
    reserved: int = 0
    assigned: int = 0
    wrapping: int = 0
    longest_age: int = 0  # seconds (or ms when the fake reports ages in ms)
    longest_task: str | None = None
    available: int = 3
    eligible: int = 8
    entered: int = 0
    canceled: int = 0
    completed: int = 0
    accepted: int = 0
    avg_acceptance: int = 0


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status_code=status,
    )  # fmt: skip


class FakeTwilio:
    """The fake platform; ``app()`` is its Starlette application."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "a" * 32,
        auth_token: str = "twilio-auth-token",
        workspace_sid: str = "WS" + "b" * 32,
    ) -> None:
        """A workspace that trusts ``account_sid``/``auth_token``."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.workspace_sid = workspace_sid
        self.queues: dict[str, TaskQueue] = {}
        self.calls: Counter[str] = Counter()
        self.bulk_bodies: list[list[str]] = []
        self.cumulative_params: list[dict[str, str]] = []
        self.faults: dict[str, list[Fault]] = {"bulk": [], "cumulative": []}
        self.mangle: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.omit: set[str] = set()  # SIDs left out of task_queue_data
        self.in_flight = 0
        self.max_in_flight = 0

    def app(self) -> Starlette:
        """The Starlette app serving the two statistics endpoints."""
        ws = "/v1/Workspaces/{workspace}"
        return Starlette(routes=[
            Route(ws + "/TaskQueues/RealTimeStatistics", self._bulk, methods=["POST"]),
            Route(ws + "/TaskQueues/{queue}/CumulativeStatistics", self._cumulative),
        ])  # fmt: skip

    async def _check(self, request: Request, name: str) -> Response | None:
        self.calls[name] += 1
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if request.headers.get("authorization") != expected:
            return _error(401, 20003, "Authenticate")
        if request.path_params["workspace"] != self.workspace_sid:
            return _error(404, 20404, "The requested resource was not found")
        if self.faults[name]:
            fault = self.faults[name].pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return Response(
                fault.body, status_code=fault.status, headers=fault.headers,
                media_type="application/json",
            )  # fmt: skip
        return None

    async def _bulk(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._bulk_answer(request)
        finally:
            self.in_flight -= 1

    async def _bulk_answer(self, request: Request) -> Response:
        early = await self._check(request, "bulk")
        if early is not None:
            return early
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _error(400, 20001, "Expected a JSON body")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 20001, "Malformed JSON body")
        sids = body.get("queueSids") if isinstance(body, dict) else None
        if not isinstance(sids, list) or not 1 <= len(sids) <= 50:
            return _error(400, 20001, "queueSids must list 1 to 50 TaskQueue SIDs")
        if not all(isinstance(s, str) and _WQ.fullmatch(s) for s in sids):
            return _error(400, 20001, "Invalid TaskQueueSid")
        self.bulk_bodies.append(sids)
        await asyncio.sleep(0.01)  # long enough for concurrent requests to overlap
        data = []
        for sid in sids:
            if sid in self.omit:
                continue
            q = self.queues.get(sid, TaskQueue())  # unknown SIDs answer zeros (documented)
            data.append({
                "task_queue_sid": sid,
                "total_available_workers": q.available,
                "total_eligible_workers": q.eligible,
                "total_tasks": q.pending + q.reserved + q.assigned + q.wrapping,
                "longest_task_waiting_age": q.longest_age,
                "longest_task_waiting_sid": q.longest_task,
                "tasks_by_status": {"reserved": q.reserved, "pending": q.pending,
                                    "assigned": q.assigned, "wrapping": q.wrapping},
                "tasks_by_priority": {},
                "activity_statistics": [
                    {"friendly_name": "Available", "workers": q.available,
                     "sid": "WA" + "c" * 32},
                    {"friendly_name": "Offline", "workers": q.eligible - q.available,
                     "sid": "WA" + "d" * 32},
                ],
            })  # fmt: skip
        payload: dict[str, Any] = {
            "account_sid": self.account_sid,
            "workspace_sid": self.workspace_sid,
            "task_queue_data": data,
            "task_queue_response_count": len(data),
            "url": f"{BASE}/Workspaces/{self.workspace_sid}/TaskQueues/RealTimeStatistics",
        }
        problems = conform(payload, BULK_RESPONSE, "TaskQueueBulkRealTimeStatistics")
        assert not problems, f"the fake's own answer breaks the documented shape: {problems}"
        if "bulk" in self.mangle:
            self.mangle["bulk"](payload)
        return JSONResponse(payload)

    async def _cumulative(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._cumulative_answer(request)
        finally:
            self.in_flight -= 1

    async def _cumulative_answer(self, request: Request) -> Response:
        early = await self._check(request, "cumulative")
        if early is not None:
            return early
        sid = request.path_params["queue"]
        params = dict(request.query_params)
        self.cumulative_params.append({"queue": sid, **params})
        if not params.get("Minutes", "").isdigit():
            return _error(400, 20001, "Minutes must be an integer")
        q = self.queues.get(sid)
        if q is None:
            return _error(404, 20404, f"The requested resource /TaskQueues/{sid} was not found")
        await asyncio.sleep(0.01)
        wait = {"avg": q.avg_acceptance, "min": 0, "max": q.avg_acceptance * 2,
                "total": q.avg_acceptance * q.accepted}  # fmt: skip
        payload: dict[str, Any] = {
            "account_sid": self.account_sid,
            "workspace_sid": self.workspace_sid,
            "task_queue_sid": sid,
            "start_time": "2026-01-05T08:45:00Z",
            "end_time": "2026-01-05T09:00:00Z",
            "avg_task_acceptance_time": q.avg_acceptance,
            "reservations_created": q.accepted,
            "reservations_accepted": q.accepted,
            "reservations_rejected": 0,
            "reservations_timed_out": 0,
            "reservations_canceled": 0,
            "reservations_rescinded": 0,
            "tasks_entered": q.entered,
            "tasks_canceled": q.canceled,
            "tasks_completed": q.completed,
            "tasks_deleted": 0,
            "tasks_moved": 0,
            "wait_duration_until_accepted": wait,
            "wait_duration_until_canceled": {"avg": 0, "min": 0, "max": 0, "total": 0},
            "wait_duration_in_queue_until_accepted": wait,
            "split_by_wait_time": None,
            "url": f"{BASE}/Workspaces/{self.workspace_sid}/TaskQueues/{sid}/CumulativeStatistics",
        }
        problems = conform(payload, CUMULATIVE_RESPONSE, "TaskQueueCumulativeStatistics")
        assert not problems, f"the fake's own answer breaks the documented shape: {problems}"
        if "cumulative" in self.mangle:
            self.mangle["cumulative"](payload)
        return JSONResponse(payload)
