"""The ``risingtide`` command.

Exit codes: 0 ok, 1 bad input or config (or the daemon could not start), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from risingtide import __version__
from risingtide.config.schema import parse_listen

if TYPE_CHECKING:
    from risingtide.config.model import Config

DEFAULT_CONFIG = Path("config/rising-tide.yaml")
DEFAULT_LISTEN = "127.0.0.1:9470"


def _listen_arg(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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
    run.add_argument(
        "--listen", type=_listen_arg, help="HOST:PORT for the API, board and /metrics"
    )

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("-c", "--config", type=Path, dest="config_opt", help="config file")
    check.add_argument("config", type=Path, nargs="?", help="config file")

    probe = sub.add_parser("probe", help="poll the configured sources once and show the stats")
    probe.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    probe.add_argument("line", nargs="*", help="only these lines (default: every line)")

    status = sub.add_parser("status", help="show every line's tier from a running daemon")
    status.add_argument(
        "--url", default=f"http://{DEFAULT_LISTEN}", help="the daemon's base URL"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.listen)
    if args.command == "check":
        return _check(args.config_opt or args.config or DEFAULT_CONFIG)
    if args.command == "status":
        return _status(args.url)
    if args.command == "probe":
        return _probe(args.config, args.line)
    return 2  # pragma: no cover - argparse rejects unknown commands


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


def _run(path: Path, listen: tuple[str, int] | None) -> int:
    from risingtide.logs import configure_logging
    from risingtide.runtime import Runtime
    from risingtide.store import StoreError

    config = _load(path)
    if config is None:
        return 1
    configure_logging(config.server.log_format, config.server.log_level)
    host, port = listen if listen else (None, None)
    runtime = Runtime(config, host=host, port=port)

    async def serve() -> int:
        try:
            await runtime.start()
        except (StoreError, OSError) as exc:
            print(f"risingtide: {exc}", file=sys.stderr)
            await runtime.shutdown()
            return 1
        runtime.install_signal_handlers()
        await runtime.wait_stopped()
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
    results = asyncio.run(probe(config, lines or None))
    sys.stdout.write(probe_text(results))
    return 1 if any(r.error is not None for r in results) else 0


def _status(url: str) -> int:
    try:
        resp = httpx.get(f"{url.rstrip('/')}/api/v1/lines", timeout=5)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        print(f"risingtide: cannot reach the daemon at {url}: {exc}", file=sys.stderr)
        return 1
    rows = [("LINE", "TIER", "AVG WAIT", "LONGEST", "WAITING", "NOTES")]
    for line in resp.json()["lines"]:
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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
