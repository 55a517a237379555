"""A batch's verdicts against the children's stored alerts: the rows to upsert, the
versions to append (the outbox) and the transitions to count once the batch commits.
The decisions are domain/lifecycle.py's `reconcile`; this module gives them their
stored and published form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from humiao.adapters.alerts_codec import alert_version_from_row, row_from_draft, row_from_stored
from humiao.domain.alerts import AlertDraft, AlertStatus
from humiao.domain.lifecycle import AlertChange, StoredAlert, reconcile
from humiao.domain.values import Period
from humiao.verifier.ports import VersionRow

CHANGED_BY = "verifier"
#: Stored columns a verifier change keeps as staff left them.
_STAFF_COLUMNS = ("assignee", "resolution", "amount_recovered_fen")

#: (code, status, amount at risk, the row before or None): a transition for the metrics
Note = tuple[str, str, int, Mapping[str, Any] | None]


def stored_alert(row: Mapping[str, Any]) -> StoredAlert:
    return StoredAlert(
        alert_id=row["alert_id"],
        status=AlertStatus[row["status"]],
        implied=row["implied"],
        version=row["version"],
        amount_at_risk_fen=row["amount_at_risk_fen"],
        evidence_event_ids=tuple(row["evidence_event_ids"] or ()),
        explanation_en=row["explanation_en"],
    )


@dataclass
class AlertWrites:
    changed_at: dt.datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    versions: list[VersionRow] = field(default_factory=list)
    changes: list[tuple[str, AlertChange]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def add(self, child_key: str, change: AlertChange, old: Mapping[str, Any] | None) -> None:
        if change.draft is not None:
            row = row_from_draft(change.draft, alert_id=change.alert_id, child_key=child_key,
                                 status=change.status, implied=change.implied,
                                 version=change.version)
        else:
            assert old is not None  # a change without a draft concerns a stored alert
            row = row_from_stored(old, status=change.status, implied=change.implied,
                                  version=change.version)
        full = dict(row)
        if old is not None:
            for extra in _STAFF_COLUMNS:
                full[extra] = old[extra]
        payload = alert_version_from_row(
            full, changed_at=self.changed_at, changed_by=CHANGED_BY, change_reason=change.reason
        ).SerializeToString()
        self.rows.append(row)
        self.versions.append((change.alert_id, change.version, row["status"], self.changed_at,
                              CHANGED_BY, change.reason, payload))
        self.changes.append((row["code"], change))
        self.notes.append((row["code"], row["status"], row["amount_at_risk_fen"], old))


def alert_writes(
    drafts: Mapping[str, Sequence[AlertDraft]],
    stored_rows: Sequence[Mapping[str, Any]],
    periods: Mapping[str, frozenset[Period] | None],
    changed_at: dt.datetime,
    secret: bytes,
) -> AlertWrites:
    """Reconcile each child's drafts with its stored alerts. A child checked for some
    periods only (`periods`) leaves its alerts of other periods as they are; alert ids
    are keyed by `secret` (domain.alerts)."""
    by_child: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in stored_rows:
        by_child.setdefault(r["child_key"], {})[r["alert_id"]] = r
    out = AlertWrites(changed_at)
    for key, child_drafts in drafts.items():
        mine = by_child.get(key, {})
        checked = periods.get(key)
        if checked is not None and mine:
            texts = {str(p) for p in checked}
            mine = {a: r for a, r in mine.items() if r["period"] in texts}
        if not child_drafts and not mine:
            continue
        stored = {a: stored_alert(r) for a, r in mine.items()}
        for change in reconcile(stored, child_drafts, secret):
            out.add(key, change, mine.get(change.alert_id))
    return out
