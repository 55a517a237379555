"""The pure notification rules: routes as the issue writes them, grouping decisions,
message splitting, the sliding rate window, the digest schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from humiao.domain.identity import citizen_id_check_char, looks_like_citizen_id
from humiao.domain.notify import (
    Announce,
    Note,
    Pending,
    RateLimit,
    Route,
    RouteError,
    SendWindow,
    announcements,
    digest_due,
    first_send_at,
    parse_duration,
    routes_for,
)
from humiao.domain.notify_text import Message, compose_digest, compose_group
from humiao.notifier.routes import parse_routes

ISSUE_TOML = """
[receivers.district-110105]
kind = "wecom"            # wecom | dingtalk | feishu | webhook | email
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY"

[receivers.city-supervisors]
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=TOKEN"
secret = "SEC..."         # DingTalk signing

[[routes]]
regions = ["110105"]      # or "*"
codes = "*"               # or a list of codes
receiver = "district-110105"
group_wait = "30s"
group_interval = "5m"
"""
CHILD = "11010520100101001" + citizen_id_check_char("11010520100101001")
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def note(i: int = 1, *, status: str = "OPEN", version: int = 1, code: str = "PAID_AFTER_DEATH",
         region: str = "110105", amount: int = 123456) -> Note:
    return Note(f"A{i:024d}", version, code, status, region, "2026-02", amount,
                "110105***********X", T0)


def test_the_issue_routes_file_works_as_written() -> None:
    table = parse_routes(ISSUE_TOML)
    assert set(table.receivers) == {"district-110105", "city-supervisors"}
    (route,) = table.routes
    assert route.receiver == "district-110105"
    assert route.regions == frozenset({"110105"}) and route.codes is None
    assert route.group_wait == dt.timedelta(seconds=30)
    assert route.group_interval == dt.timedelta(minutes=5)
    assert routes_for(table.routes, "110105", "MISSED_PAYMENT") == [route]
    assert routes_for(table.routes, "110106", "MISSED_PAYMENT") == []
    # secrets stay secret when the table is printed
    assert "KEY" not in repr(table.receivers) and "SEC..." not in repr(table.receivers)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[receivers.a]\nkind = "sms"\nurl = "https://x"', "receivers.a.kind"),
        ('[receivers.a]\nkind = "wecom"', "receivers.a.url"),
        ('[receivers.a]\nkind = "wecom"\nurl = "ftp://x"', "receivers.a.url"),
        ('[receivers.a]\nkind = "email"\nsmtp_host = "h"', "receivers.a"),
        ('[receivers.a]\nkind = "wecom"\nurl = "https://x"\n[[routes]]\nreceiver = "b"',
         "routes[0].receiver"),
        ('[receivers.a]\nkind = "wecom"\nurl = "https://x"\n[[routes]]\nreceiver = "a"\n'
         'regions = ["1101"]', "routes[0].regions"),
        ('[receivers.a]\nkind = "wecom"\nurl = "https://x"\n[[routes]]\nreceiver = "a"\n'
         'codes = ["NOPE"]', "routes[0].codes"),
        ('[receivers.a]\nkind = "wecom"\nurl = "https://x"\n[[routes]]\nreceiver = "a"\n'
         'group_wait = "soon"', "routes[0].group_wait"),
        ('[receivers.a]\nkind = "wecom"\nurl = "https://x"\n[[routes]]\nreceiver = "a"\n'
         'digest_at = "25:99"', "routes[0].digest_at"),
        ('[receivers.a]\nkind = "wecom"\nurl = "https://x"\nextra = 1', "receivers.a.extra"),
        (f'[receivers.{CHILD}]\nkind = "wecom"\nurl = "https://x"', "looks like an ID"),
        ('[receivers."a b"]\nkind = "wecom"\nurl = "https://x"', "receivers.'a b'"),
        ("not toml [", "not TOML"),
    ],
)
def test_a_bad_routes_file_names_the_field(text: str, names: str) -> None:
    with pytest.raises(RouteError) as err:
        parse_routes(text)
    assert names in str(err.value)
    assert CHILD not in str(err.value)


def test_an_oversized_routes_file_is_refused() -> None:
    with pytest.raises(RouteError, match="larger than"):
        parse_routes("#" * (300 * 1024))


def test_first_match_wins_unless_continue() -> None:
    a = Route("a", frozenset({"110105"}), None, continue_matching=True)
    b = Route("b", None, frozenset({"MISSED_PAYMENT"}))
    c = Route("c", None, None)
    assert [r.receiver for r in routes_for([a, b, c], "110105", "MISSED_PAYMENT")] == ["a", "b"]
    assert [r.receiver for r in routes_for([a, b, c], "110106", "PAID_AFTER_DEATH")] == ["c"]
    # a receiver named twice is told once
    assert [r.receiver for r in routes_for([a, a, c], "110105", "X")] == ["a", "c"]


def test_durations() -> None:
    assert parse_duration("250ms", "f") == dt.timedelta(milliseconds=250)
    assert parse_duration("2h", "f") == dt.timedelta(hours=2)
    with pytest.raises(RouteError, match="f: "):
        parse_duration("5 minutes", "f")


def test_group_waits_then_keeps_its_interval() -> None:
    route = Route("r", None, None, dt.timedelta(seconds=30), dt.timedelta(minutes=5))
    assert first_send_at(T0, None, route) == T0 + dt.timedelta(seconds=30)
    # sent a minute ago: the next message waits for the interval, not just group_wait
    assert first_send_at(T0, T0 - dt.timedelta(minutes=1), route) == T0 + dt.timedelta(minutes=4)
    assert first_send_at(T0, T0 - dt.timedelta(hours=1), route) == T0 + dt.timedelta(seconds=30)


def test_withdrawn_before_announced_is_never_said_and_closing_an_announced_one_is() -> None:
    said = announcements([
        Pending(note(1, status="WITHDRAWN", version=2), told_open=False, ever_told=False),
        Pending(note(2, status="OPEN"), told_open=False, ever_told=False),
        Pending(note(3, status="WITHDRAWN", version=3), told_open=True, ever_told=True),
        Pending(note(4, status="RESOLVED", version=4), told_open=True, ever_told=True),
        Pending(note(5, status="ACKNOWLEDGED", version=2), told_open=True, ever_told=True),
        Pending(note(6, status="REOPENED", version=5), told_open=False, ever_told=True),
    ])
    assert [(n.alert_id[-1], k) for n, k in said] == [
        ("2", Announce.NEW), ("3", Announce.WITHDRAWN), ("4", Announce.RESOLVED),
        ("6", Announce.REOPENED),
    ]


def test_a_long_group_is_split_within_the_byte_limit_and_lists_each_alert_once() -> None:
    route = Route("r", None, None, max_messages=1000)
    said = [(note(i), Announce.NEW) for i in range(300)]
    messages = compose_group(route, "110105", "PAID_AFTER_DEATH", said, max_bytes=4096,
                             console="https://console.example/")
    assert len(messages) > 5
    assert all(len(m.markdown.encode()) <= 4096 for m in messages)
    listed = [line.alert_id for m in messages for line in m.lines]
    assert sorted(listed) == sorted(n.alert_id for n, _ in said)
    for m in messages:
        assert sum(line.alert_id in m.markdown for line in m.lines) == len(m.lines)
    first = messages[0].markdown
    assert "死亡后发放" in first and "110105" in first and "2026-02" in first
    assert "1,234.56 元" in first and "`110105***********X`" in first
    assert "https://console.example/alerts/A" in first
    assert f"(1/{len(messages)})" in first


def test_past_max_messages_the_rest_is_summarised_with_a_link() -> None:
    route = Route("r", None, None, max_messages=3)
    said = [(note(i), Announce.NEW) for i in range(300)]
    messages = compose_group(route, "110105", "PAID_AFTER_DEATH", said, max_bytes=4096,
                             console="https://console.example")
    assert len(messages) == 3
    last = messages[-1]
    assert "另有" in last.markdown
    assert "https://console.example/alerts?region=110105" in last.markdown
    assert len(last.markdown.encode()) <= 4096
    assert sum(len(m.lines) for m in messages) == 300  # every alert still accounted for
    # without a console there is no link, and no alert line either
    bare = compose_group(route, "110105", "PAID_AFTER_DEATH", said[:1], max_bytes=4096,
                         console=None)
    assert "http" not in bare[0].markdown


def test_message_json_round_trip() -> None:
    route = Route("r", None, None)
    (msg,) = compose_group(route, "110105", "MISSED_PAYMENT", [(note(1), Announce.NEW)],
                           max_bytes=4096, console=None)
    assert Message.from_json(msg.to_json()) == msg
    assert msg.firing


def test_send_window_allows_at_most_count_in_any_span() -> None:
    window = SendWindow((RateLimit(20, dt.timedelta(minutes=1)),))
    now = T0
    sends = []
    for _ in range(65):
        now = max(now, window.ready_at(now))
        window.record(now)
        sends.append(now)
        now += dt.timedelta(seconds=1)
    for i, start in enumerate(sends):
        in_minute = [t for t in sends[i:] if t < start + dt.timedelta(minutes=1)]
        assert len(in_minute) <= 20
    assert sends[20] == sends[0] + dt.timedelta(minutes=1)


def test_digest_once_a_day_after_its_time() -> None:
    at = dt.time(8, 30)
    morning = dt.datetime(2026, 3, 2, 8, 0)
    assert digest_due(morning, at, None) is None
    later = morning.replace(hour=9)
    assert digest_due(later, at, None) == later.date()
    assert digest_due(later, at, later.date()) is None
    assert digest_due(later + dt.timedelta(days=1), at, later.date()) == dt.date(2026, 3, 3)


def test_digest_text() -> None:
    from humiao.domain.notify import DigestFigures

    route = Route("r", frozenset({"110105"}), frozenset({"PAID_AFTER_DEATH"}))
    figures = DigestFigures(7, 2, 3, 1_000_000, T0)
    msg = compose_digest(route, figures, dt.date(2026, 3, 1), console=None,
                         tz=dt.timezone(dt.timedelta(hours=8)))
    for text in ("待处理告警:7", "新增:2", "撤销:3", "10,000.00 元", "2026-03-01 16:00",
                 "110105", "死亡后发放"):
        assert text in msg.markdown
    assert not any(looks_like_citizen_id(w) for w in msg.markdown.split())


@given(
    statuses=st.lists(st.sampled_from(["OPEN", "ACKNOWLEDGED", "RESOLVED", "WITHDRAWN",
                                       "REOPENED"]), min_size=1, max_size=300),
    max_bytes=st.integers(1000, 20_000),
    max_messages=st.integers(1, 40),
    amounts=st.integers(0, 10**11),
)
@settings(max_examples=60, deadline=None)
def test_any_group_fits_its_limit_and_accounts_for_each_alert_once(
    statuses: list[str], max_bytes: int, max_messages: int, amounts: int
) -> None:
    pending = [Pending(note(i, status=s, amount=amounts), told_open=i % 2 == 0,
                       ever_told=i % 3 == 0) for i, s in enumerate(statuses)]
    said = announcements(pending)
    route = Route("r", None, None, max_messages=max_messages)
    messages = compose_group(route, "110105", "AMOUNT_MISMATCH", said, max_bytes=max_bytes,
                             console="https://console.example")
    assert len(messages) <= max_messages
    assert all(len(m.markdown.encode()) <= max_bytes for m in messages)
    assert sorted(ln.alert_id for m in messages for ln in m.lines) == sorted(
        n.alert_id for n, _ in said)
    # the same pending versions in any order say the same
    assert announcements(reversed(pending)) == said


def test_settings_refuse_a_bad_zone_or_console_url() -> None:
    from pydantic import ValidationError

    from humiao.notifier.settings import NotifierSettings

    assert NotifierSettings(humiao_notify_timezone="Asia/Urumqi").humiao_notify_timezone
    with pytest.raises(ValidationError, match="humiao_notify_timezone"):
        NotifierSettings(humiao_notify_timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="humiao_console_url"):
        NotifierSettings(humiao_console_url="javascript:alert(1)")
