"""PostgreSQL itself goes away for a minute during a surge, and comes back.

Its own throwaway cluster (the session's one is shared by other tests), two replicas at
tier 2. While the database is down: every replica still answers, holding every tier (no
tier lost); once a lease has run out by its clock nobody leads, so nothing is sent (nobody
can be sure it leads, and sending twice is worse than sending late). When the database is
back: exactly one leads again, the replicas agree, the surge ends calm with every switch
undone, and no key went out more than twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.ha.harness import LEASE, Platform, keys_over_twice, leaders, wait_until
from tests.ha.test_failover import Surge
from tests.pgcluster import running_cluster

#: How long the database is away.
OUTAGE = 60.0


def test_a_minute_without_the_database_holds_every_tier_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """A minute without PostgreSQL mid-surge: tiers held, nothing sent while nobody can lead,
    one leader and agreement after, calm at the end, no key more than twice."""
    with running_cluster() as cluster, Platform() as platform:
        surge = Surge(tmp_path, platform, cluster.new_database())
        try:
            a, b = surge.start("a"), surge.start("b")
            a.ready()
            b.ready()
            surge.one_leader()
            platform.surge(400.0)
            surge.tiers_everywhere(2)
            cluster.stop()
            down_at = time.monotonic()
            quiet_from = down_at + LEASE + 1.0  # every lease has run out by then
            while time.monotonic() < down_at + OUTAGE:
                for replica in (a, b):
                    try:
                        tiers = replica.tiers()
                    except httpx.HTTPError as exc:
                        raise AssertionError(f"{replica.name} stopped answering: {exc}") from exc
                    assert set(tiers.values()) == {2}, f"{replica.name} lost tiers: {tiers}"
                if time.monotonic() > quiet_from:
                    assert leaders([a, b]) == [], "a replica leads without its database"
                time.sleep(1.0)
            sent = [r for name in ("a", "b") for r in platform.effects_by(name, after=quiet_from)]
            assert sent == [], f"sent while nobody could lead: {sent[:5]}"
            cluster.start()
            surge.one_leader(timeout=30)
            surge.tiers_everywhere(2, timeout=15)
            surge.calm_and_undone()
            assert not keys_over_twice(platform), keys_over_twice(platform)
            assert not platform.flags
            wait_until("agreement", lambda: a.tiers() == b.tiers(), [a, b], 10)
        finally:
            surge.stop_all()
