"""Database rows to desk messages (the published AlertVersion comes from
humiao.adapters.alerts_codec, shared with the verifier, so both writers publish one shape)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from humiao.api.desk.v1 import desk_pb2
from humiao.domain.identity import mask_id

Row = Mapping[str, Any]


def timestamp(value: dt.datetime | None) -> Timestamp:
    ts = Timestamp()
    if value is not None:
        ts.FromDatetime(value)
    return ts


def alert_message(row: Row, *, whole_id: bool) -> desk_pb2.Alert:
    """The desk's view of an alert row; the ID number masked unless `whole_id`."""
    return desk_pb2.Alert(
        alert_id=row["alert_id"],
        version=row["version"],
        code=row["code"],
        status=row["status"],
        child_key=row["child_key"],
        child_id=row["child_id"] if whole_id else mask_id(row["child_id"]),
        child_id_whole=whole_id,
        region=row["region"],
        period=row["period"],
        program=row["program"],
        subject=row["subject"],
        amount_at_risk_fen=row["amount_at_risk_fen"],
        evidence_event_ids=list(row["evidence_event_ids"]),
        explanation_zh=row["explanation_zh"],
        explanation_en=row["explanation_en"],
        implied=row["implied"],
        assignee=row["assignee"] or "",
        resolution=row["resolution"],
        amount_recovered_fen=row["amount_recovered_fen"] or 0,
        raised_at=timestamp(row["raised_at"]),
        updated_at=timestamp(row["updated_at"]),
    )


def note_message(row: Row) -> desk_pb2.Note:
    return desk_pb2.Note(
        note_id=row["note_id"],
        alert_id=row["alert_id"],
        author=row["author"],
        text=row["body"],
        created_at=timestamp(row["created_at"]),
    )


def audit_message(row: Row) -> desk_pb2.AuditEntry:
    return desk_pb2.AuditEntry(
        audit_id=row["audit_id"],
        at=timestamp(row["at"]),
        actor=row["actor"],
        role=row["role"],
        action=row["action"],
        alert_id=row["alert_id"] or "",
        child_key=row["child_key"] or "",
        detail=row["detail"],
        version=row["version"] or 0,
    )
