"""The live feed behind WatchAlerts: alert_versions in seq order, with no gaps.

`alert_versions.seq` is a bigserial: numbers are handed out when rows are inserted,
but transactions commit in another order. A reader that saw seq 11 committed and
moved its cursor past 10 would lose 10 if 10's transaction commits a moment later.
So the feed keeps a *horizon*: every seq at or below it is final (committed, or
never will be). It advances through contiguous seqs; at a hole it stops until the
hole fills, or until it is sure the hole is permanent (a rolled-back insert):

1. poll P1 sees a hole below the highest visible seq U. Whoever holds the hole's
   number called nextval before U's row was inserted, so before P1's snapshot;
2. the next poll P2 (at least one poll interval later) records the transactions in
   progress in its snapshot (pg_current_snapshot() xip list): any holder of a seq
   <= U that has not finished is among them, its xid assigned by then;
3. once none of those is still in progress, every hole <= U is permanent: skip them.

Holes are rare (rollbacks, crashes), so the extra wait costs nothing in practice,
and a transaction in flight only delays the feed, never loses a row. One feed per
process polls the table every `poll_interval` (one indexed query); watchers share
it through a bounded buffer and read older history straight from the table (all of
which is below the horizon, so final).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from humiao.api.alerts.v1 import alerts_pb2
from humiao.desk.metrics import DeskMetrics

log = logging.getLogger(__name__)

_FETCH = (
    "SELECT v.seq, v.payload, a.child_id FROM alert_versions v"
    " JOIN alerts a ON a.alert_id = v.alert_id"
)


@dataclass(frozen=True, slots=True)
class FeedItem:
    seq: int
    version: alerts_pb2.AlertVersion
    #: Whole; the servicer masks it before sending.
    child_id: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """pg_current_snapshot(): xmin, xmax and the transactions in progress."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def finished(self, xid: int) -> bool:
        return xid < self.xmax and xid not in self.xip


def _item(row: asyncpg.Record) -> FeedItem:
    version = alerts_pb2.AlertVersion()
    version.ParseFromString(row["payload"])
    return FeedItem(row["seq"], version, row["child_id"])


class ChangeFeed:
    """Shared, gap-free tail of alert_versions for every watcher of this process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        poll_interval: float = 0.2,
        buffer_size: int = 5000,
        batch: int = 2000,
        startup_window: int = 10_000,
        metrics: DeskMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics or DeskMetrics()
        self.poll_interval = poll_interval
        self._batch = batch
        self._startup_window = startup_window
        self._buffer: deque[FeedItem] = deque()
        self._buffer_size = buffer_size
        #: Every seq in (floor, horizon] that exists is in the buffer.
        self._floor = 0
        self.horizon = 0
        self._ready = asyncio.Event()
        self._advanced = asyncio.Event()
        # Hole state: (highest seq seen when the hole appeared, blockers or None yet).
        self._hole_upto: int | None = None
        self._hole_blockers: frozenset[int] | None = None
        #: Set when the feed stops: watchers end their streams (clients resume elsewhere).
        self.closed = False
        #: Completed polls (tests wait on it instead of sleeping).
        self.polls = 0

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. Failures are logged and retried (the DB may blink)."""
        try:
            while not stop.is_set():
                try:
                    if not self._ready.is_set():
                        await self._start()
                    await self.poll()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("alert feed poll failed: %s", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
        finally:
            self.close()

    def close(self) -> None:
        self.closed = True
        self._advanced.set()

    async def _start(self) -> None:
        top = await self._pool.fetchval("SELECT coalesce(max(seq), 0) FROM alert_versions")
        # Holes in the last window are re-checked like any other; older ones count as final.
        self.horizon = self._floor = max(0, int(top) - self._startup_window)
        self._ready.set()

    async def poll(self) -> int:
        """Advance the horizon as far as is safe; return how many rows were added."""
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            snapshot = Snapshot.parse(await conn.fetchval("SELECT pg_current_snapshot()::text"))
            rows = await conn.fetch(
                f"{_FETCH} WHERE v.seq > $1 ORDER BY v.seq LIMIT $2", self.horizon, self._batch
            )
        accepted: list[FeedItem] = []
        expected = self.horizon + 1
        highest = rows[-1]["seq"] if rows else 0
        for row in rows:
            seq = row["seq"]
            if seq != expected and not self._hole_is_permanent(seq, highest, snapshot):
                break
            accepted.append(_item(row))
            expected = seq + 1
        else:
            if self._hole_upto is not None and expected > self._hole_upto:
                self._hole_upto = self._hole_blockers = None
        if accepted:
            self._append(accepted)
        self.polls += 1
        return len(accepted)

    def _hole_is_permanent(self, seq: int, highest: int, snapshot: Snapshot) -> bool:
        """Decide about the hole just below `seq` (see the module docstring)."""
        if self._hole_upto is None:
            self._hole_upto = highest  # step 1: first seen now
            return False
        if self._hole_blockers is None:
            self._hole_blockers = snapshot.xip  # step 2: who may still hold a number
            return False
        if seq <= self._hole_upto and all(snapshot.finished(x) for x in self._hole_blockers):
            return True  # step 3
        if seq > self._hole_upto:  # a newer hole: start over for it
            self._hole_upto, self._hole_blockers = highest, None
        return False

    def _append(self, items: Sequence[FeedItem]) -> None:
        self._buffer.extend(items)
        while len(self._buffer) > self._buffer_size:
            self._floor = self._buffer.popleft().seq
        self.horizon = items[-1].seq
        self._metrics.feed_advanced(self.horizon)
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    async def wait_beyond(self, cursor: int, timeout: float) -> bool:
        """Wait until the horizon passes `cursor` (True) or `timeout` elapses (False)."""
        if self.horizon > cursor or self.closed:
            return True
        event = self._advanced
        try:
            await asyncio.wait_for(event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return self.horizon > cursor

    async def read_after(self, cursor: int, limit: int = 1000) -> list[FeedItem]:
        """Final items with seq > cursor (at most up to the horizon), oldest first."""
        horizon = self.horizon
        if cursor >= horizon:
            return []
        if cursor >= self._floor:
            seqs = [item.seq for item in self._buffer]
            start = bisect.bisect_right(seqs, cursor)
            return list(self._buffer)[start : start + limit]
        rows = await self._pool.fetch(
            f"{_FETCH} WHERE v.seq > $1 AND v.seq <= $2 ORDER BY v.seq LIMIT $3",
            cursor,
            horizon,
            limit,
        )
        return [_item(r) for r in rows]
