"""The ports' helpers every plugin uses to take its own settings."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from risingtide.ports import lines_as, settings_as


class Own(BaseModel):
    queue: str = "q"


class Other(BaseModel):
    pass


def test_settings_as_passes_the_plugins_own_model_through() -> None:
    """The same object comes back, typed as the plugin's model."""
    own = Own()
    assert settings_as(Own, own, "genesys_cloud 'main'") is own


def test_settings_of_another_model_is_a_wiring_bug_that_names_its_owner() -> None:
    """A mismatch says whose settings, what they were and what was expected."""
    with pytest.raises(TypeError, match=r"^response 'teams_csc': settings are Other, not Own$"):
        settings_as(Own, Other(), "response 'teams_csc'")


def test_lines_as_checks_every_line_and_names_the_bad_one() -> None:
    """Per-line parameters by line id; the line whose parameters are wrong is named."""
    lines = {"revenues": Own(queue="r"), "waste": Own(queue="w")}
    assert lines_as(Own, lines, "csv 'history'") == lines
    with pytest.raises(TypeError, match=r"^csv 'history', line 'waste': settings are Other"):
        lines_as(Own, {"revenues": Own(), "waste": Other()}, "csv 'history'")
