"""The checks of DESIGN.md section 5: the complete set of alerts one child's facts imply.

``evaluate_child`` is a pure function of the *set* of envelopes (see timeline.py for
deduplication, retractions and conflicts), so replays, duplicates and any arrival order
give the same verdicts. Decisions on points the design leaves open:

- **Payable month.** A disbursement's month is payable when none of the not-payable
  checks fires; then, and only then, the amount, payee and duplicate checks apply. A
  not-payable payment raises every reason that applies (e.g. death and enrollment end),
  each with the whole disbursement amount at risk.
- **Which enrollment.** A payment is judged against the child's enrollment in the
  payment's program. No enrollment in that program (even if enrolled in another one) is
  NOT_ENROLLED; child-level reasons (death, adoption, age, the birth date taken from
  any enrollment) are still raised beside it.
- **Parents.** A parent's situations start as recorded at enrollment and follow every
  ``personStatusChanged`` (STARTED adds, ENDED removes a situation) and ``personDied``
  (adds DECEASED from that date) in effective-date order (same day: recordedAt, then
  event id), including changes dated before approval (a late fact can show the child
  never qualified). Only the parents recorded at enrollment count: an unrecorded parent
  is presumed absent and places no condition, so an orphan enrolled with one parent
  recorded qualifies while that parent is absent; a child enrolled with no parent recorded
  is not checked on parent situations at all (the approval stands).
- **Orphan found alive.** Orphan months must be qualified on every day (same-month stop,
  per policy); de facto months on their first day. Code ORPHAN_PARENT_ALIVE for orphan
  programs, PAID_AFTER_PARENT_SITUATION_ENDED for DE_FACTO_UNSUPPORTED.
- **Duplicates.** Only payable disbursements take part (a NOT_ENROLLED or after-death
  payment already has its whole amount at risk). Amount at risk = total minus the largest
  single payment: one payment is legitimate, the extra ones are at risk; a wrong amount
  on the kept one is AMOUNT_MISMATCH's business.
- **Missed payment.** For each closed cycle of a region where the child is enrolled and
  payable in a program (the latest-recorded such enrollment names the program); any
  unreversed disbursement for the period, payable or not, counts as paid. One alert per
  period: a child enrolled in two regions whose cycles both closed gets it for the
  lower region code.
- **Region.** Per-payment alerts carry the region of the enrollment in the payment's
  program, else of the latest-recorded enrollment, else the disbursement's region.
- **Evidence.** Sorted event ids: the disbursement(s) or the closed cycle, the facts that
  make it wrong (death, adoption, end, status changes, standard, guardian appointment in
  force, payee's death, the other enrollments for NOT_ENROLLED), and always the
  enrollment the alert's region comes from, so a corrected enrollment (new region)
  changes the evidence and the alert gets a new version.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Collection, Iterable
from operator import attrgetter, itemgetter
from typing import NamedTuple, cast

from humiao.domain import explain
from humiao.domain.alerts import AlertCode, AlertDraft
from humiao.domain.events import (
    AllowanceStandardSet,
    ChildAdopted,
    ChildEnrolled,
    Disbursement,
    EnrollmentEnded,
    Envelope,
    GuardianAppointed,
    PaymentCycleClosed,
    PersonDied,
    PersonStatusChanged,
    SchoolingExtension,
)
from humiao.domain.explain import Cause
from humiao.domain.policy import PolicyBook, RegionPolicy
from humiao.domain.timeline import Timeline, rank, timeline_for_months
from humiao.domain.values import Period, Program, Situation, StatusChange

ORPHAN_PROGRAMS = frozenset({Program.ORPHAN_INSTITUTIONAL, Program.ORPHAN_DISPERSED})


def _stopped(day: dt.date, month: Period, same_month: bool) -> bool:
    """Does an event on `day` stop payment for `month`? (from the month after, or same)"""
    event_month = day.year * 12 + day.month - 1
    return event_month <= month.index if same_month else event_month < month.index


class _Qualification:
    """Whether the parents' situations qualify the child, as a step function of the day.

    Breakpoints are kept as month indices so a month is checked without building dates:
    ``firsts[k]`` is the first month whose first day is on or after breakpoint k, and
    ``months[k]`` the month breakpoint k falls in.
    """

    __slots__ = ("causes", "firsts", "initial", "months", "states")

    def __init__(self, initial: bool) -> None:
        self.initial = initial
        self.firsts: list[int] = []
        self.months: list[int] = []
        self.states: list[bool] = []
        self.causes: list[tuple[Envelope, ...]] = []

    def add(self, day: dt.date, state: bool, causes: tuple[Envelope, ...]) -> None:
        month = day.year * 12 + day.month - 1
        self.firsts.append(month if day.day == 1 else month + 1)
        self.months.append(month)
        self.states.append(state)
        self.causes.append(causes)

    def check(self, month: int, whole_month: bool) -> tuple[bool, tuple[Envelope, ...]]:
        """(payable, the events that ended qualification) for the month index `month`:
        qualified on its first day, and with `whole_month` on every day of it."""
        if not self.states:
            return self.initial, ()
        i = bisect.bisect_right(self.firsts, month) - 1
        ok = self.states[i] if i >= 0 else self.initial
        if not ok:
            return False, self.causes[i] if i >= 0 else ()
        # states alternate: a later breakpoint within the month turns qualification off
        if whole_month and bisect.bisect_right(self.months, month) - 1 > i:
            return False, self.causes[i + 1]
        return True, ()


def _qualification(
    enrolled: ChildEnrolled, tl: Timeline, policy: RegionPolicy
) -> _Qualification | None:
    """The qualification step function for one enrollment; None when nothing to check."""
    index: dict[str, int] = {}
    sets: list[set[Situation]] = []
    for parent in enrolled.parents:
        if parent.person_id not in index:
            index[parent.person_id] = len(sets)
            sets.append({parent.situation})
    if not sets:
        return None
    if enrolled.program in ORPHAN_PROGRAMS:
        absent = policy.orphan_parent_situations

        def qualifies() -> bool:  # every recorded parent absent
            for s in sets:  # noqa: SIM110 - a loop: all() of a generator costs more here
                if s.isdisjoint(absent):
                    return False
            return True
    else:
        listed = policy.de_facto_parent_situations
        either = listed | policy.de_facto_other_parent_situations
        deceased = Situation.DECEASED

        def qualifies() -> bool:
            # every recorded parent absent, one of them in a listed situation (a dead
            # parent's other situations no longer count); loops, not generators: hot
            some = False
            for s in sets:
                if s.isdisjoint(either):
                    return False
                if not some and deceased not in s and not s.isdisjoint(listed):
                    some = True
            return some

    events: list[tuple[dt.date, dt.datetime, str, int, bool, Situation, Envelope]] = []
    for pid, idx in index.items():
        for env in tl.person_changes.get(pid, ()):
            c = cast(PersonStatusChanged, env.body)
            started = c.change is StatusChange.STARTED
            events.append(
                (c.effective_date, env.recorded_at, env.event_id, idx, started, c.situation, env)
            )
        died = tl.person_deaths.get(pid)
        if died is not None:
            day = cast(PersonDied, died.body).date_of_death
            events.append(
                (day, died.recorded_at, died.event_id, idx, True, Situation.DECEASED, died)
            )
    q = _Qualification(qualifies())
    if not events:
        return q
    events.sort(key=itemgetter(0, 1, 2))
    current = q.initial
    n = len(events)
    k = 0
    while k < n:
        day = events[k][0]
        group: list[Envelope] = []
        while k < n and events[k][0] == day:
            _, _, _, idx, started, situation, env = events[k]
            if started:
                sets[idx].add(situation)
            else:
                sets[idx].discard(situation)
            group.append(env)
            k += 1
        now = qualifies()
        if now != current:
            q.add(day, now, tuple(group))
            current = now
    return q


def _parent_cause(code: AlertCode, enrollment: Envelope, causes: tuple[Envelope, ...]) -> Cause:
    evidence = (enrollment.event_id, *(e.event_id for e in causes))
    if not causes:
        return Cause(code, evidence)
    # name an ENDED change if there is one (the usual reason), else the first event
    main = next(
        (
            e
            for e in causes
            if isinstance(e.body, PersonStatusChanged) and e.body.change is StatusChange.ENDED
        ),
        causes[0],
    )
    body = main.body
    if isinstance(body, PersonStatusChanged):
        return Cause(
            code, evidence, day=body.effective_date, situation=body.situation, change=body.change
        )
    died = cast(PersonDied, body)
    return Cause(code, evidence, day=died.date_of_death, situation=Situation.DECEASED)


def _month(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


class _Window(NamedTuple):
    lo: int  # first payable month index
    hi: int  # last payable month index (inclusive) by death, adoption, end, age
    qual: _Qualification | None
    whole_month: bool
    region: str
    policy: RegionPolicy
    enrollment_id: str


class _Plan(NamedTuple):
    """Per-program data for the payable-payment fast path of _Evaluator.run: the window
    (with `qual` None when the parents qualify the child throughout) and what the amount
    and payee predicates need."""

    lo: int
    hi: int
    qual: _Qualification | None
    whole_month: bool
    region: str
    policy: RegionPolicy
    enrollment_id: str
    #: the standard in effect (own program, else the de facto reference) as a step
    #: function: month indices where it changes and the monthly amount from then on
    std_months: list[int]
    std_amounts: list[int | None]
    check_guardian: bool
    child_may_be_payee: bool
    guardian_ids: list[str]  # parallel to Timeline.guardians
    any_death: bool


_IDENTITY = attrgetter("identity")


class _Evaluator:
    """One evaluation of one child's timeline; caches per-program work."""

    def __init__(self, tl: Timeline, policies: PolicyBook) -> None:
        self.tl = tl
        self.policies = policies
        self.drafts: list[AlertDraft] = []
        self._quals: dict[Program, _Qualification | None] = {}
        self._windows: dict[Program, _Window | None] = {}
        enrollments = tl.enrollments
        self._latest_enrollment = (
            None if not enrollments
            else next(iter(enrollments.values())) if len(enrollments) == 1
            else max(enrollments.values(), key=rank)
        )

    # -- the payable window (fast path) ----------------------------------------------
    def window(self, program: Program) -> _Window | None:
        """Payable months of the enrollment in `program` as bounds plus the parent
        step function: a month is payable exactly when `causes` finds nothing."""
        if program in self._windows:
            return self._windows[program]
        tl = self.tl
        enr_env = tl.enrollments.get(program)
        if enr_env is None:
            self._windows[program] = None
            return None
        enrolled = cast(ChildEnrolled, enr_env.body)
        policy = self.policies.for_region(enrolled.region)
        lo = _month(enrolled.approved_on) + (0 if policy.payable_from_approval_month else 1)
        hi = 1 << 30  # last payable month; "from the month after" X means hi = month(X)
        death = tl.death
        if death is not None:
            day = cast(PersonDied, death.body).date_of_death
            hi = min(hi, _month(day) - int(policy.death_stops_same_month))
        if tl.adoption is not None:
            day = cast(ChildAdopted, tl.adoption.body).adoption_date
            hi = min(hi, _month(day) - int(policy.adoption_stops_same_month))
        end = tl.ends.get(program)
        if end is not None:
            day = cast(EnrollmentEnded, end.body).effective_date
            hi = min(hi, _month(day) - int(policy.enrollment_end_stops_same_month))
        birth = enrolled.birth_date
        age_hi = (birth.year + policy.age_limit) * 12 + birth.month - 1
        age_hi -= int(policy.age_out_stops_same_month)  # same month: the birthday month too
        if policy.schooling_extension_allowed and tl.extension is not None:
            until = cast(SchoolingExtension, tl.extension.body).valid_until
            age_hi = max(age_hi, _month(until))
        hi = min(hi, age_hi)
        if program in ORPHAN_PROGRAMS:
            whole = policy.orphan_parent_found_stops_same_month
        else:
            whole = policy.parent_situation_end_stops_same_month
        w = _Window(
            lo,
            hi,
            self.qualification(program, enrolled, policy),
            whole,
            enrolled.region,
            policy,
            enr_env.event_id,
        )
        self._windows[program] = w
        return w

    def payable(self, program: Program, month: Period) -> bool:
        w = self.window(program)
        if w is None or not w.lo <= month.index <= w.hi:
            return False
        return w.qual is None or w.qual.check(month.index, w.whole_month)[0]

    # -- helpers ---------------------------------------------------------------------
    def region_for(self, program: Program, fallback: str) -> tuple[str, tuple[str, ...]]:
        """The alert region for a payment in `program`, and the enrollment it comes from
        (in the evidence, so a corrected region gives the alert a new version)."""
        env = self.tl.enrollments.get(program) or self._latest_enrollment
        if env is None:
            return fallback, ()
        return cast(ChildEnrolled, env.body).region, (env.event_id,)

    def standard(
        self, region: str, program: Program, period: Period, policy: RegionPolicy
    ) -> Envelope | None:
        std = self.tl.standard(region, program, period)
        if std is None and program is Program.DE_FACTO_UNSUPPORTED:
            std = self.tl.standard(region, policy.de_facto_reference_program, period)
        return std

    def qualification(
        self, program: Program, enrollment: ChildEnrolled, policy: RegionPolicy
    ) -> _Qualification | None:
        if program not in self._quals:
            self._quals[program] = _qualification(enrollment, self.tl, policy)
        return self._quals[program]

    def add(
        self,
        code: AlertCode,
        region: str,
        period: Period,
        subject: str,
        program: Program | None,
        amount: int,
        evidence: Iterable[str],
        texts: tuple[str, str],
    ) -> None:
        self.drafts.append(
            AlertDraft(
                code=code,
                child_id=self.tl.child_id,
                region=region,
                period=period,
                subject=subject,
                program=program,
                amount_at_risk_fen=amount,
                evidence_event_ids=tuple(sorted(set(evidence))),
                explanation_zh=texts[0],
                explanation_en=texts[1],
            )
        )

    # -- not payable -----------------------------------------------------------------
    def causes(self, program: Program, month: Period, policy: RegionPolicy) -> list[Cause]:
        """Every reason `month` is not payable under `program`; empty when payable."""
        tl = self.tl
        out: list[Cause] = []
        if tl.death is not None:
            day = cast(PersonDied, tl.death.body).date_of_death
            if _stopped(day, month, policy.death_stops_same_month):
                out.append(Cause(AlertCode.PAID_AFTER_DEATH, (tl.death.event_id,), day=day))
        if tl.adoption is not None:
            day = cast(ChildAdopted, tl.adoption.body).adoption_date
            if _stopped(day, month, policy.adoption_stops_same_month):
                out.append(Cause(AlertCode.PAID_AFTER_ADOPTION, (tl.adoption.event_id,), day=day))
        enr_env = tl.enrollments.get(program)
        birth_env = enr_env or self._latest_enrollment
        if birth_env is not None:
            birth = cast(ChildEnrolled, birth_env.body).birth_date
            limit_month = Period.of(birth.year + policy.age_limit, birth.month)
            if month > limit_month or (policy.age_out_stops_same_month and month == limit_month):
                ext = tl.extension if policy.schooling_extension_allowed else None
                until = cast(SchoolingExtension, ext.body).valid_until if ext else None
                if until is None or month > Period.of_date(until):
                    evidence = (
                        (birth_env.event_id,) if ext is None else (birth_env.event_id, ext.event_id)
                    )
                    out.append(
                        Cause(
                            AlertCode.PAID_AFTER_AGE_OUT,
                            evidence,
                            day=until,
                            month=limit_month,
                            age_limit=policy.age_limit,
                        )
                    )
        if enr_env is None:
            others = tuple(sorted(tl.enrollments))
            out.append(
                Cause(
                    AlertCode.NOT_ENROLLED,
                    tuple(tl.enrollments[p].event_id for p in others),
                    program=program,
                    other_programs=others,
                )
            )
            return out
        enrolled = cast(ChildEnrolled, enr_env.body)
        approval = Period.of_date(enrolled.approved_on)
        first = approval if policy.payable_from_approval_month else approval + 1
        if month < first:
            out.append(
                Cause(
                    AlertCode.PAID_BEFORE_APPROVAL,
                    (enr_env.event_id,),
                    day=enrolled.approved_on,
                    month=first,
                )
            )
        end_env = tl.ends.get(program)
        if end_env is not None:
            day = cast(EnrollmentEnded, end_env.body).effective_date
            if _stopped(day, month, policy.enrollment_end_stops_same_month):
                out.append(
                    Cause(
                        AlertCode.PAID_AFTER_ENROLLMENT_ENDED,
                        (end_env.event_id,),
                        day=day,
                        program=program,
                    )
                )
        q = self.qualification(program, enrolled, policy)
        if q is not None:
            if program in ORPHAN_PROGRAMS:
                code = AlertCode.ORPHAN_PARENT_ALIVE
                ok, envs = q.check(month.index, policy.orphan_parent_found_stops_same_month)
            else:
                code = AlertCode.PAID_AFTER_PARENT_SITUATION_ENDED
                ok, envs = q.check(month.index, policy.parent_situation_end_stops_same_month)
            if not ok:
                out.append(_parent_cause(code, enr_env, envs))
        return out

    # -- the checks ------------------------------------------------------------------
    def run(self) -> list[AlertDraft]:
        tl = self.tl
        child_id = tl.child_id
        guardian_dates = tl.guardian_dates
        bisect_right = bisect.bisect_right
        paid_periods: set[int] = set()
        payable: list[tuple[int, Envelope, Disbursement]] = []
        plans: dict[Program, _Plan | None] = {}
        last_program: Program | None = None
        plan: _Plan | None = None
        # the plan's fields as locals (the loop runs once per payment of the history)
        lo, hi, whole_month = 0, -1, False
        qual: _Qualification | None = None
        std_months: list[int] = []
        std_amounts: list[int | None] = []
        check_guardian = child_may_be_payee = any_death = False
        guardian_ids: list[str] = []
        for env, d in tl.disbursements:
            program = d.program
            idx = d.period.index
            paid_periods.add(idx)
            if program is not last_program:
                plan = plans[program] if program in plans else self._plan(program, plans)
                last_program = program
                if plan is not None:
                    lo, hi, qual, whole_month, _, _, _, std_months, std_amounts = plan[:9]
                    check_guardian, child_may_be_payee, guardian_ids, any_death = plan[9:]
            if (
                plan is not None
                and lo <= idx <= hi
                and (qual is None or qual.check(idx, whole_month)[0])
            ):
                payable.append((idx, env, d))
                # cheap predicates inline; the check methods find and word the alerts
                i = bisect_right(std_months, idx) - 1
                if i >= 0 and std_amounts[i] != d.amount_fen:
                    self.check_amount(
                        (env.event_id, plan.enrollment_id), d, plan.region, plan.policy
                    )
                payee = d.payee_id
                suspect = False
                if check_guardian:
                    i = bisect_right(guardian_dates, d.paid_on) - 1
                    suspect = not (
                        (i >= 0 and guardian_ids[i] == payee)
                        or (child_may_be_payee and payee == child_id)
                    )
                if suspect or (
                    any_death
                    and (tl.death if payee == child_id else tl.person_deaths.get(payee))
                    is not None
                ):
                    self.check_payee(
                        (env.event_id, plan.enrollment_id), d, plan.region, plan.policy
                    )
                continue
            self.check_not_payable(env, d)
        if len(paid_periods) < len(tl.disbursements):  # a month paid more than once
            self.check_duplicates(payable)
        self.check_missed_months(paid_periods)
        if len(self.drafts) > 1:
            self.drafts.sort(key=_IDENTITY)
        return self.drafts

    def check_not_payable(self, env: Envelope, d: Disbursement) -> None:
        """A payment for a month that is not payable: every reason that applies."""
        region, basis = self.region_for(d.program, d.region)
        period = d.period
        for c in self.causes(d.program, period, self.policies.for_region(region)):
            self.add(
                c.code,
                region,
                period,
                d.disbursement_id,
                d.program,
                d.amount_fen,
                (env.event_id, *basis, *c.evidence),
                explain.not_payable(c, period, d.amount_fen),
            )

    def check_duplicates(self, payable: list[tuple[int, Envelope, Disbursement]]) -> None:
        by_month: dict[int, list[tuple[Envelope, Disbursement]]] = {}
        for idx, env, d in payable:
            by_month.setdefault(idx, []).append((env, d))
        for pairs in by_month.values():
            if len(pairs) > 1:
                self.check_duplicate(pairs)

    def check_missed_months(self, paid_periods: set[int]) -> None:
        """Closed months with no payment (`paid_periods` grows as alerts are raised)."""
        cycles = self.tl.cycles
        months = self.tl.cycle_months
        if len(months) != len(cycles):  # a Timeline built by hand
            months = [cast(PaymentCycleClosed, env.body).period.index for env in cycles]
        if paid_periods.issuperset(months):  # usually every closed month was paid
            return
        # sorted by (period, region): one alert per period at most
        for env, month in zip(cycles, months, strict=True):
            if month not in paid_periods and self.check_missed(
                env, cast(PaymentCycleClosed, env.body)
            ):
                paid_periods.add(month)

    def _plan(self, program: Program, plans: dict[Program, _Plan | None]) -> _Plan | None:
        """What the per-payment fast path needs for `program`, computed once per child."""
        w = self.window(program)
        if w is None:
            plans[program] = None
            return None
        tl, policy = self.tl, w.policy
        own = tl.standards.get((w.region, program))
        fallback = (
            tl.standards.get((w.region, policy.de_facto_reference_program))
            if program is Program.DE_FACTO_UNSUPPORTED
            else None
        )
        # the standard in effect as one step function: own standard, else the fallback
        months = sorted({*(own[0] if own else ()), *(fallback[0] if fallback else ())})
        amounts: list[int | None] = []
        for m in months:
            std = self.standard(w.region, program, Period(m), policy)
            amounts.append(
                cast(AllowanceStandardSet, std.body).monthly_amount_fen if std is not None else None
            )
        q = w.qual
        plan = _Plan(
            w.lo,
            w.hi,
            None if q is None or (not q.states and q.initial) else q,  # None: always qualified
            w.whole_month,
            w.region,
            policy,
            w.enrollment_id,
            months,
            amounts,
            program is not Program.ORPHAN_INSTITUTIONAL or policy.institution_for_institutional,
            policy.child_may_be_payee,
            [cast(GuardianAppointed, g.body).guardian_id for g in tl.guardians],
            tl.death is not None or bool(tl.person_deaths),
        )
        plans[program] = plan
        return plan

    def check_amount(
        self, basis: tuple[str, ...], d: Disbursement, region: str, policy: RegionPolicy
    ) -> None:
        std_env = self.standard(region, d.program, d.period, policy)
        if std_env is None:
            return
        std = cast(AllowanceStandardSet, std_env.body).monthly_amount_fen
        if d.amount_fen != std:
            self.add(
                AlertCode.AMOUNT_MISMATCH,
                region,
                d.period,
                d.disbursement_id,
                d.program,
                abs(d.amount_fen - std),
                (*basis, std_env.event_id),
                explain.amount_mismatch(d.period, d.amount_fen, std, d.program),
            )

    def check_payee(
        self, basis: tuple[str, ...], d: Disbursement, region: str, policy: RegionPolicy
    ) -> None:
        tl = self.tl
        payee = d.payee_id
        if d.program is not Program.ORPHAN_INSTITUTIONAL or policy.institution_for_institutional:
            g_env = tl.guardian_on(d.paid_on)
            guardian = cast(GuardianAppointed, g_env.body) if g_env is not None else None
            valid = (guardian is not None and guardian.guardian_id == payee) or (
                policy.child_may_be_payee and payee == tl.child_id
            )
            if not valid:
                evidence = list(basis)
                if g_env is not None:
                    evidence.append(g_env.event_id)
                self.add(
                    AlertCode.PAYEE_NOT_GUARDIAN,
                    region,
                    d.period,
                    d.disbursement_id,
                    d.program,
                    d.amount_fen,
                    evidence,
                    explain.payee_not_guardian(
                        d.period,
                        d.paid_on,
                        d.amount_fen,
                        guardian.effective_date if guardian is not None else None,
                        policy.child_may_be_payee,
                    ),
                )
        died_env = tl.death if payee == tl.child_id else tl.person_deaths.get(payee)
        if died_env is not None:
            died_on = cast(PersonDied, died_env.body).date_of_death
            if died_on < d.paid_on:
                self.add(
                    AlertCode.PAYEE_DECEASED,
                    region,
                    d.period,
                    d.disbursement_id,
                    d.program,
                    d.amount_fen,
                    (*basis, died_env.event_id),
                    explain.payee_deceased(d.period, d.paid_on, d.amount_fen, died_on),
                )

    def check_duplicate(self, pairs: list[tuple[Envelope, Disbursement]]) -> None:
        bodies = [d for _, d in pairs]
        total = sum(b.amount_fen for b in bodies)
        at_risk = total - max(b.amount_fen for b in bodies)
        programs = {b.program for b in bodies}
        first = bodies[0]  # pairs are in event-id order
        region, basis = self.region_for(first.program, first.region)
        self.add(
            AlertCode.DUPLICATE_PAYMENT,
            region,
            first.period,
            "",
            first.program if len(programs) == 1 else None,
            at_risk,
            (*basis, *(e.event_id for e, _ in pairs)),
            explain.duplicate(first.period, len(pairs), total, at_risk),
        )

    def check_missed(self, cycle: Envelope, closed: PaymentCycleClosed) -> bool:
        """Raise MISSED_PAYMENT for this closed cycle if the child was payable; True if so."""
        policy = self.policies.for_region(closed.region)
        candidates = sorted(
            (
                env
                for env in self.tl.enrollments.values()
                if cast(ChildEnrolled, env.body).region == closed.region
            ),
            key=rank,
            reverse=True,
        )
        for enr_env in candidates:
            program = cast(ChildEnrolled, enr_env.body).program
            if not self.payable(program, closed.period):
                continue
            std_env = self.standard(closed.region, program, closed.period, policy)
            std = (
                cast(AllowanceStandardSet, std_env.body).monthly_amount_fen
                if std_env is not None
                else None
            )
            evidence = [cycle.event_id, enr_env.event_id]
            if std_env is not None:
                evidence.append(std_env.event_id)
            self.add(
                AlertCode.MISSED_PAYMENT,
                closed.region,
                closed.period,
                "",
                program,
                std or 0,
                evidence,
                explain.missed(closed.period, program, std),
            )
            return True
        return False


def evaluate_child(
    child_id: str,
    facts: Iterable[Envelope],
    policies: PolicyBook,
    periods: Collection[Period] | None = None,
) -> list[AlertDraft]:
    """The complete set of alerts the facts imply for one child, sorted by identity
    (period, code, subject).

    `facts` may hold more than concerns the child (other children, persons, regions,
    disbursements): what does not concern it is ignored. Depends only on the set of
    envelopes, never on their order or repetition.

    With `periods`, only the alerts whose period is one of them, exactly as if the full
    result were filtered by period, at a cost that grows with the payments and cycle
    closes of those periods rather than with the whole history (every check of a period
    reads only that period's payments and closes, plus the child's other facts).
    """
    months = None if periods is None else frozenset(p.index for p in periods)
    return evaluate_timeline(timeline_for_months(child_id, facts, months), policies)


def evaluate_timeline(tl: Timeline, policies: PolicyBook) -> list[AlertDraft]:
    """evaluate_child of an indexed timeline (timeline.index_timeline, .extended); of a
    timeline.months_view, the alerts of those months."""
    return _Evaluator(tl, policies).run()
