"""Responders: one module per channel or platform action, wired here by ``type``.

A new channel is one new module exporting a ``ResponderPlugin`` as ``PLUGIN`` and one line
in ``RESPONDER_TYPES``.
"""

from __future__ import annotations

from collections.abc import Mapping

from risingtide.ports import ResponderPlugin
from risingtide.responders import (
    apprise_channel,
    email,
    govuk_notify,
    http_action,
    log,
    simulator,
    slack,
    teams,
    webhook,
)

RESPONDER_TYPES: Mapping[str, ResponderPlugin] = {
    p.type: p
    for p in (
        log.PLUGIN,
        simulator.PLUGIN,
        http_action.PLUGIN,
        http_action.GENESYS_DATATABLE,
        http_action.TWILIO_SYNC,
        http_action.JSON_FLAG,
        email.PLUGIN,
        govuk_notify.PLUGIN,
        slack.PLUGIN,
        teams.PLUGIN,
        webhook.PLUGIN,
        apprise_channel.PLUGIN,
    )
}
