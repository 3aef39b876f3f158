"""The duty manager's commands as a user types them, against a real daemon process.

``risingtide ack|silence|unsilence|declare|undeclare|reload|status`` with a token from
``--token`` or ``RISINGTIDE_TOKEN``: one line of confirmation and exit 0, or the daemon's
reason on stderr and exit 1; usage mistakes exit 2. Also ``hash-password`` and
``new-token``, whose output loads as config.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from argon2 import PasswordHasher

from risingtide import cli
from risingtide.api.auth import hash_token
from tests.e2e.desk_daemon import TOKENS, Daemon, desk_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with desk_daemon(tmp_path_factory.mktemp("cli-desk")) as d:
        yield d


def risingtide(
    *args: str, token: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RISINGTIDE_TOKEN"}
    if token is not None:
        env["RISINGTIDE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "risingtide", *args],
        capture_output=True, text=True, timeout=60, env=env, input=stdin,
    )  # fmt: skip


def line(daemon: Daemon, lid: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {TOKENS['vera']}"}
    data: dict[str, object] = httpx.get(
        f"{daemon.url}/api/v1/lines/{lid}", headers=headers, timeout=5
    ).json()
    return data


def test_ack_prints_one_line_and_the_daemon_records_the_tokens_user(daemon: Daemon) -> None:
    """``ack LINE --note`` with RISINGTIDE_TOKEN acknowledges as the token's user; exit 0."""
    done = risingtide(
        "ack", "council_tax", "--note", "surge team paged", "--url", daemon.url,
        token=TOKENS["priya"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "council_tax: tier 2 high acknowledged by Priya Shah\n"
    ack = line(daemon, "council_tax")["acknowledgement"]
    assert isinstance(ack, dict)
    assert (ack["by"], ack["note"]) == ("Priya Shah", "surge team paged")

    again = risingtide("ack", "council_tax", "--url", daemon.url, token=TOKENS["priya"])
    assert again.returncode == 1
    assert again.stderr == (
        "risingtide: council_tax is already acknowledged at tier 2 by Priya Shah\n"
    )


def test_ack_by_someone_else_keeps_their_name_in_the_note(daemon: Daemon) -> None:
    """DESIGN's ``--by`` still works: a different name becomes "on behalf of …" in the note."""
    risingtide("declare", "highways", "--level", "1", "--for", "1h", "--reason", "storm",
               "--url", daemon.url, "--token", TOKENS["priya"])  # fmt: skip
    done = risingtide(
        "ack", "highways", "--by", "Sam Okafor", "--note", "gritters out",
        "--url", daemon.url, "--token", TOKENS["priya"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "on behalf of Sam Okafor" in done.stderr
    ack = line(daemon, "highways")["acknowledgement"]
    assert isinstance(ack, dict)
    assert (ack["by"], ack["note"]) == ("Priya Shah", "on behalf of Sam Okafor; gritters out")


def test_silence_then_unsilence(daemon: Daemon) -> None:
    """``silence --for --reason --undo`` then ``unsilence`` each print what they did."""
    done = risingtide(
        "silence", "waste", "--for", "2h", "--reason", "phone system upgrade", "--undo",
        "--url", daemon.url, token=TOKENS["priya"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "waste: silenced by Priya Shah for 2h: phone system upgrade\n"
    assert line(daemon, "waste")["silence"] is not None
    lifted = risingtide("unsilence", "waste", "--url", daemon.url, token=TOKENS["priya"])
    assert (lifted.returncode, lifted.stdout) == (0, "waste: silence lifted by Priya Shah\n")
    twice = risingtide("unsilence", "waste", "--url", daemon.url, token=TOKENS["priya"])
    assert (twice.returncode, twice.stderr) == (1, "risingtide: waste is not silenced\n")


def test_declare_then_undeclare(daemon: Daemon) -> None:
    """``declare --level --until --reason`` raises the line; ``undeclare`` ends it."""
    done = risingtide(
        "declare", "waste", "--level", "2", "--until", "2099-01-01T00:00Z", "--reason", "x",
        "--url", daemon.url, token=TOKENS["priya"],
    )  # fmt: skip
    assert done.returncode == 1  # more than 31 days ahead
    assert "at most 31 days ahead" in done.stderr
    done = risingtide(
        "declare", "waste", "--level", "2", "--for", "3h", "--reason", "bin day change",
        "--url", daemon.url, token=TOKENS["priya"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("waste: declared tier 2 high by Priya Shah until ")
    assert line(daemon, "waste")["tier"] == 2
    ended = risingtide("undeclare", "waste", "--url", daemon.url, token=TOKENS["priya"])
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith("waste: declaration of tier 2 high cleared by Priya Shah")


def test_reload_needs_an_admin_token(daemon: Daemon) -> None:
    """``reload`` with an admin's token reloads; with a duty manager's it says why not."""
    refused = risingtide("reload", "--url", daemon.url, token=TOKENS["priya"])
    assert refused.returncode == 1
    assert refused.stderr == (
        "risingtide: Priya Shah is a duty manager; this needs an admin or above\n"
    )
    done = risingtide("reload", "--url", daemon.url, token=TOKENS["ada"])
    assert (done.returncode, done.stdout) == (0, "config reloaded\n")


def test_a_wrong_or_missing_token_is_exit_1_with_the_reason(daemon: Daemon) -> None:
    """A wrong token: the daemon's reason and exit 1; no token at all: a hint how to give one."""
    wrong = risingtide("ack", "council_tax", "--url", daemon.url, "--token", "rt_wrong")
    assert (wrong.returncode, wrong.stderr) == (1, "risingtide: the API token is not valid\n")
    missing = risingtide("status", "--url", daemon.url)
    assert missing.returncode == 1
    assert "give --token, or set RISINGTIDE_TOKEN" in missing.stderr
    unknown = risingtide("unsilence", "nope", "--url", daemon.url, token=TOKENS["priya"])
    assert (unknown.returncode, unknown.stderr) == (
        1, "risingtide: no line 'nope' in the config\n",
    )  # fmt: skip


def test_status_sends_the_token(daemon: Daemon) -> None:
    """``status`` with a viewer's token lists every line."""
    result = risingtide("status", "--url", daemon.url, token=TOKENS["vera"])
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert [r.split()[0] for r in rows] == ["LINE", "council_tax", "waste", "highways"]


def test_usage_mistakes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Neither or both of --for/--until, a bad duration or time, a missing reason: exit 2."""
    for args in (
        ["silence", "waste", "--reason", "x"],
        ["silence", "waste", "--for", "1h", "--until", "2026-01-01T00:00Z", "--reason", "x"],
        ["silence", "waste", "--for", "an hour", "--reason", "x"],
        ["declare", "waste", "--level", "1", "--until", "2026-01-01T09:00", "--reason", "x"],
        ["declare", "waste", "--level", "one", "--for", "1h", "--reason", "x"],
        ["silence", "waste", "--for", "1h"],
        ["ack"],
    ):
        with pytest.raises(SystemExit) as exited:  # argparse's usage error, in-process
            cli.main(args)
        assert exited.value.code == 2, args
    assert "is not a duration" in capsys.readouterr().err


def test_hash_password_from_stdin_and_new_token_make_what_the_config_needs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A piped password is hashed with argon2id; a new token comes with its sha256 line."""
    hashed = risingtide("hash-password", stdin="a long enough password\n")
    assert hashed.returncode == 0, hashed.stderr
    digest = hashed.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert PasswordHasher().verify(digest, "a long enough password")
    short = risingtide("hash-password", stdin="short\n")
    assert (short.returncode, "at least 8 characters" in short.stderr) == (1, True)

    assert cli.main(["new-token"]) == 0
    made = capsys.readouterr()
    token, token_hash = made.out.splitlines()
    assert token.startswith("rt_") and token_hash == hash_token(token)
    assert "sha256:" in made.err  # the how-to goes to stderr, so stdout stays pasteable
