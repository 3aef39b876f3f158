"""Counting a config's values on its composed nodes agrees with the parser's events."""

from __future__ import annotations

import itertools

import pytest
import yaml

from risingtide.config.document import MAX_VALUE_DENSITY, _plain_size

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_VALUES = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def _events(text: str) -> int:
    return sum(isinstance(e, _VALUES) for e in yaml.parse(text, Loader=_LOADER))


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [1, 2, {c: d}]\n",
        "lines:\n  x: {name: X, source: {queue: Q1}}\n  y: {name: Y}\n",
        "base: &b {a: 1}\nother:\n  <<: {c: 2}\n  d: [&s 1, 2]\n",  # anchors, no aliases
        "? [a, b]\n: c\n? ? ?\n",  # complex and empty keys
        "- - - x\n- \n-\n",
    ],
)
def test_the_node_count_of_a_document_without_aliases_is_its_event_count(text: str) -> None:
    """Without aliases each node is one value event, so the cheap count is the exact one."""
    assert _plain_size(yaml.compose(text, Loader=_LOADER)) == _events(text)


def test_a_document_with_an_alias_is_left_to_the_streaming_count() -> None:
    """A node reached twice (an alias) gives None: the streaming pass counts expansions."""
    assert _plain_size(yaml.compose("a: &x [1, 2]\nb: *x\n", Loader=_LOADER)) is None


def test_no_short_text_makes_more_values_than_the_density_allows() -> None:
    """Over every text of up to four YAML punctuation characters, values stay within
    ``MAX_VALUE_DENSITY`` a character plus the allowance (the densest are ``? ?`` forms)."""
    alphabet = "[]{},:?- \na"
    densest = 0.0
    for size in range(1, 5):
        for chars in itertools.product(alphabet, repeat=size):
            text = "".join(chars)
            try:
                values = _events(text)
            except yaml.YAMLError:
                continue
            assert values <= len(text) * MAX_VALUE_DENSITY + 8, text
            densest = max(densest, (values - 2) / len(text))
    assert densest <= 1.0
