"""Honest errors corrected late: an alert before the correction, none after."""

from __future__ import annotations

import datetime as dt

from humiao.domain.alerts import AlertCode
from humiao.domain.events import (
    DisbursementReversed,
    EventRetracted,
    PersonDied,
    PersonStatusChanged,
)
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
    Situation,
    StatusChange,
)
from humiao_dev.demo.city.core import CityCore
from humiao_dev.demo.city.model import (
    PlannedChild,
    PlannedPay,
    last_day,
)


class CorrectedErrors(CityCore):
    """Honest errors corrected late: an alert before the correction, none after."""


    def story_double_payment_reversed(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            extra = self.extra_payment(c, m, plan, 1)
            self.emit_late(DisbursementReversed(extra.disbursement_id, last_day(self.end)))
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m, after=False)

        c.hooks.append(hook)
        return True

    def story_wrong_amount_reversed_and_repaid(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            wrong = plan[m][0]
            right = wrong.amount
            wrong.amount = self.wrong_amount(right)
            self.extra_payment(c, m, plan, self.rng.randint(8, 14), amount=right)
            self.emit_late(DisbursementReversed(wrong.disbursement_id, last_day(self.end)))
            self.expect(AlertCode.AMOUNT_MISMATCH, c.cid, m, wrong.disbursement_id, after=False)
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m, after=False)

        c.hooks.append(hook)
        return True

    def story_duplicate_entry_retracted(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            extra = self.extra_payment(c, m, plan, 2)
            self.emit_late(EventRetracted(extra.event_id, "entered twice by mistake"))
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m, after=False)

        c.hooks.append(hook)
        return True

    def story_mistaken_death_retracted(self, c: PlannedChild) -> bool:
        m = self.pick_month(c, after=1)
        if m is None:
            return False
        died = self.day_in(m, 5, 25)
        death = self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)),
                          PersonDied(c.cid, died))
        self.emit_late(EventRetracted(death.event_id, "identity mix-up: another person died"))

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            for period, pays in plan.items():
                if period > m:
                    for pay in pays:
                        self.expect(AlertCode.PAID_AFTER_DEATH, c.cid, period,
                                    pay.disbursement_id, after=False)

        c.hooks.append(hook)
        return True

    def story_mistaken_enrollment_end_retracted(self, c: PlannedChild) -> bool:
        m = self.pick_month(c, after=1)
        if m is None or c.natural_last <= self.end:
            return False  # an age-out end would be a second enrollmentEnded: keep it simple
        end = self.end_enrollment(c, self.day_in(m, 5, 25), EnrollmentEndReason.ADMINISTRATIVE)
        self.emit_late(EventRetracted(end.event_id, "ended the wrong child's enrollment"))

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            for period, pays in plan.items():
                if period > m:
                    for pay in pays:
                        self.expect(AlertCode.PAID_AFTER_ENROLLMENT_ENDED, c.cid, period,
                                    pay.disbursement_id, after=False)

        c.hooks.append(hook)
        return True

    def story_orphan_parent_found_payment_reversed(self, c: PlannedChild) -> bool:
        """Honest: the parent turns up mid-month; that month's payment is reversed later."""
        m = self.pick_month(c)
        candidates = [(p, s) for p, s in c.family.parents
                      if s in (Situation.UNKNOWN, Situation.MISSING_DECLARED)]
        if c.program is Program.DE_FACTO_UNSUPPORTED or m is None or not candidates:
            return False
        pid, situation = candidates[0]
        found = self.day_in(m, 10, 25)
        self.emit(found + dt.timedelta(days=self.rng.randint(0, 5)),
                  PersonStatusChanged(pid, situation, StatusChange.ENDED, found))
        self.end_enrollment(c, min(found + dt.timedelta(days=3), last_day(m)),
                            EnrollmentEndReason.PARENT_CIRCUMSTANCES_CHANGED)
        c.story_last = m - 1
        c.paid_through = m

        def hook(plan: dict[Period, list[PlannedPay]]) -> None:
            pay = plan[m][0]
            self.emit_late(DisbursementReversed(pay.disbursement_id, last_day(self.end)))
            self.expect(AlertCode.ORPHAN_PARENT_ALIVE, c.cid, m, pay.disbursement_id,
                        after=False)

        c.hooks.append(hook)
        return True

