"""One TLS context for every short-lived HTTP client the responders open.

Building a TLS context (loading the CA bundle) costs tens of milliseconds of CPU, and an
``httpx.AsyncClient`` builds one each time it is created — even for ``http://`` URLs. A
responder that opened a client per message paid that for every message, holding up the
event loop: 100 lines breaching together took seconds to notify. The context is built once
and shared (``SSLContext`` objects are safe to share between connections).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """The default verifying TLS context, built on first use and kept."""
    return httpx.create_ssl_context()
