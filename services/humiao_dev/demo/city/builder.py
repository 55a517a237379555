"""Builds one city: places the stories on children, emits every child's facts in order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from humiao.domain.alerts import AlertCode
from humiao.domain.events import (
    ChildEnrolled,
    Envelope,
    GuardianAppointed,
    ParentRecord,
    PaymentCycleClosed,
    SchoolingExtension,
)
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
)
from humiao_dev.demo.city.corrected import CorrectedErrors
from humiao_dev.demo.city.honest import HonestStories
from humiao_dev.demo.city.irregular import Irregularities
from humiao_dev.demo.city.model import (
    CORRECTIONS,
    INJECTIONS,
    City,
    CityConfig,
    Family,
    PlannedChild,
    PlannedPay,
    last_day,
)


class CityBuilder(HonestStories, Irregularities, CorrectedErrors):
    """Builds one city: stories placed on children, then every child's facts emitted."""

    # -- story assignment ------------------------------------------------------------

    def assign_stories(self) -> None:
        rng, n = self.rng, self.cfg.children
        singles = [c for c in self.children if len(c.family.children) == 1]
        rng.shuffle(singles)
        per_code = max(self.cfg.min_per_code, round(self.cfg.injection_rate * n))
        per_fix = max((self.cfg.min_per_code + 1) // 2, round(self.cfg.correction_rate * n))
        variants: dict[AlertCode, list[str]] = {}
        for name, code in INJECTIONS.items():
            if name != "paid_never_enrolled":
                variants.setdefault(code, []).append(name)
        for _code, names in variants.items():
            for i in range(per_code):
                self.place(names[i % len(names)], singles)
        for name in CORRECTIONS:
            for _ in range(per_fix):
                self.place(name, singles)
        for _ in range(per_code):
            self.phantom_payments()
        # Honest life events, at natural rates.
        for family in self.families:
            if any(c.story for c in family.children):
                continue
            self.honest_family_story(family)
        for c in singles:
            if c.story is None:
                self.honest_child_story(c)
            if (c.story is None and c.program is not Program.ORPHAN_INSTITUTIONAL
                    and (self.start_date - c.birth).days > 16 * 365 and rng.random() < 0.1):
                c.paid_to_self = True
                self.stories["honest: paid to the child itself (16+)"] += 1

    def place(self, name: str, pool: list[PlannedChild]) -> None:
        """Give the first free child of `pool` for which story `name` fits that story."""
        story = getattr(self, "story_" + name)
        for c in pool:
            if c.story is None and story(c):
                c.story = name
                self.stories[("injected: " if name in INJECTIONS else "corrected: ") + name] += 1
                return

    def honest_family_story(self, family: Family) -> None:
        rng = self.rng
        r = rng.random()
        if family.program is not Program.ORPHAN_INSTITUTIONAL and r < 0.05:
            self.family_story(family, "guardian changed", self.story_guardian_changed)
        elif family.program is not Program.ORPHAN_INSTITUTIONAL and r < 0.065:
            self.family_story(family, "guardian died, new guardian", self.story_guardian_died)
        elif family.program is Program.DE_FACTO_UNSUPPORTED and r < 0.16:
            self.family_story(family, "parent's situation ended", self.story_parent_ended)
        elif family.program is Program.DE_FACTO_UNSUPPORTED and r < 0.18:
            self.family_story(family, "medical parole (custody ended, illness started)",
                              self.story_medical_parole)
        elif family.program is Program.DE_FACTO_UNSUPPORTED and r < 0.20:
            self.family_story(family, "a listed parent died", self.story_parent_died)

    def family_story(self, family: Family, label: str, story: Callable[[Family], bool]) -> None:
        if story(family):
            for c in family.children:
                c.story = label
            self.stories["honest: " + label] += 1

    def honest_child_story(self, c: PlannedChild) -> None:
        r = self.rng.random()
        orphan = c.program is not Program.DE_FACTO_UNSUPPORTED
        label = None
        if r < 0.004:
            label = "child died" if self.story_child_died(c) else None
        elif r < (0.034 if orphan else 0.009):
            label = "adopted" if self.story_adopted(c) else None
        elif r < (0.044 if orphan else 0.019):
            label = "moved out of the region" if self.story_moved_out(c) else None
        if label:
            c.story = label
            self.stories["honest: " + label] += 1

    # -- emission --------------------------------------------------------------------

    def emit_child(self, c: PlannedChild) -> None:
        """Enrollment, first guardian, extension, age-out end, then every payment."""
        family = c.family
        recorded = c.approved_on + dt.timedelta(days=self.rng.randint(0, 3))
        self.emit(recorded, ChildEnrolled(
            c.cid, c.birth, c.program, c.region, c.approved_on,
            tuple(ParentRecord(pid, sit) for pid, sit in family.parents)))
        appointed, guardian = c.guardians[0]
        self.emit(max(recorded, appointed), GuardianAppointed(c.cid, guardian, appointed))
        b18 = c.birthday18
        if c.extension_until is not None:  # granted ahead of the birthday, whatever follows
            self.emit(max(self.day_in(b18 - 1, 10, 20), c.approved_on),
                      SchoolingExtension(c.cid, c.extension_until))
        if not c.ends_enrollment and c.natural_last <= self.end and (
                c.story_last is None or c.story_last > c.natural_last):
            if c.extension_until is not None:
                effective = c.extension_until
            else:
                effective = min(dt.date(b18.year, b18.month, min(c.birth.day, 28)),
                                last_day(b18))
            self.end_enrollment(c, effective, EnrollmentEndReason.REACHED_ADULTHOOD)

        last = min(self.last_honest(c), c.story_last or self.end)
        through = c.paid_through if c.paid_through is not None else last
        plan: dict[Period, list[PlannedPay]] = {}
        for m in self.months(c.first, through):
            if m in c.skip:
                continue
            paid_on = self.pay_date(c.region, m)
            payee = c.cid if c.paid_to_self else self.guardian_on(c, paid_on)
            plan[m] = [self.new_pay(c.cid, c.program, c.region, m, paid_on, payee)]
        for hook in c.hooks:
            hook(plan)
        for pays in plan.values():
            for pay in pays:
                self.emit_pay(pay)

    def emit_cycles(self) -> None:
        for region in self.cfg.regions:
            for m in self.months():
                self.emit(self.day_in(m, 25, 28), PaymentCycleClosed(region, m))

    def build(self) -> City:
        self.build_standards()
        self.build_population()
        self.assign_stories()
        for c in self.children:
            self.emit_child(c)
        self.emit_cycles()
        self.main.sort(key=lambda item: (item[0], item[1]))
        self.late.sort(key=lambda item: (item[0], item[1]))
        return City(
            config=self.cfg,
            events=tuple(env for _, _, env in self.main),
            corrections=tuple(env for _, _, env in self.late),
            truth=frozenset(self.truth),
            before_corrections=frozenset(self.before),
            stories=dict(sorted(self.stories.items())),
            children=len(self.children),
            disbursements=self.disbursements,
        )


def generate_city(config: CityConfig | None = None) -> City:
    """The city for `config` (deterministic: same config, same city)."""
    return CityBuilder(config or CityConfig()).build()


@dataclass(frozen=True)
class History:
    """A city's facts in recorded order (late corrections included) and every child they
    are about: what the verifier's tests replay and check against the domain."""

    envelopes: list[Envelope]
    child_ids: list[str]


#: The shape the verifier's tests were written against: three regions, one source.
HISTORY_REGIONS = ("110105", "110106", "310101")


def history(children: int, *, months: int = 24, seed: int = 7,
            source: str = "synthetic") -> History:
    """The city of `children` (at least 20) over `months` (at least 6) from 2022-01, as
    one History; the same arguments give the same history."""
    city = generate_city(CityConfig(seed=seed, children=max(20, children),
                                    months=max(6, months), start="2022-01",
                                    regions=HISTORY_REGIONS, source=source))
    envelopes = sorted([*city.events, *city.corrections],
                       key=lambda e: (e.recorded_at, e.event_id))
    child_ids = list(dict.fromkeys(c for e in envelopes if (c := e.child_id()) is not None))
    return History(envelopes, child_ids)

