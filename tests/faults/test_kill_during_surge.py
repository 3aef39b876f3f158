"""kill -9 again and again during a surge: no tier lost, no key more than twice, no switch
left on once the surge is over.

A real ``risingtide run`` polls a real wallboard on loopback (``harness.Platform``) whose
three lines surge to tier 2, with notifications (a webhook, every 2 s while a tier is on)
and two switches per line (``http_action``). The test kills the daemon with SIGKILL at
random moments (seeded), ``KILLS`` times, restarting it on the same state file each time,
then ends the surge and waits for calm.

Invariants:

- **no tier lost**: after each restart every line is at least at the tier the API showed
  just before the kill (the store commits before memory moves on), and each line's history
  of tier changes is one unbroken chain (each change starts where the last one ended);
- **no key more than twice**: every idempotency key reached the platform at most twice (a
  kill between sending and recording repeats it once);
- **no switch left on**: when the surge is over and every line is calm, the platform has no
  flag set.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from risingtide.clock import SystemClock
from risingtide.store import Store
from tests.faults.harness import QUEUES, Daemon, Platform, write_config

KILLS = 5
SEED = 13


def chains_unbroken(state: Path) -> dict[str, list[tuple[int, int]]]:
    """Each line's tier changes, oldest first, checked to form one chain from calm."""
    with Store(state, SystemClock()) as store:
        changes = [e for e in reversed(store.history(kinds=["tier_changed"], limit=100_000))]
    by_line: dict[str, list[tuple[int, int]]] = {}
    for e in changes:
        by_line.setdefault(e.line, []).append((e.data["from_tier"], e.data["to_tier"]))
    for line, steps in by_line.items():
        tier = 0
        for a, b in steps:
            assert a == tier, f"{line}: a change from {a} after the line was at {tier}: {steps}"
            tier = b
    return by_line


def test_kill_9_during_a_surge_loses_no_tier_repeats_no_key_twice_leaves_no_switch_on(
    tmp_path: Path,
) -> None:
    """Five kill -9s mid-surge: tiers survive, keys at most twice, all switches off at calm."""
    rng = random.Random(SEED)
    state = tmp_path / "state" / "rising-tide.sqlite"
    log = tmp_path / "daemon.log"
    with Platform() as platform:
        config = write_config(tmp_path / "rising-tide.yaml", platform.url, state)
        platform.surge(400.0)
        daemon = Daemon(config, log, tmp_path)
        try:
            daemon.ready()
            daemon.wait_until("tier 2 everywhere", lambda: set(daemon.tiers().values()) == {2})
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.2, 1.5))
                before = daemon.tiers()
                daemon.kill()
                daemon = Daemon(config, log, tmp_path)
                daemon.ready()
                after = daemon.tiers()
                lost = {ln: (before[ln], after[ln]) for ln in before if after[ln] < before[ln]}
                assert not lost, f"tiers lost across kill -9: {lost}"
            platform.surge(10.0)
            daemon.wait_until("calm everywhere", lambda: set(daemon.tiers().values()) == {0})
            daemon.wait_until("every switch undone", lambda: not platform.flags, timeout=20)
        finally:
            assert daemon.stop() in (0, -9)
    assert not platform.flags, f"switches left on: {platform.flags}"
    twice = {k: n for k, n in platform.keys.items() if n > 2}
    assert not twice, f"keys delivered more than twice: {twice}"
    assert sum(platform.keys.values()) > 3 * len(QUEUES), "the surge sent too little to prove"
    chains = chains_unbroken(state)
    assert set(chains) == set(QUEUES)
    assert all(steps[-1][1] == 0 for steps in chains.values())
