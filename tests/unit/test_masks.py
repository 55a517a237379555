"""The one mask, keyed alert ids, and the desk's masking and field limits (pure parts)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from humiao.api.desk.v1 import desk_pb2
from humiao.desk import limits
from humiao.desk.masks import mask_all, whole_ids
from humiao.domain.alerts import AlertCode, alert_id
from humiao.domain.identity import (
    citizen_id_check_char,
    holds_id_shape,
    mask_id,
    mask_ids_inside,
)
from humiao.domain.values import Period

CHILD = "11010520120304100" + citizen_id_check_char("11010520120304100")
PAYEE = "31010119750506200" + citizen_id_check_char("31010119750506200")
PARENT = "11010519800101300" + citizen_id_check_char("11010519800101300")


def test_the_mask_keeps_region_and_check_character_only() -> None:
    assert mask_id(CHILD) == CHILD[:6] + "*" * 11 + CHILD[-1]
    assert mask_id("short") == "*****"
    assert mask_id(mask_id(CHILD)) == mask_id(CHILD)  # masking twice changes nothing


@given(st.dates(dt.date(1950, 1, 1), dt.date(2030, 12, 31)), st.integers(0, 999))
def test_every_id_number_is_found_in_free_text_full_width_too(born: dt.date, seq: int) -> None:
    first17 = f"440305{born:%Y%m%d}{seq:03d}"
    number = first17 + citizen_id_check_char(first17)
    wide = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
    for text in (f"called about {number}.", f"ref:{wide}", number):
        assert holds_id_shape(text)
        assert number not in mask_ids_inside(text)
    assert not holds_id_shape(f"amount 1{number}")  # 19 digits: not an ID number


def test_alert_ids_depend_on_the_key_and_stay_stable_under_it() -> None:
    period = Period.parse("2024-03")
    one = alert_id(b"k1", AlertCode.PAID_AFTER_DEATH, CHILD, period, "D-1")
    assert one == alert_id(b"k1", AlertCode.PAID_AFTER_DEATH, CHILD, period, "D-1")
    assert one != alert_id(b"k2", AlertCode.PAID_AFTER_DEATH, CHILD, period, "D-1")
    assert one.startswith("A") and len(one) == 25


def a_whole_answer() -> desk_pb2.GetAlertResponse:
    response = desk_pb2.GetAlertResponse(alert=desk_pb2.Alert(
        child_id=CHILD, child_id_whole=True, evidence_event_ids=[f"ev-{PARENT}"]))
    enrolment = response.evidence.add(event_id="e1").event.child_enrolled
    enrolment.child_id, enrolment.birth_date = CHILD, "2012-03-04"
    enrolment.parents.add(person_id=PARENT)
    payment = response.evidence.add(event_id="e2").event.disbursement
    payment.child_id, payment.payee_id = CHILD, PAYEE
    return response


def test_whole_ids_name_the_child_and_every_adult() -> None:
    assert whole_ids(a_whole_answer()) == {CHILD, PAYEE, PARENT}


def test_mask_all_leaves_nothing_whole() -> None:
    response = a_whole_answer()
    mask_all(response)
    text = str(response)
    assert not [t for t in (CHILD, PAYEE, PARENT) if t in text]
    assert not whole_ids(response)
    assert not response.alert.child_id_whole
    assert response.evidence[0].event.child_enrolled.birth_date == "2012-03-**"
    assert response.evidence[1].event.disbursement.payee_id == mask_id(PAYEE)


def test_limits_name_each_field_over_its_limit() -> None:
    request = desk_pb2.ListAlertsRequest(
        filter=desk_pb2.AlertFilter(assignee="x" * 129, alert_ids=["a\x00"], regions=["1"] * 101),
        page_token="t" * 513,
    )
    fields = {p.field for p in limits.problems_of(request)}
    assert fields == {"filter.assignee", "filter.alert_ids[0]", "filter.regions", "page_token"}
    assert not limits.problems_of(desk_pb2.AddNoteRequest(alert_id="A1", text="a\nb\tc"))
    assert limits.problems_of(desk_pb2.AddNoteRequest(text=f"child {CHILD}"))
