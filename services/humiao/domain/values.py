"""Value types of the domain: programs, situations, periods, money."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Program(enum.IntEnum):
    """Numbers match humiao.events.v1.Program so adapters convert with Program(n)."""

    ORPHAN_INSTITUTIONAL = 1
    ORPHAN_DISPERSED = 2
    DE_FACTO_UNSUPPORTED = 3


class Situation(enum.IntEnum):
    """A parent's situation; numbers match humiao.events.v1.Situation."""

    SEVERELY_DISABLED = 1
    SERIOUSLY_ILL = 2
    IN_CUSTODY = 3
    COMPULSORY_REHAB = 4
    LIBERTY_RESTRICTED = 5
    LOST_CONTACT = 6
    GUARDIANSHIP_REVOKED = 7
    DEPORTED = 8
    DECEASED = 9
    MISSING_DECLARED = 10
    UNKNOWN = 11


#: Situations that make a child "de facto unsupported" (民发〔2019〕62号, 〔2020〕125号).
DE_FACTO_SITUATIONS = frozenset(
    {
        Situation.SEVERELY_DISABLED,
        Situation.SERIOUSLY_ILL,
        Situation.IN_CUSTODY,
        Situation.COMPULSORY_REHAB,
        Situation.LIBERTY_RESTRICTED,
        Situation.LOST_CONTACT,
        Situation.GUARDIANSHIP_REVOKED,
        Situation.DEPORTED,
    }
)
#: Situations under which a parent counts as absent for an orphan.
ORPHAN_SITUATIONS = frozenset({Situation.DECEASED, Situation.MISSING_DECLARED, Situation.UNKNOWN})


class StatusChange(enum.IntEnum):
    STARTED = 1
    ENDED = 2


class EnrollmentEndReason(enum.IntEnum):
    NO_LONGER_ELIGIBLE = 1
    REACHED_ADULTHOOD = 2
    ADOPTED = 3
    CHILD_DIED = 4
    MOVED_OUT_OF_REGION = 5
    PARENT_CIRCUMSTANCES_CHANGED = 6
    ADMINISTRATIVE = 7
    OTHER_REASON = 8


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """A calendar month an allowance is for. Ordered; `index` counts months from year 0."""

    index: int

    @classmethod
    def of(cls, year: int, month: int) -> Period:
        return cls(year * 12 + month - 1)

    @classmethod
    def of_date(cls, day: dt.date) -> Period:
        return cls(day.year * 12 + day.month - 1)

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse 'YYYY-MM'; raises ValueError on anything else."""
        if len(text) != 7 or text[4] != "-" or not (text[:4].isdigit() and text[5:].isdigit()):
            raise ValueError("must be a month as YYYY-MM")
        year, month = int(text[:4]), int(text[5:])
        if not 1 <= month <= 12 or year < 1:
            raise ValueError("must be a month as YYYY-MM")
        return cls.of(year, month)

    @property
    def year(self) -> int:
        return self.index // 12

    @property
    def month(self) -> int:
        return self.index % 12 + 1

    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    def __add__(self, months: int) -> Period:
        return Period(self.index + months)

    def __sub__(self, months: int) -> Period:
        return Period(self.index - months)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __repr__(self) -> str:
        return f"Period({self})"


def format_fen(fen: int) -> str:
    """Render integer fen as yuan for people, e.g. 123456 -> '1,234.56'."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"
