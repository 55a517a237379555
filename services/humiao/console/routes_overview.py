"""The supervisor's overview: where money is at risk, by region, by alert type and over
months (bars drawn server-side as SVG), how fast alerts are taken up and closed, and what
was recovered. Every figure links to the queue filtered to it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import Response

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.console.desk_client import DeskRefusal
from humiao.console.filters import QueueQuery
from humiao.console.i18n import SHANGHAI
from humiao.console.routes_queue import parsed_query
from humiao.console.web import page, parts, refusal_page, signed_in
from humiao.domain.values import Period

router = APIRouter()
OPEN = ("OPEN", "ACKNOWLEDGED", "REOPENED")
CHART_HEIGHT = 160
BAR = 22


@dataclass
class Tally:
    open_alerts: int = 0
    open_fen: int = 0
    alerts: int = 0
    recovered_fen: int = 0


@dataclass
class Overview:
    by_region: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_code: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_month: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    total: Tally = field(default_factory=Tally)


def tally(rows: list[desk_pb2.SummaryRow]) -> Overview:
    o = Overview()
    for r in rows:
        status = alerts_pb2.AlertStatus.Name(r.status)
        code = alerts_pb2.AlertCode.Name(r.code)
        for t in (o.by_region[r.region], o.by_code[code], o.by_month[r.period], o.total):
            t.alerts += r.alerts
            t.recovered_fen += r.amount_recovered_fen
            if status in OPEN:
                t.open_alerts += r.alerts
                t.open_fen += r.amount_at_risk_fen
    return o


def months_between(start: str, end: str, most: int = 36) -> list[str]:
    """Every month from `start` to `end` (YYYY-MM), the last `most` of them."""
    first, last = Period.parse(start), Period.parse(end)
    return [str(Period(i)) for i in range(max(first.index, last.index - most + 1),
                                          last.index + 1)]


def bars(by_month: dict[str, Tally], months: list[str]) -> list[dict[str, object]]:
    """Bar geometry for the open amount at risk per month, every month of the range
    drawn (an empty one as a hairline); the tallest fills the chart."""
    top = max((by_month[m].open_fen for m in months if m in by_month), default=0) or 1
    out = []
    for i, m in enumerate(months):
        tally_ = by_month.get(m, Tally())
        height = round(CHART_HEIGHT * tally_.open_fen / top)
        out.append({"x": 40 + i * (BAR + 6), "y": 10 + CHART_HEIGHT - height, "h": height,
                    "month": m, "t": tally_})
    return out


def _default_range() -> tuple[str, str]:
    """The last twelve months, this one included, in Asia/Shanghai."""
    now = Period.of_date(dt.datetime.now(SHANGHAI).date())
    return str(now + -11), str(now)


@router.get("/overview")
async def overview(request: Request) -> Response:
    session = signed_in(request)
    query = parsed_query(request)
    if isinstance(query, Response):
        return query
    start, end = _default_range()
    query = QueueQuery(regions=query.regions, period_from=query.period_from or start,
                       period_to=query.period_to or end)
    try:
        summary: desk_pb2.SummaryResponse = await parts(request).desk.call(
            session.token, "Summary", desk_pb2.SummaryRequest(
                regions=query.regions, period_from=query.period_from,
                period_to=query.period_to, by_period=True))
    except DeskRefusal as refusal:
        return refusal_page(request, refusal)
    o = tally(list(summary.rows))
    chart = bars(o.by_month, months_between(query.period_from, query.period_to))
    return page(request, "overview.html", {
        "o": o, "summary": summary, "query": query, "chart": chart,
        "chart_width": 60 + len(chart) * (BAR + 6), "chart_height": CHART_HEIGHT + 50,
        "open_statuses": OPEN,
    }, session=session)
