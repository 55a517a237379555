"""A child's timeline: the facts about one child, deduplicated, retractions applied,
conflicts resolved, indexed once so the checks run in linear time.

Decisions (the rules a caseworker can expect):

- **Duplicates.** Envelopes are deduplicated by ``event_id``. Two different envelopes with
  the same id (a source bug) keep the one with the smallest ``repr``, so the choice never
  depends on arrival order.
- **Retractions.** A retracted event counts as never having happened. An
  ``eventRetracted`` is an event too, so retracting a retraction restores the fact it
  retracted (and so on down a chain). Retractions that directly or indirectly retract
  themselves (a cycle) are void. The outcome depends only on the set of events.
- **Conflicts.** Where several facts say different things about one thing (two enrollments
  in one program, two death dates for one person, two adoptions, two schooling extensions,
  two guardian appointments effective the same day, two standards for one region, program
  and month, a disbursement id sent twice), the one recorded latest wins (largest
  ``recordedAt``, ties broken by the larger ``event_id``): a later record is a correction.
- **Enrollment spells** (DESIGN.md section 3). Each enrollment of a program is a spell
  starting at its approval date; the enrollment in force (the latest recorded) is the
  latest spell, and enrollments of the program approved before it are earlier spells (one
  recorded earlier with a later approval date is superseded, not a spell). An
  ``enrollmentEnded`` ends the spell approved on or before its effective date, the latest
  such; one dated before every approval voids the earliest spell (the child never
  qualified under it). Only ends of the spell in force apply; of those, the one recorded
  latest. So an end dated before the approval of a child enrolled once voids that
  enrollment, and one between an earlier spell and the re-enrollment is the earlier
  spell's.
- **Reversals.** A reversed disbursement (any non-retracted ``disbursementReversed`` naming
  its disbursementId) no longer counts as paid and is dropped from the timeline.
- **Concern.** Facts that do not concern the child are ignored: child facts of other
  children, person facts about persons the child does not name, region facts of regions
  it is not enrolled in, reversals of other disbursements.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import cast

from humiao.domain.events import (
    AllowanceStandardSet,
    ChildAdopted,
    ChildEnrolled,
    Disbursement,
    DisbursementReversed,
    EnrollmentEnded,
    Envelope,
    EventRetracted,
    GuardianAppointed,
    PaymentCycleClosed,
    PersonDied,
    PersonStatusChanged,
    SchoolingExtension,
)
from humiao.domain.values import Period, Program


def rank(env: Envelope) -> tuple[dt.datetime, str]:
    """Conflict order: the envelope with the largest rank is the one that counts."""
    return (env.recorded_at, env.event_id)


def _keep_latest(store: dict, key: object, env: Envelope) -> None:
    old = store.get(key)
    if old is None or rank(env) > rank(old):
        store[key] = env


def persons_named(facts: Iterable[Envelope], child_id: str) -> set[str]:
    """Ids whose person facts concern this child: the child itself, its parents (from
    childEnrolled), guardians (guardianAppointed) and payees (disbursement.payeeId).

    Retractions are deliberately not applied: this set routes person facts to the child,
    and a retraction may itself be retracted later, so over-including is the safe side
    (evaluate_child ignores what does not concern the child).
    """
    named = {child_id}
    for env in facts:
        body = env.body
        if getattr(body, "child_id", None) == child_id:
            named.update(persons_in(body))
    return named


def persons_in(body: object) -> tuple[str, ...]:
    """The persons one child fact names: parents (childEnrolled), the guardian
    (guardianAppointed), the payee (disbursement); none for the other kinds."""
    if isinstance(body, Disbursement):
        return (body.payee_id,)
    if isinstance(body, GuardianAppointed):
        return (body.guardian_id,)
    if isinstance(body, ChildEnrolled):
        return tuple(p.person_id for p in body.parents)
    return ()


def ends_spell_in_force(
    end_day: dt.date, in_force: dt.date, approvals: Collection[dt.date]
) -> bool:
    """Does an enrollmentEnded effective `end_day` end the spell in force, approved
    `in_force`, given the approval dates of every enrollment of that program? It ends the
    latest spell approved on or before its day; dated before every approval, the earliest
    spell, which it voids. Approvals after the one in force are superseded records."""
    if end_day >= in_force:
        return True
    # before the spell in force: it is that spell's only when no earlier spell exists,
    # i.e. the day precedes every approval and the one in force is the earliest
    return all(in_force <= day for day in approvals)


def dedupe(facts: Iterable[Envelope]) -> dict[str, Envelope]:
    """One envelope per event id, chosen independently of order."""
    return _dedupe(facts)[0]


def _dedupe(facts: Iterable[Envelope]) -> tuple[dict[str, Envelope], dict[str, str]]:
    """`dedupe`, and the kept retractions (own id -> retracted id) found on the way."""
    unique: dict[str, Envelope] = {}
    retractions: dict[str, str] = {}
    for env in facts:
        eid = env.event_id
        old = unique.get(eid)
        if old is None or (old is not env and old != env and repr(env) < repr(old)):
            unique[eid] = env
            body = env.body
            if isinstance(body, EventRetracted):
                retractions[eid] = body.retracted_event_id
            elif old is not None:
                retractions.pop(eid, None)
    return unique, retractions


def retracted_ids(retractions: dict[str, str]) -> set[str]:
    """Ids that an effective retraction retracts.

    ``retractions`` maps each eventRetracted's own event id to the id it retracts. A
    retraction is effective when no effective retraction retracts it; retractions on a
    cycle never resolve and are void. Resolved bottom-up (Kahn's algorithm), so chains
    of any length cost linear time and no recursion.
    """
    if not retractions:
        return set()
    retractors: dict[str, list[str]] = {}
    for rid, target in retractions.items():
        retractors.setdefault(target, []).append(rid)
    pending = {rid: len(retractors.get(rid, ())) for rid in retractions}
    killed: set[str] = set()  # retractions retracted by an effective retraction
    ready = [rid for rid, n in pending.items() if n == 0]
    effective: set[str] = set()
    while ready:
        rid = ready.pop()
        if rid not in killed:
            effective.add(rid)
        target = retractions[rid]
        if target in pending:
            if rid in effective:
                killed.add(target)
            pending[target] -= 1
            if pending[target] == 0:
                ready.append(target)
    return {retractions[rid] for rid in effective}


@dataclass(slots=True)
class Timeline:
    """Everything the checks need about one child, each fact resolved to one version."""

    child_id: str
    #: program -> the enrollment in force (latest recorded)
    enrollments: dict[Program, Envelope] = field(default_factory=dict)
    #: program -> the enrollmentEnded that applies to that enrollment
    ends: dict[Program, Envelope] = field(default_factory=dict)
    death: Envelope | None = None
    adoption: Envelope | None = None
    extension: Envelope | None = None
    #: guardian appointments, one per effective date, sorted by date (see guardian_on)
    guardian_dates: list[dt.date] = field(default_factory=list)
    guardians: list[Envelope] = field(default_factory=list)
    #: unreversed disbursements (envelope, body), one per disbursement id, by event id
    disbursements: list[tuple[Envelope, Disbursement]] = field(default_factory=list)
    #: deaths of named persons other than the child (latest recorded per person)
    person_deaths: dict[str, Envelope] = field(default_factory=dict)
    #: status changes of named persons, any order (sorted where used)
    person_changes: dict[str, list[Envelope]] = field(default_factory=dict)
    #: (region, program) -> (sorted effectiveFrom indices, standards in the same order)
    standards: dict[tuple[str, Program], tuple[list[int], list[Envelope]]] = field(
        default_factory=dict
    )
    #: cycle closes of the child's enrolled regions, one per (region, period), by period
    #: then region
    cycles: list[Envelope] = field(default_factory=list)
    #: the month index of each of `cycles`, in the same order
    cycle_months: list[int] = field(default_factory=list)

    def guardian_on(self, day: dt.date) -> Envelope | None:
        """The guardianAppointed in force on `day` (the last effective on or before it)."""
        i = bisect.bisect_right(self.guardian_dates, day) - 1
        return self.guardians[i] if i >= 0 else None

    def standard(self, region: str, program: Program, period: Period) -> Envelope | None:
        """The latest allowanceStandardSet in effect for (region, program) in `period`."""
        entry = self.standards.get((region, program))
        if entry is None:
            return None
        i = bisect.bisect_right(entry[0], period.index) - 1
        return entry[1][i] if i >= 0 else None

    def birth_date(self) -> dt.date | None:
        """From the latest-recorded enrollment in any program."""
        if not self.enrollments:
            return None
        env = max(self.enrollments.values(), key=rank)
        return cast(ChildEnrolled, env.body).birth_date


def build_timeline(child_id: str, facts: Iterable[Envelope]) -> Timeline:
    """Index the facts once: dedupe, apply retractions, keep what concerns the child."""
    return timeline_for_months(child_id, facts, None)


def timeline_for_months(
    child_id: str, facts: Iterable[Envelope], months: Collection[int] | None
) -> Timeline:
    """build_timeline, keeping only the disbursements and cycle closes whose period's
    month index is in `months` (all when None): every check about a period reads only
    that period's payments and closes, so the checks of those periods come out the same."""
    return _indexed(child_id, _unique(facts), months)[0]


def _unique(facts: Iterable[Envelope]) -> dict[str, Envelope]:
    """One envelope per event id: `dedupe`, with a cheap path when no id repeats."""
    seq = facts if type(facts) is list or type(facts) is tuple else list(facts)
    unique = {env.event_id: env for env in seq}
    if len(unique) != len(seq):  # an id seen twice: choose independently of order
        unique = _dedupe(seq)[0]
    return unique


def _indexed(
    child_id: str, unique: dict[str, Envelope], months: Collection[int] | None
) -> tuple[Timeline, dict[str, str], _Seen]:
    """The timeline of one envelope per id, every retraction in the set (own id ->
    retracted id) and what the index saw on the way (see _index)."""
    tl, retractions, seen = _index(child_id, unique, _NOTHING, months)
    if retractions:  # rare: index again without what effective retractions retract
        gone = retracted_ids(retractions)
        if gone:
            tl, _, seen = _index(child_id, unique, gone, months)
    return tl, retractions, seen


@dataclass(frozen=True, slots=True)
class IndexedTimeline:
    """A child's whole timeline and the little more `extended` needs to add new payments,
    cycle closes and standards to it without indexing the history again: a verifier re-checks a
    held child at the cost of what is new, not of its years of monthly payments."""

    timeline: Timeline
    #: disbursement ids that a reversal in the set names
    reversed_ids: frozenset[str]
    #: event ids that a retraction in the set names (effective or not)
    retracted_targets: frozenset[str]
    #: persons with a death or a status change in the set, named by the child or not
    persons_with_facts: frozenset[str]


def index_timeline(child_id: str, facts: Iterable[Envelope]) -> IndexedTimeline:
    """build_timeline, kept with what `extended` needs."""
    tl, retractions, (reversed_ids, deaths, changes) = _indexed(child_id, _unique(facts), None)
    return IndexedTimeline(
        tl,
        frozenset(reversed_ids) if reversed_ids else _NOTHING,
        frozenset(retractions.values()) if retractions else _NOTHING,
        frozenset(deaths.keys() | changes.keys()) if deaths or changes else _NOTHING,
    )


def extended(indexed: IndexedTimeline, new: Iterable[Envelope]) -> IndexedTimeline | None:
    """index_timeline of the indexed facts plus `new`, whose event ids are not among them,
    when `new` holds only payments, cycle closes and allowance standards that settle
    nothing already there; None when the history must be indexed again: anything else, a
    second version of a payment, a payment already reversed, a second close of a month, a
    second standard from one month, a fact already retracted, a payee with a death or a
    status change the timeline left out because no fact named that person before.
    `touched_months` says which months' alerts the new facts can change.

    Equal to indexing everything again (tests/unit/test_timeline_extended.py), at the
    cost of the new facts."""
    tl = indexed.timeline
    growth = _Growth(indexed, _regions(tl))
    for env in new:
        if env.event_id in indexed.retracted_targets:
            return None
        kind = type(env.body)
        if kind is Disbursement:
            fits = growth.payment(env, cast(Disbursement, env.body))
        elif kind is PaymentCycleClosed:
            fits = growth.cycle_close(env, cast(PaymentCycleClosed, env.body))
        elif kind is AllowanceStandardSet:
            fits = growth.standard(env, cast(AllowanceStandardSet, env.body))
        else:
            return None
        if not fits:
            return None
    if growth.disbursements is None and growth.cycles is None and growth.standards is None:
        return indexed
    grown = _with_periodic(
        tl,
        tl.disbursements if growth.disbursements is None else growth.disbursements,
        tl.standards if growth.standards is None else growth.standards,
        tl.cycles if growth.cycles is None else growth.cycles,
        growth.cycle_months,
    )
    return IndexedTimeline(
        grown, indexed.reversed_ids, indexed.retracted_targets, indexed.persons_with_facts
    )


class _Growth:
    """What `extended` adds to an indexed timeline; the lists are copied when first
    touched. Each method says False when the new fact settles something already there
    (the history must then be indexed again)."""

    __slots__ = ("cycle_months", "cycles", "disbursements", "indexed", "regions", "standards")

    def __init__(self, indexed: IndexedTimeline, regions: set[str]) -> None:
        self.indexed = indexed
        self.regions = regions
        self.disbursements: list[tuple[Envelope, Disbursement]] | None = None
        self.cycles: list[Envelope] | None = None
        self.cycle_months: list[int] = indexed.timeline.cycle_months
        self.standards: dict[tuple[str, Program], tuple[list[int], list[Envelope]]] | None = None

    def payment(self, env: Envelope, d: Disbursement) -> bool:
        indexed, tl = self.indexed, self.indexed.timeline
        if d.child_id != tl.child_id:
            return True  # does not concern the child
        did = d.disbursement_id
        if did in indexed.reversed_ids:
            return False
        if self.disbursements is None:
            self.disbursements = list(tl.disbursements)
        for _, other in self.disbursements:
            if other.disbursement_id == did:
                return False  # versions of one payment: the latest recorded counts
        payee = d.payee_id
        if (
            payee in indexed.persons_with_facts
            and payee != tl.child_id
            and payee not in tl.person_deaths
            and payee not in tl.person_changes
        ):
            return False
        bisect.insort(self.disbursements, (env, d), key=_payment_event_id)
        return True

    def cycle_close(self, env: Envelope, c: PaymentCycleClosed) -> bool:
        if c.region not in self.regions:
            return True  # a region the child is not enrolled in
        if self.cycles is None:
            tl = self.indexed.timeline
            self.cycles, self.cycle_months = list(tl.cycles), list(tl.cycle_months)
        cycles, cycle_months = self.cycles, self.cycle_months
        month = c.period.index
        i = bisect.bisect_left(cycle_months, month)
        while i < len(cycles) and cycle_months[i] == month:
            region = cast(PaymentCycleClosed, cycles[i].body).region
            if region == c.region:
                return False  # two closes of one cycle: the latest recorded counts
            if region > c.region:
                break
            i += 1
        cycles.insert(i, env)
        cycle_months.insert(i, month)
        return True

    def standard(self, env: Envelope, a: AllowanceStandardSet) -> bool:
        if a.region not in self.regions:
            return True  # a region the child is not enrolled in
        if self.standards is None:
            self.standards = dict(self.indexed.timeline.standards)
        key = (a.region, a.program)
        month = a.effective_from.index
        months, envs = self.standards.get(key, ((), ()))
        i = bisect.bisect_left(months, month)
        if i < len(months) and months[i] == month:
            return False  # two standards from one month: the latest recorded counts
        self.standards[key] = ([*months[:i], month, *months[i:]],
                               [*envs[:i], env, *envs[i:]])
        return True


def _regions(tl: Timeline) -> set[str]:
    """The regions the child is enrolled in: only their closes and standards concern it."""
    return {cast(ChildEnrolled, e.body).region for e in tl.enrollments.values()}


def touched_months(tl: Timeline, new: Iterable[Envelope]) -> frozenset[int]:
    """The month indexes whose alerts the facts `new` that `extended` added to `tl` (the
    extended timeline) can change: a payment's or a close's own month; for a standard,
    every month from its effectiveFrom on that has a payment or a close (an amount is
    checked against the standard in effect in its month). Alerts of other months stand."""
    months: set[int] = set()
    since: int | None = None
    regions: set[str] | None = None
    for env in new:
        body = env.body
        if type(body) is AllowanceStandardSet:
            if regions is None:
                regions = _regions(tl)
            if body.region in regions:
                m = body.effective_from.index
                since = m if since is None else min(since, m)
        else:
            months.add(cast(Disbursement | PaymentCycleClosed, body).period.index)
    if since is not None:
        months.update(m for m in tl.cycle_months if m >= since)
        months.update(m for _, d in tl.disbursements if (m := d.period.index) >= since)
    return frozenset(months)


def months_view(tl: Timeline, months: Collection[int]) -> Timeline:
    """The timeline with only the payments and cycle closes of the month indexes
    `months`: what timeline_for_months gives for them, as far as any check can tell
    (it names payees of other months too, whose facts no check of these months reads)."""
    return _with_periodic(
        tl,
        [pair for pair in tl.disbursements if pair[1].period.index in months],
        tl.standards,
        [env for env, m in zip(tl.cycles, tl.cycle_months, strict=True) if m in months],
        [m for m in tl.cycle_months if m in months],
    )


def _with_periodic(
    tl: Timeline,
    disbursements: list[tuple[Envelope, Disbursement]],
    standards: dict[tuple[str, Program], tuple[list[int], list[Envelope]]],
    cycles: list[Envelope],
    cycle_months: list[int],
) -> Timeline:
    """`tl` with other payments, standards and cycle closes; the rest is shared, not
    copied (dataclasses.replace costs several times more, once per child per batch)."""
    return Timeline(
        tl.child_id,
        tl.enrollments,
        tl.ends,
        tl.death,
        tl.adoption,
        tl.extension,
        tl.guardian_dates,
        tl.guardians,
        disbursements,
        tl.person_deaths,
        tl.person_changes,
        standards,
        cycles,
        cycle_months,
    )


_NOTHING: frozenset[str] = frozenset()
_EVENT_ID = attrgetter("event_id")
#: What _index saw: disbursement ids reversed, deaths and status changes by person.
_Seen = tuple[set[str], dict[str, Envelope], dict[str, list[Envelope]]]


def _payment_event_id(pair: tuple[Envelope, Disbursement]) -> str:
    return pair[0].event_id


def _newer(env: Envelope, old: Envelope) -> bool:
    """rank(env) > rank(old) without building the tuples when the times differ."""
    a, b = env.recorded_at, old.recorded_at
    return a > b or (a == b and env.event_id > old.event_id)


@dataclass(slots=True)
class _Piles:
    """A child's envelopes sorted by what they are, the latest of each kept (_sort)."""

    enrollments: dict[Program, Envelope]
    ends_all: list[Envelope]
    deaths: dict[str, Envelope]
    adoption: Envelope | None
    extension: Envelope | None
    guardians_by_date: dict[dt.date, Envelope]
    disb: dict[str, Envelope]
    reversed_ids: set[str]
    changes: dict[str, list[Envelope]]
    standards_raw: dict[tuple[str, Program, int], Envelope]
    cycles_raw: dict[tuple[int, str], Envelope]
    retractions: dict[str, str]
    approvals: dict[Program, list[dt.date]]  # every enrollment's, per program


def _sort(
    child_id: str,
    unique: dict[str, Envelope],
    gone: Collection[str],
    months: Collection[int] | None,
) -> _Piles:
    """One pass over the envelopes not in `gone` (locals in the loop: it is the hot one)."""
    enrollments: dict[Program, Envelope] = {}
    ends_all: list[Envelope] = []
    deaths: dict[str, Envelope] = {}
    adoption: Envelope | None = None
    extension: Envelope | None = None
    guardians_by_date: dict[dt.date, Envelope] = {}
    disb: dict[str, Envelope] = {}
    reversed_ids: set[str] = set()
    changes: dict[str, list[Envelope]] = {}
    standards_raw: dict[tuple[str, Program, int], Envelope] = {}
    cycles_raw: dict[tuple[int, str], Envelope] = {}
    retractions: dict[str, str] = {}
    approvals: dict[Program, list[dt.date]] = {}

    for eid, env in unique.items():
        if eid in gone:
            continue
        body = env.body
        # most frequent kinds first; isinstance narrows the body without casts
        if isinstance(body, Disbursement):
            if body.child_id == child_id:  # all months: a correction may move the period
                did = body.disbursement_id
                old = disb.get(did)
                if old is None or _newer(env, old):
                    disb[did] = env
        elif isinstance(body, PaymentCycleClosed):
            key = (body.period.index, body.region)
            if months is not None and key[0] not in months:
                continue
            old = cycles_raw.get(key)
            if old is None or _newer(env, old):
                cycles_raw[key] = env
        elif isinstance(body, AllowanceStandardSet):
            _keep_latest(standards_raw, (body.region, body.program, body.effective_from.index), env)
        elif isinstance(body, PersonDied):
            _keep_latest(deaths, body.person_id, env)
        elif isinstance(body, PersonStatusChanged):
            changes.setdefault(body.person_id, []).append(env)
        elif isinstance(body, DisbursementReversed):
            reversed_ids.add(body.disbursement_id)
        elif isinstance(body, EventRetracted):
            retractions[eid] = body.retracted_event_id
        elif body.child_id != child_id:
            continue
        elif isinstance(body, ChildEnrolled):
            _keep_latest(enrollments, body.program, env)
            approvals.setdefault(body.program, []).append(body.approved_on)
        elif isinstance(body, EnrollmentEnded):
            ends_all.append(env)
        elif isinstance(body, GuardianAppointed):
            _keep_latest(guardians_by_date, body.effective_date, env)
        elif isinstance(body, ChildAdopted):
            if adoption is None or rank(env) > rank(adoption):
                adoption = env
        elif isinstance(body, SchoolingExtension) and (
            extension is None or rank(env) > rank(extension)
        ):
            extension = env
    return _Piles(enrollments, ends_all, deaths, adoption, extension, guardians_by_date, disb,
                  reversed_ids, changes, standards_raw, cycles_raw, retractions, approvals)


def _ends_in_force(p: _Piles) -> dict[Program, Envelope]:
    """Per program, the latest end of the spell in force (DESIGN.md 3: spells)."""
    ends: dict[Program, Envelope] = {}
    for env in p.ends_all:
        e = cast(EnrollmentEnded, env.body)
        enr = p.enrollments.get(e.program)
        if enr is not None and ends_spell_in_force(
            e.effective_date, cast(ChildEnrolled, enr.body).approved_on, p.approvals[e.program]
        ):
            _keep_latest(ends, e.program, env)
    return ends


def _payments(p: _Piles, months: Collection[int] | None) -> list[tuple[Envelope, Disbursement]]:
    """The child's unreversed payments (of `months` when given), by event id."""
    kept = (
        [env for did, env in p.disb.items() if did not in p.reversed_ids]
        if p.reversed_ids
        else list(p.disb.values())
    )
    if months is not None:
        kept = [env for env in kept if cast(Disbursement, env.body).period.index in months]
    kept.sort(key=_EVENT_ID)
    return cast(list[tuple[Envelope, Disbursement]], [(env, env.body) for env in kept])


def _persons(
    p: _Piles, child_id: str, guardians: list[Envelope],
    disbursements: list[tuple[Envelope, Disbursement]],
) -> tuple[dict[str, Envelope], dict[str, list[Envelope]]]:
    """Deaths and status changes of the people the child's facts name (parents,
    guardians, payees), the child's own death aside."""
    person_deaths: dict[str, Envelope] = {}
    person_changes: dict[str, list[Envelope]] = {}
    if not (p.deaths or p.changes):
        return person_deaths, person_changes
    named = {child_id}
    for env in p.enrollments.values():
        named.update([parent.person_id for parent in cast(ChildEnrolled, env.body).parents])
    for env in guardians:
        named.add(cast(GuardianAppointed, env.body).guardian_id)
    named.update([d.payee_id for _, d in disbursements])
    for pid in named:
        if pid in p.deaths and pid != child_id:
            person_deaths[pid] = p.deaths[pid]
        if pid in p.changes:
            person_changes[pid] = p.changes[pid]
    return person_deaths, person_changes


def _standards(
    p: _Piles, regions: set[str]
) -> dict[tuple[str, Program], tuple[list[int], list[Envelope]]]:
    """The allowance standards of the child's regions, by (region, program), in order."""
    by_key: dict[tuple[str, Program], list[tuple[int, Envelope]]] = {}
    for (region, program, idx), env in p.standards_raw.items():
        if region in regions:
            by_key.setdefault((region, program), []).append((idx, env))
    standards: dict[tuple[str, Program], tuple[list[int], list[Envelope]]] = {}
    for skey, items in by_key.items():
        items.sort(key=itemgetter(0))
        standards[skey] = ([i for i, _ in items], [e for _, e in items])
    return standards


def _index(
    child_id: str,
    unique: dict[str, Envelope],
    gone: Collection[str],
    months: Collection[int] | None,
) -> tuple[Timeline, dict[str, str], _Seen]:
    """The timeline of the envelopes in `unique` not in `gone`, every retraction seen
    (own id -> retracted id) so the caller can tell whether `gone` must be computed, and
    what IndexedTimeline keeps of the rest."""
    p = _sort(child_id, unique, gone, months)
    guardian_dates = sorted(p.guardians_by_date)
    guardians = [p.guardians_by_date[day] for day in guardian_dates]
    disbursements = _payments(p, months)
    person_deaths, person_changes = _persons(p, child_id, guardians, disbursements)
    regions = {cast(ChildEnrolled, env.body).region for env in p.enrollments.values()}
    cycle_keys = [key for key in sorted(p.cycles_raw) if key[1] in regions]
    tl = Timeline(
        child_id,
        p.enrollments,
        _ends_in_force(p),
        p.deaths.get(child_id),
        p.adoption,
        p.extension,
        guardian_dates,
        guardians,
        disbursements,
        person_deaths,
        person_changes,
        _standards(p, regions),
        [p.cycles_raw[key] for key in cycle_keys],
        [key[0] for key in cycle_keys],
    )
    return tl, p.retractions, (p.reversed_ids, p.deaths, p.changes)
