"""A generic webhook: JSON in Alertmanager's webhook payload shape, version "4", so
receivers written for Alertmanager work, signed with HMAC-SHA256 when a secret is set.

Headers: `X-Humiao-Timestamp` (Unix seconds), `X-Humiao-Signature: sha256=<hex of
HMAC-SHA256(secret, "<timestamp>." + body)>` (the timestamp bounds replays), and
`X-Humiao-Message-Id`, the same on every retry of one message, so a receiver can drop
the second copy a crash between its answer and our commit sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from humiao.adapters.notify.base import (
    OK,
    HttpReceiver,
    Outcome,
    SendResult,
    post_json,
    retry_after,
)
from humiao.domain.notify_text import Line, Message, code_zh, yuan

#: Alertmanager's "not ended" time.
_OPEN_END = "0001-01-01T00:00:00Z"


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _alert(line: Line) -> dict[str, Any]:
    firing = line.announce in ("new", "reopened")
    return {
        "status": "firing" if firing else "resolved",
        "labels": {"alertname": line.code, "alert_id": line.alert_id, "region": line.region,
                   "period": line.period, "humiao_status": line.status},
        "annotations": {"summary": code_zh(line.code), "child": line.child_mask,
                        "amount_at_risk": yuan(line.amount_fen),
                        "amount_at_risk_fen": str(line.amount_fen),
                        "version": str(line.version), "announce": line.announce},
        "startsAt": line.changed_at if firing else _OPEN_END,
        "endsAt": _OPEN_END if firing else line.changed_at,
        "generatorURL": line.url,
        "fingerprint": line.alert_id,
    }


def alertmanager_payload(receiver: str, message: Message, console: str) -> dict[str, Any]:
    """Alertmanager webhook payload v4 for one message (digests and tests carry no
    alerts: their text is in commonAnnotations)."""
    group = {"region": message.region, "code": message.code} if message.code else {}
    return {
        "version": "4",
        "groupKey": f"{receiver}/{message.region}/{message.code}" if message.code
        else f"{receiver}/{message.kind}",
        "truncatedAlerts": 0,
        "status": "firing" if message.firing else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": {"kind": message.kind, **group},
        "commonAnnotations": {"title": message.title, "markdown": message.markdown,
                              "part": f"{message.part}/{message.parts}"},
        "externalURL": console,
        "alerts": [_alert(line) for line in message.lines],
    }


class Webhook(HttpReceiver):
    kind = "webhook"
    max_bytes = 256 * 1024

    def __init__(self, name: str, url: str, *, console: str = "", **kwargs: Any) -> None:
        super().__init__(name, url, **kwargs)
        self._console = console

    async def send(self, message: Message, message_id: int) -> SendResult:
        body = json.dumps(
            alertmanager_payload(self.name, message, self._console), ensure_ascii=False
        ).encode()
        headers = {"X-Humiao-Message-Id": str(message_id)}
        if self._secret:
            ts = int(self._wall_clock())
            headers["X-Humiao-Timestamp"] = str(ts)
            headers["X-Humiao-Signature"] = webhook_signature(self._secret, ts, body)
        answer = await post_json(self._client, self._url, body, headers=headers,
                                 timeout=self._timeout)
        if isinstance(answer, SendResult):
            return answer
        if answer.status in (429, 503):
            return SendResult(Outcome.SLOW_DOWN, f"http-{answer.status}", retry_after(answer))
        if answer.status >= 300:
            return SendResult(Outcome.FAILED, f"http-{answer.status}")
        return OK
