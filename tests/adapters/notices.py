"""Notices for the notification channels' tests: three lines at three tiers, people on duty.

Each person lacks some address, so every channel has someone to skip:

========  =====  ======  =====  =====
person    email  mobile  teams  slack
========  =====  ======  =====  =====
Asha      yes    yes     yes    yes
Ben       yes    no      yes    no
Chloe     no     yes     no     yes
========  =====  ======  =====  =====
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.domain.people import Person
from risingtide.ports import Notice, ResponseContext

T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)
BOARD = "https://rt.example/"
BATCH_KEY = "batch/7f3c2a/2026-01-05T09:25:00+00:00"

ASHA = Person(
    id="asha", name="Asha Patel", email="asha.patel@council.example",
    mobile="+447700900111", teams="asha.patel@council.example", slack="U0ASHA111",
)  # fmt: skip
BEN = Person(
    id="ben", name="Ben Okafor", email="ben.okafor@council.example",
    teams="ben.okafor@council.example",
)  # fmt: skip
CHLOE = Person(id="chloe", name="Chloe Jones", mobile="+447700900333", slack="U0CHLOE33")
PEOPLE = (ASHA, BEN, CHLOE)

#: line id, name, tier, tier name, average wait (s), calls waiting
LINES = (
    ("waste", "Waste & Recycling", 1, "rising", 200.0, 6),
    ("revenues", "Revenues & Benefits", 3, "flood", 700.0, 31),
    ("council_tax", "Council Tax", 2, "high", 400.0, 14),
)
#: The lines' default headlines, highest tier first (the digest's order).
HEADLINES = (
    "Revenues & Benefits raised to tier 3 (flood)",
    "Council Tax raised to tier 2 (high)",
    "Waste & Recycling raised to tier 1 (rising)",
)


def order(line: str, tier: int, response: str, action: Action = Action.APPLY) -> ResponseOrder:
    """A tier-change order raising ``line`` from calm to ``tier``."""
    return ResponseOrder(
        key=f"{line}/3/tier_changed/{tier}/0-{tier}@2026-01-05T09:25:00+00:00/{response}/"
        f"{action.value}",
        line=line, response=response, action=action, tier=tier, episode=3,
        trigger="tier_changed", at=T0, reason=f"avg_wait above target on {line} for 5m",
    )  # fmt: skip


def context(line: str, name: str, tier_name: str, avg: float, waiting: int) -> ResponseContext:
    """Figures, an acknowledge link and the board link for one line."""
    return ResponseContext(
        line_name=name,
        tier_name=tier_name,
        stats=QueueStats(line=line, at=T0, calls_waiting=waiting, avg_wait=avg),
        target_wait=180.0,
        extra={"ack_url": f"https://rt.example/ack/{line}", "board_url": BOARD,
               "entered_at": T0 - timedelta(minutes=5)},
    )  # fmt: skip


def digest(response: str, people: tuple[Person, ...] = PEOPLE) -> Notice:
    """One notice about all three lines (in an order that is not the digest's)."""
    items = tuple(
        (order(line, tier, response), context(line, name, tier_name, avg, waiting))
        for line, name, tier, tier_name, avg, waiting in LINES
    )
    return Notice(BATCH_KEY, items, people)


def mixed(response: str, people: tuple[Person, ...] = PEOPLE) -> Notice:
    """Council Tax raised (APPLY) with the UNDOs of the two other lines' notifications."""
    items = []
    for line, name, tier, tier_name, avg, waiting in LINES:
        action = Action.APPLY if line == "council_tax" else Action.UNDO
        items.append(
            (order(line, tier, response, action), context(line, name, tier_name, avg, waiting))
        )
    return Notice(BATCH_KEY, tuple(items), people)


def undo_only(response: str, people: tuple[Person, ...] = PEOPLE) -> Notice:
    """Only UNDOs: a notification takes nothing back."""
    items = tuple(
        (order(line, tier, response, Action.UNDO), context(line, name, tier_name, avg, waiting))
        for line, name, tier, tier_name, avg, waiting in LINES
    )
    return Notice(BATCH_KEY, items, people)


def many(response: str, n: int, people: tuple[Person, ...] = ()) -> Notice:
    """A citywide surge: ``n`` lines at tier 2 in one notice."""
    items = tuple(
        (
            order(f"line_{i:02d}", 2, response),
            context(f"line_{i:02d}", f"Service line number {i:02d}", "high", 300.0 + i, i),
        )
        for i in range(n)
    )
    return Notice(BATCH_KEY, items, people)
