"""Reading YAML with positions: values, keys, duplicates, aliases and substitution."""

from __future__ import annotations

from datetime import date

from risingtide.config.document import format_path, parse_document


def test_positions_of_values_and_keys_are_one_based() -> None:
    """Every value and key is recorded at its 1-based line and column."""
    text = "lines:\n  revenues:\n    source: { use: demo }\n    tags: [a, b]\n"
    doc, errors = parse_document(text, "f.yaml", {})
    assert errors == []
    assert doc is not None
    assert doc.data == {"lines": {"revenues": {"source": {"use": "demo"}, "tags": ["a", "b"]}}}
    assert doc.keys[("lines", "revenues")] == (2, 3)
    assert doc.values[("lines", "revenues", "source")] == (3, 13)
    assert doc.values[("lines", "revenues", "source", "use")] == (3, 20)
    assert doc.values[("lines", "revenues", "tags", 1)] == (4, 15)


def test_scalars_keep_their_yaml_types_and_keys_stay_text() -> None:
    """Values are typed as YAML says (ints, dates); keys are always the text written."""
    text = "no: 3\non: 2026-12-24\n1: 1.5\nbad: 2026-13-01\n"
    doc, errors = parse_document(text, "f.yaml", {})
    assert errors == []
    assert doc is not None
    assert doc.data == {"no": 3, "on": date(2026, 12, 24), "1": 1.5, "bad": "2026-13-01"}


def test_duplicate_keys_are_errors_at_the_second_key() -> None:
    """A key repeated in one mapping is an error pointing at the repeat."""
    doc, errors = parse_document("a:\n  x: 1\n  y: 2\n  x: 3\n", "f.yaml", {})
    assert doc is not None
    assert [str(e) for e in errors] == ['f.yaml:4:3: a: duplicate key "x" (first at line 2)']
    assert doc.data == {"a": {"x": 1, "y": 2}}


def test_syntax_errors_carry_pyyaml_positions() -> None:
    """A YAML syntax error is reported at the position PyYAML gives, and no document results."""
    doc, errors = parse_document("a: [1, 2\nb: 3\n", "f.yaml", {})
    assert doc is None
    assert len(errors) == 1
    assert errors[0].line == 2
    assert errors[0].message.startswith("YAML syntax error: ")


def test_environment_is_substituted_and_failures_poison_the_value() -> None:
    """${VAR} is replaced in scalars; an unset one is reported and its path marked poisoned."""
    doc, errors = parse_document("a: ${X}\nb: '${Y}'\n", "f.yaml", {"X": "1"})
    assert doc is not None
    assert doc.data["a"] == "1"
    assert [str(e) for e in errors] == ["f.yaml:2:4: b: environment variable Y is not set"]
    assert ("b",) in doc.poisoned


def test_recursive_aliases_are_errors_not_hangs() -> None:
    """An alias to the node that contains it is reported instead of recursing forever."""
    doc, errors = parse_document("a: &x [1, *x]\n", "f.yaml", {})
    assert doc is not None
    assert [e.message for e in errors] == ["a[1]: an alias refers to the node that contains it"]


def test_alias_bombs_are_stopped() -> None:
    """A few lines of nested aliases that would expand to billions of values are refused."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    doc, errors = parse_document("\n".join(lines) + "\n", "f.yaml", {})
    assert doc is None
    assert "aliases expand the file to more than" in errors[0].message


def test_unknown_tags_are_errors() -> None:
    """A custom tag such as !env is not silently read as text."""
    _, errors = parse_document("a: !env HOME\n", "f.yaml", {})
    assert [e.message for e in errors] == ["a: unknown YAML tag !env"]


def test_paths_format_like_the_yaml() -> None:
    """Paths print as dotted keys with [i] for list items."""
    assert format_path(("frameworks", "standard", "tiers", 1, "for")) == (
        "frameworks.standard.tiers[1].for"
    )
    assert format_path(()) == ""
