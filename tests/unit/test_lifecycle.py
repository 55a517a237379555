"""Alert versions from successive verdicts: raise, withdraw, reopen, update."""

from __future__ import annotations

import dataclasses

import pytest

from builders import CHILD, died, enrolled, guardian, paid, retract, reversed_, standard
from humiao.domain import lifecycle as staff_steps
from humiao.domain.alerts import AlertCode, AlertDraft, AlertStatus, Resolution
from humiao.domain.lifecycle import AlertChange, StoredAlert, reconcile, stored_after
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child
from humiao.domain.values import Period, Program

KEY = b"lifecycle-test-key"

S = AlertStatus


def draft(
    period: str = "2024-04", amount: int = 80000, evidence: tuple[str, ...] = ("e1",)
) -> AlertDraft:
    return AlertDraft(
        code=AlertCode.PAID_AFTER_DEATH,
        child_id=CHILD,
        region="110105",
        period=Period.parse(period),
        subject="D1",
        program=Program.ORPHAN_DISPERSED,
        amount_at_risk_fen=amount,
        evidence_event_ids=evidence,
        explanation_zh="…",
        explanation_en=f"paid {amount}",
    )


def stored(a: AlertDraft, status: AlertStatus, implied: bool, version: int) -> StoredAlert:
    return StoredAlert(
        a.id_under(KEY),
        status,
        implied,
        version,
        a.amount_at_risk_fen,
        a.evidence_event_ids,
        a.explanation_en,
    )


def test_new_draft_opens_version_one() -> None:
    a = draft()
    assert reconcile({}, [a], KEY) == [AlertChange(a.id_under(KEY), a, S.OPEN, True, 1, "raised")]


def test_unchanged_gives_nothing() -> None:
    a = draft()
    for status in (S.OPEN, S.ACKNOWLEDGED, S.REOPENED, S.RESOLVED):
        assert reconcile({a.id_under(KEY): stored(a, status, True, 3)}, [a], KEY) == []
    assert reconcile({a.id_under(KEY): stored(a, S.WITHDRAWN, False, 2)}, [], KEY) == []


def test_basis_gone_withdraws_but_keeps_resolution() -> None:
    a = draft()
    for status in (S.OPEN, S.ACKNOWLEDGED, S.REOPENED):
        (ch,) = reconcile({a.id_under(KEY): stored(a, status, True, 2)}, [], KEY)
        assert (ch.status, ch.implied, ch.version, ch.draft, ch.reason) == (
            S.WITHDRAWN,
            False,
            3,
            None,
            "basis gone",
        )
    (ch,) = reconcile({a.id_under(KEY): stored(a, S.RESOLVED, True, 4)}, [], KEY)
    assert (ch.status, ch.implied, ch.version) == (S.RESOLVED, False, 5)
    assert "resolution kept" in ch.reason


def test_basis_returns_reopens() -> None:
    a = draft()
    (ch,) = reconcile({a.id_under(KEY): stored(a, S.WITHDRAWN, False, 2)}, [a], KEY)
    assert (ch.status, ch.implied, ch.version, ch.draft) == (S.REOPENED, True, 3, a)
    assert ch.reason == "basis returned"
    (ch,) = reconcile({a.id_under(KEY): stored(a, S.RESOLVED, False, 5)}, [a], KEY)
    assert (ch.status, ch.implied, ch.version) == (S.RESOLVED, True, 6)


def test_changed_content_new_version_same_status() -> None:
    a = draft()
    old = stored(a, S.ACKNOWLEDGED, True, 2)
    b = draft(evidence=("e1", "e2"))
    (ch,) = reconcile({a.id_under(KEY): old}, [b], KEY)
    assert (ch.status, ch.version, ch.reason, ch.draft) == (
        S.ACKNOWLEDGED,
        3,
        "evidence changed",
        b,
    )
    (ch,) = reconcile({a.id_under(KEY): old}, [draft(amount=1)], KEY)
    assert ch.reason == "amount changed"
    (ch,) = reconcile({a.id_under(KEY): old}, [dataclasses.replace(a, explanation_en="new")], KEY)
    assert ch.reason == "explanation changed"


def test_changes_sorted_and_applied() -> None:
    drafts = [draft(f"2024-0{m}") for m in range(1, 6)]
    changes = reconcile({}, drafts, KEY)
    assert [c.alert_id for c in changes] == sorted(d.id_under(KEY) for d in drafts)
    after = stored_after({}, changes)
    assert all(s.implied and s.status is S.OPEN and s.version == 1 for s in after.values())
    gone = reconcile(after, drafts[:2], KEY)
    assert len(gone) == 3 and all(c.status is S.WITHDRAWN for c in gone)
    after = stored_after(after, gone)
    withdrawn = after[drafts[4].id_under(KEY)]
    assert withdrawn.evidence_event_ids == drafts[4].evidence_event_ids  # content kept


def test_reversal_withdraws_and_retraction_of_reversal_reopens() -> None:
    book = PolicyBook.default()
    pay = paid("2024-04")
    rev = reversed_(pay)
    facts = [enrolled(), guardian(), standard(), died(CHILD, "2024-02-01"), pay]
    state: dict[str, StoredAlert] = {}
    history: list[tuple[str, AlertStatus, int]] = []
    for batch in (facts, [*facts, rev], [*facts, rev, retract(rev)]):
        changes = reconcile(state, evaluate_child(CHILD, batch, book), KEY)
        history += [(c.reason, c.status, c.version) for c in changes]
        state = stored_after(state, changes)
    assert history == [
        ("raised", S.OPEN, 1),
        ("basis gone", S.WITHDRAWN, 2),
        ("basis returned", S.REOPENED, 3),
    ]


# --- the staff's side -----------------------------------------------------------------

def _at(status: AlertStatus, assignee: str | None = None) -> staff_steps.Current:
    return staff_steps.Current(status, assignee, "110105")


def test_a_claim_takes_an_open_or_reopened_alert_only():
    for status in (AlertStatus.OPEN, AlertStatus.REOPENED):
        change = staff_steps.acknowledge(_at(status), "li", "")
        assert (change.status, change.assignee, change.reason) == (
            AlertStatus.ACKNOWLEDGED, "li", "claimed by li")
    for status in (AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.WITHDRAWN):
        with pytest.raises(staff_steps.StepRefused, match="only OPEN or REOPENED"):
            staff_steps.acknowledge(_at(status, "wang"), "li", "")


def test_only_the_holder_resolves_unless_the_caller_may_override():
    held = _at(AlertStatus.ACKNOWLEDGED, "wang")
    with pytest.raises(staff_steps.NotTheHolder, match="held by wang"):
        staff_steps.resolve(held, "li", may_override=False, resolution=Resolution.FALSE_POSITIVE,
                            amount_recovered_fen=0, note="checked")
    change = staff_steps.resolve(held, "zhao", may_override=True,
                                 resolution=Resolution.CONFIRMED_IMPROPER,
                                 amount_recovered_fen=61_000, note="recovered")
    assert (change.status, change.assignee, change.amount_recovered_fen) == (
        AlertStatus.RESOLVED, "wang", 61_000)


def test_a_recovered_amount_counts_only_for_a_confirmed_improper_payment():
    change = staff_steps.resolve(_at(AlertStatus.ACKNOWLEDGED, "li"), "li", may_override=False,
                                 resolution=Resolution.FALSE_POSITIVE,
                                 amount_recovered_fen=500, note="no")
    assert change.amount_recovered_fen is None


def test_reopen_takes_a_resolved_alert_only():
    assert staff_steps.reopen(_at(AlertStatus.RESOLVED, "li"), "new facts").status is (
        AlertStatus.REOPENED)
    with pytest.raises(staff_steps.StepRefused, match="only RESOLVED"):
        staff_steps.reopen(_at(AlertStatus.OPEN), "why")
