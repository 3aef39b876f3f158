"""The ``risingtide`` command.

Exit codes: 0 ok, 1 bad input or config (or the daemon could not start), 2 usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from risingtide import __version__

if TYPE_CHECKING:
    from risingtide.config.model import Config
    from risingtide.remote import Remote

DEFAULT_CONFIG = Path("config/rising-tide.yaml")
DEFAULT_LISTEN = "127.0.0.1:9470"
TOKEN_ENV = "RISINGTIDE_TOKEN"
MIN_PASSWORD = 8
OUTBOX_MOST = 1000  # the API's most entries in one answer


# The config package is imported only where it is needed: it costs half a second, and
# the commands that talk to a daemon are typed by people waiting for an answer.


def _listen_arg(text: str) -> tuple[str, int]:
    from risingtide.config.schema import parse_listen

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _duration_arg(text: str) -> str:
    from risingtide.config.durations import parse_duration

    try:
        if parse_duration(text.strip()).total_seconds() <= 0:
            raise ValueError(f"{text!r} must be longer than 0s")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text.strip()


def _until_arg(text: str) -> str:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date and time (e.g. 2026-11-23T17:00+00:00)"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a UTC offset (e.g. 2026-11-23T17:00+00:00 or …Z)"
        )
    return when.isoformat()


def _remote_options(*, nested: bool = False) -> argparse.ArgumentParser:
    """``--url`` and ``--token``, shared by every command that talks to a daemon.

    ``nested``: for a sub-command's own sub-commands (``outbox retry``), which must not
    overwrite with their defaults what was given before them (``outbox --url X retry``).
    """
    common = argparse.ArgumentParser(add_help=False)
    url_default = argparse.SUPPRESS if nested else f"http://{DEFAULT_LISTEN}"
    token_default = argparse.SUPPRESS if nested else os.environ.get(TOKEN_ENV)
    common.add_argument("--url", default=url_default, help="the daemon's base URL")
    common.add_argument(
        "--token", default=token_default, help=f"an API token (default: ${TOKEN_ENV})"
    )
    return common


def _limit_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= OUTBOX_MOST:
        raise argparse.ArgumentTypeError(f"give 1 to {OUTBOX_MOST}, not {value}")
    return value


def _until_or_for(parser: argparse.ArgumentParser) -> None:
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="for_", type=_duration_arg, metavar="DURATION",
                      help="how long from now, e.g. 2h, 45m, 1h30m")  # fmt: skip
    when.add_argument("--until", type=_until_arg, metavar="ISO",
                      help="when it ends, e.g. 2026-11-23T17:00+00:00")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="risingtide",
        description="Tiered resilience alerting for a council's customer service centre.",
    )
    parser.add_argument("--version", action="version", version=f"risingtide {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    run.add_argument("--listen", type=_listen_arg, help="HOST:PORT for the API, board and /metrics")
    run.add_argument(
        "--fresh-state",
        action="store_true",
        help="accept an empty (0-byte) state file as a new store: every line starts calm",
    )

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("-c", "--config", type=Path, dest="config_opt", help="config file")
    check.add_argument("config", type=Path, nargs="?", help="config file")

    probe = sub.add_parser("probe", help="poll the configured sources once and show the stats")
    probe.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    probe.add_argument("line", nargs="*", help="only these lines (default: every line)")

    replay = sub.add_parser(
        "replay", help="run the tiers over a CSV of historical stats (nothing is sent)"
    )
    replay.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    replay.add_argument("stats", type=Path, help="CSV: time, line, and any stats columns")
    replay.add_argument(
        "--format",
        choices=("text", "json", "html"),
        default="text",
        help="text for people, json for tools, html for one self-contained page with charts",
    )
    replay.add_argument(
        "--compare",
        type=Path,
        metavar="PROPOSED",
        help="a second config: score both on the same rows, side by side (docs/replay.md)",
    )
    replay.add_argument(
        "-o", "--output", type=Path, help="write to this file instead of standard output"
    )
    replay.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="replay the lines in N processes (lines are independent; default 1)",
    )

    remote = _remote_options()
    sub.add_parser("status", parents=[remote], help="show every line's tier from a running daemon")

    ack = sub.add_parser("ack", parents=[remote], help="acknowledge a line's tier")
    ack.add_argument("line", help="the line's id, e.g. council_tax")
    ack.add_argument("--note", default="", help="a note for the history")
    ack.add_argument(
        "--by",
        help="kept for compatibility: the daemon records the token's user; a different "
        "name is added to the note as 'on behalf of NAME'",
    )

    silence = sub.add_parser("silence", parents=[remote], help="silence a line for planned work")
    silence.add_argument("line", help="the line's id")
    _until_or_for(silence)
    silence.add_argument("--reason", required=True, help="why, for the history")
    silence.add_argument(
        "--undo", action="store_true", help="also undo the line's live switches now"
    )

    unsilence = sub.add_parser("unsilence", parents=[remote], help="lift a line's silence")
    unsilence.add_argument("line", help="the line's id")

    declare = sub.add_parser("declare", parents=[remote], help="declare a tier on a line")
    declare.add_argument("line", help="the line's id")
    declare.add_argument("--level", type=int, required=True, help="the tier, 1 or more")
    _until_or_for(declare)
    declare.add_argument("--reason", required=True, help="why, for the history")

    undeclare = sub.add_parser("undeclare", parents=[remote], help="end a declared tier early")
    undeclare.add_argument("line", help="the line's id")

    sub.add_parser("reload", parents=[remote], help="make the daemon reload its config")

    outbox = sub.add_parser(
        "outbox",
        parents=[remote],
        help="list the responses waiting to run and those given up on (dead letters); "
        "retry or dismiss a dead letter",
        description="With no ACTION, list the responses waiting to run and the dead letters "
        "(--dead: only those). `retry KEY` runs a dead letter again now; `dismiss KEY` gives "
        "it up for good.",
    )
    outbox.add_argument("--dead", action="store_true", help="only the dead letters")
    outbox.add_argument(
        "--limit", type=_limit_arg, default=100, help="list at most this many of each (100)"
    )
    actions = outbox.add_subparsers(dest="outbox_action", metavar="ACTION")
    nested = _remote_options(nested=True)
    for name, what in (
        ("retry", "run a dead letter again, now (after fixing what killed it)"),
        ("dismiss", "give a dead letter up for good"),
    ):
        action = actions.add_parser(name, parents=[nested], help=what)
        action.add_argument("key", help="the entry's key, as `risingtide outbox` lists it")
        action.add_argument("--note", default="", help="a note for the history")

    sub.add_parser(
        "hash-password",
        help="hash a password for users: in the config (asks twice; or reads stdin)",
    )
    sub.add_parser("new-token", help="make an API token and the sha256: line for the config")
    _report_parser(sub)
    return parser


def _report_parser(sub: Any) -> None:
    """``risingtide report``: the episodes of a period, for people and BI tools."""
    report = sub.add_parser("report", help="write the episodes of a period (HTML, Markdown, CSV)")
    report.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    report.add_argument("--since", default="7d", help="7d, 24h or an ISO time (default 7d)")
    report.add_argument("--until", help="a duration ago or an ISO time (default now)")
    report.add_argument("--line", help="only this line")
    report.add_argument("--format", choices=("html", "markdown", "csv"), default="html")
    report.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    report.add_argument("--send", metavar="RESPONSE", help="send a summary through a response")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.listen, fresh_state=args.fresh_state)
    if args.command == "check":
        return _check(args.config_opt or args.config or DEFAULT_CONFIG)
    if args.command == "status":
        from risingtide.remote import Remote  # httpx: only the commands that talk to a daemon

        return _status(Remote(args.url, args.token))
    if args.command == "probe":
        return _probe(args.config, args.line)
    if args.command == "replay":
        return _replay(args.config, args.stats, args.format, args.compare, args.output, args.jobs)
    if args.command == "hash-password":
        return _hash_password()
    if args.command == "new-token":
        return _new_token()
    if args.command == "report" and args.send:
        from risingtide.report_send import send_report

        now = datetime.now().astimezone()
        return send_report(args.config, since=args.since, until=args.until, response=args.send,
                           now=now)  # fmt: skip
    if args.command == "report":
        from risingtide.episode_report import write_report

        return write_report(
            args.config, since=args.since, until=args.until, line=args.line,
            fmt=args.format, output=args.output, now=datetime.now().astimezone(),
        )  # fmt: skip
    if args.command in _COMMANDS:
        from risingtide.remote import Remote, RemoteError

        try:
            print(_COMMANDS[args.command](Remote(args.url, args.token), args))
        except RemoteError as exc:
            print(f"risingtide: {exc}", file=sys.stderr)
            return 1
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _replay(
    path: Path,
    stats: Path,
    fmt: str,
    compare: Path | None = None,
    output: Path | None = None,
    jobs: int = 1,
) -> int:
    from risingtide.replay_output import render
    from risingtide.sources.csv_file import CsvStatsError

    config = _load(path)
    proposed = None if compare is None else _load(compare)
    if config is None or (compare is not None and proposed is None):
        return 1
    try:
        text = render(config, stats, fmt, proposed, jobs=jobs)
    except CsvStatsError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"risingtide: cannot read {stats}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"risingtide: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _check(path: Path) -> int:
    from risingtide.config import check_config

    config, errors, warnings = check_config(path)
    for w in warnings:
        print(w, file=sys.stderr)
    for e in errors:
        print(e, file=sys.stderr)
    if errors or config is None:
        print(f"{path}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(
        f"{path}: ok — {len(config.lines)} lines, {len(config.sources)} sources, "
        f"{len(config.responses)} responses"
    )
    return 0


def _run(path: Path, listen: tuple[str, int] | None, *, fresh_state: bool = False) -> int:
    import asyncio

    from risingtide.gcpause import StartupPause
    from risingtide.logs import configure_logging
    from risingtide.runtime import Runtime
    from risingtide.store import StoreError

    config = _load(path)
    if config is None:
        return 1
    configure_logging(config.server.log_format, config.server.log_level)
    host, port = listen if listen else (None, None)
    runtime = Runtime(config, host=host, port=port, fresh_state=fresh_state)

    async def serve() -> int:
        pause = StartupPause()  # start-up builds what lives on: see risingtide.gcpause
        try:
            await runtime.start()
        except (StoreError, OSError) as exc:
            pause.end()
            print(f"risingtide: {exc}", file=sys.stderr)
            await runtime.shutdown()
            return 1
        resume = asyncio.create_task(pause.end_when(lambda: runtime.ready))
        runtime.install_signal_handlers()
        await runtime.wait_stopped()
        resume.cancel()
        return 0

    return asyncio.run(serve())


def _load(path: Path) -> Config | None:
    """The config, or None after printing every error."""
    from risingtide.config import ConfigErrors, load_config

    try:
        return load_config(path)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=sys.stderr)
        return None


def _probe(path: Path, lines: list[str]) -> int:
    from risingtide.probe import probe, probe_text

    config = _load(path)
    if config is None:
        return 1
    unknown = sorted(set(lines) - set(config.lines))
    if unknown:
        print(f"risingtide: no such line in {path}: {', '.join(unknown)} "
              f"(lines: {', '.join(config.lines)})", file=sys.stderr)  # fmt: skip
        return 1
    import asyncio

    results = asyncio.run(probe(config, lines or None))
    sys.stdout.write(probe_text(results))
    return 1 if any(r.error is not None for r in results) else 0


def _every_line(remote: Remote, page_size: int = 5000) -> list[dict[str, Any]]:
    """Every line, following the list's pages (bounded: a page that repeats ends the walk)."""
    path: str | None = f"/api/v1/lines?limit={page_size}"
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    while path is not None and path not in seen:
        seen.add(path)
        page = remote.request("GET", path)
        lines.extend(page["lines"])
        path = page.get("next")
    return lines


def _status(remote: Remote) -> int:
    from risingtide.remote import RemoteError

    try:
        lines = _every_line(remote)
    except RemoteError as exc:
        print(f"risingtide: {exc}", file=sys.stderr)
        return 1
    rows = [("LINE", "TIER", "AVG WAIT", "LONGEST", "WAITING", "NOTES")]
    for line in lines:
        s = line.get("stats") or {}
        notes = [
            note
            for flag, note in (
                (not line["open"], "closed"),
                (line["stale"], "stale"),
                (line["acknowledged"], "acknowledged"),
                (line["silence"] is not None, "silenced"),
                (line["declaration"] is not None, "declared"),
            )
            if flag
        ]
        rows.append(
            (
                line["line"],
                f"{line['tier']} {line['tier_name']}",
                _secs(s.get("avg_wait")),
                _secs(s.get("longest_wait")),
                "–" if s.get("calls_waiting") is None else str(s["calls_waiting"]),
                ", ".join(notes),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _secs(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}s"


# ---------------------------------------------------------------------- commands to a daemon


def _line_path(line: str, action: str) -> str:
    from urllib.parse import quote

    return f"/api/v1/lines/{quote(line, safe='')}/{action}"


def _done(line: str, answer: Any) -> str:
    return f"{line}: {answer['reason']}"


def _timed(args: argparse.Namespace) -> dict[str, Any]:
    return {"for": args.for_} if args.for_ is not None else {"until": args.until}


def _ack(remote: Remote, args: argparse.Namespace) -> str:
    note = args.note
    if args.by:
        # The daemon records the token's user, whatever --by says (DESIGN's --by predates
        # tokens); a different name is kept in the note rather than lost or trusted.
        me = remote.request("GET", "/api/v1/session")
        name = me.get("name") or ""
        if args.by.strip().casefold() != name.casefold():
            note = f"on behalf of {args.by.strip()}" + (f"; {note}" if note else "")
            print(
                f"risingtide: recorded as {name or 'the token user'} (the token's user); "
                f'"on behalf of {args.by.strip()}" added to the note',
                file=sys.stderr,
            )
    answer = remote.request("POST", _line_path(args.line, "ack"), {"note": note})
    return _done(args.line, answer)


def _silence(remote: Remote, args: argparse.Namespace) -> str:
    body = {**_timed(args), "reason": args.reason, "undo": args.undo}
    return _done(args.line, remote.request("POST", _line_path(args.line, "silence"), body))


def _unsilence(remote: Remote, args: argparse.Namespace) -> str:
    return _done(args.line, remote.request("DELETE", _line_path(args.line, "silence")))


def _declare(remote: Remote, args: argparse.Namespace) -> str:
    body = {**_timed(args), "level": args.level, "reason": args.reason}
    return _done(args.line, remote.request("POST", _line_path(args.line, "override"), body))


def _undeclare(remote: Remote, args: argparse.Namespace) -> str:
    return _done(args.line, remote.request("DELETE", _line_path(args.line, "override")))


def _reload(remote: Remote, _args: argparse.Namespace) -> str:
    remote.request("POST", "/-/reload")
    return "config reloaded"


def _outbox(remote: Remote, args: argparse.Namespace) -> str:
    from urllib.parse import quote

    if args.outbox_action is not None:
        path = f"/api/v1/outbox/{quote(args.key, safe='')}/{args.outbox_action}"
        return str(remote.request("POST", path, {"note": args.note})["reason"])
    sections = [] if args.dead else [_outbox_section(remote, "pending", args.limit)]
    sections.append(_outbox_section(remote, "dead", args.limit))
    return "\n\n".join(sections)


def _outbox_section(remote: Remote, status: str, limit: int) -> str:
    answer = remote.request("GET", f"/api/v1/outbox?status={status}&limit={limit}")
    entries, total = answer["entries"], answer["total"]
    if not entries:
        return "no dead letters" if status == "dead" else "no responses waiting to run"
    if status == "dead":
        head = f"{total} dead letter{'s' if total != 1 else ''}, newest first"
    else:
        head = f"{total} response{'s' if total != 1 else ''} waiting to run, oldest first"
    if total > len(entries):
        head += f" (the first {len(entries)}; --limit for more)"
    out = [head + ":"]
    for e in entries:
        tries = f"{e['attempts']} attempt{'s' if e['attempts'] != 1 else ''}"
        if status == "dead":
            when = f"gave up {_when(e['finished_at'])} after {tries}"
        else:
            when = f"next try {_when(e['next_attempt_at'])}, {tries} so far"
        out += [
            "",
            e["key"],
            f"  {e['response']} ({e['action']}) for {e['line']}, tier {e['tier']}: {when}",
        ]
        if e.get("last_error"):
            out.append(f"  last error: {e['last_error']}")
    return "\n".join(out)


def _when(iso: str | None) -> str:
    if not iso:
        return "–"
    from datetime import UTC

    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_COMMANDS = {
    "ack": _ack,
    "silence": _silence,
    "unsilence": _unsilence,
    "declare": _declare,
    "undeclare": _undeclare,
    "reload": _reload,
    "outbox": _outbox,
}


# ---------------------------------------------------------------------- credentials


def _hash_password() -> int:
    """Read a password (twice from a terminal, once from a pipe) and print its hash."""
    from risingtide.api.auth import hash_password

    if sys.stdin.isatty():
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password again: ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 1
        if password != again:
            print("risingtide: the two passwords differ; nothing hashed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"risingtide: a password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def _new_token() -> int:
    """Print a new API token and, below it, the hash to paste into the config."""
    from risingtide.api.auth import hash_token, new_token

    token = new_token()
    print(token)
    print(hash_token(token))
    print(
        "Line 1 is the token: give it to the script (e.g. as RISINGTIDE_TOKEN); it is not "
        "stored anywhere, so keep it now.\nLine 2 goes in the config, under the user: "
        'tokens: ["sha256:…"]',
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
