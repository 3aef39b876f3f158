"""The store's codec: domain values to JSON and back, exactly."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risingtide.domain.model import (
    Acknowledgement,
    Action,
    Cause,
    Event,
    LineOpened,
    LineState,
    ResponseOrder,
    Silence,
    StatsFresh,
    TierChanged,
)
from risingtide.store import codec
from risingtide.store.codec import CodecError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# Times as the domain keeps them: aware, in UTC, to the microsecond.
aware_times = st.datetimes(timezones=st.just(UTC))
# Durations the daemon can meet (timedeltas far beyond a century lose microseconds as floats).
durations = st.timedeltas(min_value=timedelta(days=-36500), max_value=timedelta(days=36500))


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a type hint, built from the type hints alone, so new fields are covered."""
    if hint is datetime:
        return aware_times
    if hint is timedelta:
        return durations
    if hint is str:
        return st.text(max_size=12)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = get_type_hints(hint)
        fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(hint) if f.init}
        return st.builds(hint, **fields)
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is Union or origin is types.UnionType:
        return st.one_of([st.none() if a is type(None) else strategy_for(a) for a in args])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=5).map(tuple)
    if origin is frozenset:
        return st.frozensets(strategy_for(args[0]), max_size=5)
    raise TypeError(f"no strategy for {hint!r}")


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    """What the store reads back: the encoded value after a trip through JSON text."""
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


@given(strategy_for(LineState))
def test_line_state_round_trips(state: LineState) -> None:
    """Any line state encodes to JSON and decodes to an equal state."""
    assert codec.decode_state(through_json(codec.encode_state(state))) == state


@given(strategy_for(ResponseOrder))
def test_response_order_round_trips(order: ResponseOrder) -> None:
    """Any response order encodes to JSON and decodes to an equal order."""
    assert codec.decode_order(through_json(codec.encode_order(order))) == order


@pytest.mark.parametrize("kind", sorted(codec.EVENT_TYPES))
@given(data=st.data())
def test_every_event_type_round_trips(kind: str, data: st.DataObject) -> None:
    """Every kind of event encodes to JSON and decodes to an equal event of the same class."""
    event = data.draw(strategy_for(codec.EVENT_TYPES[kind]))
    back = codec.decode_event(through_json(codec.encode_event(event)))
    assert back == event
    assert type(back) is type(event)


@given(strategy_for(Event))
def test_history_data_rebuilds_the_event(event: Event) -> None:
    """An event's history data plus its line, time and kind give the event back."""
    data = through_json(codec.event_data(event))
    assert not {"line", "at", "kind"} & data.keys()
    rebuilt = {**data, "line": event.line, "at": codec.encode_time(event.at), "kind": event.kind}
    assert codec.decode_event(rebuilt) == event


def test_event_types_cover_the_event_union() -> None:
    """EVENT_TYPES lists every class of the Event union under its kind."""
    assert set(codec.EVENT_TYPES.values()) == set(get_args(Event))
    for kind, cls in codec.EVENT_TYPES.items():
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        assert defaults["kind"] == kind


def test_line_state_encoding_is_pinned() -> None:
    """The stored form of a line state stays as it is (rows on disk depend on it)."""
    state = LineState(
        line="revenues",
        tier=2,
        entered_at=T0,
        episode=3,
        when_since=(T0, None),
        ack=Acknowledgement(tier=2, by="Priya", at=T0 + timedelta(minutes=1), note="on it"),
        silence=Silence(until=T0 + timedelta(hours=1), by="Sam", reason="IVR work", at=T0),
        live=frozenset({"ivr_deflection", "callback_on"}),
    )
    assert codec.encode_state(state) == {
        "line": "revenues",
        "tier": 2,
        "entered_at": "2026-01-05T09:00:00+00:00",
        "episode": 3,
        "when_since": ["2026-01-05T09:00:00+00:00", None],
        "clear_since": None,
        "last_stats_at": None,
        "stale": False,
        "stale_since": None,
        "stale_alerted": False,
        "open": True,
        "ack": {
            "tier": 2,
            "by": "Priya",
            "at": "2026-01-05T09:01:00+00:00",
            "note": "on it",
            "expires": None,
        },
        "silence": {
            "until": "2026-01-05T10:00:00+00:00",
            "by": "Sam",
            "reason": "IVR work",
            "at": "2026-01-05T09:00:00+00:00",
            "undo": False,
        },
        "declaration": None,
        "reminders_sent": 0,
        "last_reminder_at": None,
        "escalation_steps_done": 0,
        "live": ["callback_on", "ivr_deflection"],
        "calendar_done": [],
    }


def test_event_and_order_encodings_are_pinned() -> None:
    """Events carry their kind, enums their value, durations their seconds."""
    changed = TierChanged("revenues", T0, 0, 2, Cause.RAISED, "avg_wait 412s > 300s", 1)
    assert codec.encode_event(changed) == {
        "line": "revenues",
        "at": "2026-01-05T09:00:00+00:00",
        "from_tier": 0,
        "to_tier": 2,
        "cause": "raised",
        "reason": "avg_wait 412s > 300s",
        "episode": 1,
        "kind": "tier_changed",
    }
    fresh = StatsFresh("revenues", T0, timedelta(minutes=12, milliseconds=500), 2)
    assert codec.event_data(fresh) == {"stale_for": 720.5, "tier": 2}
    order = ResponseOrder("k1", "revenues", "ivr", Action.UNDO, 2, 1, "tier_changed", T0, "down")
    assert codec.encode_order(order)["action"] == "undo"


def test_event_tier_is_the_tier_the_event_is_about() -> None:
    """A tier change files under its new tier; line-wide events have no tier."""
    assert codec.event_tier(TierChanged("a", T0, 3, 2, Cause.LOWERED, "", 1)) == 2
    assert codec.event_tier(StatsFresh("a", T0, timedelta(0), 1)) == 1
    assert codec.event_tier(LineOpened("a", T0)) is None


def test_times_are_normalised_to_utc() -> None:
    """A time with another offset is stored as the same instant in UTC."""
    bst = timezone(timedelta(hours=1))
    order = ResponseOrder("k", "a", "r", Action.APPLY, 1, 1, "t", T0.astimezone(bst), "")
    encoded = codec.encode_order(order)
    assert encoded["at"] == "2026-01-05T09:00:00+00:00"
    assert codec.decode_order(encoded).at.tzinfo == UTC


def test_naive_times_are_refused() -> None:
    """A naive datetime cannot be stored: its instant is unknown."""
    with pytest.raises(CodecError, match="naive datetime"):
        codec.encode_event(LineOpened("a", datetime(2026, 1, 5, 9, 0)))


def test_missing_fields_take_defaults_and_unknown_keys_are_ignored() -> None:
    """Rows written before a field was added, or by a newer version, still load."""
    state = codec.decode_state({"line": "a", "tier": 1, "from_the_future": True})
    assert state == LineState(line="a", tier=1)


def test_bad_data_raises_codec_error() -> None:
    """Unknown kinds, missing required fields and bad values fail with CodecError."""
    with pytest.raises(CodecError, match="unknown kind 'flood'"):
        codec.decode_event({"kind": "flood", "line": "a"})
    with pytest.raises(CodecError, match="has no 'at'"):
        codec.decode_event({"kind": "line_opened", "line": "a"})
    with pytest.raises(CodecError, match="cause"):
        codec.decode_event(
            {**codec.encode_event(TierChanged("a", T0, 0, 1, Cause.RAISED, "", 1)), "cause": "?"}
        )


def test_generic_encode_decode() -> None:
    """encode/decode work for any dataclass the codec understands."""
    ack = Acknowledgement(tier=1, by="Jo", at=T0)
    assert codec.decode(Acknowledgement, codec.encode(ack)) == ack
    with pytest.raises(CodecError):
        codec.encode("not a dataclass")
