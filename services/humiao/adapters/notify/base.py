"""What every receiver adapter shares: the outcome of one send and how an answer is
read. An answer's body is never logged or stored (a receiver may echo the message):
only its status and error code are kept."""

from __future__ import annotations

import enum
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


async def post_json(
    client: httpx.AsyncClient, url: str, body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response | SendResult:
    """POST, or the failure as a result (a network error is a retryable failure)."""
    try:
        if isinstance(body, bytes):
            return await client.post(url, content=body, headers=headers)
        return await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return SendResult(Outcome.FAILED, type(exc).__name__)


def read_code(response: httpx.Response, field: str) -> SendResult | int:
    """The API's numeric error code from a JSON answer, or a result for a bad answer."""
    if response.status_code == 429:
        return SendResult(Outcome.SLOW_DOWN, "http-429", retry_after(response))
    if response.status_code >= 300:
        return SendResult(Outcome.FAILED, f"http-{response.status_code}")
    try:
        data = response.json()
        return int(data.get(field, -1)) if isinstance(data, dict) else -1
    except (ValueError, TypeError):
        return SendResult(Outcome.FAILED, "bad-answer")


def retry_after(response: httpx.Response, default: float = 60.0) -> float:
    try:
        return min(3600.0, max(1.0, float(response.headers.get("retry-after", default))))
    except ValueError:
        return default
