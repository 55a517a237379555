"""What the domain core concludes from a set of facts, and the check that the verifier's
alerts are exactly that (shared by the unit tests against the in-memory store and the
integration tests against PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from humiao.domain import events as ev
from humiao.domain.alerts import AlertDraft
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child


def expected_drafts(
    envelopes: Iterable[ev.Envelope], child_ids: Iterable[str], policies: PolicyBook | None = None
) -> dict[str, AlertDraft]:
    """What the domain core concludes from the whole set, by alert id."""
    policies = policies or PolicyBook.default()
    facts = list(envelopes)
    own: dict[str, list[ev.Envelope]] = defaultdict(list)
    shared = []
    for env in facts:
        cid = env.child_id() if env.kind in ev.CHILD_KINDS else None
        if cid is None:
            shared.append(env)
        else:
            own[cid].append(env)
    out: dict[str, AlertDraft] = {}
    for cid in child_ids:
        for d in evaluate_child(cid, own[cid] + shared, policies):
            out[d.alert_id] = d
    return out


def assert_alerts_match(rows: dict[str, dict[str, Any]], drafts: dict[str, AlertDraft]) -> None:
    """Implied rows are exactly the drafts (same code, amount, evidence) and open; every
    other row is a withdrawn alert an intermediate state raised."""
    implied = {aid: r for aid, r in rows.items() if r["implied"]}
    assert set(implied) == set(drafts), (
        f"missing {len(set(drafts) - set(implied))}, extra {len(set(implied) - set(drafts))}"
    )
    for aid, d in drafts.items():
        r = implied[aid]
        assert r["code"] == d.code.name
        assert r["amount_at_risk_fen"] == d.amount_at_risk_fen
        assert tuple(r["evidence_event_ids"]) == tuple(d.evidence_event_ids)
        assert r["status"] in ("OPEN", "REOPENED")
    for aid, r in rows.items():
        if not r["implied"]:
            assert r["status"] == "WITHDRAWN", (aid, r["status"])
