"""When an acknowledgement lapses: the duty rota's next handover (``ack_expires: at_handover``).

The pure engine is handed the moment as a datetime (``commands.acknowledge(expires=…)``);
this works it out from the config: the first change of who is on duty in any group that the
acknowledged tier's notifications page (its entry and repeat responses), within a week.
"""

from __future__ import annotations

from datetime import datetime

from risingtide.config.model import Config, LineConfig

__all__ = ["ack_expiry", "duty_groups"]


def duty_groups(config: Config, line: LineConfig, level: int) -> tuple[str, ...]:
    """The ids of the groups that tier ``level``'s entry and repeat responses page."""
    tier = line.framework.tier(level)
    if tier is None:
        return ()
    found: dict[str, None] = {}
    for rid in (*tier.responses, *tier.repeat_responses):
        response = config.responses.get(rid)
        for name in response.page if response is not None else ():
            if name in config.directory.groups:
                found[name] = None
    return tuple(found)


def ack_expiry(config: Config, line: LineConfig, level: int, now: datetime) -> datetime | None:
    """When an acknowledgement of tier ``level`` given at ``now`` lapses, or None.

    None unless the line's framework says ``ack_expires: at_handover`` and one of the tier's
    duty groups has a rota that changes hands within a week.
    """
    if not line.framework.ack_expires_at_handover:
        return None
    groups = config.directory.groups
    changes = [groups[g].next_change(now) for g in duty_groups(config, line, level)]
    known = [c for c in changes if c is not None]
    return min(known) if known else None
