"""Page tokens of ListAlerts: the keyset position after a page, bound to its filter and
sort, and signed, so that a token the service did not issue is INVALID_ARGUMENT before
any of its content reaches SQL (a forged value of the wrong type or size used to end
as INTERNAL)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import asyncpg

from humiao.desk import queries
from humiao.desk.errors import invalid

_INT64 = 2**63 - 1


class PageTokens:
    def __init__(self, secret: bytes) -> None:
        # Its own key, derived from the pseudonym key (never the same HMAC input twice).
        self._key = hmac.new(secret, b"humiao-desk-page-token-v1", hashlib.sha256).digest()

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()[:32]

    def issue(self, fingerprint: str, sort: str, row: asyncpg.Record) -> str:
        value: Any = row[queries.SORT_COLUMNS[sort]]
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        raw = json.dumps([fingerprint, value, row["alert_id"]], separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return f"{body}.{self._sign(body.encode())}"

    def read(self, token: str, fingerprint: str, sort: str) -> tuple[Any, str]:
        """The keyset position of a token this service issued for this filter and sort."""
        body, _, signature = token.partition(".")
        if not hmac.compare_digest(self._sign(body.encode()), signature):
            raise invalid("page_token", "is not a token this service issued")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            mark, value, alert_id = json.loads(raw)
        except (ValueError, TypeError) as exc:  # signed by us, so only after a key change
            raise invalid("page_token", "is not a token this service issued") from exc
        if mark != fingerprint:
            raise invalid("page_token", "belongs to another filter or sort order")
        return _typed(value, sort), str(alert_id)


def _typed(value: Any, sort: str) -> Any:
    try:
        if sort == "raised_at":
            return dt.datetime.fromisoformat(str(value))
        if sort == "amount" and isinstance(value, int) and abs(value) <= _INT64:
            return value
        if sort == "period" and isinstance(value, str):
            return value
    except ValueError:
        pass
    raise invalid("page_token", "is not a token this service issued")
