"""Message content: kinds, wording, escaping, custom templates, the sandbox, SMS size, digests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from risingtide.config import check_config
from risingtide.domain.model import Action, QueueStats, ResponseOrder
from risingtide.messages import (
    DIGEST_VARIABLES,
    MessageFacts,
    MessageTemplates,
    TemplateError,
    check_digest_template,
    check_template,
    digest_variables,
    facts_from,
    format_duration,
    format_percent,
    render,
    render_digest,
    render_string,
    slack_escape,
    sms_safe,
    sms_segments,
    variables,
)
from risingtide.ports import Notice, ResponseContext, ResponseError
from risingtide.responders.webhook import (
    NOT_UNDONE,
    WebhookSettings,
    nothing_to_send,
    render_notice,
)

T0 = datetime(2026, 1, 5, 9, 25, tzinfo=UTC)  # 09:25 in London (GMT)
ACK = "https://rising-tide.council.example/ack/council_tax?t=abc"


def _order(
    trigger: str = "tier_changed",
    tier: int = 2,
    n: str = "1-2@2026-01-05T09:25:00+00:00",
    reason: str = "avg_wait 400s > 300s for 5m",
) -> ResponseOrder:
    return ResponseOrder(
        key=f"council_tax/3/{trigger}/{tier}/{n}/text_duty_manager/apply",
        line="council_tax",
        response="text_duty_manager",
        action=Action.APPLY,
        tier=tier,
        episode=3,
        trigger=trigger,
        at=T0,
        reason=reason,
    )


def _context(tier_name: str = "high", **extra: object) -> ResponseContext:
    stats = QueueStats(
        line="council_tax", at=T0, calls_waiting=14, avg_wait=400.0, longest_wait=725.0,
        agents_available=2, offered=40, abandoned=5, window=900.0,
    )  # fmt: skip
    base: dict[str, object] = {
        "entered_at": T0 - timedelta(minutes=25),
        "live_switches": ["ivr_message", "callback_on"],
        "ack_url": ACK,
        "framework_tiers": ["rising", "high", "flood", "major incident"],
    }
    base.update(extra)
    return ResponseContext(
        line_name="Council Tax", tier_name=tier_name, stats=stats, target_wait=180.0, extra=base
    )


def _facts(trigger: str = "tier_changed", tier: int = 2, **kw: object) -> MessageFacts:
    n = kw.pop("n", "1-2@2026-01-05T09:25:00+00:00")
    names = {0: "calm", 1: "rising", 2: "high", 3: "flood"}
    return facts_from(_order(trigger, tier, str(n)), _context(names[tier], **kw))


# --------------------------------------------------------------------------- facts and kinds


def test_facts_gather_the_order_the_stats_and_every_documented_extra() -> None:
    """facts_from reads the order, the stats and the extras entered_at, live_switches,
    ack_url, tier_from and framework_tiers."""
    facts = _facts(tier_from=1)
    assert (facts.kind, facts.line_name, facts.tier, facts.tier_name) == (
        "tier_raised", "Council Tax", 2, "high",
    )  # fmt: skip
    assert (facts.avg_wait, facts.longest_wait, facts.calls_waiting) == (400.0, 725.0, 14)
    assert facts.abandon_rate == pytest.approx(0.125)
    assert facts.tier_from == 1 and facts.tier_from_name == "rising" and facts.tier_count == 4
    assert facts.live_switches == ("callback_on", "ivr_message")
    assert facts.ack_url == ACK
    assert facts.raised_for == timedelta(minutes=25)


@pytest.mark.parametrize(
    ("trigger", "tier", "n", "kind"),
    [
        ("tier_changed", 2, "1-2@x", "tier_raised"),
        ("tier_changed", 3, "0-3@x", "tier_raised"),
        ("tier_changed", 1, "2-1@x", "tier_lowered"),
        ("tier_changed", 0, "1-0@x", "back_to_calm"),
        ("reminder", 2, "2026-01-05T09:00:00+00:00#1", "reminder"),
        ("escalated", 2, "2026-01-05T09:00:00+00:00#1", "escalated"),
        ("stats_stale", 2, "2026-01-05T09:10:00+00:00", "stats_stale"),
        ("silence_ended", 2, "2026-01-05T09:25:00+00:00", "tier_raised"),
    ],
)
def test_the_kind_comes_from_the_trigger_and_the_direction_from_the_key(
    trigger: str, tier: int, n: str, kind: str
) -> None:
    """Without tier_from in extra, a tier change's direction is read from its key."""
    assert _facts(trigger, tier, n=n).kind == kind


def test_tier_from_in_extra_wins_over_the_key() -> None:
    """The runtime's tier_from is believed before the key's occurrence part."""
    assert _facts("tier_changed", 2, n="opaque", tier_from=3).kind == "tier_lowered"


def test_malformed_extras_are_left_out_not_fatal() -> None:
    """A wrong-typed extra never stops a message; a non-web ack link is dropped."""
    facts = _facts(
        entered_at="09:00", live_switches="ivr", ack_url="javascript:alert(1)", framework_tiers=3
    )
    assert (facts.entered_at, facts.live_switches, facts.ack_url, facts.tier_count) == (
        None, (), None, None,
    )  # fmt: skip
    assert "javascript" not in render(facts).html


# --------------------------------------------------------------------------- wording


@pytest.mark.parametrize(
    ("trigger", "tier", "n", "subject"),
    [
        ("tier_changed", 2, "1-2@x", "Council Tax raised to tier 2 (high) from tier 1 (rising)"),
        ("tier_changed", 3, "0-3@x", "Council Tax raised to tier 3 (flood)"),
        ("tier_changed", 1, "2-1@x", "Council Tax down to tier 1 (rising) from tier 2 (high)"),
        ("tier_changed", 0, "1-0@x", "Council Tax back to calm"),
        ("reminder", 2, "e#1", "Reminder: Council Tax still at tier 2 (high), not acknowledged"),
        ("escalated", 2, "e#1", "Escalated: Council Tax at tier 2 (high), not acknowledged"),
        ("stats_stale", 2, "s", "Council Tax: no fresh figures, holding tier 2 (high)"),
        ("silence_ended", 2, "2026-01-05T09:25:00+00:00", "Council Tax is at tier 2 (high)"),
    ],
)
def test_every_kind_has_its_own_headline(trigger: str, tier: int, n: str, subject: str) -> None:
    """Raised, lowered, calm, reminder, escalated and stale messages each say what happened."""
    assert render(_facts(trigger, tier, n=n)).subject == subject


def test_the_plain_text_says_everything_a_duty_manager_needs() -> None:
    """Waits against target, calls waiting, abandonment, time raised, what is on, why, and
    the acknowledge link, one per line."""
    text = render(_facts("reminder", 2, n="e#1")).text
    assert text.splitlines() == [
        "Reminder: Council Tax still at tier 2 (high), not acknowledged",
        "Average wait 6m 40s (target 3m)",
        "Longest wait 12m 5s",
        "14 calls waiting, 2 agents free",
        "Abandoned 12.5% (last 15m)",
        "At tier 2 since 09:00 (25m)",
        "Already on: callback_on, ivr_message",
        "Why: avg_wait 400s > 300s for 5m",
        f"Acknowledge: {ACK}",
    ]


def test_unknown_figures_are_said_to_be_unknown_or_left_out() -> None:
    """With no stats the wait is "not known" and the other figures are simply absent."""
    order = _order("stats_stale", 2, "s")
    context = ResponseContext(line_name="Council Tax", tier_name="high", stats=None,
                              target_wait=180.0)  # fmt: skip
    text = render(facts_from(order, context)).text
    assert "No figures received" in text
    assert "Average wait not known (target 3m)" in text
    assert "calls waiting" not in text and "None" not in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (180, "3m"), (400, "6m 40s"), (3900, "1h 5m"), (7200, "2h")],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    """Durations are seconds, minutes and seconds, or hours and minutes."""
    assert format_duration(seconds) == text


def test_percentages_drop_a_trailing_zero() -> None:
    """0.125 is 12.5% and 0.1 is 10%."""
    assert (format_percent(0.125), format_percent(0.1)) == ("12.5%", "10%")


# --------------------------------------------------------------------------- escaping


def test_a_hostile_line_name_is_escaped_in_html_and_slack_but_not_in_plain_text() -> None:
    """HTML is autoescaped, Slack mrkdwn escapes & < >, plain text stays as written."""
    hostile = '<script>alert("x")</script> & <!channel>'
    facts = replace(_facts(), line_name=hostile)
    rendered = render(facts)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;!channel&gt;" in rendered.html
    assert rendered.text.startswith(hostile)
    assert render_string("{{ line_name }}", facts, "slack") == (
        '&lt;script&gt;alert("x")&lt;/script&gt; &amp; &lt;!channel&gt;'
    )
    assert slack_escape("a<b") == "a&lt;b"


def test_a_newline_in_a_subject_is_flattened() -> None:
    """Subjects are one line (a header with a newline would be an injection)."""
    facts = replace(_facts(), line_name="Council\nTax")
    assert "\n" not in render(facts).subject


# --------------------------------------------------------------------------- templates


def test_custom_templates_override_subject_and_body() -> None:
    """A response's subject/text templates replace the defaults; the HTML shows the text."""
    templates = MessageTemplates(
        subject="[T{{ tier }}] {{ line_name }}",
        text="{{ line_name }}: {{ wait_line }}{% if ack_url %} - ack {{ ack_url }}{% endif %}",
    )
    rendered = render(_facts(), templates)
    assert rendered.subject == "[T2] Council Tax"
    assert rendered.text == f"Council Tax: Average wait 6m 40s (target 3m) - ack {ACK}"
    assert rendered.sms == rendered.text
    assert "Average wait 6m 40s" in rendered.html and ACK.replace("&", "&amp;") in rendered.html


def test_templates_have_filters_for_durations_and_percentages() -> None:
    """duration, percent and clock filters format raw figures."""
    out = render_string(
        "{{ avg_wait | duration }} {{ abandon_rate | percent }} {{ entered_at | clock }}",
        _facts(),
        "text",
    )
    assert out == "6m 40s 12.5% 09:00"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ line_name.__class__.__init__.__globals__ }}",
        "{{ live_switches.append('x') }}",
    ],
)
def test_the_sandbox_blocks_attribute_tricks(source: str) -> None:
    """Reaching Python internals, or changing a value, is a TemplateError, never output."""
    with pytest.raises(TemplateError, match=r"not allowed in a template|template error"):
        render_string(source, _facts(), "text")


def test_a_hostile_template_is_a_config_error_with_its_position(tmp_path: Path) -> None:
    """check reports the sandbox violation at the template's line in the YAML."""
    path = tmp_path / "centre.yaml"
    path.write_text(
        "sources:\n  demo: { type: scripted }\n"
        "lines:\n  ct: { name: Council Tax, source: demo, framework: f }\n"
        "frameworks:\n  f:\n    tiers:\n"
        "      - { level: 1, name: rising, when: { avg_wait: { above: target } },"
        " responses: [hook] }\n"
        "responses:\n  hook:\n    type: webhook\n    url: https://intranet.example/hook\n"
        "    template: \"{{ ''.__class__ }}\"\n"
    )
    config, errors, _ = check_config(path, {}, today=T0.date())
    assert config is None
    assert [str(e) for e in errors] == [
        f"{path}:13:15: responses.hook.template: not allowed in a template: access to "
        "attribute '__class__' of 'str' object is unsafe."
    ]


def test_a_misspelt_variable_is_caught_at_config_time_with_a_suggestion() -> None:
    """check_template renders against samples of every kind: a typo fails at once."""
    with pytest.raises(ValueError, match=r"'lne_name' is undefined \(did you mean line_name\?\)"):
        check_template("{{ lne_name }}")
    with pytest.raises(ValidationError, match="syntax error on line 2"):
        WebhookSettings(url="https://x.example/h", template="ok\n{% if %}")


def test_a_template_that_fails_only_at_run_time_is_a_template_error() -> None:
    """Errors inside a template's own code surface as TemplateError with the cause."""
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render_string("{{ tier / (tier - 2) }}", _facts(), "text")


def test_every_documented_variable_is_available() -> None:
    """TEMPLATE_VARIABLES lists exactly what variables() gives a template."""
    from risingtide.messages import TEMPLATE_VARIABLES

    assert set(variables(_facts())) == set(TEMPLATE_VARIABLES)


# --------------------------------------------------------------------------- SMS


def test_the_default_sms_is_gsm7_and_fits_three_segments_even_for_a_long_alert() -> None:
    """Dashes, quotes and ≥ are spelt in GSM-7; a long reason is cut, the link is kept."""
    long_reason = "avg_wait 1200s ≥ 900s — " + "and longest_wait 1500s > 1200s " * 20
    facts = replace(
        _facts("escalated", 3, n="e#2"),
        line_name="Revenues & Benefits – “Housing Benefit” enquiries",
        reason=long_reason,
    )
    sms = render(facts).sms
    assert sms == sms_safe(sms)
    assert sms_segments(sms) <= 3
    assert sms.startswith('Escalated: Revenues & Benefits - "Housing Benefit" enquiries')
    assert sms.endswith(f"Acknowledge: {ACK}")
    assert "Why: avg_wait 1200s >= 900s - and" in sms and "..." in sms


def test_a_normal_alert_sms_keeps_every_figure() -> None:
    """Nothing is dropped from an ordinary alert: it fits as it is."""
    rendered = render(_facts())
    assert rendered.sms == rendered.text
    assert sms_segments(rendered.sms) <= 3


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 459, 3), ("€" * 80, 1), ("é" * 161, 2),
     ("ŵ" * 70, 1), ("ŵ" * 71, 2)],
)  # fmt: skip
def test_sms_segments_count_gsm7_and_ucs2(text: str, segments: int) -> None:
    """GSM-7: 160 then 153 per segment (€ counts twice); other text: 70 then 67."""
    assert sms_segments(text) == segments


def test_sms_safe_keeps_gsm_letters_and_transliterates_the_rest() -> None:
    """é and £ are GSM-7; ŵ loses its accent; an emoji becomes ?."""
    assert sms_safe("Café £5 – Gwasanaeth ŵ 🌊") == "Café £5 - Gwasanaeth w ?"


# --------------------------------------------------------------------------- digest


def _line(line: str, name: str, tier: int, avg: float) -> MessageFacts:
    tier_name = {1: "rising", 2: "high", 3: "flood"}[tier]
    return replace(_facts(), line=line, line_name=name, tier=tier, tier_name=tier_name,
                   avg_wait=avg, ack_url=f"https://rt.example/ack/{line}")  # fmt: skip


def test_a_digest_lists_every_line_highest_tier_first() -> None:
    """One message for several lines: the subject names them all, the body has each."""
    rendered = render_digest(
        [_line("waste", "Waste", 1, 200), _line("revs", "Revenues", 3, 700),
         _line("ct", "Council Tax", 2, 400)]
    )  # fmt: skip
    assert rendered.subject == "3 lines: Revenues tier 3, Council Tax tier 2, Waste tier 1"
    body = rendered.text
    assert (
        body.index("Revenues raised")
        < body.index("Council Tax raised")
        < body.index("Waste raised")
    )
    assert "Acknowledge: https://rt.example/ack/ct" in body
    assert rendered.sms.splitlines()[:2] == [
        "3 lines need attention",
        "Revenues: tier 3 (flood), avg 11m 40s, 14 waiting",
    ]
    assert "Acknowledge Council Tax" in rendered.html


def test_a_digest_sms_of_many_lines_says_how_many_it_left_out() -> None:
    """A citywide surge of twenty lines is one text of at most three segments."""
    lines = [_line(f"l{i}", f"Service line number {i}", 2, 300 + i) for i in range(20)]
    sms = render_digest(lines).sms
    assert sms_segments(sms) <= 3
    assert sms.splitlines()[-1].startswith("+") and sms.splitlines()[-1].endswith(" more")


def test_a_digest_takes_custom_templates_over_its_lines() -> None:
    """Digest templates see lines, count and headline."""
    templates = MessageTemplates(text="{% for l in lines %}{{ l.line }}={{ l.tier }} {% endfor %}")
    out = render_digest([_line("a", "A", 1, 1), _line("b", "B", 2, 1)], templates)
    assert out.text == "b=2 a=1"


def test_an_empty_digest_is_refused() -> None:
    """A digest needs at least one line."""
    with pytest.raises(ValueError, match="at least one"):
        render_digest([])


BOARD = "https://rising-tide.council.gov.uk/"


def test_the_board_link_is_read_from_extra_and_only_a_web_link() -> None:
    """board_url is a documented extra; anything but http(s) is left out."""
    assert _facts(board_url=BOARD).board_url == BOARD
    assert _facts(board_url="javascript:alert(1)").board_url is None
    assert _facts().board_url is None


def test_a_digest_sms_of_twenty_lines_fits_three_segments_and_ends_with_the_board() -> None:
    """A citywide surge: one GSM-7 text of at most 3 segments, highest tier first, "+N
    more" for the lines left out, and the board link last, where the rest are."""
    lines = [
        replace(_line(f"l{i:02d}", f"Service line number {i:02d}", 1 + i % 3, 300 + i),
                board_url=BOARD)
        for i in range(20)
    ]  # fmt: skip
    sms = render_digest(lines).sms
    assert sms == sms_safe(sms) and sms_segments(sms) <= 3
    rows = sms.splitlines()
    assert rows[0] == "20 lines need attention"
    assert rows[1].startswith("Service line number 02: tier 3 (flood)")
    assert rows[-1] == f"Board: {BOARD}"
    assert rows[-2].startswith("+") and rows[-2].endswith(" more")
    assert int(rows[-2][1:].split()[0]) + len(rows) - 3 == 20


def test_a_digest_sms_with_an_enormous_line_name_still_keeps_the_board_link() -> None:
    """Even when one line does not fit, the text is cut and the link kept."""
    lines = [replace(_line("a", "A" * 600, 2, 300), board_url=BOARD), _line("b", "B", 1, 200)]
    sms = render_digest(lines).sms
    assert sms_segments(sms) <= 3
    assert sms.endswith(f"+1 more\nBoard: {BOARD}")


def test_a_digest_of_many_lines_keeps_its_subject_short() -> None:
    """The subject names lines while it fits in 150 characters, then counts the rest."""
    lines = [_line(f"l{i}", f"Service line number {i}", 2, 300) for i in range(20)]
    subject = render_digest(lines).subject
    assert len(subject) <= 150
    assert subject.startswith("20 lines: Service line number 0 tier 2, ")
    named, _, more = subject.removeprefix("20 lines: ").rpartition(", +")
    assert more.endswith(" more")
    assert len(named.split(", ")) + int(more.split()[0]) == 20


def test_a_digest_of_lines_easing_says_so() -> None:
    """Lines going down are not "need attention"."""
    down = [
        replace(_line("a", "A", 1, 100), kind="tier_lowered"),
        replace(_line("b", "B", 1, 100), kind="back_to_calm", tier=0, tier_name="calm"),
    ]
    rendered = render_digest(down)
    assert rendered.sms.splitlines() == [
        "2 lines coming down",
        "A: down to tier 1 (rising), avg 1m 40s, 14 waiting",
        "B: back to calm",
    ]
    assert "2 lines coming down" in rendered.html


def test_the_digest_text_and_html_give_each_reason_the_board_and_the_key() -> None:
    """Each line says why; the digest ends with the board; the HTML footer has the key."""
    lines = [replace(_line("a", "Alpha", 2, 300), board_url=BOARD), _line("b", "Beta", 1, 200)]
    rendered = render_digest(lines, key="batch/42")
    assert rendered.text.count("  Why: avg_wait 400s > 300s for 5m") == 2
    assert rendered.text.endswith(f"Duty board: {BOARD}")
    assert f'href="{BOARD}"' in rendered.html and "batch/42" in rendered.html


def test_every_documented_digest_variable_is_available() -> None:
    """DIGEST_VARIABLES lists exactly what digest_variables() gives a digest template."""
    assert set(digest_variables([_facts(), _facts()])) == set(DIGEST_VARIABLES)


def test_a_digest_template_is_checked_against_sample_digests() -> None:
    """Digest templates see lines, count, …: a single line's variable is an error at
    config time, and the sandbox holds as for any template."""
    ok = "{% for l in lines %}{{ l.line_name }}: {{ l.avg_wait_text }}\n{% endfor %}{{ key }}"
    assert check_digest_template(ok) == ok
    with pytest.raises(TemplateError, match="'avg_wait_text' is undefined"):
        check_digest_template("{{ avg_wait_text }}")
    with pytest.raises(TemplateError, match="not allowed in a template"):
        check_digest_template("{{ lines.__class__ }}")
    with pytest.raises(ValidationError, match="syntax error"):
        WebhookSettings(url="https://x.example/h", digest_template="{% for l in lines %}")


def _notice(*orders: tuple[str, str, int, Action]) -> Notice:
    items = []
    for line, name, tier, action in orders:
        order = replace(_order(tier=tier), key=f"{line}/{tier}/{action.value}", line=line,
                        action=action)  # fmt: skip
        context = replace(_context({1: "rising", 2: "high", 3: "flood"}[tier]), line_name=name)
        items.append((order, context))
    return Notice("batch/1", tuple(items))


def test_render_notice_renders_one_line_alone_and_several_as_a_digest() -> None:
    """One APPLY: the single-line message (its templates); several: the digest (its own
    templates), facts in the digest's order; UNDOs are left out."""
    line_templates = MessageTemplates(subject="one: {{ line_name }}")
    digest_templates = MessageTemplates(subject="{{ count }}: {{ key }}")
    one = _notice(("ct", "Council Tax", 2, Action.APPLY), ("w", "Waste", 1, Action.UNDO))
    facts, message = render_notice("r", one, line_templates, digest_templates)
    assert [f.line for f in facts] == ["ct"] and message.subject == "one: Council Tax"
    several = _notice(("w", "Waste", 1, Action.APPLY), ("r", "Revenues", 3, Action.APPLY))
    facts, message = render_notice("r", several, line_templates, digest_templates)
    assert [f.line for f in facts] == ["r", "w"] and message.subject == "2: batch/1"


def test_render_notice_turns_a_template_failure_into_a_final_response_error() -> None:
    """A template that fails while sending is reason "template", not retryable."""
    several = _notice(("w", "Waste", 1, Action.APPLY), ("r", "Revenues", 3, Action.APPLY))
    broken = MessageTemplates(subject="{{ count / 0 }}")
    with pytest.raises(ResponseError) as caught:
        render_notice("hook", several, MessageTemplates(), broken)
    assert (caught.value.reason, caught.value.retryable) == ("template", False)
    assert "response 'hook'" in str(caught.value)


def test_a_notice_of_undos_only_has_nothing_to_send() -> None:
    """nothing_to_send gives the outcome for UNDOs only, None when there is an APPLY."""
    undos = _notice(("w", "Waste", 1, Action.UNDO), ("r", "Revenues", 3, Action.UNDO))
    assert nothing_to_send(undos) == NOT_UNDONE
    assert nothing_to_send(_notice(("w", "Waste", 1, Action.APPLY))) is None
    with pytest.raises(ValueError, match="no APPLY"):
        render_notice("r", undos, MessageTemplates(), MessageTemplates())
