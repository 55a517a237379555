"""Notification rules, pure: which receivers an alert version goes to, when a group is
sent, what a group announces, and how often a receiver may be written to.

Alertmanager's model, for cases that live for months: versions are grouped per
receiver and (region, code); a group is first sent `group_wait` after its first pending
version, then at most every `group_interval`. What a group says about one alert depends
only on its latest pending version and on whether the receiver was already told the
alert is open, so an alert raised and withdrawn within one wait is never announced, and
the closing of an announced alert is announced in the next group. No I/O here: times are
given, never read.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Statuses in which staff still have something to do.
ACTIVE = frozenset({"OPEN", "ACKNOWLEDGED", "REOPENED"})
#: Statuses that end an alert (for now: a withdrawn alert may be reopened by new facts).
CLOSED = frozenset({"RESOLVED", "WITHDRAWN"})
#: Not yet claimed by anyone (the digest's "oldest unacknowledged").
UNACKNOWLEDGED = frozenset({"OPEN", "REOPENED"})

_DURATION = re.compile(r"^\s*(\d{1,7})\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class RouteError(ValueError):
    """A routes file that cannot be used; the message names the field and the reason."""


def parse_duration(text: str, field_name: str) -> dt.timedelta:
    """'30s', '5m', '1h', '250ms' as a timedelta (Alertmanager's notation, one unit)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise RouteError(f"{field_name}: {text!r} is not a duration like '30s', '5m' or '1h'")
    return dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True, slots=True)
class Note:
    """One alert version as the notifier keeps it: nothing that names or identifies a
    child beyond `child_mask` (the masked ID, e.g. 110105***********X)."""

    alert_id: str
    version: int
    code: str
    status: str
    region: str
    period: str
    amount_fen: int
    child_mask: str
    changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Route:
    """One [[routes]] entry. `regions`/`codes` None means "*" (any)."""

    receiver: str
    regions: frozenset[str] | None
    codes: frozenset[str] | None
    group_wait: dt.timedelta = dt.timedelta(seconds=30)
    group_interval: dt.timedelta = dt.timedelta(minutes=5)
    #: Alertmanager's `continue`: look at the routes after this one too.
    continue_matching: bool = False
    #: Local time of the daily digest; None: no digest for this route.
    digest_at: dt.time | None = None
    #: Messages one group flush may become; past that the rest is summarised with a link.
    max_messages: int = 20

    def matches(self, region: str, code: str) -> bool:
        return (self.regions is None or region in self.regions) and (
            self.codes is None or code in self.codes
        )

    @property
    def key(self) -> str:
        """Stable name of the route in stored state (survives reordering the file)."""
        regions = ",".join(sorted(self.regions)) if self.regions is not None else "*"
        codes = ",".join(sorted(self.codes)) if self.codes is not None else "*"
        return f"{self.receiver}|{regions}|{codes}"


def routes_for(routes: Sequence[Route], region: str, code: str) -> list[Route]:
    """The routes a version follows: the first match, and the ones after a match marked
    `continue`; one route per receiver (a receiver is told once, by its first route)."""
    chosen: list[Route] = []
    seen: set[str] = set()
    for route in routes:
        if not route.matches(region, code):
            continue
        if route.receiver not in seen:
            chosen.append(route)
            seen.add(route.receiver)
        if not route.continue_matching:
            break
    return chosen


def first_send_at(
    now: dt.datetime, last_sent_at: dt.datetime | None, route: Route
) -> dt.datetime:
    """When a group that just got its first pending version is sent: after group_wait,
    and never sooner than group_interval after the group's previous message."""
    due = now + route.group_wait
    if last_sent_at is not None:
        due = max(due, last_sent_at + route.group_interval)
    return due


class Announce(enum.Enum):
    """What a group message says about one alert."""

    NEW = "new"
    REOPENED = "reopened"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Pending:
    """The latest unsent version of one alert for one receiver, and what the receiver
    was told before (`told_open`: its last announcement said the alert is open;
    `ever_told`: it was announced at all)."""

    note: Note
    told_open: bool
    ever_told: bool


def announcement(pending: Pending) -> Announce | None:
    """What to say about one alert in its group's message, or None to say nothing (a
    version that changes nothing the receiver knows: an acknowledgement, or a withdrawal
    of an alert it was never told about)."""
    status = pending.note.status
    if status in ACTIVE and not pending.told_open:
        return Announce.REOPENED if pending.ever_told else Announce.NEW
    if status in CLOSED and pending.told_open:
        return Announce.WITHDRAWN if status == "WITHDRAWN" else Announce.RESOLVED
    return None


def announcements(items: Iterable[Pending]) -> list[tuple[Note, Announce]]:
    """The alerts a group message announces, in a stable order (period, then id)."""
    said = [(p.note, kind) for p in items if (kind := announcement(p)) is not None]
    said.sort(key=lambda pair: (pair[0].period, pair[0].alert_id))
    return said


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` messages in any `per` (WeCom and DingTalk: 20 a minute)."""

    count: int
    per: dt.timedelta


@dataclass
class SendWindow:
    """Exact sliding-window limiter: remembers the last sends, so "at most 20 in any
    minute" holds for every minute, not only for aligned ones."""

    limits: Sequence[RateLimit]
    sent: deque[dt.datetime] = field(default_factory=deque)

    def ready_at(self, now: dt.datetime) -> dt.datetime:
        """The earliest instant at or after `now` when one more send keeps every limit."""
        ready = now
        for limit in self.limits:
            recent = [t for t in self.sent if t > now - limit.per]
            if len(recent) >= limit.count:
                ready = max(ready, recent[-limit.count] + limit.per)
        return ready

    def record(self, when: dt.datetime) -> None:
        self.sent.append(when)
        keep = max((limit.count for limit in self.limits), default=0)
        while len(self.sent) > keep:
            self.sent.popleft()


def retry_delay(attempts: int, *, base: float = 1.0, cap: float = 300.0) -> dt.timedelta:
    """Exponential backoff for a failed send: 1 s, 2 s, 4 s ... at most `cap` seconds."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class DigestFigures:
    """One route's day: what the daily digest reports."""

    open_alerts: int
    new_alerts: int
    resolved_alerts: int
    amount_at_risk_fen: int
    oldest_unacknowledged: dt.datetime | None


def digest_due(
    local_now: dt.datetime, at: dt.time, last_digest: dt.date | None
) -> dt.date | None:
    """The local date a digest is due for now, or None (one a day, at or after `at`)."""
    today = local_now.date()
    if local_now.time() < at or (last_digest is not None and last_digest >= today):
        return None
    return today
