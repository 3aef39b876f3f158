"""Collect errors and warnings with their positions, and translate pydantic's errors.

``Report`` is the loader's notebook: every check calls ``error`` or ``warn`` with the path
of the offending value, and the report looks up where that value was written. ``validate``
runs a pydantic model over one block and turns each of pydantic's errors into a plain
message at the right place: an unknown key points at the key itself (with a "did you mean"
when one is close), a missing key at the key of the mapping that lacks it.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from risingtide.config.document import Document, Path, Pos, format_path
from risingtide.config.errors import ConfigError, show
from risingtide.config.schema import CONFIG_ERROR

M = TypeVar("M", bound=BaseModel)


class Report:
    """Errors and warnings found in one document, each placed at a line and column."""

    def __init__(self, doc: Document) -> None:
        """Report against ``doc``'s positions."""
        self.doc = doc
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []

    # ------------------------------------------------------------------ positions

    def pos(self, path: Path, *, key: bool = False) -> Pos:
        """Where ``path`` was written: its key (``key=True``) or value, else its nearest parent."""
        if key and path in self.doc.keys:
            return self.doc.keys[path]
        probe = path
        while probe:
            if probe in self.doc.values:
                return self.doc.values[probe]
            probe = probe[:-1]
        return self.doc.values.get((), (1, 1))

    def _poisoned(self, path: Path) -> bool:
        return any(path[:i] in self.doc.poisoned for i in range(len(path) + 1))

    def _make(self, path: Path, message: str, pos: Pos | None, warning: bool) -> ConfigError:
        line, col = pos if pos is not None else self.pos(path)
        prefix = format_path(path)
        text = f"{prefix}: {message}" if prefix else message
        return ConfigError(self.doc.file, line, col, text, warning=warning)

    # ------------------------------------------------------------------ reporting

    def error(self, path: Path, message: str, *, pos: Pos | None = None) -> None:
        """Report ``path: message`` at ``pos`` (default: where ``path``'s value was written).

        Nothing is reported at or under a value that already failed to read (an unset
        variable): that error was reported once, and anything more would be noise.
        """
        if not self._poisoned(path):
            self.errors.append(self._make(path, message, pos, warning=False))

    def warn(self, path: Path, message: str, *, pos: Pos | None = None) -> None:
        """Report a warning: the config still loads."""
        self.warnings.append(self._make(path, message, pos, warning=True))

    def unknown_key(self, path: Path, key: str, known: Sequence[str], what: str = "key") -> None:
        """``path: unknown key "x" (did you mean "y"?)`` at the key itself."""
        self.error(
            path,
            f'unknown {what} "{key}"{suggest(key, known)}',
            pos=self.pos((*path, key), key=True),
        )

    def missing_key(self, path: Path, key: str, hint: str = "") -> None:
        """``path: missing required key "x"`` at the key of the mapping that lacks it."""
        self.error(path, f'missing required key "{key}"{hint}', pos=self.pos(path, key=True))

    # ------------------------------------------------------------------ validation

    def validate(
        self,
        model: type[M],
        data: Any,
        path: Path,
        *,
        origins: Mapping[str, Path] | None = None,
        also_known: Sequence[str] = (),
    ) -> M | None:
        """Validate one block with ``model``; report every error and return None on failure.

        ``origins`` maps a top-level key to the path it really came from (keys merged in
        from ``defaults:``); ``also_known`` lists keys the loader took out of the block
        before validation, so "did you mean" can suggest them too.
        """
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self._translate(model, data, path, err, origins or {}, also_known)
            return None

    def _translate(
        self,
        model: type[BaseModel],
        data: Any,
        path: Path,
        err: ErrorDetails,
        origins: Mapping[str, Path],
        also_known: Sequence[str],
    ) -> None:
        kind = err["type"]
        loc = tuple(err["loc"])
        if kind in ("extra_forbidden", "missing") and loc:
            parent_loc = _clean(data, loc[:-1])
            key = str(loc[-1])
            # A key merged in from elsewhere is reported where it was written.
            first = str(parent_loc[0]) if parent_loc else key
            base = origins.get(first, path) if parent_loc or kind == "extra_forbidden" else path
            parent = (*base, *parent_loc)
            if kind == "missing":
                self.missing_key(parent, key)
            else:
                known = list(_fields_at(model, parent_loc))
                if not parent_loc:
                    known += also_known
                self.unknown_key(parent, key, known)
            return
        if kind == CONFIG_ERROR:  # a model-wide check may name the key at fault
            loc = (*loc, *(err.get("ctx") or {}).get("at", ()))
        clean = _clean(data, loc)
        base = origins.get(str(clean[0]), path) if clean else path
        self.error((*base, *clean), describe(err))


def suggest(word: str, known: Sequence[str]) -> str:
    """`` (did you mean "x"?)`` for a close match, else `` (known: a, b, c)``, else ``""``."""
    choices = sorted(set(known))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f' (did you mean "{close[0]}"?)'
    if choices:
        return f" (known: {', '.join(choices)})"
    return ""


def describe(err: ErrorDetails) -> str:
    """A pydantic error as a sentence an analyst can act on."""
    kind = err["type"]
    value = err.get("input")
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    got = f", got {show(value)}"
    if kind == CONFIG_ERROR:
        return str(err["msg"])
    if kind == "string_type":
        return "expected text" + got
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "expected a whole number" + got
    if kind in ("float_type", "float_parsing", "finite_number"):
        return "expected a number" + got
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false" + got
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return "expected a mapping (key: value)" + got
    if kind in ("list_type", "tuple_type", "set_type"):
        hint = f" (write [{value}])" if isinstance(value, str) else ""
        return "expected a list" + got + hint
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"{show(value)} is not one of {expected}"
    if kind.startswith(("date_", "datetime_")):
        return f"{show(value)} is not a date (use YYYY-MM-DD, e.g. 2026-12-24)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return "must not be empty" if count == 1 else f"needs at least {count} items"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}" + got
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}" + got
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}" + got
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}" + got
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    message = str(err["msg"])
    return message[:1].lower() + message[1:]


def _clean(data: Any, loc: tuple[int | str, ...]) -> Path:
    """The parts of a pydantic ``loc`` that lead through ``data`` (union tags dropped)."""
    out: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            out.append(part)
            current = current[part]
    return tuple(out)


def _fields_at(model: type[BaseModel], loc: Path) -> list[str]:
    """The keys the model accepts at ``loc`` (best effort, for "did you mean")."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation, part)
        if annotation is None:
            return []
    target = _model_of(annotation)
    if target is None:
        return []
    return [f.alias or name for name, f in target.model_fields.items()]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in _args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _args(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return (typing.get_args(annotation)[0],)
    if origin in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return ()


def _unwrap(annotation: Any, part: str | int) -> Any:
    """The annotation one step down ``part`` from ``annotation``."""
    model = _model_of(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(part, str) and model is not None:
        for name, f in model.model_fields.items():
            if part in (f.alias, name):
                return f.annotation
        return None
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(annotation)[1]
    for arg in _args(annotation):
        found = _unwrap(arg, part)
        if found is not None:
            return found
    return None
