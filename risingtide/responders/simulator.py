"""The ``simulator`` responder: the simulator's own platform actions.

Each response of this type is one switch on a ``simulator`` source's line::

    responses:
      callback_on:  { type: simulator, source: demo, action: callback }
      ivr_message:  { type: simulator, source: demo, action: ivr_deflection }
      surge_staff:  { type: simulator, source: demo, action: surge_staff }

APPLY switches it on for the order's line and UNDO switches it off, so every action is
undoable: on when its tier is entered, off when the tier is left. Both are idempotent — a
switch already in the wanted position is left alone and reported as such.

The source is looked up by id when the order runs, not when the responder is built, so a
source rebuilt on reload is the one switched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from risingtide.domain.model import Action, ResponseOrder
from risingtide.ports import (
    BuildContext,
    Responder,
    ResponderPlugin,
    ResponseContext,
    ResponseError,
    StatsSource,
    settings_as,
)
from risingtide.sources.simulator import SimulatorSource

SimulatorAction = Literal["ivr_deflection", "callback", "surge_staff"]


class SimulatorActionSettings(BaseModel):
    """``source``: the id of a ``simulator`` source; ``action``: which switch to throw."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    action: SimulatorAction


class SimulatorResponder:
    """Throws one switch on a simulated line."""

    undoable = True

    def __init__(
        self, name: str, settings: SimulatorActionSettings, sources: Mapping[str, StatsSource]
    ) -> None:
        """Act on ``sources[settings.source]`` (looked up at each run)."""
        self.name = name
        self.settings = settings
        self._sources = sources

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Switch the action on (APPLY) or off (UNDO) for ``order.line``.

        Raises a non-retryable ``ResponseError`` when the source is missing, is not a
        simulator, or does not simulate the line: retrying cannot fix a config mistake.
        """
        source_id, action = self.settings.source, self.settings.action
        source = self._sources.get(source_id)
        if source is None:
            raise ResponseError(
                f"response {self.name!r}: there is no source {source_id!r}",
                reason="no_source",
                retryable=False,
            )
        if not isinstance(source, SimulatorSource):
            raise ResponseError(
                f"response {self.name!r}: source {source_id!r} is not a simulator",
                reason="not_simulator",
                retryable=False,
            )
        if order.line not in source.lines:
            raise ResponseError(
                f"response {self.name!r}: simulator {source_id!r} has no line {order.line!r}",
                reason="no_line",
                retryable=False,
            )
        switch: Callable[[str, bool], bool] = {
            "ivr_deflection": source.set_deflection,
            "callback": source.set_callback,
            "surge_staff": source.set_surge,
        }[action]
        on = order.action is Action.APPLY
        changed = switch(order.line, on)
        state = "on" if on else "off"
        return f"{action} {state}" if changed else f"{action} already {state}"


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(SimulatorActionSettings, settings, f"response {name!r}")
    return SimulatorResponder(name, settings, ctx.sources)


PLUGIN = ResponderPlugin(
    type="simulator",
    settings_model=SimulatorActionSettings,
    build=_build,
    undoable=lambda _settings: True,
    description="Switch IVR deflection, call-back or surge staff on a simulated line.",
)
