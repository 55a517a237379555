"""The notifier's engine and dispatcher on the real PostgreSQL and local API emulators,
on a clock the test moves (minutes of rate-limited sending in a second).

The feed is replaced by batches built as the Kafka adapter builds them; the Kafka path
itself is covered by test_notifier_kill.py."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence

import asyncpg
import httpx
import prometheus_client as prom
import pytest
from notify_emulators import Emulator
from notify_support import (
    FakeClock,
    Partition,
    alert_id,
    child_id,
    ids_in,
    insert_alerts,
    version,
)

from humiao.adapters.alert_feed import FeedRecord
from humiao.adapters.db import create_pool
from humiao.domain.identity import mask_id
from humiao.notifier.dispatch import Dispatcher
from humiao.notifier.engine import Fenced, Notifier
from humiao.notifier.metrics import NotifierMetrics
from humiao.notifier.receivers import build_senders
from humiao.notifier.routes import RoutingTable, parse_routes

pytestmark = pytest.mark.integration
CONSOLE = "https://console.example"
ALERT_LINK = re.compile(r"/alerts/(A[0-9a-f]{24})\)")


def routes(url: str, *, wait: str = "30s", interval: str = "5m", digest: str = "") -> RoutingTable:
    return parse_routes(f"""
[receivers.district]
kind = "wecom"
url = "{url}"

[[routes]]
regions = ["110105"]
codes = "*"
receiver = "district"
group_wait = "{wait}"
group_interval = "{interval}"
max_messages = 1000
{digest}
""")


@pytest.fixture
def wecom() -> Iterator[Emulator]:
    emu = Emulator("wecom")
    yield emu
    emu.stop()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


class Rig:
    def __init__(self, pool: asyncpg.Pool, table: RoutingTable, clock: FakeClock,
                 client: httpx.AsyncClient) -> None:
        self.metrics = NotifierMetrics(prom.CollectorRegistry())
        senders = build_senders(table.receivers, client=client, console=CONSOLE)
        self.engine = Notifier(pool, table, clock, self.metrics, "humiao-notifier", "alerts",
                               {n: s.max_bytes for n, s in senders.items()}, CONSOLE)
        self.dispatcher = Dispatcher(pool, senders, clock, self.metrics)
        self.clock = clock

    async def drain(self, receiver: str = "district") -> None:
        """Send everything queued, sleeping on the fake clock as the service would."""
        while (wait := await self.dispatcher.step(receiver)) is not None:
            await self.clock.sleep(wait)


def announced(emu: Emulator) -> Counter[str]:
    return Counter(
        a for r in emu.received for a in ALERT_LINK.findall(r.body["markdown"]["content"])
    )


async def started(pool: asyncpg.Pool, wecom: Emulator, alerts: int) -> FakeClock:
    """A fake clock the WeCom emulator counts on, and `alerts` alerts in the table."""
    clock = FakeClock()
    wecom.now = clock.now
    wecom.start()
    async with pool.acquire() as conn:
        await insert_alerts(conn, range(alerts))
    return clock


async def test_a_burst_of_2000_keeps_wecoms_limit_and_announces_each_once(
    pool: asyncpg.Pool, wecom: Emulator
) -> None:
    clock = await started(pool, wecom, 2000)
    part = Partition()
    async with httpx.AsyncClient(timeout=5) as client:
        rig = Rig(pool, routes(wecom.url), clock, client)
        for start in range(0, 2000, 500):
            await rig.engine.ingest(part.batch([version(i) for i in range(start, start + 500)]))
            clock.advance(1)
        assert await rig.engine.flush_due() == 0  # group_wait not over yet
        clock.advance(30)
        queued = await rig.engine.flush_due()
        assert queued >= 2000 * 100 // 4096  # split to fit 4,096 bytes
        wecom.fail_next(45009)  # WeCom says "slow down" once: back off, lose nothing
        await rig.drain()
        await rig.dispatcher.restore()  # a restart rebuilds the window from what was sent
    times = sorted(r.at for r in wecom.received)
    print(f"burst: 2000 alerts -> {queued} messages over {times[-1] - times[0]} (fake clock)")
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + dt.timedelta(minutes=1)) <= 20
    assert len(wecom.received) == queued
    assert wecom.answers.count(45009) == 1 and wecom.answers.count(40058) == 0
    counts = announced(wecom)
    assert set(counts) == {alert_id(i) for i in range(2000)}
    assert set(counts.values()) == {1}
    assert rig.metrics.rate_limited.labels("district")._value.get() > 0
    assert rig.metrics.sent.labels("district")._value.get() == queued
    bodies = "\n".join(r.body["markdown"]["content"] for r in wecom.received)
    assert ids_in(bodies) == []
    assert mask_id(child_id(7)) in bodies  # the mask is computed in SQL, equal to mask_id
    assert "待处理" not in bodies and "新增" in bodies and "110105" in bodies


async def test_withdrawn_within_group_wait_is_never_announced_but_after_it_is(
    pool: asyncpg.Pool, wecom: Emulator
) -> None:
    clock = await started(pool, wecom, 20)
    part = Partition()
    async with httpx.AsyncClient(timeout=5) as client:
        rig = Rig(pool, routes(wecom.url, wait="30s", interval="5m"), clock, client)
        await rig.engine.ingest(part.batch([version(i) for i in range(13)]))
        # 0..3 raised and withdrawn within the wait: never announced
        await rig.engine.ingest(part.batch([version(i, 2, "WITHDRAWN") for i in range(4)]))
        clock.advance(31)
        await rig.engine.flush_due()
        await rig.drain()
        assert set(announced(wecom)) == {alert_id(i) for i in range(4, 13)}
        # 4 is withdrawn after it was announced, 5 only acknowledged: the next group says
        # the first, nothing of the second, and waits for the interval
        before = len(wecom.received)
        await rig.engine.ingest(part.batch([version(4, 2, "WITHDRAWN"),
                                            version(5, 2, "ACKNOWLEDGED")]))
        clock.advance(31)
        assert await rig.engine.flush_due() == 0  # group_interval (5m) not over
        clock.advance(300)
        assert await rig.engine.flush_due() == 1
        await rig.drain()
        (last,) = wecom.received[before:]
        text = last.body["markdown"]["content"]
        assert "已撤销" in text and alert_id(4) in text and alert_id(5) not in text
        # a version seen again (a redelivery) changes nothing
        await rig.engine.ingest(part.batch([version(4, 2, "WITHDRAWN"), version(6)]))
        clock.advance(600)
        assert await rig.engine.flush_due() == 0


async def test_a_stale_member_is_fenced(pool: asyncpg.Pool, wecom: Emulator) -> None:
    wecom.start()
    clock = FakeClock()
    async with httpx.AsyncClient(timeout=5) as client:
        rig = Rig(pool, routes(wecom.url), clock, client)
        ahead, stale = Partition(), Partition()
        await rig.engine.ingest(ahead.batch([version(1)]))
        with pytest.raises(Fenced):
            await rig.engine.ingest(stale.batch([version(2)]))


async def test_bad_records_are_counted_and_skipped(pool: asyncpg.Pool, wecom: Emulator) -> None:
    wecom.start()
    clock = FakeClock()
    async with httpx.AsyncClient(timeout=5) as client:
        rig = Rig(pool, routes(wecom.url), clock, client)
        letters: list[tuple[int, str]] = []

        async def dead_letter(bad: Sequence[tuple[FeedRecord, str]]) -> None:
            letters.extend((r.offset, why) for r, why in bad)

        rig.engine.dead_letter = dead_letter
        hostile = [b"\xff\x00garbage", version(1, region="1101059"), version(2, v=0), b""]
        assert await rig.engine.ingest(Partition().batch([*hostile, version(3)])) == 1
        assert rig.metrics.undecodable._value.get() == 4
        assert letters == [(0, "undecodable: not an AlertVersion"), (1, "invalid: region"),
                           (2, "invalid: version"),
                           (3, "invalid: code, status, version, alert_id, region, period")]


async def test_daily_digest_at_local_time(pool: asyncpg.Pool, wecom: Emulator) -> None:
    clock = await started(pool, wecom, 5)  # 2026-03-02 00:00 UTC = 08:00 in Shanghai
    async with httpx.AsyncClient(timeout=5) as client:
        table = routes(wecom.url, digest='digest_at = "08:30"')
        rig = Rig(pool, table, clock, client)
        from zoneinfo import ZoneInfo

        rig.engine.tz = ZoneInfo("Asia/Shanghai")
        part = Partition()
        await rig.engine.ingest(part.batch([version(i) for i in range(5)]))
        await rig.engine.ingest(part.batch([version(0, 2, "RESOLVED")]))
        assert await rig.engine.digests_due() == 0  # 08:00 local
        clock.advance(31 * 60)
        assert await rig.engine.digests_due() == 1
        assert await rig.engine.digests_due() == 0  # once a day
        await rig.drain()
    digest = wecom.received[-1].body["markdown"]["content"]
    assert "每日汇总 2026-03-02" in digest
    assert "待处理告警:4 条" in digest and "办结或撤销:1 条" in digest
    assert f"{(10_001 + 10_002 + 10_003 + 10_004) / 100:,.2f} 元" in digest
