"""A wiring table of plugins that imports each plugin's module the first time it is asked for.

The sources and responders tables list every kind by ``"module:attribute"``; a config that
uses a simulator and log lines never imports the HTTP client, the template engine or the
mail library that other kinds need. ``check`` and ``run`` thus pay only for the kinds the
config names. Keys (the kinds) are known without importing anything, so an unknown kind is
reported, with the known ones listed, at no cost.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Protocol, TypeVar


class _Plugin(Protocol):
    @property
    def type(self) -> str: ...


P = TypeVar("P", bound=_Plugin)


class PluginTable(Mapping[str, P]):
    """``kind → plugin``, each plugin imported from its ``"module:attribute"`` on first use."""

    def __init__(self, where: Mapping[str, str]) -> None:
        """``where``: for each kind, the ``"package.module:ATTRIBUTE"`` holding its plugin."""
        self._where = dict(where)
        self._loaded: dict[str, P] = {}

    def __getitem__(self, kind: str) -> P:
        """The plugin for ``kind``, importing its module the first time; ``KeyError`` if none."""
        plugin = self._loaded.get(kind)
        if plugin is None:
            module, _, attribute = self._where[kind].partition(":")
            plugin = getattr(importlib.import_module(module), attribute)
            if plugin.type != kind:  # a wiring mistake, not a config one
                raise RuntimeError(
                    f"{self._where[kind]} is the {plugin.type!r} plugin, not {kind!r}"
                )
            self._loaded[kind] = plugin
        return plugin

    def __contains__(self, kind: object) -> bool:
        """Whether ``kind`` is listed, without importing its module."""
        return kind in self._where

    def __iter__(self) -> Iterator[str]:
        """The kinds, in the table's order."""
        return iter(self._where)

    def __len__(self) -> int:
        """How many kinds are listed."""
        return len(self._where)

    def where(self, kind: str) -> str:
        """The ``"module:attribute"`` the plugin for ``kind`` is imported from."""
        return self._where[kind]
