"""``${VAR}`` substitution in config text, so secrets stay in the environment.

``${VAR}`` is replaced by the variable's value, ``${VAR:-default}`` falls back to
``default`` when the variable is unset or empty, and ``$$`` is a literal ``$``. A ``$``
followed by anything else is left alone. Substitution happens once: a value that itself
contains ``${…}`` is not expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvError(ValueError):
    """A ``${…}`` that cannot be substituted (unset, malformed)."""


def substitute(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every ``${VAR}``, ``${VAR:-default}`` and ``$$`` replaced.

    Raises ``EnvError`` naming the first variable that is unset (with no default), or the
    first malformed reference.
    """
    if "$" not in text:  # the common case: no work, no allocation
        return text
    out: list[str] = []
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:dollar])
        nxt = text[dollar + 1 : dollar + 2]
        if nxt == "$":
            out.append("$")
            pos = dollar + 2
        elif nxt == "{":
            close = text.find("}", dollar + 2)
            if close < 0:
                raise EnvError(f'"{text}" has an unterminated ${{…}} (write $$ for a literal $)')
            out.append(_lookup(text[dollar + 2 : close], env))
            pos = close + 1
        else:
            out.append("$")
            pos = dollar + 1


def _lookup(body: str, env: Mapping[str, str]) -> str:
    name, sep, default = body.partition(":-")
    if not _NAME.fullmatch(name):
        raise EnvError(
            f'"${{{body}}}": "{name}" is not an environment variable name '
            "(use letters, digits and _)"
        )
    value = env.get(name)
    if sep:
        return value if value else default
    if value is None:
        raise EnvError(f"environment variable {name} is not set")
    return value
