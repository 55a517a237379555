"""Alerts between the domain, the `alerts` table and the wire (humiao.alerts.v1.AlertVersion).

The table row is the hub: the verifier builds a row from an AlertChange (plus the stored
row when the change carries no draft), and every published version is the row as it
stood after the change. The desk can use `alert_version_from_row` for staff transitions
so both writers publish the same shape.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from humiao.api.alerts.v1 import alerts_pb2
from humiao.domain.alerts import AlertCode, AlertDraft, AlertStatus, Resolution

#: Columns of the alerts table a version is built from (the order of ALERT_UPSERT_COLUMNS).
ALERT_COLUMNS = (
    "alert_id",
    "code",
    "child_key",
    "child_id",
    "region",
    "period",
    "program",
    "subject",
    "amount_at_risk_fen",
    "evidence_event_ids",
    "explanation_zh",
    "explanation_en",
    "status",
    "implied",
    "version",
)


def enum_name(value: Any) -> str:
    """The stored text of a status/code/resolution given as an enum member or a name."""
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


def row_from_draft(
    draft: AlertDraft, *, alert_id: str, child_key: str, status: Any, implied: bool, version: int
) -> dict[str, Any]:
    """The alerts-table row for a draft the facts imply (id, status and version from
    lifecycle: the id is keyed, so the caller holding the key derives it)."""
    return {
        "alert_id": alert_id,
        "code": draft.code.name,
        "child_key": child_key,
        "child_id": draft.child_id,
        "region": draft.region,
        "period": str(draft.period),
        "program": draft.program.name if draft.program is not None else None,
        "subject": draft.subject,
        "amount_at_risk_fen": int(draft.amount_at_risk_fen),
        "evidence_event_ids": list(draft.evidence_event_ids),
        "explanation_zh": draft.explanation_zh,
        "explanation_en": draft.explanation_en,
        "status": enum_name(status),
        "implied": bool(implied),
        "version": int(version),
    }


def row_from_stored(
    stored: Mapping[str, Any], *, status: Any, implied: bool, version: int
) -> dict[str, Any]:
    """The row after a change that keeps the stored content (a withdrawal, say)."""
    row = {name: stored[name] for name in ALERT_COLUMNS}
    row["evidence_event_ids"] = list(row["evidence_event_ids"] or ())
    row["status"] = enum_name(status)
    row["implied"] = bool(implied)
    row["version"] = int(version)
    return row


def _timestamp(when: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(dt.UTC))
    return ts


def alert_version_from_row(
    row: Mapping[str, Any],
    *,
    changed_at: dt.datetime,
    changed_by: str,
    change_reason: str,
) -> alerts_pb2.AlertVersion:
    """The published form of an alert row. Carries the child's pseudonymous key only."""
    # Enum fields take the member names the table stores (the proto names are the same).
    msg = alerts_pb2.AlertVersion(
        alert_id=row["alert_id"],
        version=int(row["version"]),
        code=AlertCode[row["code"]].name,
        status=AlertStatus[row["status"]].name,
        child_key=row["child_key"],
        region=row["region"],
        period=row["period"],
        amount_at_risk_fen=int(row["amount_at_risk_fen"]),
        evidence_event_ids=list(row["evidence_event_ids"] or ()),
        explanation_zh=row["explanation_zh"],
        explanation_en=row["explanation_en"],
        changed_by=changed_by,
        change_reason=change_reason,
        program=row.get("program") or "",
        assignee=row.get("assignee") or "",
        resolution=Resolution[row["resolution"]].name if row.get("resolution") else None,
        amount_recovered_fen=int(row.get("amount_recovered_fen") or 0),
    )
    msg.changed_at.CopyFrom(_timestamp(changed_at))
    return msg


def alert_version_from_bytes(data: bytes) -> alerts_pb2.AlertVersion:
    msg = alerts_pb2.AlertVersion()
    msg.ParseFromString(data)
    return msg
