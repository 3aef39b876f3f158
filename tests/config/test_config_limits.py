"""A config file cannot make ``check`` (or a reload) eat the machine.

A file over 4 MiB is refused before it is parsed; aliases that would expand past the
budget ("billion laughs") are refused at the alias, with a message that mentions aliases
only when there are some; a huge file without aliases is refused without that word.
Memory is measured with tracemalloc, never time.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from risingtide.config import check_config
from risingtide.config.document import MAX_ALIAS_VALUES, MAX_VALUES
from risingtide.config.loader import MAX_CONFIG_BYTES

MIB = 1024 * 1024
#: Far below what the unbounded loader took (hundreds of MiB to GiB).
MEMORY_CEILING = 64 * MIB


def checked(path: Path) -> tuple[list[str], int]:
    """The errors for ``path`` as printed, and the peak memory Python allocated checking it."""
    tracemalloc.start()
    try:
        config, errors, _ = check_config(path, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert config is None
    return [str(e) for e in errors], peak


def test_a_file_over_4_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    """A 5 MiB file gets one located error giving its size and the limit, nothing else."""
    assert MAX_CONFIG_BYTES == 4 * MIB
    big = tmp_path / "big.yaml"
    big.write_bytes(b"lines: {}\n#" + b"-" * (5 * MIB - 11))  # 5 MiB exactly
    errors, peak = checked(big)
    assert errors == [f"{big}:1:1: the config is 5.0 MiB, more than the 4 MiB allowed"]
    assert peak < MEMORY_CEILING


def test_billion_laughs_is_refused_at_the_alias_that_overflows(tmp_path: Path) -> None:
    """Nine levels of ten aliases each: refused at an alias, in words that name aliases."""
    rows = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        rows.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text("\n".join(rows) + "\n")
    errors, peak = checked(laughs)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{laughs}:5:")  # the row where the expansion passes the budget
    assert errors[0].endswith(
        f"aliases expand the file to more than {MAX_ALIAS_VALUES:,} values; "
        "write the repeated part out, or use fewer aliases"
    )
    assert peak < MEMORY_CEILING


def test_a_huge_file_without_aliases_never_mentions_aliases(tmp_path: Path) -> None:
    """Too many values, none from an alias: the message gives the count, and no aliases."""
    many = tmp_path / "many.yaml"
    many.write_text("lines: [" + "1, " * (MAX_VALUES + 10) + "1]\n")
    assert many.stat().st_size < 4 * MIB
    errors, peak = checked(many)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{many}:1:")
    assert f"the file has more than {MAX_VALUES:,} values" in errors[0]
    assert "alias" not in errors[0].removeprefix(str(many))
    assert peak < MEMORY_CEILING


def test_a_few_aliases_within_the_budget_still_load(tmp_path: Path) -> None:
    """Ordinary anchors and merge keys are far within the budget and are not refused."""
    ok = tmp_path / "ok.yaml"
    ok.write_text("x: &x {a: 1, b: 2}\ny: {<<: *x, c: 3}\nz: [*x, *x]\n")
    _, errors, _ = check_config(ok, {})
    assert all("alias" not in e.message and "values" not in e.message for e in errors), errors
