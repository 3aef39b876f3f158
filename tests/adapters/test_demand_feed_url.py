"""A demand feed given as a URL is fetched over HTTP (a real server on loopback)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from risingtide.config.model import DemandFeed
from risingtide.demand_feeds import FeedError, read_feed
from risingtide.domain.demand_calendar import DemandEvent

ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//council//events//EN\r
BEGIN:VEVENT\r
UID:one@council\r
SUMMARY:Council Tax reminders\r
DTSTART:20261207T090000Z\r
DTEND:20261207T170000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/events.ics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(ICS)))
        self.end_headers()
        self.wfile.write(ICS)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test says what matters."""


@pytest.fixture
def calendar_server() -> Iterator[str]:
    """A loopback HTTP server for one .ics file; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _feed(url: str) -> DemandFeed:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    template = DemandEvent(name="", lines=("council_tax",), start=start, end=start, multiply=2.0)
    return DemandFeed(where=url, is_url=True, template=template, timezone=ZoneInfo("Europe/London"))


def test_a_url_feed_is_fetched_and_its_events_read(calendar_server: str) -> None:
    """The VEVENT served over HTTP becomes a demand event with the template's figures."""
    (event,) = read_feed(_feed(calendar_server + "/events.ics"))
    assert event.name == "Council Tax reminders"
    assert event.start == datetime(2026, 12, 7, 9, tzinfo=UTC)
    assert event.end == datetime(2026, 12, 7, 17, tzinfo=UTC)
    assert event.multiply == 2.0


def test_a_url_feed_that_answers_404_is_a_feed_error_naming_it(calendar_server: str) -> None:
    """A missing feed is a FeedError with the URL and the HTTP status."""
    url = calendar_server + "/missing.ics"
    with pytest.raises(FeedError, match=f"^{url}: HTTP 404$"):
        read_feed(_feed(url))
