"""Metric helpers the services share, so each kind of series is measured one way.

- `CallMetrics`: `humiao_<service>_calls_total{method,code}` and
  `humiao_<service>_call_duration_seconds{method}`, recorded by decorating servicer methods.
  The code is the status the call really ended with (read back from the context after an
  abort), so it agrees with what the client saw.
- `PoolGauge`: `humiao_<service>_db_pool_connections_in_use`, computed at scrape time from
  the asyncpg pool, so it never goes stale and costs nothing between scrapes.

Labels are method names and status code names only: small fixed sets.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import grpc
import prometheus_client as prom

S = TypeVar("S")
Q = TypeVar("Q")
R = TypeVar("R")

#: From a millisecond (an indexed read) to tens of seconds (a large batch or a long summary).
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def final_code(
    context: grpc.aio.ServicerContext, exc: BaseException | None
) -> grpc.StatusCode:
    """The status a call ends with, given how its handler finished."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED  # the client went away (or the server is stopping)
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code  # set by abort() or set_code()
    if exc is not None:
        return grpc.StatusCode.UNKNOWN  # what grpc answers for an uncaught exception
    return grpc.StatusCode.OK


class CallMetrics:
    """Calls by method and status code, and their duration, for one service."""

    def __init__(
        self, service: str, what: str, buckets: Sequence[float] = CALL_BUCKETS
    ) -> None:
        self.calls = prom.Counter(
            f"humiao_{service}_calls_total",
            f"Calls to the {what} service by gRPC method and status code",
            ["method", "code"],
        )
        self.seconds = prom.Histogram(
            f"humiao_{service}_call_duration_seconds",
            f"Time to answer one {what} call (unary and client-streaming calls; "
            "server streams are counted, not timed)",
            ["method"],
            buckets=tuple(buckets),
        )

    def record(self, method: str, code: grpc.StatusCode, seconds: float | None = None) -> None:
        self.calls.labels(method, code.name).inc()
        if seconds is not None:
            self.seconds.labels(method).observe(seconds)

    def unary(
        self, fn: Callable[[S, Q, grpc.aio.ServicerContext], Awaitable[R]]
    ) -> Callable[[S, Q, grpc.aio.ServicerContext], Awaitable[R]]:
        """Count and time a method answering once (unary or client-streaming request)."""
        method = fn.__name__

        @functools.wraps(fn)
        async def wrapper(self_: S, request: Q, context: grpc.aio.ServicerContext) -> R:
            started = time.perf_counter()
            failure: BaseException | None = None
            try:
                return await fn(self_, request, context)
            except BaseException as exc:
                failure = exc
                raise
            finally:
                self.record(method, final_code(context, failure), time.perf_counter() - started)

        return wrapper

    def streaming(
        self, fn: Callable[[S, Q, grpc.aio.ServicerContext], AsyncIterator[R]]
    ) -> Callable[[S, Q, grpc.aio.ServicerContext], AsyncIterator[R]]:
        """Count a server-streaming method when its stream ends (streams are not timed:
        a watch lasts as long as the client wants)."""
        method = fn.__name__

        @functools.wraps(fn)
        async def wrapper(
            self_: S, request: Q, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[R]:
            failure: BaseException | None = None
            try:
                async for item in fn(self_, request, context):
                    yield item
            except BaseException as exc:
                failure = exc
                raise
            finally:
                self.record(method, final_code(context, failure))

        return wrapper


class SizedPool(Protocol):
    """What PoolGauge reads of an asyncpg.Pool."""

    def get_size(self) -> int: ...

    def get_idle_size(self) -> int: ...


class PoolGauge:
    """`humiao_<service>_db_pool_connections_in_use`: open connections not idle, read from
    the pool at scrape time. 0 until a pool is tracked (e.g. PostgreSQL not reached yet)."""

    def __init__(self, service: str) -> None:
        self._pool: SizedPool | None = None
        self.gauge = prom.Gauge(
            f"humiao_{service}_db_pool_connections_in_use",
            "PostgreSQL connections of the pool currently in use",
        )
        self.gauge.set_function(self.in_use)

    def track(self, pool: SizedPool | None) -> None:
        self._pool = pool

    def in_use(self) -> float:
        pool = self._pool
        if pool is None:
            return 0.0
        return float(max(0, pool.get_size() - pool.get_idle_size()))
