"""The builder's common ground: identities, events, money, the population."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from collections import Counter

from humiao.domain.alerts import AlertCode
from humiao.domain.events import (
    AllowanceStandardSet,
    Body,
    Disbursement,
    EnrollmentEnded,
    Envelope,
    GuardianAppointed,
)
from humiao.domain.identity import compose_citizen_id
from humiao.domain.validation import unified_credit_code_check_char
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
    Situation,
)
from humiao_dev.demo.city.model import (
    CST,
    DE_FACTO_PARENTS,
    ORPHAN_PARENTS,
    OTHER_PREFIXES,
    TEMPORARY,
    CityConfig,
    ExpectedAlert,
    Family,
    PlannedChild,
    PlannedPay,
    last_day,
    weighted,
)


class CityCore:
    """What every story builds with: identities, events, money, the population and the
    helpers stories share. Every random draw comes from one seeded generator, in one order."""

    def __init__(self, config: CityConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.start = Period.parse(config.start)
        self.end = self.start + (config.months - 1)
        self.start_date = self.start.first_day()
        self.end_date = last_day(self.end)
        digest = hashlib.sha256(repr(dataclasses.astuple(config)).encode()).hexdigest()
        self.prefix = "c" + digest[:8]
        self._events = 0
        self._payments = 0
        self.used_ids: set[str] = set()
        self.main: list[tuple[dt.datetime, int, Envelope]] = []
        self.late: list[tuple[dt.datetime, int, Envelope]] = []
        self.truth: set[ExpectedAlert] = set()
        self.before: set[ExpectedAlert] = set()
        self.stories: Counter[str] = Counter()
        self.families: list[Family] = []
        self.children: list[PlannedChild] = []
        self.standards: dict[tuple[str, Program, int], int] = {}
        self.own_de_facto: set[str] = set()
        self.pay_day: dict[tuple[str, Period], int] = {}
        self.institutions: dict[str, str] = {}
        self.disbursements = 0

    # -- identities ------------------------------------------------------------------

    def citizen_id(self, region: str, birth: dt.date) -> str:
        while True:
            cid = compose_citizen_id(region, birth, self.rng.randrange(1000))
            if cid not in self.used_ids:
                self.used_ids.add(cid)
                return cid

    def person(self, region: str, born_before: dt.date, years: tuple[int, int]) -> str:
        """A new adult, `years` older than `born_before`, mostly registered locally."""
        age_days = self.rng.randint(years[0] * 365, years[1] * 365)
        prefix = region if self.rng.random() < 0.7 else self.rng.choice(OTHER_PREFIXES)
        return self.citizen_id(prefix, born_before - dt.timedelta(days=age_days))

    def institution(self, region: str) -> str:
        """The region's children's welfare institution (unified social credit code)."""
        chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        body = "12" + region + "".join(self.rng.choice(chars) for _ in range(9))
        return body + unified_credit_code_check_char(body)

    # -- events ----------------------------------------------------------------------

    def event_id(self) -> str:
        self._events += 1
        return f"{self.prefix}-{self._events:07d}"

    def at(self, day: dt.date) -> dt.datetime:
        """A moment in office hours on `day` (never past the horizon for the history)."""
        day = min(day, self.end_date)
        return dt.datetime.combine(
            day,
            dt.time(self.rng.randint(8, 17), self.rng.randrange(60), self.rng.randrange(60)),
            CST,
        )

    def emit(self, day: dt.date, body: Body, *, event_id: str | None = None) -> Envelope:
        """Record `body` in the history on `day` (clamped to the horizon)."""
        env = Envelope(event_id or self.event_id(), self.at(day), self.cfg.source, body)
        self.main.append((env.recorded_at, len(self.main), env))
        return env

    def emit_late(self, body: Body) -> Envelope:
        """Record a correction after the horizon (the year-end data cleanup)."""
        day = last_day(self.end) + dt.timedelta(days=self.rng.randint(3, 25))
        when = dt.datetime.combine(day, dt.time(self.rng.randint(8, 17), 0), CST)
        env = Envelope(self.event_id(), when, self.cfg.source, body)
        self.late.append((env.recorded_at, len(self.late), env))
        return env

    def expect(self, code: AlertCode, child_id: str, period: Period, subject: str = "", *,
               before: bool = True, after: bool = True) -> None:
        alert = ExpectedAlert(code, child_id, period, subject)
        if after:
            self.truth.add(alert)
        if before:
            self.before.add(alert)

    def day_in(self, period: Period, lo: int, hi: int) -> dt.date:
        return dt.date(period.year, period.month, self.rng.randint(lo, hi))

    # -- money -----------------------------------------------------------------------

    def build_standards(self) -> None:
        """Monthly standards per region and program, rising every January."""
        regions = self.cfg.regions
        if len(regions) > 1:
            self.own_de_facto.add(regions[-1])  # one district sets its own de facto rate
        for region in regions:
            amounts = {
                Program.ORPHAN_INSTITUTIONAL: self.rng.randint(2300, 2450) * 100,
                Program.ORPHAN_DISPERSED: self.rng.randint(1900, 2000) * 100,
            }
            if region in self.own_de_facto:
                amounts[Program.DE_FACTO_UNSUPPORTED] = (
                    amounts[Program.ORPHAN_DISPERSED] - self.rng.randint(5, 15) * 1000
                )
            for year in range(self.start.year, self.end.year + 1):
                for program, amount in amounts.items():
                    if year > self.start.year:
                        amount = amount * (100 + self.rng.randint(3, 6)) // 100 // 100 * 100
                        amounts[program] = amount
                    self.standards[(region, program, year)] = amount
                    self.emit(
                        dt.date(year - 1, 12, self.rng.randint(5, 20)),
                        AllowanceStandardSet(region, program, Period.of(year, 1), amount),
                    )
            for p in self.months():
                self.pay_day[(region, p)] = self.rng.randint(1, 5)

    def standard(self, region: str, program: Program, period: Period) -> int:
        if program is Program.DE_FACTO_UNSUPPORTED and region not in self.own_de_facto:
            program = Program.ORPHAN_DISPERSED
        return self.standards[(region, program, period.year)]

    def pay_date(self, region: str, period: Period) -> dt.date:
        return dt.date(period.year, period.month, self.pay_day[(region, period)])

    def months(self, lo: Period | None = None, hi: Period | None = None) -> list[Period]:
        lo = max(lo or self.start, self.start)
        hi = min(hi or self.end, self.end)
        return [Period(i) for i in range(lo.index, hi.index + 1)]

    def new_pay(self, child_id: str, program: Program, region: str, period: Period,
                paid_on: dt.date, payee: str, amount: int | None = None) -> PlannedPay:
        self._payments += 1
        return PlannedPay(
            disbursement_id=f"{self.prefix}-{region}-{period.year:04d}{period.month:02d}-"
            f"{self._payments:06d}",
            event_id=self.event_id(),
            child_id=child_id,
            program=program,
            period=period,
            amount=self.standard(region, program, period) if amount is None else amount,
            paid_on=paid_on,
            payee=payee,
            region=region,
        )

    def emit_pay(self, pay: PlannedPay) -> None:
        self.disbursements += 1
        self.emit(
            pay.paid_on + dt.timedelta(days=self.rng.randint(0, 1)),
            Disbursement(pay.disbursement_id, pay.child_id, pay.program, pay.period,
                         pay.amount, pay.paid_on, pay.payee, pay.region),
            event_id=pay.event_id,
        )

    # -- population ------------------------------------------------------------------

    def build_population(self) -> None:
        cfg, rng = self.cfg, self.rng
        for region in cfg.regions:
            self.institutions[region] = self.institution(region)
        programs = ((Program.ORPHAN_INSTITUTIONAL, 15), (Program.ORPHAN_DISPERSED, 30),
                    (Program.DE_FACTO_UNSUPPORTED, 55))
        while len(self.children) < cfg.children:
            program: Program = weighted(rng, programs)
            region = rng.choice(cfg.regions)
            size = 1 if program is Program.ORPHAN_INSTITUTIONAL else weighted(
                rng, ((1, 78), (2, 16), (3, 6)))
            size = min(size, cfg.children - len(self.children))
            eldest_days = rng.randint(60, 18 * 365 - 2)
            births = [self.start_date - dt.timedelta(days=eldest_days)]
            for _ in range(size - 1):
                younger = births[-1] + dt.timedelta(days=rng.randint(365, 4 * 365))
                if younger > self.start_date - dt.timedelta(days=60):
                    break
                births.append(younger)
            table = ORPHAN_PARENTS if program is not Program.DE_FACTO_UNSUPPORTED \
                else DE_FACTO_PARENTS
            situations: tuple[Situation, Situation] = weighted(rng, table)
            parents = [(self.person(region, births[0], (22, 40)), s) for s in situations]
            approved_on = self.approval_date(births)
            family = Family(region, program, parents, approved_on)
            if program is Program.ORPHAN_INSTITUTIONAL:
                guardian = self.institutions[region]
            else:
                span = (45, 65) if rng.random() < 0.7 else (25, 45)
                guardian = self.person(region, births[0], span)
            appointed = max(births[-1], approved_on - dt.timedelta(days=rng.randint(0, 90)))
            for birth in births:
                self.children.append(self.new_child(family, birth, guardian, appointed))
            self.families.append(family)

    def approval_date(self, births: list[dt.date]) -> dt.date:
        """Three in four families were on the roll before the horizon; the rest join in it."""
        rng = self.rng
        eldest18 = Period.of(births[0].year + 18, births[0].month)
        if rng.random() < 0.25:
            month = self.start + rng.randrange(self.cfg.months)
            if month + 2 <= eldest18:
                return self.day_in(month, 5, 25)
        lo = max(births[-1] + dt.timedelta(days=30), self.start_date - dt.timedelta(days=6 * 365))
        hi = self.start_date - dt.timedelta(days=1)
        return lo + dt.timedelta(days=rng.randint(0, max(0, (hi - lo).days)))

    def new_child(self, family: Family, birth: dt.date, guardian: str,
                  appointed: dt.date) -> PlannedChild:
        cid = self.citizen_id(family.region, birth)
        b18 = Period.of(birth.year + 18, birth.month)
        extension: dt.date | None = None
        natural_last = b18
        if self.start <= b18 < self.end and self.rng.random() < 0.4:
            july = Period.of(b18.year if b18.month < 7 else b18.year + 1, 7)
            extension = last_day(july)
            natural_last = july
        child = PlannedChild(
            cid=cid,
            birth=birth,
            family=family,
            first=max(self.start, Period.of_date(family.approved_on) + 1),
            natural_last=natural_last,
            extension_until=extension,
            guardians=[(appointed, guardian)],
        )
        family.children.append(child)
        return child

    # -- helpers for stories ---------------------------------------------------------

    def last_honest(self, c: PlannedChild) -> Period:
        """The last payable month in the horizon, by age alone."""
        return min(self.end, c.natural_last)

    def pick_month(self, c: PlannedChild, after: int = 0) -> Period | None:
        """A month M with M >= first and M + after <= the last payable month."""
        lo, hi = c.first, self.last_honest(c) - after
        if hi < lo:
            return None
        return Period(self.rng.randint(lo.index, hi.index))

    def appoint(self, c: PlannedChild, guardian: str, effective: dt.date, lag: int = 5) -> None:
        c.guardians.append((effective, guardian))
        c.guardians.sort()
        self.emit(effective + dt.timedelta(days=self.rng.randint(0, lag)),
                  GuardianAppointed(c.cid, guardian, effective))

    def end_enrollment(self, c: PlannedChild, effective: dt.date, reason: EnrollmentEndReason,
                       event_id: str | None = None) -> Envelope:
        c.ends_enrollment = True
        return self.emit(effective + dt.timedelta(days=self.rng.randint(0, 5)),
                         EnrollmentEnded(c.cid, c.program, effective, reason),
                         event_id=event_id)

    def temp_parent(self, family: Family) -> tuple[str, Situation] | None:
        for pid, sit in family.parents:
            if sit in TEMPORARY:
                return pid, sit
        return None

    @staticmethod
    def guardian_on(c: PlannedChild, day: dt.date) -> str:
        current = c.guardians[0][1]
        for effective, guardian in c.guardians:
            if effective <= day:
                current = guardian
        return current

    def extra_payment(self, c: PlannedChild, m: Period, plan: dict[Period, list[PlannedPay]],
                      days_later: int, region: str | None = None,
                      amount: int | None = None) -> PlannedPay:
        first = plan[m][0]
        paid_on = first.paid_on + dt.timedelta(days=days_later)
        pay = self.new_pay(c.cid, c.program, region or c.region, m, paid_on,
                           self.guardian_on(c, paid_on) if not c.paid_to_self else c.cid,
                           amount=first.amount if amount is None else amount)
        plan[m].append(pay)
        return pay

    def wrong_amount(self, right: int) -> int:
        delta = self.rng.randint(50, 600) * 100
        return right + delta if self.rng.random() < 0.6 or delta >= right else right - delta
