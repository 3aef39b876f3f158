"""``${VAR}`` substitution in config text, so secrets stay in the environment.

``${VAR}`` is replaced by the variable's value, ``${VAR:-default}`` falls back to
``default`` when the variable is unset or empty, and ``$$`` is a literal ``$``. A ``$``
followed by anything else is left alone. Substitution happens once: a value that itself
contains ``${…}`` is not expanded again.

``${file:PATH}`` is replaced by the contents of the file at ``PATH`` (absolute, or
relative to the directory the daemon runs in, like ``state_file``), less one trailing line
break: the shape of Docker and Kubernetes secrets, mounted as files. Files are read on
every load, so a reload (SIGHUP) picks up a rotated secret without a restart. An error
names the file, never its contents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvError(ValueError):
    """A ``${…}`` that cannot be substituted (unset, malformed)."""


def substitute(text: str, env: Mapping[str, str], found: dict[str, str] | None = None) -> str:
    """``text`` with every ``${VAR}``, ``${VAR:-default}`` and ``$$`` replaced.

    Each value taken from the environment or a file is added to ``found`` (value to
    reference, e.g. ``{"s3cret": "${NOTIFY_KEY}"}``), so messages can hide it (``redact``).
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
            body = text[dollar + 2 : close]
            value = _lookup(body, env)
            if found is not None and value and not _is_default(body, env):
                found[value] = f"${{{body}}}"
            out.append(value)
            pos = close + 1
        else:
            out.append("$")
            pos = dollar + 1


#: A secret file larger than this is a mistake (a directory of logs, a binary).
MAX_SECRET_FILE = 64 * 1024


def read_secret_file(path: str) -> str:
    """The contents of the secret file at ``path``, less one trailing line break."""
    where = f'"${{file:{path}}}"'
    if not path.strip():
        raise EnvError(f"{where}: give the path of a file, e.g. ${{file:/run/secrets/notify_key}}")
    try:
        data = Path(path).read_bytes()[: MAX_SECRET_FILE + 1]
    except FileNotFoundError:
        raise EnvError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise EnvError(f"{where}: is a directory, not a file") from None
    except PermissionError:
        raise EnvError(f"{where}: permission denied (the daemon's user must read it)") from None
    except OSError as exc:
        raise EnvError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_SECRET_FILE:
        raise EnvError(f"{where}: larger than {MAX_SECRET_FILE // 1024} KiB; not a secret file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvError(f"{where}: not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if not text:
        raise EnvError(f"{where}: the file is empty")
    return text


#: Values shorter than this are not hidden in messages: a "1" or "on" is no secret, and
#: hiding it would garble every message that has that text in it.
MIN_REDACTED = 4


def redact(message: str, found: Mapping[str, str]) -> str:
    """``message`` with every substituted value in ``found`` replaced by its reference.

    A value may be echoed as it is, or quoted the way ``errors.show`` quotes text; both
    forms are hidden.
    """
    for value in sorted(found, key=len, reverse=True):
        if len(value) < MIN_REDACTED:
            continue
        reference = found[value]
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        for form in {value, quoted}:
            message = message.replace(form, reference)
    return message


def _is_default(body: str, env: Mapping[str, str]) -> bool:
    """True when ``${body}`` took its ``:-default``, written in the file (no secret)."""
    name, sep, _ = body.partition(":-")
    return bool(sep) and not env.get(name) and not body.startswith("file:")


def _lookup(body: str, env: Mapping[str, str]) -> str:
    if body.startswith("file:"):
        return read_secret_file(body.removeprefix("file:"))
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
