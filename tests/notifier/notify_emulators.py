"""Local HTTP servers that answer like WeCom, DingTalk, Feishu and a signed webhook,
error codes included, and check signatures the way each API documents them (written
here independently of the adapters, so a wrong adapter fails).

Each server keeps what it accepted; `fail_next` scripts error answers; `now` is the
clock the rate limits are counted on (a test's fake clock, or the wall clock).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-request (the SIGKILL test) is expected here


def wall_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Received:
    at: dt.datetime
    body: dict[str, Any]
    headers: dict[str, str]
    query: dict[str, str]


@dataclass
class Emulator:
    kind: str  # wecom | dingtalk | feishu | webhook
    secret: str | None = None
    per_minute: int = 20
    now: Callable[[], dt.datetime] = wall_now
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # every code answered, in order
    scripted: list[int] = field(default_factory=list)
    blocked_until: dt.datetime | None = None
    #: Seconds each answer takes (a slow receiver: a kill lands mid-request more often).
    delay: float = 0.0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Emulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(emulator.delay)
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                status, answer = emulator.answer(raw, dict(self.headers.items()), query)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"emu-{self.kind}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.server_address[1]
        paths = {"wecom": "/cgi-bin/webhook/send?key=KEY",
                 "dingtalk": "/robot/send?access_token=TOKEN",
                 "feishu": "/open-apis/bot/v2/hook/HOOK", "webhook": "/hook"}
        return f"http://127.0.0.1:{port}{paths[self.kind]}"

    def fail_next(self, *codes: int) -> None:
        with self._lock:
            self.scripted.extend(codes)

    # --- answers ------------------------------------------------------------------------

    def answer(self, raw: bytes, headers: dict[str, str], query: dict[str, str]
               ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            now = self.now()
            code = self.scripted.pop(0) if self.scripted else self._check(raw, headers, query, now)
            self.answers.append(code)
            if code == 0:
                body = json.loads(raw)
                self.received.append(Received(now, body, headers, query))
        if self.kind == "webhook":
            return (200 if code == 0 else code), {}
        field_name = "code" if self.kind == "feishu" else "errcode"
        return 200, {field_name: code, "errmsg" if field_name == "errcode" else "msg": "x"}

    def _recent(self, now: dt.datetime, span: dt.timedelta) -> int:
        return sum(1 for r in self.received if r.at > now - span)

    def _check(self, raw: bytes, headers: dict[str, str], query: dict[str, str],
               now: dt.datetime) -> int:
        body = json.loads(raw)
        return getattr(self, f"_check_{self.kind}")(raw, body, headers, query, now)

    def _check_wecom(self, raw: bytes, body: dict[str, Any], headers: dict[str, str],
                     query: dict[str, str], now: dt.datetime) -> int:
        if query.get("key") != "KEY":
            return 93000  # invalid webhook URL
        content = body.get("markdown", {}).get("content", "")
        if body.get("msgtype") != "markdown" or len(content.encode()) > 4096:
            return 40058
        if self._recent(now, dt.timedelta(minutes=1)) >= self.per_minute:
            return 45009
        return 0

    def _check_dingtalk(self, raw: bytes, body: dict[str, Any], headers: dict[str, str],
                        query: dict[str, str], now: dt.datetime) -> int:
        if self.blocked_until is not None and now < self.blocked_until:
            return 130101
        if self.secret is not None:
            ts = query.get("timestamp", "0")
            mac = hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256)
            expected = base64.b64encode(mac.digest()).decode()
            fresh = abs(wall_now().timestamp() * 1000 - int(ts)) < 3600_000
            if query.get("sign") != expected or not fresh:  # parse_qsl already url-decoded
                return 310000
        if body.get("msgtype") != "markdown" or not body["markdown"].get("title"):
            return 300001
        if self._recent(now, dt.timedelta(minutes=1)) >= self.per_minute:
            self.blocked_until = now + dt.timedelta(minutes=10)
            return 130101
        return 0

    def _check_feishu(self, raw: bytes, body: dict[str, Any], headers: dict[str, str],
                      query: dict[str, str], now: dt.datetime) -> int:
        if self.secret is not None:
            ts = body.get("timestamp", "0")
            mac = hmac.new(f"{ts}\n{self.secret}".encode(), b"", hashlib.sha256)
            if body.get("sign") != base64.b64encode(mac.digest()).decode():
                return 19021
        if self._recent(now, dt.timedelta(minutes=1)) >= self.per_minute:
            return 11232
        return 0

    def _check_webhook(self, raw: bytes, body: dict[str, Any], headers: dict[str, str],
                       query: dict[str, str], now: dt.datetime) -> int:
        if self.secret is not None:
            ts = headers.get("X-Humiao-Timestamp", "")
            mac = hmac.new(self.secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256)
            if headers.get("X-Humiao-Signature") != "sha256=" + mac.hexdigest():
                return 401
        return 0 if body.get("version") == "4" else 400
