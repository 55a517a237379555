"""Injected irregularities: payments right in every respect but one, each an expected alert."""

from __future__ import annotations

import datetime as dt

from humiao.domain.alerts import AlertCode
from humiao.domain.events import (
    ChildAdopted,
    DisbursementReversed,
    PersonDied,
    PersonStatusChanged,
)
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
    StatusChange,
)
from humiao_dev.demo.city.core import CityCore
from humiao_dev.demo.city.model import (
    PlannedChild,
    PlannedPay,
    last_day,
)


class Irregularities(CityCore):
    """Injected irregularities: payments right in every respect but one, each an expected alert."""


    def keep_paying(self, c: PlannedChild, m: Period, months: int, code: AlertCode,
                    from_month: int = 1) -> None:
        """The honest end is month m; payments go on and each one is an alert."""
        c.story_last = m + (from_month - 1)
        c.paid_through = m + (from_month - 1) + months

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            for i in range(months):
                pay = plan[m + from_month + i][0]
                self.expect(code, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)

    def story_paid_after_death(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if m is None:
            return False
        died = self.day_in(m, 5, 25)
        # Registered late: the payments went out before the death was known.
        self.emit(died + dt.timedelta(days=self.rng.randint(20, 70)), PersonDied(c.cid, died))
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_DEATH)
        return True

    def story_paid_after_age_out(self, c: PlannedChild) -> bool:
        b18 = c.birthday18
        if c.extension_until is not None or not (c.first <= b18 and b18 + 1 <= self.end):
            return False
        k = self.rng.randint(1, min(3, self.end.index - b18.index))
        self.keep_paying(c, b18, k, AlertCode.PAID_AFTER_AGE_OUT)
        c.ends_enrollment = True  # the district forgot to end it
        return True

    def story_paid_after_adoption(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if m is None:
            return False
        adopted = self.day_in(m, 8, 25)
        self.emit(adopted + dt.timedelta(days=self.rng.randint(0, 20)),
                  ChildAdopted(c.cid, adopted))
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_ADOPTION)
        return True

    def story_paid_after_parent_released(self, c: PlannedChild) -> bool:
        parent = self.temp_parent(c.family)
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if c.program is not Program.DE_FACTO_UNSUPPORTED or parent is None or m is None:
            return False
        ended = self.day_in(m, 5, 25)
        self.emit(ended + dt.timedelta(days=self.rng.randint(0, 10)),
                  PersonStatusChanged(parent[0], parent[1], StatusChange.ENDED, ended))
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_PARENT_SITUATION_ENDED)
        return True

    def story_paid_after_orphan_parent_found(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k - 1)
        if c.program is Program.DE_FACTO_UNSUPPORTED or m is None:
            return False
        pid, situation = self.rng.choice(c.family.parents)
        found = self.day_in(m, 10, 25)
        self.emit(found + dt.timedelta(days=self.rng.randint(0, 5)),
                  PersonStatusChanged(pid, situation, StatusChange.ENDED, found))
        # Found in month m: m itself is no longer payable (its payment went out on day 1-5).
        self.keep_paying(c, m, k, AlertCode.ORPHAN_PARENT_ALIVE, from_month=0)
        return True

    def story_paid_after_enrollment_ended(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if m is None:
            return False
        reason = self.rng.choice((EnrollmentEndReason.MOVED_OUT_OF_REGION,
                                  EnrollmentEndReason.ADMINISTRATIVE))
        self.end_enrollment(c, self.day_in(m, 5, 25), reason)
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_ENROLLMENT_ENDED)
        return True

    def story_paid_before_approval(self, c: PlannedChild) -> bool:
        approved = Period.of_date(c.approved_on)
        if approved < self.start or c.first > self.last_honest(c):
            return False
        months = [approved] + ([approved - 1] if approved - 1 >= self.start and
                               self.rng.random() < 0.3 else [])

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            paid_on = self.pay_date(c.region, c.first)
            for m in months:  # back pay, sent with the first regular payment
                pay = self.new_pay(c.cid, c.program, c.region, m, paid_on,
                                   self.guardian_on(c, paid_on))
                plan.setdefault(m, []).append(pay)
                self.expect(AlertCode.PAID_BEFORE_APPROVAL, c.cid, m, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_twice(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        elsewhere = self.rng.random() < 0.5 and len(self.cfg.regions) > 1
        region = self.rng.choice([r for r in self.cfg.regions if r != c.region]) \
            if elsewhere else c.region

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            self.extra_payment(c, m, plan, self.rng.randint(3, 10), region=region)
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m)

        c.hooks.append(hook)
        return True

    def story_wrong_amount(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            pay = plan[m][0]
            pay.amount = self.wrong_amount(pay.amount)
            self.expect(AlertCode.AMOUNT_MISMATCH, c.cid, m, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_to_stranger(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 2)
        m = self.pick_month(c, after=k - 1)
        if m is None:
            return False
        stranger = self.person(c.region, c.birth, (25, 50))

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            for i in range(k):
                pay = plan[m + i][0]
                pay.payee = stranger
                self.expect(AlertCode.PAYEE_NOT_GUARDIAN, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_to_former_guardian(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 2)
        m = self.pick_month(c, after=k)
        if c.program is Program.ORPHAN_INSTITUTIONAL or m is None:
            return False
        old = c.guardians[-1][1]
        self.appoint(c, self.person(c.region, c.birth, (25, 60)), self.day_in(m, 10, 25))

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            for i in range(1, k + 1):
                pay = plan[m + i][0]
                pay.payee = old
                self.expect(AlertCode.PAYEE_NOT_GUARDIAN, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_to_dead_guardian(self, c: PlannedChild) -> bool:
        k = self.rng.randint(1, 2)
        m = self.pick_month(c, after=k)
        if c.program is Program.ORPHAN_INSTITUTIONAL or m is None:
            return False
        guardian = c.guardians[-1][1]
        died = self.day_in(m, 6, 20)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)), PersonDied(guardian, died))
        # Still the guardian in force until a new one is appointed, after k payments.
        new = self.person(c.region, c.birth, (25, 60))
        self.appoint(c, new, self.day_in(m + k, 15, 25))

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            for i in range(1, k + 1):
                pay = plan[m + i][0]
                assert pay.payee == guardian
                self.expect(AlertCode.PAYEE_DECEASED, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_payment_skipped(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        c.skip.add(m)
        self.expect(AlertCode.MISSED_PAYMENT, c.cid, m)
        return True

    def story_payment_reversed_not_repaid(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            self.emit_late(DisbursementReversed(plan[m][0].disbursement_id,
                                                last_day(self.end) + dt.timedelta(days=2)))
            self.expect(AlertCode.MISSED_PAYMENT, c.cid, m, before=False)

        c.hooks.append(hook)
        return True

    def phantom_payments(self) -> None:
        """Payments to a child who was never enrolled (NOT_ENROLLED on each)."""
        rng = self.rng
        region = rng.choice(self.cfg.regions)
        birth = self.start_date - dt.timedelta(days=rng.randint(3 * 365, 15 * 365))
        child = self.citizen_id(region, birth)
        payee = self.person(region, birth, (25, 60))
        program = rng.choice((Program.ORPHAN_DISPERSED, Program.DE_FACTO_UNSUPPORTED))
        k = rng.randint(1, 3)
        first = self.start + rng.randrange(self.cfg.months - k + 1)
        for i in range(k):
            m = first + i
            pay = self.new_pay(child, program, region, m, self.pay_date(region, m), payee)
            self.emit_pay(pay)
            self.expect(AlertCode.NOT_ENROLLED, child, m, pay.disbursement_id)
        self.stories["injected: paid_never_enrolled"] += 1

