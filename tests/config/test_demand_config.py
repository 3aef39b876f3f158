"""``demand:`` and ``demand_feeds:``: events load with their times and actions, and iCalendar
files and URLs (a real HTTP server on loopback) become events through their feed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from config_fakes import load, write

from risingtide.demand_feeds import FeedError, read_feed, read_feeds
from risingtide.domain.demand_calendar import Prearm, Tighten, after_start

BASE = """
sources:
  demo: { type: scripted }
lines:
  council_tax: { name: Council Tax, source: demo, framework: standard, hours: office }
  waste: { name: Waste, source: demo, framework: standard }
calendars:
  office: { timezone: Europe/London, hours: { mon-sun: "00:00-24:00" } }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } }, responses: [notify] }
      - { level: 2, name: high, when: { avg_wait: { above: 300s } } }
responses:
  notify: { type: log, message: hi }
  page_surge_staff: { type: log, message: surge }
"""

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Council//Events//EN
BEGIN:VEVENT
UID:1@council
SUMMARY:Council Tax summonses
DTSTART:20260706T080000
DTEND:20260706T170000
CATEGORIES:council_tax
END:VEVENT
BEGIN:VEVENT
UID:2@council
SUMMARY:Bin round change
DTSTART;VALUE=DATE:20260707
END:VEVENT
BEGIN:VEVENT
UID:3@council
SUMMARY:Storm warning
DTSTART:20260708T060000Z
DURATION:PT6H
END:VEVENT
END:VCALENDAR
"""


def test_a_demand_event_loads_with_its_times_demand_and_actions(tmp_path: Path) -> None:
    """Naive times are in the line's calendar zone (BST here); ``for`` gives the end."""
    text = (
        BASE
        + """
demand:
  - name: Council Tax reminders
    lines: [council_tax]
    start: "2026-07-06T08:00"
    for: 2h
    multiply: 3
    prearm: { level: 2, lead: 30m }
    tighten: { level: 1, for: 1m }
    responses: [page_surge_staff]
    lead: 2h
  - { name: Demo, lines: all, start: -4m, end: +20m, calls_per_hour: 400 }
"""
    )
    config = load(write(tmp_path, text))
    bills, demo = config.demand
    assert bills.start == datetime(2026, 7, 6, 7, 0, tzinfo=UTC)
    assert bills.end == bills.start + timedelta(hours=2)
    assert (bills.multiply, bills.prearm, bills.tighten) == (
        3.0,
        Prearm(2, timedelta(minutes=30)),
        (Tighten(1, timedelta(minutes=1)),),
    )
    assert (bills.responses, bills.lead) == (("page_surge_staff",), timedelta(hours=2))
    assert demo.relative and demo.lines == ("all",)
    assert (demo.start, demo.end) == (
        after_start(-timedelta(minutes=4)),
        after_start(timedelta(minutes=20)),
    )


def test_a_response_used_only_by_the_calendar_is_not_called_unused(tmp_path: Path) -> None:
    """``page_surge_staff`` named only by a demand event draws no "never used" warning."""
    text = (
        BASE
        + """
demand:
  - { name: Bills, lines: [council_tax], start: +1m, for: 1h, responses: [page_surge_staff] }
"""
    )
    config = load(write(tmp_path, text))
    assert not [w for w in config.warnings if "page_surge_staff" in w]


def _feed_config(tmp_path: Path, where: str) -> Path:
    return write(
        tmp_path,
        BASE
        + f"""
demand_feeds:
  - {where}
    lines: [council_tax, waste]
    multiply: 2
    prearm: {{ level: 1, lead: 15m }}
""",
    )


def test_an_ics_file_becomes_events_narrowed_by_categories(tmp_path: Path) -> None:
    """Each VEVENT takes the feed's demand and pre-arm; CATEGORIES naming a line narrow it;
    an all-day event runs midnight to midnight; DURATION gives the end."""
    (tmp_path / "council-events.ics").write_text(ICS)
    config = load(_feed_config(tmp_path, "path: council-events.ics"))
    (feed,) = config.demand_feeds
    summonses, bins, storm = read_feed(feed)
    assert summonses.name == "Council Tax summonses"
    assert summonses.lines == ("council_tax",)
    assert summonses.start == datetime(2026, 7, 6, 7, 0, tzinfo=UTC)  # 08:00 BST
    assert (summonses.multiply, summonses.prearm) == (2.0, Prearm(1, timedelta(minutes=15)))
    assert bins.lines == ("council_tax", "waste")
    assert (bins.start, bins.end) == (
        datetime(2026, 7, 6, 23, 0, tzinfo=UTC),
        datetime(2026, 7, 7, 23, 0, tzinfo=UTC),
    )
    assert storm.end - storm.start == timedelta(hours=6)


@pytest.fixture
def ics_server() -> Iterator[str]:
    """A real HTTP server on loopback serving the calendar at /events.ics (404 elsewhere)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ICS.encode() if self.path == "/events.ics" else b"not here"
            self.send_response(200 if self.path == "/events.ics" else 404)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_ics_url_is_fetched_and_a_failing_one_is_reported(
    tmp_path: Path, ics_server: str
) -> None:
    """A URL feed is fetched over HTTP; a 404 is a FeedError naming the URL, and
    ``read_feeds`` keeps the good feed's events beside the bad one's message."""
    config = load(_feed_config(tmp_path, f"url: {ics_server}/events.ics"))
    (feed,) = config.demand_feeds
    assert [e.name for e in read_feed(feed)] == [
        "Council Tax summonses",
        "Bin round change",
        "Storm warning",
    ]
    missing = load(_feed_config(tmp_path, f"url: {ics_server}/gone.ics")).demand_feeds[0]
    with pytest.raises(FeedError, match=r"gone\.ics: HTTP 404"):
        read_feed(missing)
    events, problems = read_feeds((feed, missing))
    assert len(events) == 3
    assert problems == [f"{ics_server}/gone.ics: HTTP 404"]


def test_a_file_that_is_not_icalendar_is_a_clear_error(tmp_path: Path) -> None:
    """A feed whose file is not iCalendar fails with the file's name, not a traceback."""
    (tmp_path / "council-events.ics").write_text("this is not a calendar\n")
    (feed,) = load(_feed_config(tmp_path, "path: council-events.ics")).demand_feeds
    with pytest.raises(FeedError, match=r"council-events\.ics: not an iCalendar file"):
        read_feed(feed)
