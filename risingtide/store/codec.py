"""JSON encoding of the domain values the store keeps: line state, events, response orders.

The codec is generic over dataclass fields and their type hints, so a field added to
``LineState`` or an event is stored without touching this module. Each class's encoder and
decoder are compiled once (on first use) into a list of per-field converters; fields whose
values are already JSON-able (``str``, ``int``, ``bool``, ``float``, ``Literal``) are copied
as they are, which keeps a whole tick's worth of line states cheap to encode.

How values are written::

    datetime    ISO-8601 text in UTC, "2026-01-05T09:00:00+00:00" (must be timezone-aware)
    timedelta   seconds as a float, 300.0 (exact to the microsecond below ~140 years)
    Enum        its value, "raised"
    tuple[X, ...] / frozenset[X]   a list (a frozenset's sorted, so equal sets encode alike)
    X | None    null or X
    dataclass   an object of its fields, recursively
    Event       the event's object, whose "kind" field says which event it is

Decoding is the exact inverse. A field missing from stored data takes its default (so older
rows still load after a field is added); unknown keys are ignored (so a rollback to an older
version still loads newer rows).
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from risingtide.domain.model import Event, LineState, ResponseOrder

__all__ = [
    "EVENT_TYPES",
    "CodecError",
    "decode",
    "decode_event",
    "decode_order",
    "decode_state",
    "decode_time",
    "encode",
    "encode_event",
    "encode_order",
    "encode_state",
    "encode_time",
    "event_data",
    "event_tier",
]

T = TypeVar("T")

_Convert = Callable[[Any], Any]


class CodecError(ValueError):
    """A value cannot be encoded, or stored data cannot be decoded into its type."""


# --------------------------------------------------------------------------- scalars


def encode_time(value: datetime) -> str:
    """An aware datetime as ISO-8601 text in UTC, as the codec writes every time."""
    if value.utcoffset() is None:
        raise CodecError(f"naive datetime {value!r}: the store keeps only aware UTC times")
    return value.astimezone(UTC).isoformat()


def decode_time(value: str) -> datetime:
    """The inverse of ``encode_time``: an aware UTC datetime."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise CodecError(f"stored time {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _encode_timedelta(value: timedelta) -> float:
    return value.total_seconds()


def _decode_timedelta(value: float) -> timedelta:
    return timedelta(seconds=value)


# --------------------------------------------------------------------------- compiling


def _compile(hint: Any) -> tuple[_Convert | None, _Convert | None]:
    """The (encoder, decoder) for a type hint; None means "the value is already JSON-able"."""
    if hint in (str, int, bool, float, type(None), Any):
        return None, None
    if hint is datetime:
        return encode_time, decode_time
    if hint is timedelta:
        return _encode_timedelta, _decode_timedelta
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_cls = hint
        return (lambda v: v.value), (lambda v: enum_cls(v))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        codec = _dataclass_codec(hint)
        return codec.encode, codec.decode

    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return None, None
    if origin is Union or origin is types.UnionType:
        return _compile_union(hint, args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _compile_sequence(args[0], tuple)
        return _compile_fixed_tuple(args)
    if origin is frozenset:
        return _compile_set(args[0])
    raise CodecError(f"the store's codec cannot handle the type {hint!r}")


def _compile_required(hint: Any) -> tuple[_Convert, _Convert]:
    """Like ``_compile``, with the identity in place of "no conversion"."""
    enc, dec = _compile(hint)
    return enc or _identity, dec or _identity


def _identity(value: Any) -> Any:
    return value


def _compile_union(hint: Any, args: tuple[Any, ...]) -> tuple[_Convert | None, _Convert | None]:
    members = [a for a in args if a is not type(None)]
    if len(members) == 1:
        enc, dec = _compile(members[0])
        if enc is None and dec is None:
            return None, None
        return _optional(enc), _optional(dec)
    # A union of dataclasses told apart by their ``kind`` field (the Event union).
    if len(members) != len(args):
        raise CodecError(f"the store's codec cannot handle the optional union {hint!r}")
    by_kind = _kinds(members)
    by_type = {cls: _dataclass_codec(cls) for cls in by_kind.values()}
    return (lambda v: by_type[type(v)].encode(v)), (lambda v: _decode_tagged(by_kind, v))


def _kinds(members: list[Any]) -> dict[str, type[Any]]:
    by_kind: dict[str, type[Any]] = {}
    for cls in members:
        fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
        kind_field = next((f for f in fields if f.name == "kind"), None)
        if kind_field is None or not isinstance(kind_field.default, str):
            raise CodecError(f"{cls!r} in a union needs a ``kind`` field with a default")
        by_kind[kind_field.default] = cls
    return by_kind


def _decode_tagged(by_kind: Mapping[str, type[Any]], value: Mapping[str, Any]) -> Any:
    kind = value.get("kind")
    cls = by_kind.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CodecError(f"unknown kind {kind!r}")
    return _dataclass_codec(cls).decode(value)


def _optional(convert: _Convert | None) -> _Convert:
    inner = convert or _identity
    return lambda v: None if v is None else inner(v)


def _compile_sequence(
    item: Any, make: Callable[[Any], Any]
) -> tuple[_Convert | None, _Convert | None]:
    enc, dec = _compile(item)
    if enc is None:
        encode: _Convert = list
    else:
        item_enc = enc
        encode = lambda v: [item_enc(x) for x in v]  # noqa: E731
    if dec is None:
        decode: _Convert = make
    else:
        item_dec = dec
        decode = lambda v: make(item_dec(x) for x in v)  # noqa: E731
    return encode, decode


def _compile_fixed_tuple(items: tuple[Any, ...]) -> tuple[_Convert, _Convert]:
    pairs = [_compile_required(item) for item in items]
    encs = [enc for enc, _ in pairs]
    decs = [dec for _, dec in pairs]

    def encode(value: Any) -> list[Any]:
        return [enc(x) for enc, x in zip(encs, value, strict=True)]

    def decode(value: Any) -> tuple[Any, ...]:
        return tuple(dec(x) for dec, x in zip(decs, value, strict=True))

    return encode, decode


def _compile_set(item: Any) -> tuple[_Convert, _Convert]:
    item_enc, item_dec = _compile_required(item)

    def encode(value: Any) -> list[Any]:
        # Sorted, so equal sets always encode to the same text.
        items = [item_enc(x) for x in value]
        try:
            return sorted(items)
        except TypeError:  # items that do not compare (e.g. objects): any stable order
            return sorted(items, key=repr)

    def decode(value: Any) -> frozenset[Any]:
        return frozenset(item_dec(x) for x in value)

    return encode, decode


@dataclasses.dataclass(frozen=True, slots=True)
class _DataclassCodec:
    """The compiled encoder and decoder of one dataclass."""

    cls: type[Any]
    # (field name, encoder or None) for every field, in declaration order.
    encoders: tuple[tuple[str, _Convert | None], ...]
    # (field name, decoder or None, has a default) for the fields __init__ takes.
    decoders: tuple[tuple[str, _Convert | None, bool], ...]

    def encode(self, value: Any) -> dict[str, Any]:
        if type(value) is not self.cls:
            raise CodecError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        out: dict[str, Any] = {}
        for name, enc in self.encoders:
            v = getattr(value, name)
            out[name] = v if enc is None else enc(v)
        return out

    def decode(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise CodecError(f"expected an object for {self.cls.__name__}, got {data!r}")
        kwargs: dict[str, Any] = {}
        for name, dec, has_default in self.decoders:
            if name not in data:
                if has_default:
                    continue
                raise CodecError(f"{self.cls.__name__} data has no {name!r}")
            v = data[name]
            try:
                kwargs[name] = v if dec is None else dec(v)
            except CodecError:
                raise
            except (TypeError, ValueError, KeyError) as exc:
                raise CodecError(f"{self.cls.__name__}.{name}: cannot decode {v!r}: {exc}") from exc
        return self.cls(**kwargs)


_CODECS: dict[type[Any], _DataclassCodec] = {}


def _dataclass_codec(cls: type[Any]) -> _DataclassCodec:
    """The compiled codec of a dataclass (compiled on first use, then cached)."""
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = _compile_dataclass(cls)
    return codec


def _compile_dataclass(cls: type[Any]) -> _DataclassCodec:
    hints = get_type_hints(cls)
    encoders: list[tuple[str, _Convert | None]] = []
    decoders: list[tuple[str, _Convert | None, bool]] = []
    for f in dataclasses.fields(cls):
        enc, dec = _compile(hints[f.name])
        encoders.append((f.name, enc))
        if f.init:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            decoders.append((f.name, dec, has_default))
    return _DataclassCodec(cls, tuple(encoders), tuple(decoders))


# --------------------------------------------------------------------------- public API

#: Every event class of the ``Event`` union, by its ``kind``.
EVENT_TYPES: Mapping[str, type[Event]] = types.MappingProxyType(_kinds(list(get_args(Event))))

_event_encode, _event_decode = _compile_required(Event)

#: Fields of an event kept in the history table's own columns rather than in ``data``.
_COLUMN_FIELDS = frozenset(("line", "at", "kind"))


def encode(value: Any) -> dict[str, Any]:
    """Encode any dataclass instance the codec understands to a JSON-able dict."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise CodecError(f"expected a dataclass instance, got {value!r}")
    return _dataclass_codec(type(value)).encode(value)


def decode(cls: type[T], data: Mapping[str, Any]) -> T:
    """Decode ``data`` (as ``encode`` wrote it) into an instance of the dataclass ``cls``."""
    value: T = _dataclass_codec(cls).decode(data)
    return value


def encode_state(state: LineState) -> dict[str, Any]:
    """A line's state as a JSON-able dict."""
    return _dataclass_codec(LineState).encode(state)


def decode_state(data: Mapping[str, Any]) -> LineState:
    """The inverse of ``encode_state``."""
    state: LineState = _dataclass_codec(LineState).decode(data)
    return state


def encode_event(event: Event) -> dict[str, Any]:
    """An event as a JSON-able dict, including its ``kind``."""
    encoded: dict[str, Any] = _event_encode(event)
    return encoded


def decode_event(data: Mapping[str, Any]) -> Event:
    """The inverse of ``encode_event``: the event class is chosen by ``data["kind"]``."""
    event: Event = _event_decode(data)
    return event


def encode_order(order: ResponseOrder) -> dict[str, Any]:
    """A response order as a JSON-able dict."""
    return _dataclass_codec(ResponseOrder).encode(order)


def decode_order(data: Mapping[str, Any]) -> ResponseOrder:
    """The inverse of ``encode_order``."""
    order: ResponseOrder = _dataclass_codec(ResponseOrder).decode(data)
    return order


def event_data(event: Event) -> dict[str, Any]:
    """The event's history ``data``: its encoded fields less ``line``, ``at`` and ``kind``.

    ``decode_event({**data, "line": line, "at": at, "kind": kind})`` gives the event back.
    """
    return {k: v for k, v in encode_event(event).items() if k not in _COLUMN_FIELDS}


def event_tier(event: Event) -> int | None:
    """The tier an event is about, for the history's ``tier`` column.

    A tier change is filed under the tier it moved *to*, a declaration under the declared
    level; line-wide events (opened, closed) have no tier.
    """
    for name in ("to_tier", "tier", "level"):
        value = getattr(event, name, None)
        if isinstance(value, int):
            return value
    return None
