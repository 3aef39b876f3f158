"""A scheduled report goes out alone, never as one line of a message about several lines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from test_dispatch_notices import GROUPED, T0, Told, dispatcher, order

from risingtide.clock import FakeClock
from risingtide.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store(tmp_path / "rt.sqlite", clock) as s:
        yield s


async def test_a_report_is_sent_at_once_and_alone_beside_line_orders(
    store: Store, clock: FakeClock
) -> None:
    """A report queued with two lines' orders goes at once on its own; the lines still wait
    out the group wait and go together."""
    text = Told("text")
    d = dispatcher(store, clock, text, text=GROUPED)
    report = replace(order("report/weekly/2026-W02/text", "*"), trigger="report", tier=0)
    store.commit([], [], [order("a", "revenues"), report, order("b", "waste")])
    assert await d.run_due() == 1
    (alone,) = text.notices
    assert alone.key == "report/weekly/2026-W02/text" and alone.orders == (report,)
    clock.advance(timedelta(seconds=5))
    assert await d.run_due() == 2
    assert [o.line for o in text.notices[1].orders] == ["revenues", "waste"]
