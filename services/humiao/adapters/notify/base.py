"""What every receiver adapter shares: the outcome of one send and how an answer is
read. An answer's body is never logged or stored (a receiver may echo the message):
only its status and error code are kept."""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from humiao.domain.notify import RateLimit
from humiao.domain.notify_text import Message


class Outcome(enum.Enum):
    OK = "ok"
    #: The receiver says "too many" or "blocked": wait `backoff` seconds, then the same.
    SLOW_DOWN = "slow_down"
    #: Anything else: retried with exponential backoff, counted as a failure.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    #: The API's error code (or HTTP status, or exception type): short, never content.
    code: str = ""
    #: Seconds to wait before the next attempt (SLOW_DOWN), None: the default backoff.
    backoff: float | None = None


OK = SendResult(Outcome.OK, "0")


class Sender(Protocol):
    """One configured receiver."""

    name: str
    kind: str
    #: Largest Markdown body one message may have (split above it).
    max_bytes: int
    limits: tuple[RateLimit, ...]

    async def send(self, message: Message, message_id: int) -> SendResult: ...


#: What is read of an answer at most: an API answers a few dozen bytes; a hostile or broken
#: receiver must not make us hold megabytes.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """What an HTTP receiver holds: its URL and secret, the shared client, its timeout,
    its rate limit (`default_per_minute`, None: none) and the wall clock it signs with
    (an API rejects a timestamp an hour off, so never the test's clock)."""

    kind = "http"
    max_bytes = 4096
    default_per_minute: int | None = None

    def __init__(
        self, name: str, url: str, *, client: httpx.AsyncClient, secret: str | None = None,
        per_minute: int | None = None, timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._client = client
        self._timeout = timeout
        self._wall_clock = wall_clock
        per = per_minute or self.default_per_minute
        self.limits: tuple[RateLimit, ...] = (
            (RateLimit(per, dt.timedelta(minutes=1)),) if per else ()
        )


async def post_json(
    client: httpx.AsyncClient, url: str, body: dict[str, Any] | bytes, *,
    headers: dict[str, str] | None = None, timeout: float = 10.0,
) -> Answer | SendResult:
    """POST, reading at most MAX_ANSWER_BYTES of the answer; a network error or timeout
    is a retryable failure."""
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        async with client.stream("POST", url, content=content, headers=sent_headers,
                                 timeout=timeout) as response:
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_ANSWER_BYTES:
                    break
            return Answer(response.status_code, dict(response.headers), data[:MAX_ANSWER_BYTES])
    except httpx.HTTPError as exc:
        return SendResult(Outcome.FAILED, type(exc).__name__)


def read_code(answer: Answer, field: str) -> SendResult | int:
    """The API's numeric error code from a JSON answer, or a result for a bad answer."""
    if answer.status == 429:
        return SendResult(Outcome.SLOW_DOWN, "http-429", retry_after(answer))
    if answer.status >= 300:
        return SendResult(Outcome.FAILED, f"http-{answer.status}")
    try:
        data = json.loads(answer.body)
        return int(data.get(field, -1)) if isinstance(data, dict) else -1
    except (ValueError, TypeError):
        return SendResult(Outcome.FAILED, "bad-answer")


def retry_after(answer: Answer, default: float = 60.0) -> float:
    try:
        return min(3600.0, max(1.0, float(answer.headers.get("retry-after", default))))
    except ValueError:
        return default
