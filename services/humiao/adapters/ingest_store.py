"""Ingest's PostgreSQL store: accepted event ids (deduplication) and what the grant model
needs to know about earlier facts (migrations 001 and 011). The servicer holds no SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import asyncpg

from humiao.domain import events as ev
from humiao.ingest.grants import Accepted, Known, Owned, person_links, unqualified

_KNOWN_IDS = "SELECT event_id FROM ingested_events WHERE event_id = ANY($1::text[])"
_RECORD = (
    "INSERT INTO ingested_events (event_id, kind, source, accepted_at, own_id, region)"
    " SELECT e, k, s, $4, o, r"
    " FROM unnest($1::text[], $2::text[], $3::text[], $5::text[], $6::text[]) AS t(e, k, s, o, r)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
_EVENTS = (
    "SELECT own_id, event_id, source, region FROM ingested_events"
    " WHERE own_id = ANY($1::text[]) OR event_id = ANY($1::text[])"
)
_DISBURSEMENTS = (
    "SELECT own_id, qualified, source, region FROM ingest_disbursements"
    " WHERE own_id = ANY($1::text[]) OR qualified = ANY($1::text[])"
)
_LINKS = "SELECT person_key, child_key FROM ingest_person_links WHERE person_key = ANY($1)"
_ENROLLMENTS = (
    "SELECT child_key, region, active FROM ingest_enrollments WHERE child_key = ANY($1)"
)


async def known_ids(pool: asyncpg.Pool, qualified_ids: Sequence[str]) -> set[str]:
    """Which of these (qualified) event ids were accepted before."""
    return {r[0] for r in await pool.fetch(_KNOWN_IDS, list(qualified_ids))}


async def load_known(
    pool: asyncpg.Pool, envelopes: Sequence[ev.Envelope], key_of: Callable[[str], str]
) -> Known:
    """What the grant model must know about the subjects of these envelopes."""
    named_events, named_disbursements, persons, children = set(), set(), set(), set()
    for env in envelopes:
        body = env.body
        if isinstance(body, ev.EventRetracted):
            named_events.add(body.retracted_event_id)
        elif isinstance(body, ev.DisbursementReversed):
            named_disbursements.add(body.disbursement_id)
        elif isinstance(body, (ev.PersonDied, ev.PersonStatusChanged)):
            persons.add(key_of(body.person_id))
        elif (child := env.child_id()) is not None:
            children.add(key_of(child))
    known = Known()
    async with pool.acquire() as conn:
        for row in await conn.fetch(_EVENTS, list(named_events)) if named_events else ():
            own = row["own_id"] or row["event_id"]
            fact = Owned(row["event_id"], row["source"], row["region"])
            known.events.setdefault(own, []).append(fact)
            if row["event_id"] != own:
                known.events.setdefault(row["event_id"], []).append(fact)
        for row in (await conn.fetch(_DISBURSEMENTS, list(named_disbursements))
                    if named_disbursements else ()):
            known.disbursements.setdefault(row["own_id"], []).append(
                Owned(row["qualified"], row["source"], row["region"]))
        for row in await conn.fetch(_LINKS, list(persons)) if persons else ():
            known.links.setdefault(row["person_key"], set()).add(row["child_key"])
            children.add(row["child_key"])
        children |= persons  # a person may be a child itself
        for row in await conn.fetch(_ENROLLMENTS, list(children)) if children else ():
            known.enrollments.setdefault(row["child_key"], {})[row["region"]] = row["active"]
    return known


async def record(
    pool: asyncpg.Pool,
    published: Sequence[Accepted],
    accepted_at: dt.datetime,
    key_of: Callable[[str], str],
) -> set[str]:
    """Record published facts in one transaction; returns the event ids this call recorded
    (another gateway may have recorded some meanwhile)."""
    if not published:
        return set()
    envs = [a.envelope for a in published]
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            _RECORD,
            [e.event_id for e in envs],
            [e.kind for e in envs],
            [e.source for e in envs],
            accepted_at,
            [unqualified(e.source, e.event_id) for e in envs],
            [a.region for a in published],
        )
        recorded = {r[0] for r in rows}
        mine = [a for a in published if a.envelope.event_id in recorded]
        await _remember(conn, mine, key_of)
    return recorded


async def _remember(
    conn: asyncpg.Connection, facts: Sequence[Accepted], key_of: Callable[[str], str]
) -> None:
    disbursements: list[tuple[str, str, str, str]] = []
    links: set[tuple[str, str]] = set()
    #: child key -> (an end came in this batch, region -> active after the batch)
    enrollment: dict[str, tuple[bool, dict[str, bool]]] = {}
    for fact in facts:  # in the order judged: an end, then a new enrollment
        env, body = fact.envelope, fact.envelope.body
        if isinstance(body, ev.Disbursement):
            disbursements.append((unqualified(env.source, body.disbursement_id),
                                  body.disbursement_id, env.source, body.region))
        links.update(person_links(env, key_of))
        if isinstance(body, ev.ChildEnrolled):
            _, regions = enrollment.setdefault(key_of(body.child_id), (False, {}))
            regions[body.region] = True
        elif isinstance(body, ev.EnrollmentEnded):
            _, regions = enrollment.get(key_of(body.child_id), (False, {}))
            enrollment[key_of(body.child_id)] = (True, dict.fromkeys(regions, False))
    if disbursements:
        await conn.executemany(
            "INSERT INTO ingest_disbursements (own_id, qualified, source, region)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (qualified) DO NOTHING", disbursements)
    if links:
        await conn.executemany(
            "INSERT INTO ingest_person_links (person_key, child_key) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING", sorted(links))
    ends = [child for child, (end, _) in enrollment.items() if end]
    if ends:
        await conn.execute(
            "UPDATE ingest_enrollments SET active = false WHERE child_key = ANY($1)", ends)
    rows = [(child, region, active) for child, (_, regions) in enrollment.items()
            for region, active in regions.items()]
    if rows:
        await conn.executemany(
            "INSERT INTO ingest_enrollments (child_key, region, active) VALUES ($1, $2, $3)"
            " ON CONFLICT (child_key, region) DO UPDATE SET active = excluded.active", rows)
