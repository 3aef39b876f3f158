"""``risingtide report --send RESPONSE``: the episodes' summary sent once, for cron users.

The summary is the scheduled report's (``risingtide.weekly.summary_text``) for the period
``--since``/``--until``; it goes straight through the named notification response, built
from the config as the daemon builds it, to its ``to:`` addresses and whoever its
``page:`` has on duty now. The state file is read read-only, so it runs beside a running
daemon or without one. Nothing is queued: a failure is printed and the exit code is 1, for
cron to mail; the key (``report/manual/<since>--<until>/<response>``) is the same for the
same period, so a channel that de-duplicates by key sends it once.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from risingtide.config.model import Config, ResponseConfig
from risingtide.domain.model import ResponseOrder
from risingtide.ports import BuildContext, Notice, Notifier, ResponseContext, ResponseError

__all__ = ["send_report"]


def send_report(
    config_path: Path, *, since: str, until: str | None, response: str, now: datetime
) -> int:
    """Send the summary of the episodes that began in the period; return the exit code
    (0 sent; 1 bad config, unknown or switch response, no state file, or not sent; 2 a bad
    ``--since``/``--until``)."""
    from risingtide.clock import SystemClock
    from risingtide.config import ConfigErrors, load_config
    from risingtide.episode_report import when_arg
    from risingtide.store import Store, StoreError
    from risingtide.weekly import build_summary, report_key, report_orders

    try:
        start = when_arg(since, now)
        end = when_arg(until, now) if until else now
    except ValueError as exc:
        return _fail(str(exc), 2)
    try:
        config = load_config(config_path)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=sys.stderr)
        return 1
    rc = config.responses.get(response)
    if rc is None or rc.undoable:
        known = ", ".join(sorted(k for k, v in config.responses.items() if not v.undoable))
        what = "is a switch" if rc is not None else "is not in the config"
        return _fail(f"response {response!r} {what} (notifications: {known or 'none'})", 1)
    link = f"{_public_url(config).rstrip('/')}/episodes"
    try:
        with Store.read_only(
            config.server.database or config.server.state_file, SystemClock()
        ) as store:
            text = build_summary(
                store, config, title="Rising Tide report", start=start, end=end, link=link
            )
    except StoreError as exc:
        return _fail(str(exc), 1)
    period = f"{start.isoformat(timespec='minutes')}--{end.isoformat(timespec='minutes')}"
    keys = {response: report_key("manual", period, response)}
    order = report_orders(keys, text, now)[0]
    try:
        detail = asyncio.run(_send(config, rc, order, now))
    except ResponseError as exc:
        return _fail(f"not sent through {response!r}: {exc}", 1)
    print(f"report sent through {response}: {detail}", file=sys.stderr)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"risingtide report: {message}", file=sys.stderr)
    return code


def _public_url(config: Config) -> str:
    if config.server.public_url:
        return config.server.public_url
    host = config.server.host
    return f"http://{f'[{host}]' if ':' in host else host}:{config.server.port}"


async def _send(config: Config, rc: ResponseConfig, order: ResponseOrder, now: datetime) -> str:
    """Build the response's responder and send ``order`` through it."""
    from risingtide.clock import SystemClock
    from risingtide.responders import RESPONDER_TYPES

    responder = RESPONDER_TYPES[rc.type].build(rc.id, rc.settings, BuildContext(SystemClock()))
    context = ResponseContext(line_name="*", tier_name="", stats=None, target_wait=0.0)
    if isinstance(responder, Notifier):
        people = config.directory.resolve(rc.page, now)
        return await responder.notify(Notice(order.key, ((order, context),), people))
    return await responder.run(order, context)
