"""The ``log`` responder: writes the response to the daemon's log and nowhere else.

Useful as a first notification channel, in demos, and as a record of what would have been
sent. It never fails. It is a notifier: the orders of several lines that go out together
are one log line per line, each naming the notice's key, its size and the people the
response pages who are on duty (``to``), just as a real channel would send them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from risingtide.domain.model import ResponseOrder
from risingtide.ports import (
    BuildContext,
    Notice,
    Responder,
    ResponderPlugin,
    ResponseContext,
    settings_as,
)


class LogSettings(BaseModel):
    """``message``: what to say (a plain string; the line, tier and figures are added)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str = "response"
    level: str = "warning"


class LogResponder:
    """Logs each order with the line, tier and figures."""

    undoable = False

    def __init__(self, name: str, settings: LogSettings) -> None:
        """Log with ``settings.message`` under the response's ``name``."""
        self.name = name
        self._settings = settings
        import structlog  # here, not at the top: ``check`` loads the plugin, never logs

        self._log = structlog.get_logger("risingtide.responders.log")
        self.sent: list[ResponseOrder] = []

    async def run(self, order: ResponseOrder, context: ResponseContext) -> str:
        """Write one log line for the order."""
        return await self.notify(Notice.of(order, context))

    async def notify(self, notice: Notice) -> str:
        """Write one log line per line of the notice, naming who it would reach."""
        to = [p.name for p in notice.people]
        for order, context in notice.items:
            stats = context.stats
            fields: dict[str, object] = {}
            if len(notice.items) > 1:
                fields.update(notice=notice.key, lines_in_notice=len(notice.items))
            if to:
                fields["to"] = to
            self._log.log(
                _LEVELS.get(self._settings.level, 30),
                self._settings.message,
                response=self.name,
                line=order.line,
                tier=order.tier,
                tier_name=context.tier_name,
                trigger=order.trigger,
                action=order.action.value,
                reason=order.reason,
                avg_wait=None if stats is None else stats.avg_wait,
                longest_wait=None if stats is None else stats.longest_wait,
                calls_waiting=None if stats is None else stats.calls_waiting,
                key=order.key,
                **fields,
            )
            self.sent.append(order)
        if to:
            return f"logged for {', '.join(to)}"
        return "logged"


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _build(name: str, settings: BaseModel, ctx: BuildContext) -> Responder:
    settings = settings_as(LogSettings, settings, f"response {name!r}")
    return LogResponder(name, settings)


PLUGIN = ResponderPlugin(
    type="log",
    settings_model=LogSettings,
    build=_build,
    undoable=lambda _settings: False,
    description="Write the response to the daemon's log.",
)
