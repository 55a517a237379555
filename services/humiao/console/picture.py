"""The child's timeline as a picture: months across, one cell per month for the payments
(paid, flagged, reversed or retracted, or enrolled with no payment seen) and the life
events marked on the month they took effect.

It draws what the desk's timeline says and decides nothing: the verdict of each payment
is the desk's; the enrolled band runs from the approval to the first ending fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.domain.values import Period

#: Months drawn at most: the last ones up to the alert's period and beyond it.
MAX_MONTHS = 48
CELL = 16
LEFT = 96
TOP = 24

_VERDICT_STATE = {desk_pb2.VERIFIED: "paid", desk_pb2.FLAGGED: "flagged",
                  desk_pb2.REVERSED: "reversed", desk_pb2.RETRACTED: "reversed"}
_STATE_RANK = {"due": 0, "paid": 1, "reversed": 2, "flagged": 3}


def _month_index(text: str) -> int | None:
    """'2024-03' or '2024-03-05' -> the month's Period index; None for anything else."""
    try:
        return Period.parse(text[:7]).index
    except ValueError:
        return None


def _label(index: int) -> str:
    return str(Period(index))


@dataclass
class Cell:
    x: int
    month: str
    state: str  # paid, flagged, reversed, due
    detail: str


@dataclass
class Marker:
    x: int
    month: str
    kind: str  # a key of the console's words: enrolled, ended, died, ...
    date: str


@dataclass
class Picture:
    months: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    year_ticks: list[tuple[int, str]] = field(default_factory=list)
    focus_x: int | None = None

    @property
    def width(self) -> int:
        return LEFT + CELL * max(1, len(self.months)) + 8

    height = TOP + 3 * CELL + 40


_MARKED = {
    "childEnrolled": "enrolled", "enrollmentEnded": "ended", "guardianAppointed": "guardian",
    "personDied": "died", "childAdopted": "adopted", "schoolingExtension": "extension",
    "personStatusChanged": "parent_status",
}


def _adulthood(entries: list[desk_pb2.TimelineEntry]) -> int | None:
    for e in entries:
        if e.kind == "childEnrolled" and e.relation == "CHILD":
            born = _month_index(e.event.child_enrolled.birth_date)
            if born is not None:
                return born + 18 * 12
    return None


def _enrolled_band(entries: list[desk_pb2.TimelineEntry]) -> tuple[int | None, int | None]:
    """(first month, month after the last) the child was enrolled, as the facts say: from
    the approval to the first of an enrollment end, an adoption, the child's death, and the
    18th birthday (or the end of a schooling extension, when later)."""
    start = None
    ends: list[int] = []
    age_end = _adulthood(entries)
    for e in entries:
        month = _month_index(e.valid_date)
        if month is None:
            continue
        if e.kind == "childEnrolled" and e.relation == "CHILD":
            start = month if start is None else min(start, month)
        elif e.kind == "schoolingExtension":
            until = _month_index(e.event.schooling_extension.valid_until)
            if until is not None:
                age_end = max(age_end or 0, until + 1)
        elif (e.kind in ("enrollmentEnded", "childAdopted")
              or (e.kind == "personDied" and e.relation == "CHILD")):
            ends.append(month)
    if age_end is not None:
        ends.append(age_end)
    return start, min(ends) if ends else None


def draw(timeline: desk_pb2.GetChildTimelineResponse, focus_period: str = "") -> Picture:
    entries = list(timeline.entries)
    payments: dict[int, tuple[str, str]] = {}
    for e in entries:
        if e.kind != "disbursement":
            continue
        month = _month_index(e.event.disbursement.period)
        state = _VERDICT_STATE.get(e.verdict, "paid")
        if month is None:
            continue
        held = payments.get(month)
        if held is None or _STATE_RANK[state] > _STATE_RANK[held[0]]:
            payments[month] = (state, e.event.disbursement.disbursement_id)
    for alert in timeline.period_alerts:
        month = _month_index(alert.period)
        if month is not None:
            payments[month] = ("flagged", alerts_pb2.AlertCode.Name(alert.code))
    start, end = _enrolled_band(entries)
    focus = _month_index(focus_period)
    known = [m for m in (*payments, start, focus) if m is not None]
    if not known:
        return Picture()
    last = max(known + ([end] if end is not None and end <= max(known) + 6 else []))
    first = max(min(known), last - MAX_MONTHS + 1)
    picture = Picture(months=[_label(m) for m in range(first, last + 1)])
    for m in range(first, last + 1):
        x = LEFT + CELL * (m - first)
        if m % 12 == 0 or (m == first and m % 12 < 9):  # no crowded label for a late start
            picture.year_ticks.append((x, str(m // 12)))
        if m in payments:
            state, detail = payments[m]
            picture.cells.append(Cell(x, _label(m), state, detail))
        elif start is not None and start <= m and (end is None or m < end):
            picture.cells.append(Cell(x, _label(m), "due", ""))
    for e in entries:
        kind = _MARKED.get(e.kind)
        month = _month_index(e.valid_date)
        if kind is None or month is None or not first <= month <= last:
            continue
        if kind == "died" and e.relation not in ("CHILD", "GUARDIAN", "PARENT", "PAYEE"):
            continue
        picture.markers.append(Marker(LEFT + CELL * (month - first), _label(month), kind,
                                      e.valid_date))
    adult = _adulthood(entries)
    if adult is not None and first <= adult <= last:
        picture.markers.append(Marker(LEFT + CELL * (adult - first), _label(adult), "adult",
                                      _label(adult)))
    if focus is not None and first <= focus <= last:
        picture.focus_x = LEFT + CELL * (focus - first)
    return picture
