"""Sources: one module per platform, wired here by ``type``.

A new platform is one new module exporting a ``SourcePlugin`` as ``PLUGIN`` and one line in
``SOURCE_TYPES``.
"""

from __future__ import annotations

from collections.abc import Mapping

from risingtide.ports import SourcePlugin
from risingtide.sources import scripted, simulator

SOURCE_TYPES: Mapping[str, SourcePlugin] = {
    p.type: p
    for p in (
        scripted.PLUGIN,
        simulator.PLUGIN,
    )
}
