"""What the rules conclude: alert codes and the alert drafts a child's facts imply.

A draft is the verifier's verdict before any lifecycle: the set of drafts for a child
is a pure function of the set of facts about it. Lifecycle (OPEN, WITHDRAWN, ...) is
applied by comparing successive sets (see humiao.domain.lifecycle).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
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
    its evidence or amount changes; it is keyed (see `alert_id`), so only code that
    holds the key can compute it.
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
    def identity(self) -> tuple[Period, AlertCode, str]:
        """What tells this discrepancy from the child's others (a key-free sort order)."""
        return (self.period, self.code, self.subject)

    def id_under(self, key: bytes) -> str:
        """The alert id under `key` (the pseudonym key; see `alert_id`)."""
        return alert_id(key, self.code, self.child_id, self.period, self.subject)


def alert_id(key: bytes, code: AlertCode, child_id: str, period: Period, subject: str) -> str:
    """Deterministic, opaque alert id: the same discrepancy always gets the same id.

    Keyed (HMAC-SHA256 under the pseudonym key, domain-separated from child keys): an
    unkeyed hash of (code, child ID, period, subject) let anyone holding a masked row
    test candidate ID numbers offline until one gave the alert's id. Stable across
    restarts and replays with the same key (downstream deduplicates on it); changing the
    key changes every alert id, as it changes every child key.
    """
    raw = f"humiao-alert-v2|{code.name}|{child_id}|{period}|{subject}".encode()
    return "A" + hmac.new(key, raw, hashlib.sha256).hexdigest()[:24]
