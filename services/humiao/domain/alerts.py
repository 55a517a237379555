"""What the rules conclude: alert codes and the alert drafts a child's facts imply.

A draft is the verifier's verdict before any lifecycle: the set of drafts for a child
is a pure function of the set of facts about it. Lifecycle (OPEN, WITHDRAWN, ...) is
applied by comparing successive sets (see humiao.domain.lifecycle).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from humiao.domain.values import Period, Program


class AlertCode(enum.IntEnum):
    """Numbers match humiao.alerts.v1.AlertCode."""

    PAID_AFTER_DEATH = 1
    PAID_AFTER_AGE_OUT = 2
    PAID_AFTER_ADOPTION = 3
    PAID_AFTER_PARENT_SITUATION_ENDED = 4
    ORPHAN_PARENT_ALIVE = 5
    PAID_AFTER_ENROLLMENT_ENDED = 6
    PAID_BEFORE_APPROVAL = 7
    NOT_ENROLLED = 8
    DUPLICATE_PAYMENT = 9
    AMOUNT_MISMATCH = 10
    PAYEE_NOT_GUARDIAN = 11
    PAYEE_DECEASED = 12
    MISSED_PAYMENT = 13


class AlertStatus(enum.IntEnum):
    """Numbers match humiao.alerts.v1.AlertStatus."""

    OPEN = 1
    ACKNOWLEDGED = 2
    RESOLVED = 3
    WITHDRAWN = 4
    REOPENED = 5


class Resolution(enum.IntEnum):
    CONFIRMED_IMPROPER = 1
    FALSE_POSITIVE = 2
    DATA_CORRECTED = 3
    OTHER = 4


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """One discrepancy the facts imply.

    `subject` is what makes the alert distinct within (code, child, period): the
    disbursement id for checks about one payment, empty for DUPLICATE_PAYMENT and
    MISSED_PAYMENT (one alert per child and period). The alert id derives from
    (code, child, period, subject) only, so the same discrepancy keeps its id while
    its evidence or amount changes.
    """

    code: AlertCode
    child_id: str
    region: str
    period: Period
    subject: str
    program: Program | None
    amount_at_risk_fen: int
    evidence_event_ids: tuple[str, ...]
    explanation_zh: str
    explanation_en: str

    @property
    def alert_id(self) -> str:
        return alert_id(self.code, self.child_id, self.period, self.subject)


def alert_id(code: AlertCode, child_id: str, period: Period, subject: str) -> str:
    """Deterministic, opaque alert id: the same discrepancy always gets the same id.

    It is a hash, so it reveals no ID number (alert ids travel on Kafka and in logs).
    """
    raw = f"{code.name}|{child_id}|{period}|{subject}".encode()
    return "A" + hashlib.sha256(b"humiao-alert-v1|" + raw).hexdigest()[:24]
