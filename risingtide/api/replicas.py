"""``GET /api/v1/replicas``: who leads which partition of the lines.

With one daemon on a SQLite file there is one partition and it leads it. With replicas
sharing PostgreSQL (``server.database``) the answer lists every partition's lease as the
database has it, and names the replica that answered, so an operator can see at a glance
that every partition has exactly one leader. A read: open without users, a viewer's with.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risingtide.api import access
from risingtide.api.access import Gate, error
from risingtide.api.daemon import DaemonControl
from risingtide.store import StoreError
from risingtide.store.leases import Holding

__all__ = ["ReplicasOut", "replicas_json", "replicas_routes"]


class ReplicaOut(BaseModel):
    """A replica holding at least one lease."""

    name: str
    leads: list[int] = Field(description="The partitions it leads.")
    until: datetime | None = Field(description="When its earliest lease runs out (UTC).")


class ReplicasOut(BaseModel):
    """This replica and every holder of a lease."""

    replica: str = Field(description="The replica that answered.")
    partitions: int = Field(description="How many partitions the lines are spread over.")
    leads: list[int] = Field(description="The partitions the answering replica leads.")
    alive: int = Field(description="Replicas alive at its last round, itself included.")
    replicas: list[ReplicaOut]
    unled: list[int] = Field(description="Partitions nobody leads just now.")


def replicas_json(
    replica: str, partitions: int, leads: Iterable[int], alive: int, holdings: list[Holding]
) -> dict[str, Any]:
    """The answer of ``GET /api/v1/replicas``."""
    holders: dict[str, list[Holding]] = {}
    unled: list[int] = []
    for holding in holdings:
        if holding.holder is None:
            unled.append(holding.partition)
        else:
            holders.setdefault(holding.holder, []).append(holding)
    rows = [
        {
            "name": name,
            "leads": [h.partition for h in held],
            "until": min((h.expires_at for h in held if h.expires_at), default=None),
        }
        for name, held in sorted(holders.items())
    ]
    body = ReplicasOut.model_validate(
        {"replica": replica, "partitions": partitions, "leads": sorted(leads), "alive": alive,
         "replicas": rows, "unled": unled}
    )  # fmt: skip
    return body.model_dump(mode="json")


def replicas_routes(daemon: DaemonControl, gate: Gate) -> list[Route]:
    """``GET /api/v1/replicas``."""

    async def replicas(request: Request) -> Response:
        who = gate.check(request, access.READ)
        if isinstance(who, Response):
            return who
        leadership = daemon.leadership
        try:
            holdings = await leadership.holdings()
        except StoreError as exc:
            return error(503, f"the store cannot say who leads: {exc}")
        return JSONResponse(
            replicas_json(
                leadership.replica,
                leadership.partitions,
                leadership.led(),
                leadership.alive(),
                holdings,
            )
        )

    return [Route("/api/v1/replicas", replicas)]
