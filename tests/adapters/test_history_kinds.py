"""The history page's "What happened" filter offers every kind the history can hold."""

from __future__ import annotations

import re
from pathlib import Path

from risingtide.api.history import HISTORY_KINDS
from risingtide.store.codec import EVENT_TYPES
from tests.adapters.desk import bearer, running_desk


def test_the_filter_offers_every_event_kind_and_the_stores_own_records() -> None:
    """Each domain event kind (from the codec) and each non-event record is offered once."""
    assert set(EVENT_TYPES) <= set(HISTORY_KINDS)
    for kind in ("acknowledgement_expired", "lessons_learned", "response", "line_removed"):
        assert kind in HISTORY_KINDS
    assert len(HISTORY_KINDS) == len(set(HISTORY_KINDS))


async def test_the_page_filters_by_acknowledgement_expired(tmp_path: Path) -> None:
    """The page offers acknowledgement_expired and, chosen, shows only those events."""
    async with running_desk(tmp_path) as desk:
        await desk.raise_line()
        store = desk.rt.store
        assert store is not None
        at = desk.rt.clock.now()
        data = {"by": "Asha", "episode": 1}
        store.append_history([("revenues", "acknowledgement_expired", at, 2, data)])
        page = await desk.http.get(
            "/history", params={"kind": "acknowledgement_expired"}, headers=bearer("vera")
        )
    assert page.status_code == 200, page.text
    offered = re.findall(r'<option value="([a-z_]+)"', page.text)
    assert "acknowledgement_expired" in offered and "lessons_learned" in offered
    assert '<option value="acknowledgement_expired" selected>' in page.text
    rows = re.findall(r"<tr><td>.*?</td><td>(.*?)</td><td>(.*?)</td>", page.text)
    assert rows == [("revenues", "acknowledgement expired")]
