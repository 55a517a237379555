"""The notifier's work, transaction by transaction: take a batch of alert versions in
(state and offsets together), turn due groups into queued messages, queue digests.

Each step is one PostgreSQL transaction, so a crash at any instant leaves either all of
a step or none of it: a version is queued once, a group becomes its messages once.
Sending is the dispatcher's (humiao.notifier.dispatch).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import asyncpg
from google.protobuf.message import DecodeError

from humiao.adapters import offsets
from humiao.adapters.alert_feed import FeedBatch, FeedRecord
from humiao.adapters.alerts_codec import alert_version_from_bytes
from humiao.api.alerts.v1 import alerts_pb2
from humiao.domain.labels import CODES_ZH, STATUS_ZH
from humiao.domain.notify import (
    Note,
    Pending,
    Route,
    announcements,
    digest_due,
    routes_for,
)
from humiao.domain.notify_text import compose_digest, compose_group
from humiao.notifier import store
from humiao.notifier.clock import Clock
from humiao.notifier.metrics import NotifierMetrics
from humiao.notifier.routes import RoutingTable

log = logging.getLogger(__name__)

_REGION = re.compile(r"^\d{6}$")
_PERIOD = re.compile(r"^\d{4}-\d{2}$")
_ALERT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Markdown a receiver kind takes in one message (unknown kinds: WeCom's, the smallest).
DEFAULT_MAX_BYTES = 4096


class Fenced(Exception):
    """The stored offsets moved under us (another member took the partition)."""


def decode_note(value: bytes) -> Note | str:
    """An alert version as a Note, or why it is not one we can trust (sizes and shapes
    are checked: the alerts topic is input like any other)."""
    try:
        msg = alert_version_from_bytes(value)
        code = alerts_pb2.AlertCode.Name(msg.code)
        status = alerts_pb2.AlertStatus.Name(msg.status)
    except (DecodeError, ValueError):
        return "undecodable: not an AlertVersion"
    problems = [
        ("code", code in CODES_ZH), ("status", status in STATUS_ZH),
        ("version", msg.version >= 1), ("alert_id", bool(_ALERT_ID.match(msg.alert_id))),
        ("region", bool(_REGION.match(msg.region))), ("period", bool(_PERIOD.match(msg.period))),
        ("amount_at_risk_fen", 0 <= msg.amount_at_risk_fen < 10**12),
    ]
    bad = [name for name, ok in problems if not ok]
    if bad:
        return "invalid: " + ", ".join(bad)
    changed = msg.changed_at.ToDatetime(tzinfo=dt.UTC) if msg.HasField("changed_at") else None
    return Note(msg.alert_id, msg.version, code, status, msg.region, msg.period,
                msg.amount_at_risk_fen, "", changed or dt.datetime.fromtimestamp(0, dt.UTC))


def latest_per_alert(notes: Sequence[Note]) -> list[Note]:
    latest: dict[str, Note] = {}
    for note in notes:
        if note.alert_id not in latest or latest[note.alert_id].version < note.version:
            latest[note.alert_id] = note
    return list(latest.values())


async def _nowhere(letters: Sequence[tuple[FeedRecord, str]]) -> None:
    """No dead-letter topic (tests without Kafka): counted and logged only."""


@dataclass
class Notifier:
    pool: asyncpg.Pool
    table: RoutingTable
    clock: Clock
    metrics: NotifierMetrics
    group: str
    topic: str
    #: Markdown bytes per message by receiver name (from its adapter).
    max_bytes: dict[str, int]
    console: str | None = None
    tz: dt.tzinfo = dt.UTC
    #: Where records that are not alert versions go (the feed's dead-letter topic).
    dead_letter: Callable[[Sequence[tuple[FeedRecord, str]]], Awaitable[None]] = _nowhere
    #: route key -> last local day its digest was queued, as far as this process knows
    _digested: dict[str, dt.date] = field(default_factory=dict)

    async def ingest(self, batch: FeedBatch) -> int:
        """Store a batch's versions in their groups and move the offsets, together.
        Returns how many versions were new. Raises Fenced if another member moved on."""
        decoded = [(r, decode_note(r.value)) for r in batch.records]
        letters = [(r, why) for r, why in decoded if isinstance(why, str)]
        if letters:  # on the dead-letter topic before the offset moves past them
            await self.dead_letter(letters)
            self.metrics.undecodable.inc(len(letters))
            log.warning("%d records are not valid alert versions: dead-lettered", len(letters))
        notes = latest_per_alert([n for _, n in decoded if isinstance(n, Note)])
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await offsets.lock_offsets(conn, self.group, self.topic, list(batch.end))
            if any(stored.get(p, -1) != batch.start.get(p, -1) for p in batch.end):
                raise Fenced(sorted(batch.end))
            masks = await store.child_masks(conn, [n.alert_id for n in notes])
            notes = [replace(n, child_mask=masks.get(n.alert_id, "")) for n in notes]
            fresh = await store.upsert_alerts(conn, notes) if notes else set()
            items = [
                (route, note) for note in notes if note.alert_id in fresh
                for route in routes_for(self.table.routes, note.region, note.code)
            ]
            if items:
                await store.queue_pending(conn, now, items)
            await offsets.save_offsets(conn, self.group, self.topic, batch.end)
        self.metrics.versions.inc(len(batch.records) - len(letters))
        return len(fresh)

    def route_of(self, receiver: str, region: str, code: str) -> Route:
        """The route a group follows now (the file may have changed since it filled)."""
        for route in routes_for(self.table.routes, region, code):
            if route.receiver == receiver:
                return route
        return Route(receiver=receiver, regions=None, codes=None)

    async def flush_due(self) -> int:
        """Turn every group whose time has come into queued messages; returns how many."""
        now = self.clock.now()
        queued = 0
        async with self.pool.acquire() as conn, conn.transaction():
            groups = await store.due_groups(conn, now, sorted(self.table.receivers))
            for g in groups:
                queued += await self._flush_group(conn, now, g["receiver"], g["region"],
                                                  g["code"])
        return queued

    async def _flush_group(
        self, conn: asyncpg.Connection, now: dt.datetime, receiver: str, region: str, code: str
    ) -> int:
        rows = await store.pending_of(conn, receiver, region, code)
        pending = [
            Pending(Note(r["alert_id"], r["version"], r["code"], r["status"], r["region"],
                         r["period"], r["amount_fen"], r["child_mask"], r["changed_at"]),
                    told_open=r["told_open"], ever_told=r["ever_told"])
            for r in rows
        ]
        said = announcements(pending)
        messages = compose_group(
            self.route_of(receiver, region, code), region, code, said,
            max_bytes=self.max_bytes.get(receiver, DEFAULT_MAX_BYTES), console=self.console,
        )
        told = [(n.alert_id, n.version, kind.value in ("new", "reopened")) for n, kind in said]
        await store.settle_group(
            conn, receiver=receiver, region=region, code=code, now=now,
            consumed=[(r["alert_id"], r["pending_version"]) for r in rows], told=told,
            messages=[("group", m.to_json()) for m in messages],
        )
        return len(messages)

    async def digests_due(self) -> int:
        """Queue each route's daily digest once its local time has come (once a day)."""
        now = self.clock.now()
        local = now.astimezone(self.tz)
        queued = 0
        for route in self.table.routes:
            if route.digest_at is None or route.receiver not in self.table.receivers:
                continue
            if digest_due(local, route.digest_at, self._digested.get(route.key)) is None:
                continue  # known done today, or not time yet: no transaction
            async with self.pool.acquire() as conn, conn.transaction():
                last = await store.last_digest(conn, route.key)
                day = digest_due(local, route.digest_at, last)
                if day is None:
                    if last is not None:
                        self._digested[route.key] = last
                    continue
                figures = await store.digest_figures(conn, route, now - dt.timedelta(days=1))
                message = compose_digest(route, figures, day, console=self.console, tz=self.tz)
                await store.queue_message(conn, route.receiver, "digest", message.to_json(), now)
                await store.save_digest_day(conn, route.key, day)
                queued += 1
            self._digested[route.key] = day
        return queued
