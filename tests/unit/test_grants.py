"""The grant model for sources (ingest/grants.py, docs/grants.md), pure: every door a
source might try, against what ingest knows of earlier facts."""

from __future__ import annotations

import dataclasses
import datetime as dt

from builders import (
    adopted,
    died,
    ended,
    enrolled,
    guardian,
    paid,
    person,
    retract,
    reversed_,
    standard,
)
from humiao.domain import events as ev
from humiao.ingest.grants import Accepted, Grant, Judge, Known, Refusal, Refused

A, B = "110105", "310101"
KIDS_BORN = dt.date(2014, 5, 1)


def grant(source: str | None = "src-a", regions: set[str] | None = frozenset({A}),
          corrections: set[str] = frozenset(), everywhere: bool = False) -> Grant:
    """regions None: every region."""
    return Grant(source, frozenset(regions) if regions is not None else None, None,
                 frozenset(corrections), everywhere)


def from_(source: str, envelope: ev.Envelope) -> ev.Envelope:
    return dataclasses.replace(envelope, source=source)


def key(person_id: str) -> str:
    return f"k-{person_id}"


def judge(grant_: Grant, known: Known | None = None) -> Judge:
    return Judge(grant_, known or Known(), key)


def refused(verdict: Accepted | Refused, reason: Refusal) -> Refused:
    assert isinstance(verdict, Refused), verdict
    assert verdict.reason is reason, verdict
    return verdict


def accepted(verdict: Accepted | Refused) -> ev.Envelope:
    assert isinstance(verdict, Accepted), verdict
    return verdict.envelope


def test_ids_are_the_sources_own_on_the_way_to_kafka():
    payment = from_("src-a", paid("2024-03", child=person(1, KIDS_BORN), region=A,
                                  disbursement_id="dis-0450-6", event_id="dis-0450-6"))
    out = accepted(judge(grant()).judge(payment))
    assert out.event_id == "src-a/dis-0450-6"
    assert out.body.disbursement_id == "src-a/dis-0450-6"  # type: ignore[union-attr]
    other = accepted(judge(grant("src-b", {A})).judge(from_("src-b", payment)))
    assert other.event_id == "src-b/dis-0450-6" != out.event_id


def test_a_source_corrects_its_own_facts_and_not_another_sources():
    child = person(2, KIDS_BORN, region=B)
    theirs = from_("src-b", paid("2024-03", child=child, region=B, event_id="ev-9",
                                 disbursement_id="d-9"))
    known = Known()
    judge(grant("src-b", {B}), known).judge(theirs)  # src-b's fact, remembered

    mine = judge(grant("src-a", {A}), known)
    refusal = refused(mine.judge(from_("src-a", retract("ev-9"))), Refusal.CORRECTION_NOT_OWNED)
    assert refusal.region == B and "another source" in refusal.message
    refused(mine.judge(from_("src-a", reversed_(theirs))), Refusal.CORRECTION_NOT_OWNED)
    refused(mine.judge(from_("src-a", retract("src-b/ev-9"))), Refusal.CORRECTION_NOT_OWNED)

    own = judge(grant("src-b", {B}), known)
    undo = accepted(own.judge(from_("src-b", retract("ev-9"))))
    assert undo.body.retracted_event_id == "src-b/ev-9"  # type: ignore[union-attr]
    back = accepted(own.judge(from_("src-b", reversed_(theirs))))
    assert back.body.disbursement_id == "src-b/d-9"  # type: ignore[union-attr]


def test_a_corrections_grant_reaches_the_owners_fact_in_its_regions_only():
    theirs = from_("src-b", paid("2024-03", child=person(3, KIDS_BORN, region=B), region=B,
                                 event_id="ev-7", disbursement_id="d-7"))
    known = Known()
    judge(grant("src-b", {B}), known).judge(theirs)
    auditor = judge(grant("audit", {A}, corrections={B}), known)
    out = accepted(auditor.judge(from_("audit", retract("ev-7"))))
    assert out.body.retracted_event_id == "src-b/ev-7"  # type: ignore[union-attr]
    assert out.event_id.startswith("audit/")
    elsewhere = judge(grant("audit", {A}, corrections={"440305"}), known)
    refused(elsewhere.judge(from_("audit", reversed_(theirs))), Refusal.CORRECTION_NOT_OWNED)


def test_an_id_nobody_sent_yet_is_the_senders_own():
    out = accepted(judge(grant()).judge(from_("src-a", retract("later-1"))))
    assert out.body.retracted_event_id == "src-a/later-1"  # type: ignore[union-attr]


def test_a_childs_region_is_its_enrollment_not_its_id_prefix():
    born_in_a = person(4, KIDS_BORN, region=A)
    known = Known()
    accepted(judge(grant("src-b", {B}), known).judge(
        from_("src-b", enrolled(child=born_in_a, born=KIDS_BORN, region=B))))
    # a district of the ID's birthplace may not act on a child enrolled elsewhere
    verdict = judge(grant("src-a", {A}), known).judge(
        from_("src-a", guardian(person(90), child=born_in_a)))
    assert refused(verdict, Refusal.REGION_NOT_ALLOWED).region == B
    refused(judge(grant("src-a", {A}), known).judge(from_("src-a", adopted("2024-01-01",
                                                                           child=born_in_a))),
            Refusal.REGION_NOT_ALLOWED)
    accepted(judge(grant("src-b", {B}), known).judge(
        from_("src-b", guardian(person(90), child=born_in_a))))
    # with no enrollment known, the ID prefix decides
    stranger = person(5, KIDS_BORN, region=B)
    refused(judge(grant("src-a", {A})).judge(from_("src-a", guardian(person(91), child=stranger))),
            Refusal.REGION_NOT_ALLOWED)


def test_a_second_enrollment_elsewhere_is_a_visible_conflict_until_the_first_ends():
    child = person(6, KIDS_BORN, region=B)
    known = Known()
    accepted(judge(grant("src-b", {B}), known).judge(
        from_("src-b", enrolled(child=child, born=KIDS_BORN, region=B))))
    conflict = refused(judge(grant("src-a", {A}), known).judge(
        from_("src-a", enrolled(child=child, born=KIDS_BORN, region=A))),
        Refusal.ENROLLMENT_CONFLICT)
    assert B in conflict.message and A in conflict.message
    accepted(judge(grant("src-b", {B}), known).judge(
        from_("src-b", ended("2024-02-29", child=child))))
    accepted(judge(grant("src-a", {A}), known).judge(
        from_("src-a", enrolled(child=child, born=KIDS_BORN, region=A, approved="2024-03-10"))))


def test_a_fact_about_a_person_is_scoped_by_the_children_it_is_linked_to():
    payee = person(7, region=A)  # born in A, pays a child enrolled in B
    child = person(8, KIDS_BORN, region=B)
    known = Known()
    b_source = judge(grant("src-b", {B}), known)
    accepted(b_source.judge(from_("src-b", enrolled(child=child, born=KIDS_BORN, region=B))))
    accepted(b_source.judge(from_("src-b", paid("2024-01", child=child, region=B, payee=payee))))
    death = from_("src-a", died(payee, "2024-02-01"))
    assert refused(judge(grant("src-a", {A}), known).judge(death),
                   Refusal.REGION_NOT_ALLOWED).region == B
    accepted(judge(grant("src-b", {B}), known).judge(from_("src-b", death)))
    accepted(judge(grant("city", None), known).judge(from_("city", death)))
    # a person linked to nobody: the ID prefix
    accepted(judge(grant("src-a", {A})).judge(from_("src-a", died(person(9), "2024-01-01"))))


def test_regions_named_by_the_fact_are_its_scope():
    refused(judge(grant()).judge(from_("src-a", standard(region=B))), Refusal.REGION_NOT_ALLOWED)
    refused(judge(grant()).judge(from_("src-a", paid("2024-01", child=person(10, KIDS_BORN),
                                                     region=B))), Refusal.REGION_NOT_ALLOWED)


def test_the_source_name_and_what_a_refusal_says():
    verdict = judge(grant("minzheng-110105")).judge(from_("bank-110105", standard()))
    refusal = refused(verdict, Refusal.SOURCE_MISMATCH)
    assert "minzheng-110105" in refusal.message and "HUMIAO_SOURCE_CREDENTIALS" in refusal.message
    anyone = judge(grant(None))  # the local stack's credential: any source name
    assert accepted(anyone.judge(from_("bank-110105", standard()))).event_id.startswith(
        "bank-110105/")
