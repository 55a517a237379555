"""Where kafka-python (blocking) meets asyncio, and how every producer is built.

Two directions, one rule each:

- asyncio code calling kafka-python (the ingest publisher, the outbox relay, progress
  reads) awaits `BlockingCalls`: the call runs on a thread pool of the caller's own
  (one thread keeps one client's calls in order), never on the event loop and never on
  asyncio's shared default executor, so a client's threads end when the client does.
- a thread that blocks on kafka-python (the verifier's poll loop) runs its asyncio work
  (asyncpg) on a `PrivateLoop` of its own: batches go one after the other there, and
  the service's main loop (gRPC health, metrics, the outbox) never waits on Kafka.

`new_producer` is the one place a KafkaProducer is built.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kafka import KafkaProducer
from kafka.net.compat import KafkaNetClient

from humiao.config import kafka_security

log = logging.getLogger(__name__)
T = TypeVar("T")


class BlockingCalls:
    """Blocking calls awaited from the event loop, on `workers` threads of our own."""

    def __init__(self, name: str, workers: int = 1) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def shutdown(self, wait: bool = True) -> None:
        """End the threads once the calls under way are done (`wait`: block till then)."""
        self._executor.shutdown(wait=wait)


async def call_once(name: str, fn: Callable[[], T]) -> T:
    """One blocking call on a short-lived thread, ended before this returns."""
    calls = BlockingCalls(name)
    try:
        return await calls(fn)
    finally:
        calls.shutdown()


class PrivateLoop:
    """An event loop owned by one blocking thread, which runs coroutines to completion
    on it (`run`). Create and use it on that thread only."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


def new_producer(bootstrap: str, client_id: str, **config: Any) -> KafkaProducer:
    """Blocking: a connected KafkaProducer (raises KafkaError if no broker answers).
    A failed construction leaves its network client open (socket, selector, wakeup
    pipe): it is closed here, or every failed attempt during an outage would leak one."""
    clients: list[Any] = []

    def client(**configs: Any) -> Any:
        made = KafkaNetClient(**configs)
        clients.append(made)
        return made

    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, kafka_client=client,
            **kafka_security(), **config
        )
    except BaseException:
        for made in clients:
            try:
                made.close()
            except Exception as exc:  # the construction error is the one to report
                log.debug("closing a half-built kafka client: %s", type(exc).__name__)
        raise
