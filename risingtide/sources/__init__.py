"""Sources: one module per platform, wired here by ``type``.

A new platform is one new module exporting a ``SourcePlugin`` as ``PLUGIN`` and one line in
``SOURCE_TYPES``.
"""

from __future__ import annotations

from collections.abc import Mapping

from risingtide.ports import SourcePlugin
from risingtide.sources import (
    amazon_connect,
    csv_file,
    eightbyeight,
    genesys_cloud,
    http_json,
    prometheus,
    scripted,
    simulator,
    twilio_taskrouter,
)

SOURCE_TYPES: Mapping[str, SourcePlugin] = {
    p.type: p
    for p in (
        scripted.PLUGIN,
        simulator.PLUGIN,
        amazon_connect.PLUGIN,
        eightbyeight.PLUGIN,
        genesys_cloud.PLUGIN,
        twilio_taskrouter.PLUGIN,
        http_json.PLUGIN,
        prometheus.PLUGIN,
        csv_file.PLUGIN,
    )
}
