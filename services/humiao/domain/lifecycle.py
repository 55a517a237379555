"""Turn successive verdicts into alert versions (pure; the verifier stores the result).

``reconcile`` compares the alerts stored for a child with the drafts its facts imply now:

- a draft with no stored alert: new, OPEN, version 1 ("raised");
- a stored implied alert with no draft: WITHDRAWN ("basis gone"), except a RESOLVED alert,
  which stays RESOLVED (a person's decision is not undone by a machine) but still gets a
  version with ``implied=False`` ("basis gone; resolution kept"), so the history shows it;
- a stored alert no longer implied whose draft returns: WITHDRAWN becomes REOPENED
  ("basis returned"); RESOLVED stays RESOLVED with ``implied=True`` ("basis returned;
  resolution kept"); any other status is kept (a stored state the verifier never writes);
- a stored implied alert whose amount, evidence or explanation changed: a new version,
  same status ("evidence changed" / "amount changed");
- anything else: no change. Each change raises the version by one. Changes come sorted
  by alert id.

``stored`` must hold the stored alerts of the same child(ren) the drafts were evaluated
for (alerts of other children would be withdrawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from humiao.domain.alerts import AlertDraft, AlertStatus


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert_id: str
    status: AlertStatus
    implied: bool
    version: int
    amount_at_risk_fen: int
    evidence_event_ids: tuple[str, ...]
    explanation_en: str


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One new version of an alert. `draft` is the current verdict, when there is one."""

    alert_id: str
    draft: AlertDraft | None
    status: AlertStatus
    implied: bool
    version: int
    reason: str


def _content_change(stored: StoredAlert, draft: AlertDraft) -> str | None:
    """Why the draft differs from what is stored, or None if it does not."""
    if tuple(draft.evidence_event_ids) != tuple(stored.evidence_event_ids):
        return "evidence changed"
    if draft.amount_at_risk_fen != stored.amount_at_risk_fen:
        return "amount changed"
    if draft.explanation_en != stored.explanation_en:
        return "explanation changed"
    return None


def reconcile(
    stored: Mapping[str, StoredAlert], drafts: Sequence[AlertDraft], key: bytes
) -> list[AlertChange]:
    """The alert versions that bring `stored` in line with `drafts` (see module doc);
    `key` is the key the stored alert ids were derived under (the pseudonym key)."""
    changes: list[AlertChange] = []
    by_id: dict[str, AlertDraft] = {}
    for draft in drafts:
        by_id[draft.id_under(key)] = draft
    for aid, draft in by_id.items():
        old = stored.get(aid)
        if old is None:
            changes.append(AlertChange(aid, draft, AlertStatus.OPEN, True, 1, "raised"))
            continue
        if not old.implied:
            if old.status is AlertStatus.WITHDRAWN:
                status, reason = AlertStatus.REOPENED, "basis returned"
            elif old.status is AlertStatus.RESOLVED:
                status, reason = old.status, "basis returned; resolution kept"
            else:
                status, reason = old.status, "basis returned"
            changes.append(AlertChange(aid, draft, status, True, old.version + 1, reason))
            continue
        why = _content_change(old, draft)
        if why is not None:
            changes.append(AlertChange(aid, draft, old.status, True, old.version + 1, why))
    for aid, old in stored.items():
        if aid in by_id or not old.implied:
            continue
        if old.status is AlertStatus.RESOLVED:
            status, reason = old.status, "basis gone; resolution kept"
        else:
            status, reason = AlertStatus.WITHDRAWN, "basis gone"
        changes.append(AlertChange(aid, None, status, False, old.version + 1, reason))
    changes.sort(key=lambda c: c.alert_id)
    return changes


def stored_after(
    stored: Mapping[str, StoredAlert], changes: Sequence[AlertChange]
) -> dict[str, StoredAlert]:
    """`stored` with `changes` applied (what a repository would hold afterwards).

    A change without a draft keeps the stored content (a withdrawn alert shows what it
    was about).
    """
    out = dict(stored)
    for ch in changes:
        old = out.get(ch.alert_id)
        if ch.draft is not None:
            amount = ch.draft.amount_at_risk_fen
            evidence = tuple(ch.draft.evidence_event_ids)
            explanation = ch.draft.explanation_en
        elif old is not None:
            amount, evidence, explanation = (
                old.amount_at_risk_fen,
                old.evidence_event_ids,
                old.explanation_en,
            )
        else:  # pragma: no cover - reconcile never emits this
            raise ValueError(f"change without draft for unknown alert {ch.alert_id}")
        out[ch.alert_id] = StoredAlert(
            ch.alert_id, ch.status, ch.implied, ch.version, amount, evidence, explanation
        )
    return out
