"""Any mutation of the demo config gives a located error (``FILE:LINE:COL: message``) or a
valid config, never a traceback: hypothesis deletes keys, changes a scalar's type,
duplicates keys, breaks indentation and drops in random bytes."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risingtide.config import ConfigErrors, load_config
from risingtide.config.model import Config

DEMO = Path(__file__).parents[2] / "config" / "rising-tide.yaml"
LINES = DEMO.read_text(encoding="utf-8").splitlines(keepends=True)
#: Lines that hold a ``key:`` (mapping entries), by index.
KEYED = [i for i, ln in enumerate(LINES) if re.match(r"^\s*(- )?[\w.-]+:", ln)]
#: Lines with ``key: scalar`` on one line.
SCALARS = [i for i, ln in enumerate(LINES) if re.match(r"^\s*(- )?[\w.-]+: +[^\s{\[#|>]", ln)]
OTHER_VALUES = ["[1, 2]", "{a: 1}", "true", "null", "'text'", "12", "-3.5", "2026-01-05", "~"]
EXAMPLES = 200


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The demo config with one to three mutations."""
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "retype", "duplicate", "indent", "bytes"]))
        if kind == "delete":
            del lines[draw(st.sampled_from(KEYED)) % len(lines)]
        elif kind == "retype":
            i = draw(st.sampled_from(SCALARS)) % len(lines)
            key, _, _ = lines[i].partition(": ")
            lines[i] = f"{key}: {draw(st.sampled_from(OTHER_VALUES))}\n"
        elif kind == "duplicate":
            i = draw(st.sampled_from(KEYED)) % len(lines)
            lines.insert(i, lines[i])
        elif kind == "indent":
            i = draw(st.integers(0, len(lines) - 1))
            shift = draw(st.sampled_from([" ", "   ", "\t", ""]))
            lines[i] = shift + lines[i].lstrip(" ") if shift else lines[i][1:]
        else:
            text = "".join(lines).encode("utf-8")
            at = draw(st.integers(0, len(text)))
            junk = draw(st.binary(min_size=1, max_size=8))
            return text[:at] + junk + text[at:]
    return "".join(lines).encode("utf-8")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(mutated())
def test_a_mutated_demo_config_is_valid_or_a_located_error(tmp_path: Path, text: bytes) -> None:
    """Loading gives a Config, or ConfigErrors every one of which starts FILE:LINE:COL."""
    path = tmp_path / "rising-tide.yaml"
    path.write_bytes(text)
    located = re.compile(rf"^{re.escape(str(path))}:\d+:\d+: \S")
    try:
        config = load_config(path)
    except ConfigErrors as exc:
        messages = [str(e) for e in exc.errors]
        assert messages, "ConfigErrors with no error in it"
        unlocated = [m for m in messages if not located.match(m)]
        assert not unlocated, f"errors without FILE:LINE:COL: {unlocated}"
    else:
        assert isinstance(config, Config)
