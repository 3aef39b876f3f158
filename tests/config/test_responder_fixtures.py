"""``check`` places each responder settings error on the line at fault, and says it once.

Like ``test_config_fixtures`` but with the real responder plugins (``http_action`` and
``email``), whose own settings checks are what is tested: each ``CASE.yaml`` in
``fixtures/responders/`` gives exactly the lines of its ``CASE.expected``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from config_fakes import TODAY

from risingtide.config import check_config

RESPONDERS = Path(__file__).parent / "fixtures" / "responders"
CASES = sorted(p.stem for p in RESPONDERS.glob("*.expected"))


def test_every_responder_fixture_has_an_expectation() -> None:
    """Every YAML fixture here has its ``.expected`` file (none is forgotten)."""
    assert {p.stem for p in RESPONDERS.glob("*.yaml")} == set(CASES)
    assert len(CASES) >= 4


@pytest.mark.parametrize("case", CASES)
def test_responder_fixture_gives_exactly_the_expected_messages(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The errors and warnings are exactly the lines of the fixture's .expected file."""
    monkeypatch.chdir(RESPONDERS)
    expected = (RESPONDERS / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    config, errors, warnings = check_config(f"{case}.yaml", {}, today=TODAY)
    assert [str(e) for e in errors + warnings] == expected
    assert config is None
