"""A real HTTP server on loopback for adapter tests: any ASGI app, served by uvicorn.

Vendor fakes are small Starlette apps that check what the adapter sends (auth headers,
bodies) and answer with the vendor's documented shapes; ``Loopback`` serves one on
127.0.0.1 on a free port for the length of a test::

    async with Loopback(app) as base_url:
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Loopback:
    """Serve ``app`` on 127.0.0.1 while the ``async with`` block runs."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = _QuietServer(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                           access_log=False, lifespan="off")
        )  # fmt: skip
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(500):
            if self._server.started:
                return self.url
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("loopback server did not start")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)
