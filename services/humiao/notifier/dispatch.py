"""Sending queued messages, in order, per receiver, within the receiver's rate limits.

A message is sent inside a transaction that holds the receiver's advisory lock (one
sender per receiver across processes) and is marked sent in that transaction. A crash
after the receiver accepted it and before the commit sends it once more on restart,
with the same message id (webhook header, e-mail Message-ID) for receivers that
deduplicate. Rate limits are respected by waiting, never by dropping; "slow down"
answers back off for the time the API asks; other failures back off exponentially and
are retried, counted, without end (the backlog and failure alerts call an operator).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field

import asyncpg

from humiao.adapters.notify.base import Outcome, Sender
from humiao.domain.notify import SendWindow, retry_delay
from humiao.domain.notify_text import Message
from humiao.notifier import store
from humiao.notifier.clock import Clock
from humiao.notifier.metrics import NotifierMetrics

log = logging.getLogger(__name__)

#: How long an idle receiver waits before looking at its queue again.
IDLE_SECONDS = 0.5


def receiver_lock(name: str) -> int:
    """A stable 63-bit advisory lock key per receiver name."""
    return int.from_bytes(hashlib.sha256(b"humiao-notify|" + name.encode()).digest()[:8],
                          "big") >> 1


@dataclass
class Dispatcher:
    pool: asyncpg.Pool
    senders: dict[str, Sender]
    clock: Clock
    metrics: NotifierMetrics
    windows: dict[str, SendWindow] = field(default_factory=dict)
    nudge: asyncio.Event = field(default_factory=asyncio.Event)

    async def restore(self) -> None:
        """Rebuild each receiver's rate window from its last sends (kept across restarts)."""
        async with self.pool.acquire() as conn:
            for name, sender in self.senders.items():
                window = SendWindow(sender.limits)
                keep = max((limit.count for limit in sender.limits), default=0)
                for when in await store.recent_sends(conn, name, keep) if keep else []:
                    window.record(when)
                self.windows[name] = window

    async def step(self, name: str) -> float | None:
        """Try to send the receiver's next message. Returns seconds to wait before the
        next step (0: go on at once), or None when its queue is empty."""
        sender = self.senders[name]
        window = self.windows.setdefault(name, SendWindow(sender.limits))
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)",
                                       receiver_lock(name)):
                return IDLE_SECONDS  # another process sends for this receiver now
            row = await store.next_unsent(conn, name)
            if row is None:
                return None
            now = self.clock.now()
            if row["next_attempt_at"] > now:
                return (row["next_attempt_at"] - now).total_seconds()
            ready = window.ready_at(now)
            if ready > now:
                self.metrics.rate_limited.labels(name).inc()
                return (ready - now).total_seconds()
            if row["attempts"]:
                self.metrics.retried.labels(name).inc()
            result = await sender.send(Message.from_json(row["content"]), row["id"])
            window.record(now)
            if result.outcome is Outcome.OK:
                await store.mark_sent(conn, row["id"], now)
                self.metrics.sent.labels(name).inc()
                return 0.0
            if result.outcome is Outcome.SLOW_DOWN:
                self.metrics.rate_limited.labels(name).inc()
                delay = dt.timedelta(seconds=result.backoff or 60.0)
            else:
                self.metrics.failed.labels(name).inc()
                delay = retry_delay(row["attempts"] + 1)
            await store.mark_failed(conn, row["id"], now + delay, result.code)
        log.warning("receiver=%s send %s code=%s; next attempt in %.0fs",
                    name, result.outcome.value, result.code, delay.total_seconds())
        return delay.total_seconds()

    async def run_receiver(self, name: str, stop: asyncio.Event) -> None:
        backoff = 0.0
        while not stop.is_set():
            try:
                wait = await self.step(name)
                backoff = 0.0
            except Exception as exc:  # PostgreSQL away, or a bug: the receiver's loop goes on
                backoff = min(30.0, max(0.5, backoff * 2))
                log.warning("receiver=%s dispatch failed (%s); retrying in %.1fs",
                            name, type(exc).__name__, backoff)
                wait = backoff
            if wait is None:
                await self._idle(stop)
            elif wait > 0:
                await self.clock.sleep(min(wait, 60.0), stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for new messages (a nudge after a flush) or the idle interval."""
        self.nudge.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.nudge.wait())]
        _, pending = await asyncio.wait(waits, timeout=IDLE_SECONDS,
                                        return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        await self.restore()
        await asyncio.gather(*(self.run_receiver(n, stop) for n in self.senders))
