"""${VAR} substitution: values, defaults, escapes and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risingtide.config.envvars import EnvError, redact, substitute

ENV = {"HOOK": "https://example.invalid/hook", "EMPTY": "", "PORT": "9470"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOOK}", "https://example.invalid/hook"),
        ("url=${HOOK}/x", "url=https://example.invalid/hook/x"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${PORT:-1}", "9470"),
        ("${MISSING:-}", ""),
        ("costs $$5", "costs $5"),
        ("$$${PORT}", "$9470"),
        ("$HOME stays", "$HOME stays"),
        ("trailing $", "trailing $"),
        ("no dollars", "no dollars"),
    ],
)
def test_substitutes_variables_defaults_and_escapes(text: str, expected: str) -> None:
    """${VAR}, ${VAR:-default} and $$ are replaced; other dollars are left alone."""
    assert substitute(text, ENV) == expected


def test_values_are_not_expanded_twice() -> None:
    """A value that itself contains ${…} is inserted as is."""
    assert substitute("${A}", {"A": "${B}"}) == "${B}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${TEAMS_WEBHOOK_URL}", "environment variable TEAMS_WEBHOOK_URL is not set"),
        ("${OPEN", '"${OPEN" has an unterminated ${…} (write $$ for a literal $)'),
        ("${1X}", '"${1X}": "1X" is not an environment variable name (use letters, digits and _)'),
        ("${}", '"${}": "" is not an environment variable name (use letters, digits and _)'),
    ],
)
def test_unset_or_malformed_references_are_errors(text: str, message: str) -> None:
    """An unset variable without a default, or a malformed reference, says which and why."""
    with pytest.raises(EnvError) as caught:
        substitute(text, ENV)
    assert str(caught.value) == message


@given(st.text())
def test_text_without_references_comes_back_unchanged(text: str) -> None:
    """Text with no `$` is returned exactly as given."""
    plain = text.replace("$", "")
    assert substitute(plain, ENV) == plain


# --------------------------------------------------------------------------- ${file:…}


def test_a_secret_file_is_read_less_its_trailing_line_break(tmp_path: Path) -> None:
    """``${file:PATH}`` is the file's text, as Docker and Kubernetes mount secrets."""
    secret = tmp_path / "notify_key"
    secret.write_text("rt-key-one\n")
    assert substitute(f"${{file:{secret}}}", {}) == "rt-key-one"
    secret.write_bytes(b"line one\r\n")
    assert substitute(f"Bearer ${{file:{secret}}}", {}) == "Bearer line one"
    secret.write_text("kept\n\n")  # only one line break goes
    assert substitute(f"${{file:{secret}}}", {}) == "kept\n"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("empty", "the file is empty"),
        ("directory", "is a directory, not a file"),
        ("huge", "larger than 64 KiB"),
        ("binary", "not UTF-8 text"),
    ],
)
def test_a_secret_file_that_cannot_be_used_says_why_without_its_contents(
    tmp_path: Path, setup: str, message: str
) -> None:
    """Each refusal names the file and the reason, never what is in it."""
    path = tmp_path / "secret"
    if setup == "empty":
        path.write_text("")
    elif setup == "directory":
        path.mkdir()
    elif setup == "huge":
        path.write_text("s3cret" * 20_000)
    elif setup == "binary":
        path.write_bytes(b"s3cret\xff")
    with pytest.raises(EnvError) as caught:
        substitute(f"${{file:{path}}}", {})
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_substituted_values_are_collected_and_redacted_from_messages() -> None:
    """Values from the environment are hidden by their reference; defaults and short ones not."""
    found: dict[str, str] = {}
    env = {"TOKEN": 'tok"en-1234', "N": "1"}
    assert substitute("Bearer ${TOKEN} ${N} ${NONE:-fallback}", env, found) == (
        'Bearer tok"en-1234 1 fallback'
    )
    assert found == {'tok"en-1234': "${TOKEN}", "1": "${N}"}
    assert redact('got "Bearer tok\\"en-1234", or tok"en-1234 at line 1', found) == (
        'got "Bearer ${TOKEN}", or ${TOKEN} at line 1'
    )
