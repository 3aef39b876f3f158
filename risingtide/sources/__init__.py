"""Sources: one module per platform, wired here by ``type``.

A new platform is one new module exporting a ``SourcePlugin`` as ``PLUGIN`` and one line in
``SOURCE_TYPES``. Each module is imported when its kind is first looked up (see
``risingtide.plugin_table``), so a config pays only for the platforms it uses.
"""

from __future__ import annotations

from risingtide.plugin_table import PluginTable
from risingtide.ports import SourcePlugin

SOURCE_TYPES: PluginTable[SourcePlugin] = PluginTable(
    {
        "scripted": "risingtide.sources.scripted:PLUGIN",
        "simulator": "risingtide.sources.simulator:PLUGIN",
        "amazon_connect": "risingtide.sources.amazon_connect:PLUGIN",
        "eightbyeight": "risingtide.sources.eightbyeight:PLUGIN",
        "genesys_cloud": "risingtide.sources.genesys_cloud:PLUGIN",
        "twilio_taskrouter": "risingtide.sources.twilio_taskrouter:PLUGIN",
        "http_json": "risingtide.sources.http_json:PLUGIN",
        "prometheus": "risingtide.sources.prometheus:PLUGIN",
        "csv": "risingtide.sources.csv_file:PLUGIN",
    }
)
