"""Every error fixture in ``fixtures/`` gives exactly the messages in its ``.expected`` file.

Each ``CASE.yaml`` is a config with one kind of mistake (or, for ``several_mistakes``,
many); ``CASE.expected`` lists the errors and then the warnings, one per line, exactly as
``risingtide check`` prints them. The tests run from inside ``fixtures/`` so that the file
name in each message is the bare name, as an analyst would type it.
"""

from __future__ import annotations

import pytest
from config_fakes import FIXTURES, check

CASES = sorted(p.stem for p in FIXTURES.glob("*.expected"))


def test_there_are_many_error_cases() -> None:
    """The fixture folder covers at least twenty distinct error cases."""
    errors = [c for c in CASES if not c.startswith(("warn", "valid"))]
    assert len(errors) >= 20


def test_every_fixture_has_an_expectation() -> None:
    """Every non-valid YAML fixture has an ``.expected`` file beside it (none is forgotten)."""
    yaml_cases = {p.stem for p in FIXTURES.glob("*.yaml") if not p.stem.startswith("valid_")}
    assert yaml_cases == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_fixture_gives_exactly_the_expected_messages(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The errors and warnings for the fixture are exactly the lines of its .expected file."""
    monkeypatch.chdir(FIXTURES)
    expected = (FIXTURES / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    config, errors, warnings = check(f"{case}.yaml")
    assert [str(e) for e in errors + warnings] == expected
    assert (config is None) == bool(errors)


def test_several_mistakes_are_all_reported_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file with mistakes in every section reports each of them, not just the first."""
    monkeypatch.chdir(FIXTURES)
    _, errors, _ = check("several_mistakes.yaml")
    sections = {e.message.split(".")[0].split(":")[0] for e in errors}
    assert sections == {"server", "sources", "lines", "frameworks", "responses"}
    assert len(errors) >= 10
    assert errors == sorted(errors, key=lambda e: (e.line, e.column, e.message))
