"""The plugin tables import a plugin's module only when its kind is looked up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from risingtide.plugin_table import PluginTable
from risingtide.responders import RESPONDER_TYPES
from risingtide.sources import SOURCE_TYPES

_PROBE = """
import json, sys
from risingtide.responders import RESPONDER_TYPES
from risingtide.sources import SOURCE_TYPES
before = sorted(m for m in sys.modules if m.startswith("risingtide."))
listed = ("email" in RESPONDER_TYPES, "http_json" in SOURCE_TYPES, "nope" in SOURCE_TYPES)
kinds = (sorted(RESPONDER_TYPES), sorted(SOURCE_TYPES))
after_listing = sorted(m for m in sys.modules if m.startswith("risingtide."))
plugin = RESPONDER_TYPES["email"]
print(json.dumps({"before": before, "listed": listed, "after_listing": after_listing,
                  "kind": plugin.type, "email": "risingtide.responders.email" in sys.modules,
                  "slack": "risingtide.responders.slack" in sys.modules}))
"""


def test_listing_and_membership_import_no_plugin_and_a_lookup_imports_one() -> None:
    """Kinds are listed without importing; looking one up imports its module and no other."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["listed"] == [True, True, False]
    assert result["after_listing"] == result["before"]
    assert not any(
        m.startswith(("risingtide.sources.", "risingtide.responders.")) for m in result["before"]
    )
    assert result["kind"] == "email"
    assert result["email"] is True
    assert result["slack"] is False


@pytest.mark.parametrize("table", [SOURCE_TYPES, RESPONDER_TYPES], ids=["sources", "responders"])
def test_every_listed_kind_is_the_plugin_of_that_kind(table: PluginTable[object]) -> None:
    """Each entry names a module attribute whose plugin says it is that kind."""
    for kind in table:
        assert table[kind].type == kind  # type: ignore[attr-defined]


def test_an_unknown_kind_is_a_key_error_and_get_gives_none() -> None:
    """An unlisted kind raises KeyError (so ``get`` answers None), as a dict would."""
    with pytest.raises(KeyError):
        SOURCE_TYPES["nope"]
    assert SOURCE_TYPES.get("nope") is None


def test_a_misnamed_entry_is_refused() -> None:
    """A table entry pointing at another kind's plugin is a wiring mistake, named."""
    table: PluginTable[object] = PluginTable({"slack": "risingtide.responders.teams:PLUGIN"})
    with pytest.raises(RuntimeError, match="'teams' plugin, not 'slack'"):
        table["slack"]
