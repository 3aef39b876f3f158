"""The pure core: the domain vocabulary, the tier engine, commands, timers and the planner.

Nothing in this package does I/O or reads a clock; time always comes in as ``now``.
"""

from risingtide.domain.commands import (
    CommandRejected,
    acknowledge,
    clear_declaration,
    declare,
    lift_silence,
    silence,
)
from risingtide.domain.escalation import due_escalations, due_reminder, next_due
from risingtide.domain.responses import plan
from risingtide.domain.tiers import evaluate, format_duration, initial_state

__all__ = [
    "CommandRejected",
    "acknowledge",
    "clear_declaration",
    "declare",
    "due_escalations",
    "due_reminder",
    "evaluate",
    "format_duration",
    "initial_state",
    "lift_silence",
    "next_due",
    "plan",
    "silence",
]
