"""Honest life events: they change the facts, and the payments follow them (no alert)."""

from __future__ import annotations

import datetime as dt

from humiao.domain.events import (
    ChildAdopted,
    PersonDied,
    PersonStatusChanged,
)
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Situation,
    StatusChange,
)
from humiao_dev.demo.city.core import CityCore
from humiao_dev.demo.city.model import (
    Family,
    PlannedChild,
    last_day,
)


class HonestStories(CityCore):
    """Honest life events: they change the facts, and the payments follow them (no alert)."""


    def family_month(self, family: Family, after: int = 1) -> Period | None:
        lo = max(c.first for c in family.children)
        hi = min(self.last_honest(c) for c in family.children) - after
        return Period(self.rng.randint(lo.index, hi.index)) if lo <= hi else None

    def story_guardian_changed(self, family: Family) -> bool:
        m = self.family_month(family)
        if m is None:
            return False
        new = self.person(family.region, family.children[0].birth, (25, 60))
        effective = self.day_in(m, 10, 25)
        for c in family.children:
            self.appoint(c, new, effective)
        return True

    def story_guardian_died(self, family: Family) -> bool:
        m = self.family_month(family)
        if m is None:
            return False
        old = family.children[0].guardians[-1][1]
        died = self.day_in(m, 6, 14)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 5)), PersonDied(old, died))
        new = self.person(family.region, family.children[0].birth, (25, 60))
        effective = self.day_in(m, 16, 27)
        for c in family.children:
            self.appoint(c, new, effective, lag=1)
        return True

    def story_parent_ended(self, family: Family) -> bool:
        """A parent is released / found / out of rehab: the children stop qualifying."""
        parent = self.temp_parent(family)
        m = self.family_month(family)
        if parent is None or m is None:
            return False
        ended = self.day_in(m, 5, 25)
        self.emit(ended + dt.timedelta(days=self.rng.randint(0, 10)),
                  PersonStatusChanged(parent[0], parent[1], StatusChange.ENDED, ended))
        for c in family.children:
            c.story_last = m
            if m + 1 <= self.end:
                self.end_enrollment(c, self.day_in(m + 1, 5, 20),
                                    EnrollmentEndReason.PARENT_CIRCUMSTANCES_CHANGED)
            c.ends_enrollment = True
        return True

    def story_medical_parole(self, family: Family) -> bool:
        """Custody ends but serious illness starts: the children still qualify."""
        custody = next((p for p, s in family.parents if s is Situation.IN_CUSTODY), None)
        m = self.family_month(family, after=0)
        if custody is None or m is None:
            return False
        ill = self.day_in(m, 5, 10)
        self.emit(ill + dt.timedelta(days=1), PersonStatusChanged(
            custody, Situation.SERIOUSLY_ILL, StatusChange.STARTED, ill))
        released = self.day_in(m, 12, 20)
        self.emit(released + dt.timedelta(days=1), PersonStatusChanged(
            custody, Situation.IN_CUSTODY, StatusChange.ENDED, released))
        return True

    def story_parent_died(self, family: Family) -> bool:
        """A parent in a listed situation dies while the other stays listed: still qualifies."""
        listed = [p for p, s in family.parents if s not in (Situation.DECEASED,
                                                             Situation.MISSING_DECLARED)]
        m = self.family_month(family, after=0)
        if len(listed) < 2 or m is None:
            return False
        died = self.day_in(m, 5, 25)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)), PersonDied(listed[0], died))
        return True

    def story_child_died(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        died = self.day_in(m, 3, 25)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)), PersonDied(c.cid, died))
        c.story_last = m
        self.end_enrollment(c, min(died + dt.timedelta(days=self.rng.randint(0, 10)),
                                   last_day(m)), EnrollmentEndReason.CHILD_DIED)
        return True

    def story_adopted(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        adopted = self.day_in(m, 8, 25)
        self.emit(adopted + dt.timedelta(days=self.rng.randint(0, 10)),
                  ChildAdopted(c.cid, adopted))
        self.appoint(c, self.person(c.region, c.birth, (25, 45)), adopted)
        c.story_last = m
        self.end_enrollment(c, adopted, EnrollmentEndReason.ADOPTED)
        return True

    def story_moved_out(self, c: PlannedChild) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        c.story_last = m
        self.end_enrollment(c, self.day_in(m, 5, 25), EnrollmentEndReason.MOVED_OUT_OF_REGION)
        return True

