"""The response planner: which responses to run, or undo, for one decision.

``plan(framework, switches, before, decision)`` reads the decision's events in order and
returns the state with ``live`` (the switches applied and not yet undone) brought up to
date, and the :class:`ResponseOrder` list for the outbox. ``switches`` is the set of
response ids that change the world (IVR deflection on, call-back on) and must be undone;
every other response is a one-off (a notification).

Rules, per event:

* ``TierChanged`` up (raised or declared) from ``a`` to ``b``: APPLY the ``responses`` of
  every tier ``a+1..b`` (a 0 → 3 flood gets all of them), each response id at most once;
  a switch already live is not applied again; an applied switch becomes live.
* ``TierChanged`` down from ``a`` to ``b`` (lowered, or lowered as a declaration ended): for
  each tier left, from ``a`` down to ``b+1``, APPLY its ``on_exit`` and UNDO the live
  switches it owns (its ``responses``, ``repeat_responses`` and escalation responses) —
  except a switch that a remaining tier ``1..b`` also lists in its ``responses``, which
  stays on. Falling to 0 undoes every live switch. Each switch is undone exactly once,
  because it leaves ``live`` as it is undone.
* ``TierChanged`` with cause CLOSED, and ``LineClosed``: UNDO every live switch; no APPLY
  (out of hours raises nothing).
* ``Silenced`` with ``undo=True``: UNDO every live switch.
* ``SilenceEnded`` at a tier above 0: catch up — APPLY the switches of tiers ``1..tier``
  that are not live, and, unless the tier is still acknowledged, the current tier's other
  responses (a notification: nobody is paged again for a tier someone has in hand).
  ``tier`` is the lower of the event's tier and the decision's final tier.
* ``AcknowledgementExpired`` (the rota's handover) while the line is raised and no longer
  acknowledged: APPLY the current tier's notifications, so the incoming duty manager is
  asked again.
* ``Reminder``: APPLY the tier's ``repeat_responses``. ``Escalated``: APPLY the step's
  ``responses``. ``StatsStale``: APPLY ``framework.stale_responses``. ``StatsFresh``: UNDO
  the live stale-response switches that no tier at or below the current one lists.
* ``DemandEventDue`` (a demand calendar event's lead time): APPLY the event's own
  ``responses``, keyed by the event's name and start (``n`` = ``{name}@{start}``).
* One plan applies a response id at most once, whichever events ask for it (a silence
  ending with a reminder due notifies once).
* While the resulting state is silenced every APPLY is dropped (and a dropped switch does
  not become live); UNDO orders always go out.

Idempotency keys are ``{line}/{episode}/{trigger}/{tier}/{n}/{response}/{action}`` where
``trigger`` is the event's kind, ``tier`` the order's tier (the tier the line is at after a
tier change; the event's tier otherwise) and ``n`` identifies the logical occurrence:
``{from}-{to}@{time}`` for a tier change, ``{entered_at}#{number}`` for a reminder or
escalation step (so re-planning the same reminder gives the same key), the spell's start
for stale alerts, the event's time otherwise. Same input, same keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from risingtide.domain.model import (
    AcknowledgementExpired,
    Action,
    Cause,
    Decision,
    DemandEventDue,
    Escalated,
    Event,
    Framework,
    LineClosed,
    LineState,
    Reminder,
    ResponseOrder,
    Silenced,
    SilenceEnded,
    StatsFresh,
    StatsStale,
    Tier,
    TierChanged,
)

__all__ = ["plan", "reassert"]


def plan(
    framework: Framework,
    switches: frozenset[str],
    before: LineState,
    decision: Decision,
) -> tuple[LineState, tuple[ResponseOrder, ...]]:
    """The state with ``live`` updated, and the orders to run for ``decision``.

    ``before`` is the state the decision started from (kept for the caller's symmetry and
    for a decision that carries no state change); the live set is read from
    ``decision.state``, which the engine and the commands carry over unchanged.
    """
    state = decision.state
    if not decision.events:
        return state, ()
    planner = _Planner(framework, switches, state)
    for event in decision.events:
        planner.handle(event)
    if not planner.orders:
        return state, ()
    live = frozenset(planner.live)
    if live != state.live:
        state = replace(state, live=live)
    return state, tuple(planner.orders)


def reassert(state: LineState, now: datetime) -> tuple[ResponseOrder, ...]:
    """APPLY again every live switch of a line, so the platform agrees with the state.

    A platform may have forgotten a switch the state says is on: the simulator restarts
    with the daemon, a source is rebuilt on reload. Applying a switch is idempotent, so
    the runtime re-asserts live switches at start and after such a rebuild. A silenced line
    is left alone (a silence runs no APPLY).
    """
    if state.silence is not None and state.silence.until > now:
        return ()
    why = "switch re-asserted: the state says it is on"
    n = now.isoformat()
    line, episode, tier = state.line, state.episode, state.tier
    return tuple(
        _order(line, episode, "reassert", tier, n, r, Action.APPLY, now, why)
        for r in sorted(state.live)
    )


def _order(
    line: str,
    episode: int,
    trigger: str,
    tier: int,
    n: str,
    response: str,
    action: Action,
    at: datetime,
    reason: str,
) -> ResponseOrder:
    """One order, keyed ``{line}/{episode}/{trigger}/{tier}/{n}/{response}/{action}``."""
    return ResponseOrder(
        key=f"{line}/{episode}/{trigger}/{tier}/{n}/{response}/{action.value}",
        line=line,
        response=response,
        action=action,
        tier=tier,
        episode=episode,
        trigger=trigger,
        at=at,
        reason=reason,
    )


class _Planner:
    """Working memory for one plan: the live set as it evolves and the orders so far."""

    __slots__ = (
        "applied",
        "framework",
        "keys",
        "line",
        "live",
        "orders",
        "silenced",
        "state",
        "switches",
    )

    def __init__(self, framework: Framework, switches: frozenset[str], state: LineState) -> None:
        self.framework = framework
        self.switches = switches
        self.state = state
        self.line = state.line
        self.live: set[str] = set(state.live)
        self.silenced = state.silence is not None
        self.orders: list[ResponseOrder] = []
        self.keys: set[str] = set()
        self.applied: set[str] = set()

    # ------------------------------------------------------------------ dispatch

    def handle(self, event: Event) -> None:
        """Plan the orders for one event."""
        if isinstance(event, TierChanged):
            self._tier_changed(event)
        elif isinstance(event, Reminder):
            tier = self._tier(event.tier)
            if tier is not None:
                n = f"{self._entry(event.tier, event.at)}#{event.number}"
                self._apply_all(
                    tier.repeat_responses, event.episode, "reminder", event.tier, n, event.at,
                    f"reminder {event.number}: {self._label(event.tier)} still unacknowledged",
                )  # fmt: skip
        elif isinstance(event, Escalated):
            n = f"{self._entry(event.tier, event.at)}#{event.step}"
            self._apply_all(
                event.responses, event.episode, "escalated", event.tier, n, event.at,
                f"escalation step {event.step}: {self._label(event.tier)} unacknowledged",
            )  # fmt: skip
        elif isinstance(event, StatsStale):
            self._apply_all(
                self.framework.stale_responses, self.state.episode, "stats_stale", event.tier,
                event.since.isoformat(), event.at, f"stats stale: {event.reason}",
            )  # fmt: skip
        elif isinstance(event, StatsFresh):
            keep = self._listed(1, event.tier)
            for r in self.framework.stale_responses:
                if r in self.live and r not in keep:
                    self._undo(r, self.state.episode, event.kind, event.tier, event.at,
                               "stats fresh again")  # fmt: skip
        elif isinstance(event, Silenced):
            if event.undo:
                self._undo_every(self.state.episode, event.kind, self.state.tier, event.at,
                                 f"silenced by {event.by}: {event.reason}")  # fmt: skip
        elif isinstance(event, SilenceEnded):
            self._silence_ended(event)
        elif isinstance(event, AcknowledgementExpired):
            self._ask_again(event)
        elif isinstance(event, LineClosed):
            self._undo_every(self.state.episode, event.kind, 0, event.at, "out of hours")
        elif isinstance(event, DemandEventDue):
            self._apply_all(
                event.responses, self.state.episode, event.kind, self.state.tier,
                f"{event.name}@{event.start.isoformat()}", event.at,
                f"{event.name} starts {event.start:%Y-%m-%d %H:%M} UTC (demand calendar)",
            )  # fmt: skip

    # ------------------------------------------------------------------ events

    def _tier_changed(self, event: TierChanged) -> None:
        a, b = event.from_tier, event.to_tier
        n = f"{a}-{b}@{event.at.isoformat()}"
        if event.cause is Cause.CLOSED:
            self._undo_every(event.episode, event.kind, b, event.at, "out of hours", n)
            return
        if b > a:
            reason = f"entering {self._label(b)}"
            for level in range(a + 1, b + 1):
                tier = self._tier(level)
                for r in tier.responses if tier is not None else ():
                    self._apply(r, event.episode, event.kind, b, n, event.at, reason)
            return
        if b == a:
            return
        keep = self._listed(1, b)
        for level in range(a, b, -1):
            tier = self._tier(level)
            if tier is None:
                continue
            reason = f"leaving {self._label(level)}"
            for r in tier.on_exit:
                self._apply(r, event.episode, event.kind, b, n, event.at, reason, live=False)
            for r in _owned(tier):
                if r in self.live and (b == 0 or r not in keep):
                    self._undo(r, event.episode, event.kind, b, event.at, reason, n)
        if b == 0:
            self._undo_every(event.episode, event.kind, b, event.at, "back to calm", n)

    def _silence_ended(self, event: SilenceEnded) -> None:
        # Catch up to the tier the line ends this decision at, if it fell in the meantime
        # (a rise in the same decision is applied by its own TierChanged).
        level = min(event.tier, self.state.tier)
        current = self._tier(level)
        if current is None:
            return
        n = event.at.isoformat()
        reason = f"silence ended: catching up {self._label(level)}"
        episode = self.state.episode
        for lower in range(1, level + 1):
            tier = self._tier(lower)
            for r in tier.responses if tier is not None else ():
                if r in self.switches:
                    self._apply(r, episode, event.kind, level, n, event.at, reason)
        if self.state.acknowledged:
            return  # lifting a silence does not page again for a tier someone has in hand
        for r in current.responses:
            if r not in self.switches:
                self._apply(r, episode, event.kind, level, n, event.at, reason)

    def _ask_again(self, event: AcknowledgementExpired) -> None:
        level = self.state.tier
        current = self._tier(level)
        if current is None or self.state.acknowledged:
            return
        reason = f"acknowledgement by {event.by} lapsed at handover: {self._label(level)}"
        n = event.at.isoformat()
        for r in current.responses:
            if r not in self.switches:
                self._apply(r, self.state.episode, event.kind, level, n, event.at, reason)

    # ------------------------------------------------------------------ orders

    def _apply_all(
        self,
        responses: Iterable[str],
        episode: int,
        trigger: str,
        tier: int,
        n: str,
        at: datetime,
        reason: str,
    ) -> None:
        for r in responses:
            self._apply(r, episode, trigger, tier, n, at, reason)

    def _apply(
        self,
        response: str,
        episode: int,
        trigger: str,
        tier: int,
        n: str,
        at: datetime,
        reason: str,
        *,
        live: bool = True,
    ) -> None:
        if self.silenced:
            return  # a silenced line runs nothing; a dropped switch does not become live
        if response in self.applied:
            return  # one evaluation never runs the same response twice (e.g. catch-up + reminder)
        is_switch = live and response in self.switches
        if is_switch and response in self.live:
            return
        if is_switch:
            self.live.add(response)
        self.applied.add(response)
        self._order(response, Action.APPLY, episode, trigger, tier, n, at, reason)

    def _undo(
        self,
        response: str,
        episode: int,
        trigger: str,
        tier: int,
        at: datetime,
        reason: str,
        n: str | None = None,
    ) -> None:
        if response not in self.live:
            return
        self.live.discard(response)
        self._order(response, Action.UNDO, episode, trigger, tier, n or at.isoformat(), at, reason)

    def _undo_every(
        self, episode: int, trigger: str, tier: int, at: datetime, reason: str, n: str | None = None
    ) -> None:
        # Sorted so that the same input always gives the orders in the same sequence.
        for r in sorted(self.live):
            self._undo(r, episode, trigger, tier, at, reason, n)

    def _order(
        self,
        response: str,
        action: Action,
        episode: int,
        trigger: str,
        tier: int,
        n: str,
        at: datetime,
        reason: str,
    ) -> None:
        order = _order(self.line, episode, trigger, tier, n, response, action, at, reason)
        if order.key in self.keys:
            return
        self.keys.add(order.key)
        self.orders.append(order)

    # ------------------------------------------------------------------ helpers

    def _tier(self, level: int) -> Tier | None:
        """The framework's tier at ``level``; None for 0 or a level it no longer has."""
        tiers = self.framework.tiers
        return tiers[level - 1] if 0 < level <= len(tiers) else None

    def _label(self, level: int) -> str:
        tier = self._tier(level)
        name = tier.name if tier is not None else self.framework.calm_name if level <= 0 else "?"
        return f"tier {level} {name}"

    def _entry(self, level: int, at: datetime) -> str:
        """When the line entered the tier a reminder or escalation belongs to."""
        entered = self.state.entered_at
        if self.state.tier == level and entered is not None:
            return entered.isoformat()
        return at.isoformat()

    def _listed(self, low: int, high: int) -> frozenset[str]:
        """Switches listed in the ``responses`` of tiers ``low..high``."""
        found: set[str] = set()
        for level in range(low, high + 1):
            tier = self._tier(level)
            if tier is not None:
                found.update(r for r in tier.responses if r in self.switches)
        return frozenset(found)


def _owned(tier: Tier) -> tuple[str, ...]:
    """Every response a tier may have applied: entry, repeat and escalation responses."""
    owned = list(tier.responses) + list(tier.repeat_responses)
    for step in tier.escalation:
        owned.extend(step.responses)
    return tuple(dict.fromkeys(owned))
