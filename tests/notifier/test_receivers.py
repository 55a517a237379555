"""Each receiver adapter against a local server that answers like the real API, error
codes included, and an aiosmtpd SMTP server for e-mail."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from notify_emulators import Emulator

from humiao.adapters.notify.base import Outcome
from humiao.adapters.notify.email import Email
from humiao.adapters.notify.robots import DingTalk, Feishu, WeCom
from humiao.adapters.notify.webhook import Webhook
from humiao.domain.notify import Announce, Note, Route
from humiao.domain.notify_text import Message, compose_group, compose_test

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def group_message() -> Message:
    notes = [
        (Note(f"A{i:024d}", 1, "PAID_AFTER_DEATH", "OPEN", "110105", "2026-02", 50_000,
              "110105***********X", T0), Announce.NEW)
        for i in range(3)
    ]
    (msg,) = compose_group(Route("r", None, None), "110105", "PAID_AFTER_DEATH", notes,
                           max_bytes=4096, console="https://console.example")
    return msg


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


@pytest.fixture
def emulators() -> Iterator[list[Emulator]]:
    started: list[Emulator] = []
    yield started
    for emu in started:
        emu.stop()


def run(emulators: list[Emulator], kind: str, **kwargs: Any) -> Emulator:
    emu = Emulator(kind, **kwargs).start()
    emulators.append(emu)
    return emu


async def test_wecom_markdown_and_its_error_codes(
    client: httpx.AsyncClient, emulators: list[Emulator]
) -> None:
    emu = run(emulators, "wecom")
    robot = WeCom("w", emu.url, client=client)
    assert (await robot.send(group_message(), 1)).outcome is Outcome.OK
    assert emu.received[0].body["msgtype"] == "markdown"
    assert "死亡后发放" in emu.received[0].body["markdown"]["content"]
    emu.fail_next(45009)
    slow = await robot.send(group_message(), 2)
    assert (slow.outcome, slow.code, slow.backoff) == (Outcome.SLOW_DOWN, "45009", 60.0)
    emu.fail_next(40058)
    bad = await robot.send(group_message(), 3)
    assert (bad.outcome, bad.code) == (Outcome.FAILED, "40058")
    # a message over 4,096 bytes is refused by the emulator as by WeCom
    huge = Message("test", "t", "字" * 2000)
    assert (await robot.send(huge, 4)).code == "40058"
    assert robot.limits[0].count == 20


async def test_dingtalk_signs_and_backs_off_when_blocked(
    client: httpx.AsyncClient, emulators: list[Emulator]
) -> None:
    emu = run(emulators, "dingtalk", secret="SECtest")
    robot = DingTalk("d", emu.url, client=client, secret="SECtest")
    assert (await robot.send(group_message(), 1)).outcome is Outcome.OK
    sent = emu.received[0]
    assert sent.body["markdown"]["title"].startswith("【护苗】")
    assert "timestamp" in sent.query and "sign" in sent.query
    wrong = DingTalk("d", emu.url, client=client, secret="SECwrong")
    refused = await wrong.send(group_message(), 2)
    assert (refused.outcome, refused.code) == (Outcome.FAILED, "310000")
    emu.fail_next(130101)
    blocked = await robot.send(group_message(), 3)
    assert (blocked.outcome, blocked.backoff) == (Outcome.SLOW_DOWN, 600.0)


async def test_feishu_signs_in_the_body_and_its_error_codes(
    client: httpx.AsyncClient, emulators: list[Emulator]
) -> None:
    emu = run(emulators, "feishu", secret="fs-secret", per_minute=100)
    bot = Feishu("f", emu.url, client=client, secret="fs-secret")
    assert (await bot.send(group_message(), 1)).outcome is Outcome.OK
    body = emu.received[0].body
    assert body["msg_type"] == "interactive" and body["timestamp"].isdigit()
    assert "死亡后发放" in body["card"]["elements"][0]["content"]
    wrong = Feishu("f", emu.url, client=client, secret="nope")
    refused = await wrong.send(group_message(), 2)
    assert (refused.outcome, refused.code) == (Outcome.FAILED, "19021")
    emu.fail_next(11232)
    slow = await bot.send(group_message(), 3)
    assert (slow.outcome, slow.code) == (Outcome.SLOW_DOWN, "11232")
    assert {(lim.count, lim.per.total_seconds()) for lim in bot.limits} == {(100, 60), (5, 1)}


async def test_webhook_is_alertmanager_v4_and_signed(
    client: httpx.AsyncClient, emulators: list[Emulator]
) -> None:
    emu = run(emulators, "webhook", secret="hook-secret")
    hook = Webhook("h", emu.url, client=client, secret="hook-secret",
                   console="https://console.example")
    assert (await hook.send(group_message(), 42)).outcome is Outcome.OK
    got = emu.received[0]
    assert got.headers["X-Humiao-Message-Id"] == "42"
    payload = got.body
    assert payload["version"] == "4" and payload["status"] == "firing"
    assert payload["groupKey"] == "h/110105/PAID_AFTER_DEATH"
    assert payload["groupLabels"] == {"region": "110105", "code": "PAID_AFTER_DEATH"}
    alert = payload["alerts"][0]
    assert alert["labels"]["alertname"] == "PAID_AFTER_DEATH"
    assert alert["annotations"]["child"] == "110105***********X"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"].startswith("https://console.example/alerts/A")
    forged = Webhook("h", emu.url, client=client, secret="other")
    assert (await forged.send(group_message(), 43)).code == "http-401"
    emu.fail_next(429)
    assert (await hook.send(group_message(), 44)).outcome is Outcome.SLOW_DOWN
    emu.fail_next(500)
    assert (await hook.send(group_message(), 45)).outcome is Outcome.FAILED


async def test_unreachable_receiver_is_a_failure_not_a_crash(client: httpx.AsyncClient) -> None:
    robot = WeCom("w", "http://127.0.0.1:9/cgi-bin/webhook/send?key=K", client=client)
    result = await robot.send(group_message(), 1)
    assert result.outcome is Outcome.FAILED and result.code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope.content)
        return "250 OK"


async def test_email_over_smtp() -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = Email("m", host="127.0.0.1", port=port, sender="humiao@example.org",
                     to=["staff@example.org"], tls="none")
        assert (await mail.send(compose_test("m", T0), 7)).outcome is Outcome.OK
        assert (await mail.send(group_message(), 8)).outcome is Outcome.OK
        first, second = (message_from_bytes(m) for m in inbox.mails)
        assert "测试消息" in str(first["Subject"]) or "=?utf-8?" in first["Subject"]
        assert second["Message-ID"] == "<humiao-m-8@example.org>"
        assert "110105***********X" in second.get_payload(decode=True).decode()
        down = Email("m", host="127.0.0.1", port=9, sender="a@b.c", to=["d@e.f"], tls="none")
        assert (await down.send(group_message(), 9)).outcome is Outcome.FAILED
    finally:
        controller.stop()


async def test_a_hostile_or_slow_receiver_is_a_counted_failure(emulators: list[Emulator]) -> None:
    served = 0

    def huge(request: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        return httpx.Response(200, content=b"{" + b" " * (10 * 1024 * 1024))

    async with httpx.AsyncClient(transport=httpx.MockTransport(huge)) as hostile:
        result = await WeCom("w", "https://robot.invalid/send?key=K", client=hostile).send(
            group_message(), 1)
    assert (result.outcome, result.code, served) == (Outcome.FAILED, "bad-answer", 1)
    slow = run(emulators, "wecom", delay=1.0)
    async with httpx.AsyncClient() as client:
        robot = WeCom("w", slow.url, client=client, timeout=0.2)
        timed_out = await robot.send(group_message(), 2)
    assert (timed_out.outcome, timed_out.code) == (Outcome.FAILED, "ReadTimeout")
