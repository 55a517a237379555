"""Generators of valid envelopes, shared by every test that needs contract-valid data.

- hypothesis strategies: `envelopes()` (every kind), `bodies()`, `citizen_ids()`,
  `credit_codes()`, `regions()`, `periods()`...; import with `from strategies import ...`
  (tests/ is on sys.path through conftest.py).
- `random_envelope(rng, ...)`: a fast plain-random generator for bulk data (100k lines),
  where hypothesis' `example()` would be far too slow.

Every generated envelope passes validation: recordedAt lies in 2020..2026, other dates
in 2000..2029 (within ten years of recordedAt), birth dates before recordedAt.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Collection

from hypothesis import strategies as st

from humiao.domain.events import (
    ALL_KINDS,
    AllowanceStandardSet,
    Body,
    ChildAdopted,
    ChildEnrolled,
    Disbursement,
    DisbursementReversed,
    EnrollmentEnded,
    Envelope,
    EventRetracted,
    GuardianAppointed,
    ParentRecord,
    PaymentCycleClosed,
    PersonDied,
    PersonStatusChanged,
    SchoolingExtension,
)
from humiao.domain.identity import compose_citizen_id
from humiao.domain.validation import MAX_AMOUNT_FEN, compose_credit_code
from humiao.domain.values import EnrollmentEndReason, Period, Program, Situation, StatusChange

RECORDED_FROM = dt.datetime(2020, 1, 1)
RECORDED_TO = dt.datetime(2026, 6, 30, 23, 59, 59)
DATE_FROM = dt.date(2000, 1, 1)
DATE_TO = dt.date(2029, 12, 31)
CHILD_BORN_FROM = dt.date(2002, 1, 1)
CHILD_BORN_TO = dt.date(2019, 12, 31)  # before any recordedAt
ADULT_BORN_FROM = dt.date(1940, 1, 1)
ADULT_BORN_TO = dt.date(2001, 12, 31)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


make_citizen_id = compose_citizen_id
make_credit_code = compose_credit_code


# --- hypothesis strategies ----------------------------------------------------------------

region_numbers = st.integers(110000, 659999)


def regions() -> st.SearchStrategy[str]:
    return region_numbers.map(lambda n: f"{n:06d}")


def citizen_ids(
    born: st.SearchStrategy[dt.date] | None = None,
    region: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[str]:
    """Valid citizen ID numbers, born on dates from `born` (default 1940..2019)."""
    return st.builds(
        make_citizen_id,
        region if region is not None else region_numbers,
        born if born is not None else st.dates(ADULT_BORN_FROM, CHILD_BORN_TO),
        st.integers(0, 999),
    )


def child_ids() -> st.SearchStrategy[str]:
    return citizen_ids(st.dates(CHILD_BORN_FROM, CHILD_BORN_TO))


def adult_ids() -> st.SearchStrategy[str]:
    return citizen_ids(st.dates(ADULT_BORN_FROM, ADULT_BORN_TO))


def credit_codes() -> st.SearchStrategy[str]:
    """Valid 18-character unified social credit codes (institutions)."""
    return st.builds(
        make_credit_code,
        st.sampled_from(["11", "12", "13", "51", "52", "53", "91", "92", "93", "Y1"]),
        region_numbers,
        st.text(alphabet=_USCC_CHARS, min_size=9, max_size=9),
    )


def party_ids() -> st.SearchStrategy[str]:
    """Guardians and payees: persons or institutions."""
    return st.one_of(adult_ids(), credit_codes())


def dates() -> st.SearchStrategy[dt.date]:
    return st.dates(DATE_FROM, DATE_TO)


def periods() -> st.SearchStrategy[Period]:
    return st.builds(Period.of, st.integers(DATE_FROM.year, DATE_TO.year), st.integers(1, 12))


def amounts() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 200_000), st.integers(0, MAX_AMOUNT_FEN))


def printable_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Non-empty text that str.isprintable() accepts (any script, no control characters)."""
    return st.text(
        st.characters(exclude_categories=("C", "Z"), include_characters=" "),
        min_size=1,
        max_size=max_size,
    )


def event_ids() -> st.SearchStrategy[str]:
    return printable_text(128)


def recorded_ats() -> st.SearchStrategy[dt.datetime]:
    return st.datetimes(RECORDED_FROM, RECORDED_TO, timezones=st.just(dt.UTC))


def _parents() -> st.SearchStrategy[tuple[ParentRecord, ...]]:
    return st.lists(
        st.builds(ParentRecord, adult_ids(), st.sampled_from(Situation)),
        max_size=2,
        unique_by=lambda p: p.person_id,
    ).map(tuple)


@st.composite
def _child_enrolled(draw: st.DrawFn) -> ChildEnrolled:
    born = draw(st.dates(CHILD_BORN_FROM, CHILD_BORN_TO))
    return ChildEnrolled(
        child_id=draw(citizen_ids(st.just(born))),
        birth_date=born,
        program=draw(st.sampled_from(Program)),
        region=draw(regions()),
        approved_on=draw(dates()),
        parents=draw(_parents()),
    )


BODY_STRATEGIES: dict[str, st.SearchStrategy[Body]] = {
    "childEnrolled": _child_enrolled(),
    "enrollmentEnded": st.builds(
        EnrollmentEnded, child_ids(), st.sampled_from(Program), dates(),
        st.sampled_from(EnrollmentEndReason),
    ),
    "schoolingExtension": st.builds(SchoolingExtension, child_ids(), dates()),
    "guardianAppointed": st.builds(GuardianAppointed, child_ids(), party_ids(), dates()),
    "childAdopted": st.builds(ChildAdopted, child_ids(), dates()),
    "personDied": st.builds(PersonDied, citizen_ids(), dates()),
    "personStatusChanged": st.builds(
        PersonStatusChanged, adult_ids(), st.sampled_from(Situation),
        st.sampled_from(StatusChange), dates(),
    ),
    "disbursement": st.builds(
        Disbursement, printable_text(64), child_ids(), st.sampled_from(Program), periods(),
        amounts(), dates(), party_ids(), regions(),
    ),
    "disbursementReversed": st.builds(DisbursementReversed, printable_text(64), dates()),
    "paymentCycleClosed": st.builds(PaymentCycleClosed, regions(), periods()),
    "allowanceStandardSet": st.builds(
        AllowanceStandardSet, regions(), st.sampled_from(Program), periods(), amounts()
    ),
    "eventRetracted": st.builds(EventRetracted, event_ids(), printable_text(200)),
}
assert set(BODY_STRATEGIES) == ALL_KINDS


def bodies(kinds: Collection[str] | None = None) -> st.SearchStrategy[Body]:
    chosen = sorted(kinds) if kinds is not None else sorted(BODY_STRATEGIES)
    return st.one_of(*(BODY_STRATEGIES[k] for k in chosen))


def envelopes(
    kinds: Collection[str] | None = None,
    *,
    source: str | st.SearchStrategy[str] | None = None,
    event_id: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Envelope]:
    """Valid domain envelopes of every kind (or of `kinds`), from `source` if given."""
    sources = st.just(source) if isinstance(source, str) else source
    return st.builds(
        Envelope,
        event_id=event_id if event_id is not None else event_ids(),
        recorded_at=recorded_ats(),
        source=sources if sources is not None else printable_text(32),
        body=bodies(kinds),
    )


# --- a fast plain-random generator for bulk data ------------------------------------------


def _rand_date(rng: random.Random, lo: dt.date, hi: dt.date) -> dt.date:
    return lo + dt.timedelta(days=rng.randrange((hi - lo).days + 1))


def random_citizen_id(
    rng: random.Random, region: str | None = None, born: dt.date | None = None
) -> str:
    return make_citizen_id(
        int(region) if region else rng.randint(110000, 659999),
        born or _rand_date(rng, ADULT_BORN_FROM, ADULT_BORN_TO),
        rng.randrange(1000),
    )


def random_body(rng: random.Random, kind: str, region: str) -> Body:
    """A valid body of `kind`; child and person IDs are born in `region`."""
    born = _rand_date(rng, CHILD_BORN_FROM, CHILD_BORN_TO)
    child = random_citizen_id(rng, region, born)
    adult = random_citizen_id(rng, region)
    day = _rand_date(rng, DATE_FROM, dt.date(2025, 12, 31))
    period = Period.of(rng.randint(2015, 2025), rng.randint(1, 12))
    program = rng.choice(list(Program))
    token = "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
    if kind == "childEnrolled":
        parents = tuple(
            ParentRecord(random_citizen_id(rng, region), rng.choice(list(Situation)))
            for _ in range(rng.randint(0, 1))
        )
        return ChildEnrolled(child, born, program, region, day, parents)
    if kind == "enrollmentEnded":
        return EnrollmentEnded(child, program, day, rng.choice(list(EnrollmentEndReason)))
    if kind == "schoolingExtension":
        return SchoolingExtension(child, day)
    if kind == "guardianAppointed":
        return GuardianAppointed(child, adult, day)
    if kind == "childAdopted":
        return ChildAdopted(child, day)
    if kind == "personDied":
        return PersonDied(adult, day)
    if kind == "personStatusChanged":
        return PersonStatusChanged(
            adult, rng.choice(list(Situation)), rng.choice(list(StatusChange)), day
        )
    if kind == "disbursement":
        return Disbursement(f"D-{token}", child, program, period, rng.randint(30000, 200000),
                            day, adult, region)
    if kind == "disbursementReversed":
        return DisbursementReversed(f"D-{token}", day)
    if kind == "paymentCycleClosed":
        return PaymentCycleClosed(region, period)
    if kind == "allowanceStandardSet":
        return AllowanceStandardSet(region, program, period, rng.randint(50000, 200000))
    if kind == "eventRetracted":
        return EventRetracted(f"E-{token}", "entered in error")
    raise ValueError(f"unknown kind {kind}")


def random_envelope(
    rng: random.Random,
    *,
    event_id: str,
    source: str = "test-source",
    region: str = "110105",
    kinds: Collection[str] = ("disbursement",),
) -> Envelope:
    """A valid envelope, fast enough to generate a million of (no hypothesis)."""
    recorded = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        seconds=rng.randrange(86_400 * 150)
    )
    return Envelope(event_id, recorded, source, random_body(rng, rng.choice(list(kinds)), region))
