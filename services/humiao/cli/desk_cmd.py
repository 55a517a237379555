"""Staff commands: `humiao alerts list|show|watch|ack|assign|note|resolve|reopen`,
`humiao child timeline`, `humiao summary`, all against the AlertDesk gRPC service.

Where the desk is and who is calling: --target/--token, else HUMIAO_DESK_TARGET /
HUMIAO_DESK_TOKEN, else the state file `humiao up` writes (.humiao/stack.json, keys
"desk" and "staff_token"). Tables in Chinese by default (--lang en for English),
colours only on a terminal (and never with NO_COLOR), --json for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from humiao.cli.local_state import read_local_state
from humiao.cli.main import CliError
from humiao.domain.labels import CODES_ZH, STATUS_ZH
from humiao.edge import open_channel

DEFAULT_TIMEOUT = 30.0

RESOLUTION_ZH = {
    "CONFIRMED_IMPROPER": "确认违规",
    "FALSE_POSITIVE": "误报",
    "DATA_CORRECTED": "数据已更正",
    "OTHER": "其他",
}
VERDICT_ZH = {
    "VERIFIED": "核验无误",
    "FLAGGED": "有告警",
    "REVERSED": "已冲正",
    "RETRACTED": "已撤回",
    "VERDICT_UNSPECIFIED": "",
}
LABELS = {
    "alert_id": ("告警编号", "Alert"),
    "code": ("类型", "Code"),
    "status": ("状态", "Status"),
    "child": ("儿童身份证号", "Child ID"),
    "region": ("地区", "Region"),
    "period": ("月份", "Period"),
    "at_risk": ("风险金额(元)", "At risk (CNY)"),
    "recovered": ("追回金额(元)", "Recovered (CNY)"),
    "assignee": ("处理人", "Assignee"),
    "raised": ("发现时间", "Raised"),
    "version": ("版本", "Version"),
    "alerts": ("告警数", "Alerts"),
    "date": ("生效日期", "Valid date"),
    "recorded": ("记录时间(UTC)", "Recorded (UTC)"),
    "kind": ("事实", "Fact"),
    "relation": ("关系", "Relation"),
    "verdict": ("核验", "Verdict"),
    "detail": ("内容", "Detail"),
    "cursor": ("游标", "Cursor"),
    "by": ("操作人", "By"),
    "total": ("合计", "Total"),
    "explanation": ("说明", "Explanation"),
    "evidence": ("证据", "Evidence"),
    "history": ("版本记录", "History"),
    "notes": ("备注", "Notes"),
    "audit": ("审计记录", "Audit trail"),
    "resolution": ("处理结论", "Resolution"),
    "more": ("还有更多,使用 --limit 或 --json 查看全部", "more alerts: use --limit or --json"),
}
COLOURS = {
    "OPEN": "31",
    "REOPENED": "35",
    "ACKNOWLEDGED": "33",
    "RESOLVED": "32",
    "WITHDRAWN": "90",
    "FLAGGED": "31",
    "VERIFIED": "32",
    "REVERSED": "90",
}


# ---- connection -------------------------------------------------------------------------


def _from_state(key: str) -> str | None:
    value = read_local_state().get(key)
    return str(value) if value else None


def connection(args: argparse.Namespace) -> tuple[str, str]:
    target = args.target or os.environ.get("HUMIAO_DESK_TARGET") or _from_state("desk")
    token = args.token or os.environ.get("HUMIAO_DESK_TOKEN") or _from_state("staff_token")
    if not target:
        raise CliError(
            "no desk to talk to: pass --target HOST:PORT, set HUMIAO_DESK_TARGET, "
            "or start the local stack with `humiao up`"
        )
    if not token:
        raise CliError("no staff token: pass --token, or set HUMIAO_DESK_TOKEN")
    return target, token


class Desk:
    """A blocking AlertDesk client that turns refusals into CliError."""

    def __init__(self, args: argparse.Namespace) -> None:
        import grpc

        from humiao.api.desk.v1 import desk_pb2_grpc

        self.target, token = connection(args)
        self._grpc = grpc
        self.channel = open_channel(self.target, os.environ)
        self.stub = desk_pb2_grpc.AlertDeskStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)

    def call(self, method: str, request: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        try:
            return getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)
        except self._grpc.RpcError as exc:
            raise CliError(self.explain(exc)) from None

    def explain(self, exc: Any) -> str:
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status

        code = exc.code()
        if code == self._grpc.StatusCode.UNAVAILABLE:
            return f"cannot reach the desk at {self.target} (is it running?)"
        text = f"{code.name.lower().replace('_', ' ')}: {exc.details()}"
        status = rpc_status.from_call(exc)
        if status is not None:
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    text = "invalid request:" + "".join(
                        f"\n  {v.field}: {v.description}" for v in bad.field_violations
                    )
        return text

    def close(self) -> None:
        self.channel.close()


def _desk_command(
    fn: Callable[[argparse.Namespace, Desk], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        desk = Desk(args)
        try:
            return fn(args, desk)
        finally:
            desk.close()

    return run


# ---- rendering ------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


class Out:
    def __init__(self, args: argparse.Namespace) -> None:
        self.en = args.lang == "en"
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def label(self, key: str) -> str:
        zh, en = LABELS[key]
        return en if self.en else zh

    def code(self, name: str) -> str:
        return name if self.en else CODES_ZH.get(name, name)

    def status(self, name: str) -> str:
        text = name if self.en else STATUS_ZH.get(name, name)
        return self.paint(text, COLOURS.get(name))

    def paint(self, text: str, colour: str | None) -> str:
        return f"\033[{colour}m{text}\033[0m" if self.colour and colour and text else text

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
    ) -> None:
        plain = [[_strip(c) for c in row] for row in rows]
        widths = [max([_width(h)] + [_width(r[i]) for r in plain]) for i, h in enumerate(headers)]
        print("  ".join(_pad(h, widths[i], i in right) for i, h in enumerate(headers)).rstrip())
        print("  ".join("-" * w for w in widths))
        for row, bare in zip(rows, plain, strict=True):
            cells = [
                c + " " * (widths[i] - _width(bare[i]))
                if i not in right
                else " " * (widths[i] - _width(bare[i])) + c
                for i, c in enumerate(row)
            ]
            print("  ".join(cells).rstrip())


def _strip(text: str) -> str:
    if "\033[" not in text:
        return text
    import re

    return re.sub(r"\033\[[0-9;]*m", "", text)


def _valid_date(event: Any) -> str:
    """The day an evidence fact took effect (not when it was recorded)."""
    from humiao.adapters.codec import envelope_from_proto
    from humiao.domain.events import effective_date
    from humiao.domain.validation import ValidationFailed

    try:
        day = effective_date(envelope_from_proto(event).body)
    except ValidationFailed:
        return "?"
    return day.isoformat() if day else "-"


def yuan(fen: int) -> str:
    from humiao.domain.values import format_fen

    return format_fen(fen)


#: Help of --masked (show, timeline): ID numbers masked, not a whole-ID read.
MASKED_HELP = "every ID number masked: not a whole-ID read (not audited or counted)"
_INT_KEYS = ("_fen", "cursor", "alerts", "total", "note_id", "audit_id", "seconds")


def to_json(message: Any) -> Any:
    """Message -> plain JSON: field names as in the proto, enums as names, money as ints."""
    from google.protobuf import json_format

    def fix(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: fix(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v, key) for v in value]
        if isinstance(value, str) and key.endswith(_INT_KEYS) and value.lstrip("-").isdigit():
            return int(value)
        return value

    return fix(
        json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# ---- requests from flags ----------------------------------------------------------------


def _names(values: Sequence[str] | None, enum_type: Any, flag: str) -> list[Any]:
    found = []
    for raw in values or ():
        for name in raw.split(","):
            name = name.strip().upper()
            if not name:
                continue
            try:
                found.append(enum_type.Value(name))
            except ValueError:
                choices = ", ".join(v.name for v in enum_type.DESCRIPTOR.values if v.number != 0)
                raise CliError(f"{flag}: unknown value {name!r} (one of: {choices})") from None
    return found


def alert_filter(args: argparse.Namespace) -> Any:
    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.api.desk.v1 import desk_pb2

    f = desk_pb2.AlertFilter(
        regions=[r.strip() for raw in args.region or () for r in raw.split(",") if r.strip()],
        codes=_names(args.code, alerts_pb2.AlertCode, "--code"),
        statuses=_names(args.status, alerts_pb2.AlertStatus, "--status"),
        period_from=args.period_from or "",
        period_to=args.period_to or "",
        child=args.child or "",
        assignee=args.assignee or "",
    )
    if args.min_amount_fen is not None:
        f.min_amount_at_risk_fen = args.min_amount_fen
    if args.max_amount_fen is not None:
        f.max_amount_at_risk_fen = args.max_amount_fen
    return f


def iter_alerts(desk: Desk, args: argparse.Namespace, limit: int | None) -> Iterator[Any]:
    """Every matching alert, following the cursor (to the end unless `limit`)."""
    from humiao.api.desk.v1 import desk_pb2

    sort = {
        "raised": desk_pb2.RAISED_AT,
        "amount": desk_pb2.AMOUNT_AT_RISK,
        "period": desk_pb2.PERIOD,
    }[args.sort]
    request = desk_pb2.ListAlertsRequest(
        filter=alert_filter(args),
        sort_by=sort,
        ascending=args.asc,
        page_size=min(limit or args.page_size, args.page_size),
    )
    sent = 0
    while True:
        page = desk.call("ListAlerts", request)
        for alert in page.alerts:
            if limit is not None and sent >= limit:
                return
            sent += 1
            yield alert
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def alert_row(out: Out, a: Any) -> list[str]:
    from humiao.api.alerts.v1 import alerts_pb2

    raised = a.raised_at.ToDatetime().strftime("%Y-%m-%d %H:%M") if a.raised_at.seconds else ""
    return [
        a.alert_id,
        out.code(alerts_pb2.AlertCode.Name(a.code)),
        out.status(alerts_pb2.AlertStatus.Name(a.status)),
        a.child_id,
        a.region,
        a.period,
        yuan(a.amount_at_risk_fen),
        a.assignee,
        raised,
    ]


ALERT_HEADERS = (
    "alert_id",
    "code",
    "status",
    "child",
    "region",
    "period",
    "at_risk",
    "assignee",
    "raised",
)


# ---- commands ---------------------------------------------------------------------------


@_desk_command
def cmd_list(args: argparse.Namespace, desk: Desk) -> int:
    out = Out(args)
    if args.json:
        print_json([to_json(a) for a in iter_alerts(desk, args, args.limit)])
        return 0
    shown = args.limit or 50
    alerts = list(iter_alerts(desk, args, shown + 1))
    out.table(
        [out.label(h) for h in ALERT_HEADERS],
        [alert_row(out, a) for a in alerts[:shown]],
        right=(6,),
    )
    if len(alerts) > shown:
        print(out.label("more"))
    return 0


def _expected_version(desk: Desk, args: argparse.Namespace) -> int:
    """--version, else the version the caller sees now (a masked list read, not audited)."""
    if args.version:
        return int(args.version)
    from humiao.api.desk.v1 import desk_pb2

    page = desk.call(
        "ListAlerts",
        desk_pb2.ListAlertsRequest(
            filter=desk_pb2.AlertFilter(alert_ids=[args.alert_id]), page_size=1
        ),
    )
    if not page.alerts:
        raise CliError(f"not found: no alert {args.alert_id}")
    return int(page.alerts[0].version)


@_desk_command
def cmd_show(args: argparse.Namespace, desk: Desk) -> int:
    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.api.desk.v1 import desk_pb2

    request = desk_pb2.GetAlertRequest(alert_id=args.alert_id, masked=args.masked)
    got = desk.call("GetAlert", request)
    if args.json:
        print_json(to_json(got))
        return 0
    out = Out(args)
    a = got.alert
    pairs = [
        ("alert_id", a.alert_id),
        ("code", out.code(alerts_pb2.AlertCode.Name(a.code))),
        ("status", out.status(alerts_pb2.AlertStatus.Name(a.status))),
        ("version", str(a.version)),
        ("child", a.child_id),
        ("region", a.region),
        ("period", a.period),
        ("at_risk", yuan(a.amount_at_risk_fen)),
        ("assignee", a.assignee),
    ]
    if a.resolution:
        name = alerts_pb2.Resolution.Name(a.resolution)
        pairs.append(("resolution", name if out.en else RESOLUTION_ZH.get(name, name)))
        pairs.append(("recovered", yuan(a.amount_recovered_fen)))
    pairs.append(("explanation", a.explanation_en if out.en else a.explanation_zh))
    width = max(_width(out.label(k)) for k, _ in pairs)
    for key, value in pairs:
        print(f"{_pad(out.label(key), width, False)}  {value}")
    print(f"\n{out.label('evidence')}")
    out.table(
        [out.label("date"), out.label("recorded"), out.label("kind"), "event_id"],
        [
            [
                _valid_date(e.event) if e.found else "?",
                e.recorded_at.ToDatetime().strftime("%Y-%m-%d %H:%M") if e.found else "?",
                e.kind or "?",
                e.event_id,
            ]
            for e in got.evidence
        ],
    )
    print(f"\n{out.label('history')}")
    out.table(
        [out.label("version"), out.label("status"), out.label("by"), out.label("detail")],
        [
            [
                str(v.version),
                out.status(alerts_pb2.AlertStatus.Name(v.status)),
                v.changed_by,
                v.change_reason,
            ]
            for v in got.versions
        ],
    )
    if got.notes:
        print(f"\n{out.label('notes')}")
        for n in got.notes:
            print(f"  {n.created_at.ToDatetime():%Y-%m-%d %H:%M}  {n.author}: {n.text}")
    print(f"\n{out.label('audit')}")
    out.table(
        ["time", out.label("by"), "action", out.label("detail")],
        [
            [f"{x.at.ToDatetime():%Y-%m-%d %H:%M:%S}", x.actor, x.action, x.detail]
            for x in got.audit
        ],
    )
    return 0


@_desk_command
def cmd_watch(args: argparse.Namespace, desk: Desk) -> int:
    """Follow the live feed; on a dropped connection, resume from the last cursor."""
    import grpc

    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.api.desk.v1 import desk_pb2

    out = Out(args)
    cursor: int | None = args.cursor
    seen = 0
    while True:
        request = desk_pb2.WatchAlertsRequest(filter=alert_filter(args))
        if cursor is not None:
            request.after_cursor = cursor
        try:
            for msg in desk.stub.WatchAlerts(request, metadata=desk.metadata):
                cursor = msg.cursor
                if not msg.HasField("change"):
                    continue
                v = msg.change.version
                if args.json:
                    print(
                        json.dumps(
                            {"cursor": msg.cursor, "child_id": msg.change.child_id, **to_json(v)},
                            ensure_ascii=False,
                        ),
                        flush=True,
                    )
                else:
                    print(
                        f"[{msg.cursor}] {v.alert_id} {out.code(alerts_pb2.AlertCode.Name(v.code))}"
                        f" {out.status(alerts_pb2.AlertStatus.Name(v.status))} v{v.version}"
                        f" {msg.change.child_id} {v.region} {v.period}"
                        f" {yuan(v.amount_at_risk_fen)} {v.changed_by}",
                        flush=True,
                    )
                seen += 1
                if args.limit and seen >= args.limit:
                    return 0
            return 0
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise CliError(desk.explain(exc)) from None
            print(f"humiao: desk unavailable, resuming after cursor {cursor}", file=sys.stderr)
            time.sleep(1.0)


def _transition(
    method: str, build: Callable[[argparse.Namespace, int], Any]
) -> Callable[[argparse.Namespace], int]:
    @_desk_command
    def run(args: argparse.Namespace, desk: Desk) -> int:
        from humiao.api.alerts.v1 import alerts_pb2

        result = desk.call(method, build(args, _expected_version(desk, args)))
        if args.json:
            print_json(to_json(result))
            return 0
        out = Out(args)
        print(
            f"{result.alert_id}  {out.status(alerts_pb2.AlertStatus.Name(result.status))}"
            f"  v{result.version}  {result.assignee}"
        )
        return 0

    return run


def _ack(args: argparse.Namespace, version: int) -> Any:
    from humiao.api.desk.v1 import desk_pb2

    return desk_pb2.AcknowledgeAlertRequest(
        alert_id=args.alert_id, expected_version=version, note=args.note or ""
    )


def _assign(args: argparse.Namespace, version: int) -> Any:
    from humiao.api.desk.v1 import desk_pb2

    return desk_pb2.AssignAlertRequest(
        alert_id=args.alert_id,
        expected_version=version,
        assignee=args.assignee_name,
        reason=args.reason or "",
    )


def _resolve(args: argparse.Namespace, version: int) -> Any:
    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.api.desk.v1 import desk_pb2

    [resolution] = _names([args.resolution], alerts_pb2.Resolution, "--resolution")
    return desk_pb2.ResolveAlertRequest(
        alert_id=args.alert_id,
        expected_version=version,
        resolution=resolution,
        amount_recovered_fen=args.recovered_fen or 0,
        note=args.note,
    )


def _reopen(args: argparse.Namespace, version: int) -> Any:
    from humiao.api.desk.v1 import desk_pb2

    return desk_pb2.ReopenAlertRequest(
        alert_id=args.alert_id, expected_version=version, reason=args.reason
    )


@_desk_command
def cmd_note(args: argparse.Namespace, desk: Desk) -> int:
    from humiao.api.desk.v1 import desk_pb2

    note = desk.call("AddNote", desk_pb2.AddNoteRequest(alert_id=args.alert_id, text=args.text))
    if args.json:
        print_json(to_json(note))
    else:
        print(f"{note.alert_id}  #{note.note_id}  {note.author}")
    return 0


@_desk_command
def cmd_timeline(args: argparse.Namespace, desk: Desk) -> int:
    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.api.desk.v1 import desk_pb2

    request = desk_pb2.GetChildTimelineRequest(child=args.child, masked=args.masked)
    got = desk.call("GetChildTimeline", request)
    if args.json:
        print_json(to_json(got))
        return 0
    out = Out(args)
    print(f"{out.label('child')}: {got.child_id}   {out.label('region')}: {', '.join(got.regions)}")
    rows = []
    for e in got.entries:
        verdict = desk_pb2.Verdict.Name(e.verdict)
        text = verdict if out.en else VERDICT_ZH.get(verdict, verdict)
        if e.verdict == desk_pb2.VERDICT_UNSPECIFIED:
            text = ""
        codes = ", ".join(out.code(alerts_pb2.AlertCode.Name(a.code)) for a in e.alerts)
        rows.append(
            [
                e.valid_date,
                e.kind,
                e.relation,
                _fact_detail(e.event),
                out.paint(text, COLOURS.get(verdict)),
                codes,
            ]
        )
    out.table(
        [
            out.label("date"),
            out.label("kind"),
            out.label("relation"),
            out.label("detail"),
            out.label("verdict"),
            out.label("code"),
        ],
        rows,
    )
    if got.period_alerts:
        print()
        out.table(
            [out.label(h) for h in ALERT_HEADERS],
            [alert_row(out, a) for a in got.period_alerts],
            right=(6,),
        )
    return 0


def _fact_detail(event: Any) -> str:
    body = event.WhichOneof("body")
    if body == "disbursement":
        d = event.disbursement
        return f"{d.disbursement_id} {d.period} {yuan(d.amount_fen)} -> {d.payee_id}"
    if body is None:
        return ""
    inner = getattr(event, body)
    parts = []
    for field, value in inner.ListFields():
        if field.name in ("child_id", "parents"):
            continue
        if field.enum_type is not None:
            value = field.enum_type.values_by_number[value].name
        parts.append(f"{field.name}={value}")
    return " ".join(parts)


@_desk_command
def cmd_summary(args: argparse.Namespace, desk: Desk) -> int:
    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.api.desk.v1 import desk_pb2

    got = desk.call(
        "Summary",
        desk_pb2.SummaryRequest(
            regions=[r for raw in args.region or () for r in raw.split(",") if r],
            period_from=args.period_from or "",
            period_to=args.period_to or "",
        ),
    )
    if args.json:
        print_json(to_json(got))
        return 0
    out = Out(args)
    rows = [
        [
            r.region,
            out.code(alerts_pb2.AlertCode.Name(r.code)),
            out.status(alerts_pb2.AlertStatus.Name(r.status)),
            str(r.alerts),
            yuan(r.amount_at_risk_fen),
            yuan(r.amount_recovered_fen),
        ]
        for r in got.rows
    ]
    rows.append(
        [
            out.label("total"),
            "",
            "",
            str(got.alerts),
            yuan(got.amount_at_risk_fen),
            yuan(got.amount_recovered_fen),
        ]
    )
    out.table(
        [out.label(k) for k in ("region", "code", "status", "alerts", "at_risk", "recovered")],
        rows,
        right=(3, 4, 5),
    )
    return 0


# ---- argument parsing -------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="desk host:port (env HUMIAO_DESK_TARGET, or humiao up's)")
    p.add_argument("--token", help="staff bearer token (env HUMIAO_DESK_TOKEN)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="table labels (zh)")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="append", help="OPEN, ACKNOWLEDGED, ... (repeat or a,b)")
    p.add_argument("--code", action="append", help="alert code, e.g. PAID_AFTER_DEATH")
    p.add_argument("--region", action="append", help="6-digit region code")
    p.add_argument("--period-from", help="YYYY-MM, inclusive")
    p.add_argument("--period-to", help="YYYY-MM, inclusive")
    p.add_argument("--child", help="the child's ID number or key")
    p.add_argument("--assignee", help="staff name")
    p.add_argument("--min-amount-fen", type=int, help="amount at risk at least (fen)")
    p.add_argument("--max-amount-fen", type=int, help="amount at risk at most (fen)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: Any) -> None:
    alerts = sub.add_parser("alerts", help="find and work alerts (staff)")
    verbs = alerts.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("list", help="alerts matching the filters")
    _common(p)
    _filters(p)
    p.add_argument("--sort", choices=("raised", "amount", "period"), default="raised")
    p.add_argument("--asc", action="store_true", help="oldest / smallest first")
    p.add_argument("--limit", type=_positive, help="at most this many (tables: 50)")
    p.add_argument("--page-size", type=_positive, default=500, help="alerts per call (500)")
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("show", help="one alert whole: evidence, history, audit (audited)")
    _common(p)
    p.add_argument("alert_id")
    p.add_argument("--masked", action="store_true", help=MASKED_HELP)
    p.set_defaults(func=cmd_show)

    p = verbs.add_parser("watch", help="follow new and changed alerts live")
    _common(p)
    _filters(p)
    p.add_argument("--cursor", type=int, help="resume after this cursor")
    p.add_argument("--limit", type=_positive, help="stop after this many changes")
    p.set_defaults(func=cmd_watch)

    _register_transitions(verbs)

    p = verbs.add_parser("note", help="add a note to an alert")
    _common(p)
    p.add_argument("alert_id")
    p.add_argument("text")
    p.set_defaults(func=cmd_note)

    child = sub.add_parser("child", help="a child's facts (staff)")
    child_verbs = child.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = child_verbs.add_parser("timeline", help="every fact in valid-time order (audited)")
    _common(p)
    p.add_argument("child", metavar="ID_OR_KEY")
    p.add_argument("--masked", action="store_true", help=MASKED_HELP)
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("summary", help="totals per region, code and status")
    _common(p)
    p.add_argument("--region", action="append")
    p.add_argument("--period-from")
    p.add_argument("--period-to")
    p.set_defaults(func=cmd_summary)


def _register_transitions(verbs: Any) -> None:
    """ack, assign, resolve, reopen: one staff step each, under the version read."""
    for name, helptext, builder, extra in (
        ("ack", "claim an alert (OPEN/REOPENED -> ACKNOWLEDGED)", _ack, "note"),
        ("assign", "give an alert to a named investigator (supervisor)", _assign, "assign"),
        ("resolve", "close an alert with a resolution and a note", _resolve, "resolve"),
        ("reopen", "reopen a resolved alert (supervisor)", _reopen, "reopen"),
    ):
        method = {
            "ack": "AcknowledgeAlert",
            "assign": "AssignAlert",
            "resolve": "ResolveAlert",
            "reopen": "ReopenAlert",
        }[name]
        p = verbs.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("alert_id")
        p.add_argument(
            "--version", type=_positive, help="the version you read (default: the current one)"
        )
        if extra == "note":
            p.add_argument("--note", help="why (optional)")
        elif extra == "assign":
            p.add_argument("assignee_name", metavar="ASSIGNEE")
            p.add_argument("--reason")
        elif extra == "resolve":
            p.add_argument(
                "--resolution",
                required=True,
                help="CONFIRMED_IMPROPER, FALSE_POSITIVE, DATA_CORRECTED or OTHER",
            )
            p.add_argument("--recovered-fen", type=int, help="amount recovered (fen)")
            p.add_argument("--note", required=True)
        else:
            p.add_argument("--reason", required=True)
        p.set_defaults(func=_transition(method, builder))
