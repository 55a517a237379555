"""Group robots: WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书) custom bots.

- WeCom: POST {"msgtype": "markdown", "markdown": {"content"}}; content at most 4,096
  bytes; 20 messages a minute; errcode 45009 = frequency limit, 40058 = bad parameter.
- DingTalk: POST {"msgtype": "markdown", "markdown": {"title", "text"}} to the URL plus
  `&timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(secret, "ts\\nsecret")))>`;
  20 a minute, past that the robot is blocked for 10 minutes (errcode 130101);
  310000 = signature, keyword or IP refused.
- Feishu: POST {"timestamp": "<s>", "sign": base64(HMAC-SHA256(key="ts\\nsecret",
  msg=b"")), "msg_type": "interactive", "card"}; code 19021 = signature check failed,
  11232 = frequency control; 100 a minute and 5 a second.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import urllib.parse
from typing import Any, ClassVar

from humiao.adapters.notify.base import (
    OK,
    HttpReceiver,
    Outcome,
    SendResult,
    post_json,
    read_code,
)
from humiao.domain.notify import RateLimit
from humiao.domain.notify_text import Message


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, URL-encoded, for the query string."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: the string "ts\\nsecret" is the HMAC key, the message empty."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Robot(HttpReceiver):
    """A group robot: one URL, one JSON body per message, an errcode in the answer."""

    kind = "robot"
    code_field = "errcode"
    #: errcodes that mean "too fast" and how long to back off after them (seconds).
    slow_down: ClassVar[dict[int, float]] = {}
    max_bytes = 4096
    default_per_minute = 20

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    async def send(self, message: Message, message_id: int) -> SendResult:
        url, body = self.request(message)
        answer = await post_json(self._client, url, body, timeout=self._timeout)
        if isinstance(answer, SendResult):
            return answer
        code = read_code(answer, self.code_field)
        if isinstance(code, SendResult):
            return code
        if code == 0:
            return OK
        if code in self.slow_down:
            return SendResult(Outcome.SLOW_DOWN, str(code), self.slow_down[code])
        return SendResult(Outcome.FAILED, str(code))


class WeCom(Robot):
    kind = "wecom"
    slow_down: ClassVar[dict[int, float]] = {45009: 60.0}
    max_bytes = 4096

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        return self._url, {"msgtype": "markdown", "markdown": {"content": message.markdown}}


class DingTalk(Robot):
    kind = "dingtalk"
    #: Over the limit the robot is blocked for 10 minutes: wait them out.
    slow_down: ClassVar[dict[int, float]] = {130101: 600.0}
    max_bytes = 18_000  # DingTalk takes 20,000 bytes; a margin for the JSON around it

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        url = self._url
        if self._secret:
            ts = int(self._wall_clock() * 1000)
            url += f"&timestamp={ts}&sign={dingtalk_sign(self._secret, ts)}"
        body = {"msgtype": "markdown", "markdown": {"title": message.title,
                                                     "text": message.markdown}}
        return url, body


class Feishu(Robot):
    kind = "feishu"
    code_field = "code"
    slow_down: ClassVar[dict[int, float]] = {11232: 60.0}
    max_bytes = 18_000  # Feishu takes a 20 KB request body
    default_per_minute = 100

    def __init__(self, name: str, url: str, **kwargs: Any) -> None:
        super().__init__(name, url, **kwargs)
        self.limits = (*self.limits, RateLimit(5, dt.timedelta(seconds=1)))

    def request(self, message: Message) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": message.title}},
                "elements": [{"tag": "markdown", "content": message.markdown}],
            },
        }
        if self._secret:
            ts = int(self._wall_clock())
            body = {"timestamp": str(ts), "sign": feishu_sign(self._secret, ts), **body}
        return self._url, body
