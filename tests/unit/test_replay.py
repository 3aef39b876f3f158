"""Replay: the configured tiers over historical stats, with a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from risingtide.config import load_config
from risingtide.domain.model import QueueStats, TierChanged
from risingtide.replay import replay, timeline_json, timeline_text

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # a Monday morning (10:00 in London, BST)


def demo_config():
    return load_config(ROOT / "config" / "rising-tide.yaml")


def rows(line: str, waits: list[tuple[int, float]], *, step: int = 15) -> list[QueueStats]:
    """Rows every ``step`` seconds, with avg_wait changing at the given minutes."""
    out = []
    changes = dict(waits)
    wait = 0.0
    for i in range(0, max(changes) * 60 + 10 * 60, step):
        wait = changes.get(i // 60, wait) if i % 60 == 0 else wait
        out.append(QueueStats(line=line, at=T0 + timedelta(seconds=i), avg_wait=wait,
                              longest_wait=wait, calls_waiting=3, offered=100, abandoned=2))
    return out


def test_a_surge_gives_the_exact_timeline_through_the_demo_framework():
    """Rising to tier 1 after its 1m, to tier 2 after its 1m, and down one tier at a time."""
    config = demo_config()
    result = replay(config, rows("revenues", [(0, 60.0), (5, 200.0), (10, 320.0), (20, 100.0)]))
    changes = [
        (e.at - T0, e.from_tier, e.to_tier) for e in result.events if isinstance(e, TierChanged)
    ]
    assert changes == [
        (timedelta(minutes=6), 0, 1),     # 200 s > 180 s from minute 5, held 1m
        (timedelta(minutes=11), 1, 2),    # 320 s > 300 s from minute 10, held 1m
        (timedelta(minutes=21), 2, 1),    # 100 s clears tier 2 from minute 20, held 1m
        (timedelta(minutes=22), 1, 0),    # ...then tier 1's own clear_for
    ]
    responses = [(o.at - T0, o.response, o.action.value) for o in result.orders]
    assert (timedelta(minutes=6), "notify_duty_manager", "apply") in responses
    assert (timedelta(minutes=6), "callback_on", "apply") in responses
    assert (timedelta(minutes=11), "page_surge_staff", "apply") in responses
    assert (timedelta(minutes=21), "ivr_deflection", "undo") in responses
    assert (timedelta(minutes=22), "callback_on", "undo") in responses
    s = result.summaries["revenues"]
    assert (s.episodes, s.tier_changes, s.highest_tier) == (1, 4, 2)
    assert s.switches_applied == s.switches_undone == 3
    assert s.time_in_tier[1] == timedelta(minutes=6)  # 6–11 and 21–22
    assert s.time_in_tier[2] == timedelta(minutes=10)
    assert sum(s.time_in_tier.values(), timedelta()) == timedelta(minutes=29, seconds=45)


def test_a_gap_in_the_data_shows_as_stale_and_never_lowers_the_tier():
    """A 10-minute hole while raised gives a stale alert and keeps the tier."""
    config = demo_config()
    data = [r for r in rows("revenues", [(0, 400.0), (30, 400.0)])
            if not timedelta(minutes=10) <= r.at - T0 < timedelta(minutes=20)]
    result = replay(config, data)
    kinds = [e.kind for e in result.events]
    assert "stats_stale" in kinds
    lowered = [e for e in result.events if isinstance(e, TierChanged) and e.to_tier < e.from_tier]
    assert lowered == []
    assert result.summaries["revenues"].stale_alerts == 1


def test_text_and_json_output_say_what_would_have_been_sent():
    """The text names each change with its reason and each response; JSON carries the same."""
    config = demo_config()
    data = rows("revenues", [(0, 60.0), (5, 320.0), (15, 50.0)])
    result = replay(config, [*data, QueueStats(line="nope", at=T0, avg_wait=1.0)])
    text = timeline_text(config, result)
    assert "revenues  0 calm → 2 high  (rising to tier 2 high: avg_wait 320s > 300s" in text
    assert "would run page_surge_staff" in text
    assert "would undo ivr_deflection" in text
    assert "nothing was sent" in text
    assert "nope: 1 rows ignored" in text
    body = timeline_json(result)
    assert body["rows"] == len(data) + 1
    assert [e["kind"] for e in body["events"]][:1] == ["tier_changed"]
    assert {r["response"] for r in body["responses"]} >= {"callback_on", "page_surge_staff"}
    assert body["summary"][1]["line"] == "revenues"


def test_a_csv_replays_to_the_exact_timeline():
    """The CSV in tests/data through the demo framework gives exactly this timeline."""
    from risingtide.sources.csv_file import read_rows

    config = demo_config()
    result = replay(config, read_rows(ROOT / "tests" / "data" / "replay-council-tax.csv"))
    timeline = [
        (e.at.strftime("%H:%M"), e.from_tier, e.to_tier, e.reason)
        for e in result.events
        if isinstance(e, TierChanged)
    ]
    assert timeline == [
        ("09:03", 0, 1, "rising to tier 1 rising: avg_wait 230s > 180s held for 1m"),
        ("09:05", 1, 2, "rising to tier 2 high: avg_wait 340s > 300s held for 1m"),
        ("09:08", 2, 1, "falling to tier 1 rising: tier 2 clear condition avg_wait 200s < "
                        "240s and abandon_rate 5.0% < 8.0% held for 1m"),
        ("09:11", 1, 0, "falling to tier 0 calm: tier 1 clear condition avg_wait 110s < 144s "
                        "held for 1m"),
    ]  # fmt: skip
    responses = [
        (o.at.strftime("%H:%M"), o.response, o.action.value)
        for o in result.orders
    ]
    assert responses == [
        ("09:03", "notify_duty_manager", "apply"),
        ("09:03", "callback_on", "apply"),
        ("09:05", "notify_duty_manager", "apply"),  # tier 2 tells the duty manager again
        ("09:05", "page_surge_staff", "apply"),
        ("09:05", "ivr_deflection", "apply"),
        ("09:08", "page_surge_staff", "undo"),
        ("09:08", "ivr_deflection", "undo"),
        ("09:11", "callback_on", "undo"),
    ]
    s = result.summaries["council_tax"]
    assert (s.rows, s.episodes, s.notifications, s.switches_applied) == (14, 1, 2, 3)


def test_replay_names_who_the_rota_would_have_paged():
    """A notification in the timeline names the duty manager on duty at that moment: the
    demo's morning shift (Asha) at 10:05, the afternoon's (Ben) for the same surge at 15:05."""
    config = demo_config()
    morning = replay(config, rows("revenues", [(0, 60.0), (5, 320.0)]))
    text = timeline_text(config, morning)
    assert "would run notify_duty_manager → Asha Patel" in text
    assert "would run page_surge_staff\n" in text  # a switch pages no one
    (notify,) = [
        r for r in timeline_json(morning, config)["responses"]
        if r["response"] == "notify_duty_manager"
    ]
    assert notify["to"] == ["Asha Patel"]
    later = [
        QueueStats(line=s.line, at=s.at + timedelta(hours=5), avg_wait=s.avg_wait,
                   longest_wait=s.longest_wait, calls_waiting=3, offered=100, abandoned=2)
        for s in rows("revenues", [(0, 60.0), (5, 320.0)])
    ]  # fmt: skip
    assert "notify_duty_manager → Ben Okafor" in timeline_text(config, replay(config, later))
