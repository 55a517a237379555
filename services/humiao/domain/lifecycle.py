"""The alert lifecycle (DESIGN.md section 6), pure: the verifier's side and the staff's.

**The verifier's side.** Turn successive verdicts into alert versions (the verifier stores
the result).

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

**The staff's side.** OPEN or REOPENED -> ACKNOWLEDGED (claimed by a named person) ->
RESOLVED (with a resolution and a note); a supervisor may reopen a RESOLVED alert (->
REOPENED) or give an open one to someone. WITHDRAWN and the verifier's REOPENED come from
the facts, never from staff. Each step checks the current state and says what the row
becomes; the desk applies it under the optimistic version check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from humiao.domain.alerts import AlertDraft, AlertStatus, Resolution


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


# --- The staff's side ---------------------------------------------------------------

#: Statuses an alert can be claimed or assigned from.
CLAIMABLE = frozenset({AlertStatus.OPEN, AlertStatus.REOPENED})


@dataclass(frozen=True, slots=True)
class Current:
    """The alert row as a staff step finds it."""

    status: AlertStatus
    assignee: str | None
    region: str


@dataclass(frozen=True, slots=True)
class Change:
    """What the alert row becomes, and how the audit trail names the step."""

    action: str
    status: AlertStatus
    assignee: str | None
    resolution: Resolution | None
    amount_recovered_fen: int | None
    reason: str


class StepRefused(Exception):
    """A staff step the alert's state does not allow (the desk answers FAILED_PRECONDITION)."""


class NotTheHolder(StepRefused):
    """Someone else holds the alert (the desk answers PERMISSION_DENIED)."""


def _refuse(current: Current, what: str, allowed: str) -> StepRefused:
    held = f" (held by {current.assignee})" if current.assignee else ""
    return StepRefused(
        f"cannot {what}: the alert is {current.status.name}{held}; only {allowed} alerts can be"
    )


def acknowledge(current: Current, by: str, note: str) -> Change:
    if current.status not in CLAIMABLE:
        raise _refuse(current, "acknowledge", "OPEN or REOPENED")
    return Change(
        "ACKNOWLEDGE", AlertStatus.ACKNOWLEDGED, by, None, None, note or f"claimed by {by}"
    )


def assign(current: Current, to: str, reason: str) -> Change:
    if current.status not in CLAIMABLE | {AlertStatus.ACKNOWLEDGED}:
        raise _refuse(current, "assign", "OPEN, REOPENED or ACKNOWLEDGED")
    return Change("ASSIGN", AlertStatus.ACKNOWLEDGED, to, None, None, reason or f"assigned to {to}")


def resolve(
    current: Current,
    by: str,
    *,
    may_override: bool,
    resolution: Resolution,
    amount_recovered_fen: int,
    note: str,
) -> Change:
    """Only the holder resolves, unless the caller may override (a supervisor)."""
    if current.status != AlertStatus.ACKNOWLEDGED:
        raise _refuse(current, "resolve", "ACKNOWLEDGED")
    if current.assignee != by and not may_override:
        raise NotTheHolder(
            f"the alert is held by {current.assignee}; only they or a supervisor may resolve it"
        )
    recovered = amount_recovered_fen if resolution == Resolution.CONFIRMED_IMPROPER else None
    return Change(
        "RESOLVE",
        AlertStatus.RESOLVED,
        current.assignee,
        resolution,
        recovered,
        f"{resolution.name}: {note}",
    )


def reopen(current: Current, reason: str) -> Change:
    if current.status != AlertStatus.RESOLVED:
        raise _refuse(current, "reopen", "RESOLVED")
    return Change("REOPEN", AlertStatus.REOPENED, current.assignee, None, None, reason)
