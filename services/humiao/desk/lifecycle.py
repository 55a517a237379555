"""The staff side of the alert lifecycle (DESIGN.md section 6), as pure rules.

OPEN or REOPENED -> ACKNOWLEDGED (claimed by a named person) -> RESOLVED (with a
resolution and a note); a supervisor may reopen a RESOLVED alert (-> REOPENED) or
give an open one to someone. WITHDRAWN and the verifier's REOPENED come from the
facts, never from staff. Each function checks the current state and says what the
row becomes; the repository applies it under the optimistic version check.
"""

from __future__ import annotations

from dataclasses import dataclass

from humiao.desk.errors import FailedPrecondition, PermissionDenied
from humiao.domain.alerts import AlertStatus, Resolution

#: Statuses an alert can be claimed or assigned from.
CLAIMABLE = frozenset({AlertStatus.OPEN, AlertStatus.REOPENED})


@dataclass(frozen=True, slots=True)
class Current:
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


def _refuse(current: Current, what: str, allowed: str) -> FailedPrecondition:
    held = f" (held by {current.assignee})" if current.assignee else ""
    return FailedPrecondition(
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
        raise PermissionDenied(
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
