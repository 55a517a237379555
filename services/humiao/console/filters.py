"""The queue's filters as they travel in a URL (so a view can be bookmarked and shared),
checked here and turned into the desk's AlertFilter.

Nothing that identifies a child by ID number can be put in a URL: the child filter takes
the pseudonymous key only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.domain.identity import holds_id_shape

CODES = tuple(alerts_pb2.AlertCode.keys())[1:]  # without the UNSPECIFIED zero
STATUSES = tuple(alerts_pb2.AlertStatus.keys())[1:]
RESOLUTIONS = tuple(alerts_pb2.Resolution.keys())[1:]
SORTS = {"raised": desk_pb2.RAISED_AT, "amount": desk_pb2.AMOUNT_AT_RISK,
         "period": desk_pb2.PERIOD}
PAGE_SIZES = (25, 50, 100, 200)
_REGION = re.compile(r"\d{6}", re.ASCII)
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])", re.ASCII)
#: A child's pseudonymous key (identity.pseudonym): 32 hex characters, never an ID number.
_KEY = re.compile(r"[0-9a-f]{32}", re.ASCII)
_TOKEN = re.compile(r"[A-Za-z0-9_=.-]{1,512}", re.ASCII)
MAX_VALUES = 100


class BadFilter(ValueError):
    """A filter value that is not what its field takes; the message names the field."""


def _many(params: Mapping[str, Sequence[str]], name: str, allowed: Sequence[str] | None,
          pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    values = [v.strip() for v in params.get(name, ()) if v.strip()]
    if len(values) > MAX_VALUES:
        raise BadFilter(f"{name}: at most {MAX_VALUES} values")
    for v in values:
        if (allowed is not None and v not in allowed) or (
                pattern is not None and not pattern.fullmatch(v)):
            raise BadFilter(f"{name}: not a known value")
    return tuple(dict.fromkeys(values))


def _one(params: Mapping[str, Sequence[str]], name: str, pattern: re.Pattern[str] | None,
         max_len: int = 128) -> str:
    values = [v.strip() for v in params.get(name, ()) if v.strip()]
    if not values:
        return ""
    value = values[-1]
    if len(value) > max_len or (pattern is not None and not pattern.fullmatch(value)):
        raise BadFilter(f"{name}: not a valid value")
    if any(ord(ch) < 32 for ch in value):
        raise BadFilter(f"{name}: holds a control character")
    return value


@dataclass(frozen=True)
class QueueQuery:
    regions: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    period_from: str = ""
    period_to: str = ""
    assignee: str = ""
    mine: bool = False
    child: str = ""  # a child's pseudonymous key
    sort: str = "raised"
    ascending: bool = False
    size: int = 50
    page: str = ""  # the desk's signed cursor
    alert_ids: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]]) -> QueueQuery:
        sort = _one(params, "sort", None) or "raised"
        if sort not in SORTS:
            raise BadFilter("sort: raised, amount or period")
        size_text = _one(params, "size", re.compile(r"\d{1,3}")) or "50"
        if int(size_text) not in PAGE_SIZES:
            raise BadFilter(f"size: one of {', '.join(map(str, PAGE_SIZES))}")
        query = cls(
            regions=_many(params, "region", None, _REGION),
            codes=_many(params, "code", CODES),
            statuses=_many(params, "status", STATUSES),
            period_from=_one(params, "from", _PERIOD),
            period_to=_one(params, "to", _PERIOD),
            assignee=_one(params, "assignee", None),
            mine=_one(params, "mine", re.compile("1")) == "1",
            child=_one(params, "child", _KEY),
            sort=sort,
            ascending=_one(params, "asc", re.compile("1")) == "1",
            size=int(size_text),
            page=_one(params, "page", _TOKEN, max_len=512),
        )
        if holds_id_shape(query.assignee):
            raise BadFilter("assignee: a name, not an ID number")
        if query.period_from and query.period_to and query.period_from > query.period_to:
            raise BadFilter("to: must not be before from")
        return query

    def desk_filter(self, me: str) -> desk_pb2.AlertFilter:
        return desk_pb2.AlertFilter(
            regions=self.regions,
            codes=list(self.codes), statuses=list(self.statuses),
            period_from=self.period_from, period_to=self.period_to,
            assignee=me if self.mine else self.assignee,
            child=self.child, alert_ids=self.alert_ids)

    def list_request(self, me: str) -> desk_pb2.ListAlertsRequest:
        return desk_pb2.ListAlertsRequest(
            filter=self.desk_filter(me), sort_by=SORTS[self.sort], ascending=self.ascending,
            page_size=self.size, page_token=self.page)

    def params(self, **changes: object) -> list[tuple[str, str]]:
        """The query as URL parameters (defaults left out), with `changes` applied."""
        values: dict[str, object] = {
            "region": list(self.regions), "code": list(self.codes),
            "status": list(self.statuses), "from": self.period_from, "to": self.period_to,
            "assignee": self.assignee, "mine": "1" if self.mine else "",
            "child": self.child, "sort": "" if self.sort == "raised" else self.sort,
            "asc": "1" if self.ascending else "", "size": "" if self.size == 50 else str(self.size),
            "page": self.page,
        }
        values.update(changes)
        out: list[tuple[str, str]] = []
        for name, value in values.items():
            for v in (value if isinstance(value, list) else [value]):
                if v:
                    out.append((name, str(v)))
        return out

    def url(self, path: str = "/alerts", **changes: object) -> str:
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path
