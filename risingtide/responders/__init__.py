"""Responders: one module per channel or platform action, wired here by ``type``.

A new channel is one new module exporting a ``ResponderPlugin`` as ``PLUGIN`` and one line
in ``RESPONDER_TYPES``. Each module is imported when its kind is first looked up (see
``risingtide.plugin_table``), so a config pays only for the channels it uses.
"""

from __future__ import annotations

from risingtide.plugin_table import PluginTable
from risingtide.ports import ResponderPlugin

RESPONDER_TYPES: PluginTable[ResponderPlugin] = PluginTable(
    {
        "log": "risingtide.responders.log:PLUGIN",
        "simulator": "risingtide.responders.simulator:PLUGIN",
        "http_action": "risingtide.responders.http_action:PLUGIN",
        "genesys_datatable": "risingtide.responders.http_action:GENESYS_DATATABLE",
        "twilio_sync": "risingtide.responders.http_action:TWILIO_SYNC",
        "json_flag": "risingtide.responders.http_action:JSON_FLAG",
        "email": "risingtide.responders.email:PLUGIN",
        "govuk_notify": "risingtide.responders.govuk_notify:PLUGIN",
        "slack": "risingtide.responders.slack:PLUGIN",
        "teams": "risingtide.responders.teams:PLUGIN",
        "webhook": "risingtide.responders.webhook:PLUGIN",
        "apprise": "risingtide.responders.apprise_channel:PLUGIN",
    }
)
