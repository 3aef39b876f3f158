"""Plugin tables for the config tests, fixed so expected messages never depend on which
plugins other modules add to the real tables.

Named ``config_fakes`` (not ``fakes``) because pytest imports test-folder modules by their
bare name, and another folder's ``fakes.py`` would collide with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from risingtide.config import check_config, load_config
from risingtide.config.errors import ConfigError
from risingtide.config.model import Config
from risingtide.ports import BuildContext, Responder, ResponderPlugin, SourcePlugin, StatsSource
from risingtide.responders import log
from risingtide.sources import scripted

FIXTURES = Path(__file__).parent / "fixtures"
#: A Monday in January: GMT, and bank holidays resolved for 2025–2031.
TODAY = date(2026, 1, 5)
#: The smallest whole config: one line on a scripted source, one tier (tests add a block).
ONE_LINE = """
sources:
  demo: { type: scripted }
lines:
  revenues: { name: Revenues & Benefits, source: demo, framework: standard }
frameworks:
  standard:
    tiers:
      - { level: 1, name: rising, when: { avg_wait: { above: target } } }
"""
ENV = {"STATE_DIR": "/var/lib/rising-tide", "SOCIAL_CARE_NAME": "Adult Social Care"}


class PartialSettings(BaseModel):
    """A source with one optional setting."""

    model_config = ConfigDict(extra="forbid")

    region: str = "uk"


class PartialLine(BaseModel):
    """Per-line parameters: a required queue id and an optional skill."""

    model_config = ConfigDict(extra="forbid")

    queue_id: str
    skill: str = "any"


def _no_source(name: str, s: BaseModel, lines: Mapping[str, BaseModel], ctx: BuildContext) -> Any:
    raise NotImplementedError  # the config tests never build plugins


def _no_responder(name: str, s: BaseModel, ctx: BuildContext) -> Any:
    raise NotImplementedError


class SwitchSettings(BaseModel):
    """A switch responder: ``undo: false`` makes it a one-way action."""

    model_config = ConfigDict(extra="forbid")

    undo: bool = True


#: A platform that reports the average wait and nothing else.
PARTIAL = SourcePlugin(
    type="partial",
    settings_model=PartialSettings,
    line_model=PartialLine,
    build=_no_source,
    provides=frozenset({"avg_wait"}),
)
#: A responder that changes the world unless told ``undo: false``.
SWITCH = ResponderPlugin(
    type="switch",
    settings_model=SwitchSettings,
    build=_no_responder,
    undoable=lambda s: isinstance(s, SwitchSettings) and s.undo,
)



class TextSettings(BaseModel):
    """A text-message channel: numbers of its own, beside the people it pages."""

    model_config = ConfigDict(extra="forbid")

    to: tuple[str, ...] = ()


#: A notifier that sends to people's mobiles.
TEXT = ResponderPlugin(
    type="text",
    settings_model=TextSettings,
    build=_no_responder,
    undoable=lambda _s: False,
    address=lambda _s: "mobile",
)

SOURCES: Mapping[str, SourcePlugin] = {"scripted": scripted.PLUGIN, "partial": PARTIAL}
RESPONDERS: Mapping[str, ResponderPlugin] = {"log": log.PLUGIN, "switch": SWITCH, "text": TEXT}


def check(
    path: Path | str, env: Mapping[str, str] | None = None
) -> tuple[Config | None, list[ConfigError], list[ConfigError]]:
    """``check_config`` with the fixed plugin tables, env and date."""
    return check_config(
        path,
        ENV if env is None else env,
        today=TODAY,
        source_types=SOURCES,
        responder_types=RESPONDERS,
    )


def load(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """``load_config`` with the fixed plugin tables, env and date."""
    return load_config(
        path,
        ENV if env is None else env,
        today=TODAY,
        source_types=SOURCES,
        responder_types=RESPONDERS,
    )


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    """Write ``text`` to a file under ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["ENV", "FIXTURES", "RESPONDERS", "SOURCES", "TODAY", "Responder", "StatsSource"]
