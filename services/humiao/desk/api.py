"""The AlertDesk servicer: validate, check the caller's role and regions, call the
repository, convert. Every method goes through one decorator (`unary` / `streaming`)
that authenticates the caller, maps DeskError to its status code and counts the call.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import asyncpg
import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.api.events.v1 import events_pb2
from humiao.desk import limits, queries, timeline
from humiao.desk.auth import Role, Staff, StaffDirectory
from humiao.desk.errors import (
    Aborted,
    DeskError,
    FailedPrecondition,
    FieldProblem,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    invalid,
)
from humiao.desk.masks import mask_all, whole_ids
from humiao.desk.messages import alert_message, audit_message, note_message
from humiao.desk.metrics import (
    CALLS,
    DeskMetrics,
)
from humiao.desk.paging import PageTokens
from humiao.desk.watch import ChangeFeed, FeedItem
from humiao.domain import lifecycle
from humiao.domain.alerts import Resolution
from humiao.domain.identity import citizen_id_problem, pseudonym
from humiao.domain.values import Period

log = logging.getLogger(__name__)

SERVICE_NAME = "humiao.desk.v1.AlertDesk"
_STATUS = {
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
_REGION = re.compile(r"^\d{6}$")
_CHILD_KEY = re.compile(r"^[0-9a-f]{32}$")
_SORTS = {
    desk_pb2.SORT_BY_UNSPECIFIED: "raised_at",
    desk_pb2.RAISED_AT: "raised_at",
    desk_pb2.AMOUNT_AT_RISK: "amount",
    desk_pb2.PERIOD: "period",
}
_BODY_KIND = {
    f.name: f.json_name for f in events_pb2.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields
}
#: Default of HUMIAO_DESK_WHOLE_ID_READS_PER_HOUR (docs/privacy.md says why).
WHOLE_ID_READS_PER_HOUR = 30


def status_of(exc: DeskError) -> grpc.StatusCode:
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.UNKNOWN


async def abort(context: grpc.aio.ServicerContext, exc: DeskError) -> NoReturn:
    """The one place a DeskError becomes a gRPC status (with BadRequest details)."""
    if isinstance(exc, InvalidArgument):
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(exc))
        status.details.add().Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=p.field, description=p.reason)
                    for p in exc.problems
                ]
            )
        )
        rich = rpc_status.to_status(status)
        await context.abort(rich.code, rich.details, rich.trailing_metadata)
    await context.abort(status_of(exc), str(exc))
    raise AssertionError("unreachable")  # context.abort always raises


#: PostgreSQL unreachable or the connection lost: the caller should retry, not report a bug.
DATABASE_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
)


async def _unavailable(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    log.warning("method=%s database unavailable: %s", method, type(exc).__name__)
    await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable; retry later")


def _internal(method: str, exc: BaseException) -> None:
    # The class and place only: messages of database errors can quote values.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
    log.error("method=%s internal error %s at %s", method, type(exc).__name__, where)


async def _refuse(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    """What a method's failure answers: a DeskError its own status, a lost database
    UNAVAILABLE (retry later), anything else INTERNAL (logged by class and place only)."""
    if isinstance(exc, DeskError):
        await abort(context, exc)
    elif isinstance(exc, DATABASE_DOWN):
        await _unavailable(context, method, exc)
    else:
        _internal(method, exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")


S = TypeVar("S", bound="AlertDeskServicer")
Unary = Callable[[S, Any, grpc.aio.ServicerContext, Staff], Awaitable[Any]]
Streaming = Callable[[S, Any, grpc.aio.ServicerContext, Staff], AsyncIterator[Any]]


def unary(fn: Unary[S]) -> Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """Authenticate, map DeskError to its status; CALLS counts and times the outcome."""
    method = fn.__name__

    @CALLS.unary
    @functools.wraps(fn)
    async def wrapper(self: S, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            staff = await self.directory.authenticate(context.invocation_metadata())
            limits.check(request)
            return await fn(self, request, context, staff)
        except Exception as exc:
            await _refuse(context, method, exc)

    return wrapper


def streaming(fn: Streaming[S]) -> Callable[[S, Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
    """The streaming twin of `unary` (counted when the stream ends, not timed)."""
    method = fn.__name__

    @CALLS.streaming
    @functools.wraps(fn)
    async def wrapper(
        self: S, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        try:
            staff = await self.directory.authenticate(context.invocation_metadata())
            limits.check(request)
            async for item in fn(self, request, context, staff):
                yield item
        except Exception as exc:
            await _refuse(context, method, exc)

    return wrapper


def _period(text: str, field: str, problems: list[FieldProblem]) -> str | None:
    if not text:
        return None
    try:
        return str(Period.parse(text))
    except ValueError as exc:
        problems.append(FieldProblem(field, str(exc)))
        return None


def _periods(pf: str, pt: str, prefix: str) -> tuple[str | None, str | None, list[FieldProblem]]:
    problems: list[FieldProblem] = []
    start = _period(pf, f"{prefix}period_from", problems)
    end = _period(pt, f"{prefix}period_to", problems)
    if start and end and start > end:
        problems.append(FieldProblem(f"{prefix}period_to", "must not be before period_from"))
    return start, end, problems


def _regions(values: Any, field: str, problems: list[FieldProblem]) -> None:
    for i, region in enumerate(values):
        if not _REGION.match(region):
            problems.append(FieldProblem(f"{field}[{i}]", "must be a 6-digit region code"))


def _enum_names(enum_type: Any, values: Any, field: str, problems: list[FieldProblem]) -> list[str]:
    names = []
    for i, value in enumerate(values):
        if value == 0 or value not in enum_type.values():
            problems.append(FieldProblem(f"{field}[{i}]", f"unknown value {value}"))
        else:
            names.append(enum_type.Name(value))
    return names


def _matches(version: alerts_pb2.AlertVersion, q: queries.AlertQuery) -> bool:
    """The in-memory twin of queries._where, for the live feed."""
    return not (
        (q.regions is not None and version.region not in q.regions)
        or (q.codes and alerts_pb2.AlertCode.Name(version.code) not in q.codes)
        or (q.statuses and alerts_pb2.AlertStatus.Name(version.status) not in q.statuses)
        or (q.period_from and version.period < q.period_from)
        or (q.period_to and version.period > q.period_to)
        or (q.child_key and version.child_key != q.child_key)
        or (q.min_amount is not None and version.amount_at_risk_fen < q.min_amount)
        or (q.max_amount is not None and version.amount_at_risk_fen > q.max_amount)
        or (q.assignee and version.assignee != q.assignee)
        or (q.alert_ids and version.alert_id not in q.alert_ids)
    )


def _need(value: str, field: str, what: str = "is required") -> str:
    """A required text field, stripped (its size was checked by `limits`)."""
    text = value.strip()
    if not text:
        raise invalid(field, what)
    return text


def _whole_id(child: str) -> str | None:
    """The ID number a `child` field names, when it names one (not a child key)."""
    text = child.strip().upper()
    return text if len(text) == 18 else None


def _need_version(version: int) -> None:
    if version < 1:
        raise invalid("expected_version", "is required: the version of the alert you read (>= 1)")


class AlertDeskServicer(desk_pb2_grpc.AlertDeskServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: StaffDirectory,
        feed: ChangeFeed,
        *,
        pseudonym_key: bytes,
        heartbeat_seconds: float = 15.0,
        whole_id_reads_per_hour: int = WHOLE_ID_READS_PER_HOUR,
        watch_recheck_seconds: float = 1.0,
        metrics: DeskMetrics | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics or DeskMetrics()
        self.metrics.pool_opened(pool)
        self.directory = directory
        self.feed = feed
        self._secret = pseudonym_key
        self.pages = PageTokens(pseudonym_key)
        self.heartbeat_seconds = heartbeat_seconds
        self.whole_id_reads_per_hour = whole_id_reads_per_hour
        self.watch_recheck_seconds = watch_recheck_seconds

    # ---- helpers -------------------------------------------------------------------

    def child_key(self, text: str, field: str) -> str:
        """A child named by ID number or by key -> its key (never logged or echoed)."""
        text = text.strip()
        if len(text) == 18:
            problem = citizen_id_problem(text.upper())
            if problem:
                raise invalid(field, f"not a valid ID number: {problem}")
            return pseudonym(self._secret, text.upper())
        if _CHILD_KEY.match(text.lower()):
            return text.lower()
        raise invalid(field, "must be an 18-character ID number or a 32-hex-digit child key")

    def query(
        self, staff: Staff, f: desk_pb2.AlertFilter, prefix: str = "filter."
    ) -> queries.AlertQuery:
        problems: list[FieldProblem] = []
        _regions(f.regions, f"{prefix}regions", problems)
        codes = _enum_names(alerts_pb2.AlertCode, f.codes, f"{prefix}codes", problems)
        statuses = _enum_names(alerts_pb2.AlertStatus, f.statuses, f"{prefix}statuses", problems)
        start, end, more = _periods(f.period_from, f.period_to, prefix)
        problems += more
        child_key = None
        if f.child:
            try:
                child_key = self.child_key(f.child, f"{prefix}child")
            except InvalidArgument as exc:
                problems += exc.problems
        low = f.min_amount_at_risk_fen if f.HasField("min_amount_at_risk_fen") else None
        high = f.max_amount_at_risk_fen if f.HasField("max_amount_at_risk_fen") else None
        if low is not None and high is not None and low > high:
            problems.append(
                FieldProblem(
                    f"{prefix}max_amount_at_risk_fen", "must not be below min_amount_at_risk_fen"
                )
            )
        if problems:
            raise InvalidArgument(problems)
        return queries.AlertQuery(
            regions=staff.scope(f.regions),
            codes=codes,
            statuses=statuses,
            period_from=start,
            period_to=end,
            child_key=child_key,
            min_amount=low,
            max_amount=high,
            assignee=f.assignee.strip() or None,
            alert_ids=list(f.alert_ids),
        )

    @staticmethod
    def _fingerprint(request: desk_pb2.ListAlertsRequest) -> str:
        raw = request.filter.SerializeToString(deterministic=True)
        raw += f"|{request.sort_by}|{request.ascending}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    @asynccontextmanager
    async def _whole_read(self, staff: Staff, method: str) -> AsyncIterator[asyncpg.Connection]:
        """The transaction of one whole-ID read (limited per hour; the caller audits it)."""
        try:
            async with queries.whole_id_read(
                self.pool, staff.name, self.whole_id_reads_per_hour
            ) as conn:
                yield conn
        except ResourceExhausted:  # counted as calls{code="RESOURCE_EXHAUSTED"}
            log.warning("method=%s staff=%s whole-ID read over the limit", method, staff.name)
            raise
        self.metrics.whole_id_read(method)

    @staticmethod
    async def _audit(conn: asyncpg.Connection, staff: Staff, action: str, **row: Any) -> None:
        """The audit row of a whole-ID read by `staff` (`row`: what queries.audit takes)."""
        await queries.audit(
            conn, actor=staff.name, role=staff.role.name.lower(), action=action, **row
        )

    async def _audit_lookup(
        self, conn: asyncpg.Connection, staff: Staff, whole_id: str, key: str | None, detail: str
    ) -> None:
        await self._audit(
            conn, staff, "LOOKUP_CHILD_ID", child_key=key, whole_ids=[whole_id], detail=detail
        )

    # ---- reads -------------------------------------------------------------------

    @unary
    async def ListAlerts(
        self, request: desk_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.ListAlertsResponse:
        q = self.query(staff, request.filter)
        size = request.page_size or 50
        if not 1 <= size <= limits.MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 1 and {limits.MAX_PAGE_SIZE}")
        sort = _SORTS.get(request.sort_by)
        if sort is None:
            raise invalid("sort_by", f"unknown value {request.sort_by}")
        fingerprint = self._fingerprint(request)
        token = request.page_token
        after = self.pages.read(token, fingerprint, sort) if token else None
        lookup = _whole_id(request.filter.child)
        if lookup is None:
            async with self.pool.acquire() as conn:
                return await self._list(conn, q, request, size, sort, fingerprint, after)
        async with self._whole_read(staff, "ListAlerts") as conn:
            response = await self._list(conn, q, request, size, sort, fingerprint, after)
            detail = f"ListAlerts: {len(response.alerts)} alerts on this page"
            await self._audit_lookup(conn, staff, lookup, q.child_key, detail)
        return response

    async def _list(
        self,
        conn: asyncpg.Connection,
        q: queries.AlertQuery,
        request: desk_pb2.ListAlertsRequest,
        size: int,
        sort: str,
        fingerprint: str,
        after: tuple[Any, str] | None,
    ) -> desk_pb2.ListAlertsResponse:
        rows = await queries.list_page(
            conn, q, sort=sort, ascending=request.ascending, limit=size + 1, after=after
        )
        page = rows[:size]
        response = desk_pb2.ListAlertsResponse(
            alerts=[alert_message(r, whole_id=False) for r in page]
        )
        mask_all(response)
        if len(rows) > size:
            response.next_page_token = self.pages.issue(fingerprint, sort, page[-1])
        if request.page_token:
            return response
        by_code: dict[str, list[int]] = {}
        by_status: dict[str, list[int]] = {}
        for r in await queries.counts(conn, q):
            for table, key in ((by_code, r["code"]), (by_status, r["status"])):
                acc = table.setdefault(key, [0, 0])
                acc[0] += r["alerts"]
                acc[1] += r["amount"]
        for target, table in (
            (response.counts_by_code, by_code),
            (response.counts_by_status, by_status),
        ):
            target.extend(
                desk_pb2.Count(key=k, alerts=v[0], amount_at_risk_fen=v[1])
                for k, v in sorted(table.items())
            )
        response.total = sum(v[0] for v in by_code.values())
        return response

    @unary
    async def GetAlert(
        self, request: desk_pb2.GetAlertRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.GetAlertResponse:
        alert_id = _need(request.alert_id, "alert_id")
        if request.masked:
            async with self.pool.acquire() as conn:
                response = await self._alert_view(conn, alert_id, staff, whole=False)
            mask_all(response)
            return response
        async with self._whole_read(staff, "GetAlert") as conn:
            return await self._alert_view(conn, alert_id, staff, whole=True)

    async def _alert_view(
        self, conn: asyncpg.Connection, alert_id: str, staff: Staff, *, whole: bool
    ) -> desk_pb2.GetAlertResponse:
        """One alert with its evidence; when `whole`, audited (naming every ID number the
        answer holds: the child's and the adults' in the evidence) before the history,
        notes and audit trail are read, so the trail shows this read too."""
        row = await queries.fetch_alert(conn, alert_id, staff.regions)
        facts = await queries.facts_by_id(conn, list(row["evidence_event_ids"]))
        response = desk_pb2.GetAlertResponse(alert=alert_message(row, whole_id=whole))
        for event_id in row["evidence_event_ids"]:
            evidence = response.evidence.add(event_id=event_id)
            stored = facts.get(event_id)
            if stored is None:
                continue
            evidence.found = True
            evidence.event.ParseFromString(stored)
            body = evidence.event.WhichOneof("body")
            evidence.kind = _BODY_KIND.get(body or "", "")
            evidence.recorded_at.CopyFrom(evidence.event.recorded_at)
        if whole:
            await self._audit(
                conn,
                staff,
                "READ_ALERT_ID",
                alert_id=alert_id,
                child_key=row["child_key"],
                version=row["version"],
                whole_ids=sorted(whole_ids(response)),
            )
        for payload in await queries.versions(conn, alert_id):
            response.versions.add().ParseFromString(payload)
        response.notes.extend(note_message(r) for r in await queries.notes(conn, alert_id))
        trail = await queries.audit_of_alert(conn, alert_id)
        response.audit.extend(audit_message(r) for r in trail)
        return response

    @streaming
    async def WatchAlerts(
        self, request: desk_pb2.WatchAlertsRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> AsyncIterator[desk_pb2.WatchAlertsResponse]:
        q = self.query(staff, request.filter)
        if request.HasField("after_cursor") and request.after_cursor < 0:
            raise invalid("after_cursor", "must be >= 0")
        lookup = _whole_id(request.filter.child)
        if lookup is not None:
            async with self._whole_read(staff, "WatchAlerts") as conn:
                await self._audit_lookup(conn, staff, lookup, q.child_key, "WatchAlerts")
        await self.feed.wait_ready()
        cursor = request.after_cursor if request.HasField("after_cursor") else self.feed.horizon
        self.metrics.watch_opened()
        try:
            async for message in self._watch(context, q, cursor):
                yield message
        finally:
            self.metrics.watch_closed()

    async def _watch(
        self, context: grpc.aio.ServicerContext, q: queries.AlertQuery, cursor: int
    ) -> AsyncIterator[desk_pb2.WatchAlertsResponse]:
        """Changes after `cursor` matching `q`, heartbeats when idle; the caller's token is
        checked again before anything is sent (at most every watch_recheck_seconds)."""
        last_sent = checked = time.monotonic()
        while not self.feed.closed:
            items: list[FeedItem] = await self.feed.read_after(cursor)
            if items:
                checked = await self._recheck(context, q, checked)
            for item in items:
                cursor = item.seq
                if _matches(item.version, q):
                    self.metrics.change_sent()
                    last_sent = time.monotonic()
                    message = desk_pb2.WatchAlertsResponse(
                        cursor=item.seq,
                        change=desk_pb2.AlertChange(version=item.version, child_id=item.child_id),
                    )
                    mask_all(message)
                    yield message
            if items:
                continue
            idle = time.monotonic() - last_sent
            if not await self.feed.wait_beyond(cursor, max(0.0, self.heartbeat_seconds - idle)):
                checked = await self._recheck(context, q, checked)
                last_sent = time.monotonic()
                yield desk_pb2.WatchAlertsResponse(cursor=cursor)

    async def _recheck(
        self, context: grpc.aio.ServicerContext, q: queries.AlertQuery, checked: float
    ) -> float:
        """End the stream (UNAUTHENTICATED, PERMISSION_DENIED) once its staff member is
        deactivated or no longer covers a region it watches; return the check's time."""
        now = time.monotonic()
        if now - checked < self.watch_recheck_seconds:
            return checked
        staff = await self.directory.authenticate(context.invocation_metadata())
        if staff.regions is not None and (q.regions is None or not staff.regions >= set(q.regions)):
            raise PermissionDenied("your regions changed: watch again")
        return now

    @unary
    async def GetChildTimeline(
        self,
        request: desk_pb2.GetChildTimelineRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> desk_pb2.GetChildTimelineResponse:
        child = _need(request.child, "child")
        key = self.child_key(child, "child")
        lookup = _whole_id(child)
        if request.masked and lookup is None:  # by key, masked: not a whole-ID read
            async with self.pool.acquire() as conn:
                response = await self._timeline(conn, key, staff)
            if response is None:
                raise NotFound("no such child in your regions")
            mask_all(response)
            return response
        async with self._whole_read(staff, "GetChildTimeline") as conn:
            response = await self._timeline(conn, key, staff)
            if response is None and lookup is None:
                raise NotFound("no such child in your regions")  # nothing read or named
            if response is not None and request.masked:
                mask_all(response)
            named = whole_ids(response) if response is not None else set()
            await self._audit(
                conn,
                staff,
                "LOOKUP_CHILD_ID" if request.masked else "READ_CHILD_TIMELINE",
                child_key=key,
                whole_ids=sorted(named | ({lookup} if lookup else set())),
                detail="found" if response is not None else "nothing found in the caller's regions",
            )
        if response is None:  # audited (a lookup by ID number), then refused
            raise NotFound("no such child in your regions")
        return response

    async def _timeline(
        self, conn: asyncpg.Connection, key: str, staff: Staff
    ) -> desk_pb2.GetChildTimelineResponse | None:
        """The child's whole timeline, or None when it is not in the caller's regions."""
        facts = timeline.decode(await queries.timeline_facts(conn, key))
        alert_rows = await queries.alerts_of_child(conn, key)
        regions = timeline.child_regions(facts, [a["region"] for a in alert_rows])
        if not any(staff.covers(r) for r in regions):
            return None
        visible = [alert_message(a, whole_id=True) for a in alert_rows if staff.covers(a["region"])]
        child_id = timeline.child_id_of(facts) or (alert_rows[0]["child_id"] if alert_rows else "")
        entries, loose = timeline.build(key, facts, visible, lambda p: pseudonym(self._secret, p))
        return desk_pb2.GetChildTimelineResponse(
            child_key=key,
            child_id=child_id,
            child_id_whole=True,
            regions=sorted(regions),
            entries=entries,
            period_alerts=loose,
        )

    @unary
    async def Summary(
        self, request: desk_pb2.SummaryRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.SummaryResponse:
        problems: list[FieldProblem] = []
        _regions(request.regions, "regions", problems)
        start, end, more = _periods(request.period_from, request.period_to, "")
        if problems or more:
            raise InvalidArgument(problems + more)
        scope = staff.scope(request.regions)
        rows = await queries.summary(self.pool, scope, start, end, by_period=request.by_period)
        times = await queries.working_times(self.pool, scope, start, end)
        response = desk_pb2.SummaryResponse(
            median_seconds_to_acknowledge=times["to_acknowledge"],
            median_seconds_to_resolve=times["to_resolve"],
            acknowledged=times["acknowledged"], resolved=times["resolved"])
        for r in rows:
            response.rows.add(
                region=r["region"],
                code=alerts_pb2.AlertCode.Value(r["code"]),
                status=alerts_pb2.AlertStatus.Value(r["status"]),
                alerts=r["alerts"],
                amount_at_risk_fen=r["at_risk"],
                amount_recovered_fen=r["recovered"],
                period=r["period"],
            )
            response.alerts += r["alerts"]
            response.amount_at_risk_fen += r["at_risk"]
            response.amount_recovered_fen += r["recovered"]
        return response

    @unary
    async def WhoAmI(
        self, request: desk_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.WhoAmIResponse:
        return desk_pb2.WhoAmIResponse(
            name=staff.name, role=staff.role.name.lower(),
            regions=sorted(staff.regions or ()), all_regions=staff.regions is None)

    # ---- transitions -------------------------------------------------------------

    async def _transition(
        self, staff: Staff, alert_id: str, version: int, plan: queries.Plan, note: str | None = None
    ) -> desk_pb2.Alert:
        row = await queries.transition(
            self.pool,
            alert_id,
            version,
            staff.regions,
            plan,
            actor=staff.name,
            role=staff.role.name.lower(),
            note=note,
        )
        self.metrics.transitioned(row["status"])
        alert = alert_message(row, whole_id=False)
        mask_all(alert)
        return alert

    @unary
    async def AcknowledgeAlert(
        self,
        request: desk_pb2.AcknowledgeAlertRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> desk_pb2.Alert:
        staff.require(Role.INVESTIGATOR, "acknowledging an alert")
        alert_id = _need(request.alert_id, "alert_id")
        _need_version(request.expected_version)
        note = request.note.strip()
        return await self._transition(
            staff,
            alert_id,
            request.expected_version,
            lambda cur: lifecycle.acknowledge(cur, staff.name, note),
            note or None,
        )

    @unary
    async def AssignAlert(
        self, request: desk_pb2.AssignAlertRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.Alert:
        staff.require(Role.SUPERVISOR, "assigning an alert")
        alert_id = _need(request.alert_id, "alert_id")
        _need_version(request.expected_version)
        name = _need(request.assignee, "assignee")
        target = await self.directory.by_name(name)
        if target is None or target.role < Role.INVESTIGATOR:
            raise invalid("assignee", "no investigator or supervisor by that name")
        reason = request.reason.strip()

        def plan(cur: lifecycle.Current) -> lifecycle.Change:
            if not target.covers(cur.region):
                raise invalid("assignee", f"{name} does not work in region {cur.region}")
            return lifecycle.assign(cur, name, reason)

        return await self._transition(staff, alert_id, request.expected_version, plan)

    @unary
    async def AddNote(
        self, request: desk_pb2.AddNoteRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.Note:
        staff.require(Role.INVESTIGATOR, "adding a note")
        alert_id = _need(request.alert_id, "alert_id")
        text = _need(request.text, "text")
        row = await queries.add_note(
            self.pool, alert_id, staff.regions, staff.name, staff.role.name.lower(), text
        )
        return note_message(row)

    @unary
    async def ResolveAlert(
        self,
        request: desk_pb2.ResolveAlertRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> desk_pb2.Alert:
        staff.require(Role.INVESTIGATOR, "resolving an alert")
        problems: list[FieldProblem] = []
        if not request.alert_id.strip():
            problems.append(FieldProblem("alert_id", "is required"))
        if request.expected_version < 1:
            problems.append(FieldProblem("expected_version", "is required (>= 1)"))
        if request.resolution not in {r.value for r in Resolution}:
            problems.append(
                FieldProblem(
                    "resolution",
                    "is required: CONFIRMED_IMPROPER, FALSE_POSITIVE, DATA_CORRECTED or OTHER",
                )
            )
        recovered = request.amount_recovered_fen
        if recovered < 0:
            problems.append(FieldProblem("amount_recovered_fen", "must not be negative"))
        elif recovered and request.resolution != Resolution.CONFIRMED_IMPROPER:
            problems.append(
                FieldProblem(
                    "amount_recovered_fen", "only a CONFIRMED_IMPROPER resolution recovers money"
                )
            )
        note = request.note.strip()
        if not note:
            problems.append(FieldProblem("note", "is required: say how it was resolved"))
        if problems:
            raise InvalidArgument(problems)
        resolution = Resolution(request.resolution)
        may_override = staff.role >= Role.SUPERVISOR
        return await self._transition(
            staff,
            request.alert_id.strip(),
            request.expected_version,
            lambda cur: lifecycle.resolve(
                cur,
                staff.name,
                may_override=may_override,
                resolution=resolution,
                amount_recovered_fen=recovered,
                note=note,
            ),
            note,
        )

    @unary
    async def ReopenAlert(
        self, request: desk_pb2.ReopenAlertRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> desk_pb2.Alert:
        staff.require(Role.SUPERVISOR, "reopening an alert")
        alert_id = _need(request.alert_id, "alert_id")
        _need_version(request.expected_version)
        reason = _need(request.reason, "reason", "is required: say why it is reopened")
        return await self._transition(
            staff,
            alert_id,
            request.expected_version,
            lambda cur: lifecycle.reopen(cur, reason),
            reason,
        )
