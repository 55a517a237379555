"""Helpers of the notifier tests: a clock the test moves, alerts in the shared table
(with real, valid ID numbers, so a leak would be caught), versions as published."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterable, Sequence

import asyncpg

from humiao.adapters.alert_feed import FeedBatch, FeedRecord
from humiao.api.alerts.v1 import alerts_pb2
from humiao.domain.identity import compose_citizen_id, looks_like_citizen_id

T0 = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)
CODES = list(alerts_pb2.AlertCode.keys())[1:]
_ID_SHAPE = re.compile(r"\d{17}[\dX]")


class FakeClock:
    """Time that moves only when someone sleeps (or the test says so)."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.t = start

    def now(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)

    async def sleep(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def child_id(i: int, region: str = "110105") -> str:
    born = dt.date(2010, 1, 1) + dt.timedelta(days=i // 900)
    return compose_citizen_id(region, born, i % 900 + 100)


def ids_in(text: str) -> list[str]:
    """Every valid citizen ID number in `text` (what the privacy scans look for)."""
    return [m for m in _ID_SHAPE.findall(text) if looks_like_citizen_id(m)]


def alert_id(i: int) -> str:
    return f"A{i:024x}"


async def insert_alerts(conn: asyncpg.Connection, ids: Iterable[int], region: str = "110105"
                        ) -> None:
    await conn.executemany(
        "INSERT INTO alerts (alert_id, code, child_key, child_id, region, period, program,"
        " subject, amount_at_risk_fen, evidence_event_ids, explanation_zh, explanation_en,"
        " status, implied, version) VALUES ($1, $2, 'k', $3, $4, '2026-01', NULL, '', $5,"
        " '{}', 'zh', 'en', 'OPEN', true, 1) ON CONFLICT DO NOTHING",
        [(alert_id(i), CODES[i % len(CODES)], child_id(i, region), region, 10_000 + i)
         for i in ids],
    )


def version(i: int, v: int = 1, status: str = "OPEN", region: str = "110105",
            at: dt.datetime = T0) -> bytes:
    msg = alerts_pb2.AlertVersion(
        alert_id=alert_id(i), version=v, code=CODES[i % len(CODES)], status=status,
        child_key="k" * 32, region=region, period="2026-01", amount_at_risk_fen=10_000 + i,
        explanation_zh="zh", explanation_en="en", changed_by="verifier", change_reason="r",
    )
    msg.changed_at.FromDatetime(at)
    return msg.SerializeToString()


class Partition:
    """Builds consecutive batches of one partition, as the feed would hand them over."""

    def __init__(self, part: int = 0) -> None:
        self.part = part
        self.next = 0
        self.stored = -1

    def batch(self, values: Sequence[bytes]) -> FeedBatch:
        records = [FeedRecord(self.part, self.next + k, v) for k, v in enumerate(values)]
        self.next += len(values)
        batch = FeedBatch(records, {self.part: self.stored}, {self.part: self.next})
        self.stored = self.next
        return batch
