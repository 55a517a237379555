"""Server-side sessions: the cookie holds a random id, never the desk token.

A session ends after an idle time and, whatever happens, 12 hours after sign-in; the
number of sessions is bounded so that a flood of sign-ins cannot grow memory without end
(the oldest goes first). Sessions live in the console's memory: a restart signs everyone
out, and a deployment runs one console replica (or sticky sessions).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_AGE_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
#: Live-update streams one session may hold open at once (one per open queue tab).
MAX_STREAMS_PER_SESSION = 4


@dataclass
class Session:
    sid: str
    token: str
    name: str
    role: str
    regions: tuple[str, ...]
    all_regions: bool
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    streams: int = 0

    def csrf_ok(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf, offered or "")

    @property
    def may_work(self) -> bool:
        return self.role in ("investigator", "supervisor")

    @property
    def supervises(self) -> bool:
        return self.role == "supervisor"


class SessionStore:
    def __init__(self, idle_seconds: float, *, max_sessions: int = MAX_SESSIONS) -> None:
        self.idle = idle_seconds
        self.max_sessions = max_sessions
        self._now = time.monotonic
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, token: str, name: str, role: str, regions: tuple[str, ...],
               all_regions: bool) -> Session:
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        session = Session(sid, token, name, role, regions, all_regions)
        session.created = session.seen = self._now()
        self._sessions[sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 64:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self._now()
        if now - session.seen > self.idle or now - session.created > MAX_AGE_SECONDS:
            self._sessions.pop(sid, None)
            return None
        session.seen = now
        self._sessions.move_to_end(sid)
        return session

    def drop(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)
