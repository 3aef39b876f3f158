"""Talking to a running daemon over its HTTP API, for the command line.

One small client: it sends the API token when there is one, and turns every way a
request can fail into a ``RemoteError`` whose message is fit to print — the API's own
``{"error": reason}`` when it gave one, else what went wrong on the way.
"""

from __future__ import annotations

from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:9470"
TIMEOUT = 10.0


class RemoteError(Exception):
    """A request the daemon refused or that never reached it; ``str()`` says why."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """``status`` is the HTTP status when the daemon answered."""
        super().__init__(message)
        self.status = status


class Remote:
    """A client for one daemon at ``url``, authenticated by ``token`` when given."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = TIMEOUT) -> None:
        """Talk to ``url`` (e.g. ``http://127.0.0.1:9470``)."""
        self.url = url.rstrip("/")
        self.token = token or None
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; return the decoded JSON of a 2xx answer, else raise."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method, self.url + path, json=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the daemon at {self.url}: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success:
            return data
        reason = data.get("error") if isinstance(data, dict) else None
        message = str(reason) if reason else f"the daemon answered HTTP {response.status_code}"
        if response.status_code == 401 and not self.token:
            message += " (give --token, or set RISINGTIDE_TOKEN)"
        details = data.get("errors") if isinstance(data, dict) else None
        if isinstance(details, list) and details:
            message += "\n" + "\n".join(str(d) for d in details)
        raise RemoteError(message, status=response.status_code)
