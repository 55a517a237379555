"""The verifier's PostgreSQL repository: facts, child references, alerts, offsets, outbox.

Every function takes a connection the caller holds inside a transaction and does one
round trip for a whole batch (arrays through `unnest`, `executemany`, COPY), never one
statement per event. Schema: migrations/002_alerts.sql and 003_verifier.sql.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from humiao.adapters.alerts_codec import ALERT_COLUMNS


@dataclass(slots=True)
class FactRow:  # not frozen: a frozen dataclass's __init__ costs ~1 us more per event
    event_id: str
    kind: str
    child_key: str | None
    part: int | None
    ref: str | None
    recorded_at: dt.datetime
    payload: bytes


# --- consumer progress -------------------------------------------------------------------


async def ensure_offsets(
    conn: asyncpg.Connection, group: str, topic: str, parts: Iterable[int]
) -> dict[int, int]:
    """Stored next offsets of `parts` (-1: from the beginning), creating missing rows so
    every later batch can lock them."""
    parts = sorted(set(parts))
    await conn.execute(
        "INSERT INTO consumer_offsets (consumer_group, topic, part, next_offset)"
        " SELECT $1, $2, p, -1 FROM unnest($3::int[]) AS p"
        " ON CONFLICT DO NOTHING",
        group,
        topic,
        parts,
    )
    rows = await conn.fetch(
        "SELECT part, next_offset FROM consumer_offsets"
        " WHERE consumer_group = $1 AND topic = $2 AND part = ANY($3::int[])",
        group,
        topic,
        parts,
    )
    return {r["part"]: r["next_offset"] for r in rows}


async def lock_offsets(
    conn: asyncpg.Connection, group: str, topic: str, parts: Iterable[int]
) -> dict[int, int]:
    """Lock and read the offset rows of `parts`: the fence against a second processor."""
    rows = await conn.fetch(
        "SELECT part, next_offset FROM consumer_offsets"
        " WHERE consumer_group = $1 AND topic = $2 AND part = ANY($3::int[])"
        " ORDER BY part FOR UPDATE",
        group,
        topic,
        sorted(set(parts)),
    )
    return {r["part"]: r["next_offset"] for r in rows}


async def save_offsets(
    conn: asyncpg.Connection, group: str, topic: str, next_offsets: Mapping[int, int]
) -> None:
    parts = sorted(next_offsets)
    await conn.execute(
        "INSERT INTO consumer_offsets (consumer_group, topic, part, next_offset)"
        " SELECT $1, $2, p, o FROM unnest($3::int[], $4::bigint[]) AS t(p, o)"
        " ON CONFLICT (consumer_group, topic, part)"
        " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        group,
        topic,
        parts,
        [next_offsets[p] for p in parts],
    )


async def stored_offsets(conn: asyncpg.Connection, group: str, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT part, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
        group,
        topic,
    )
    return {r["part"]: r["next_offset"] for r in rows}


# --- facts and references ----------------------------------------------------------------


#: The columns a batch's facts are written with (stored_at takes its default).
_FACT_COLUMNS = ("event_id", "kind", "child_key", "part", "ref", "recorded_at", "payload")


async def insert_facts(conn: asyncpg.Connection, facts: Sequence[FactRow]) -> set[str]:
    """Insert facts not stored yet; return the event ids that were new.

    The rows go by COPY into a session-private staging table emptied at commit, then into
    `facts` in one INSERT ... SELECT: COPY encodes each value by its column's type, where
    array parameters cost a type test per element (measured: half the client CPU, a
    quarter less time than `unnest` of seven arrays). Rows go in event-id order (the
    statement's ORDER BY): two instances inserting the same broadcast facts then take the
    unique-index locks in the same order and cannot deadlock.
    """
    if not facts:
        return set()
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS facts_in (event_id text, kind text, child_key text,"
        " part int, ref text, recorded_at timestamptz, payload bytea) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table(
        "facts_in",
        records=[
            (f.event_id, f.kind, f.child_key, f.part, f.ref, f.recorded_at, f.payload)
            for f in facts
        ],
        columns=_FACT_COLUMNS,
    )
    rows = await conn.fetch(
        "INSERT INTO facts (event_id, kind, child_key, part, ref, recorded_at, payload)"
        " SELECT event_id, kind, child_key, part, ref, recorded_at, payload FROM facts_in"
        " ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    return {r["event_id"] for r in rows}


async def insert_child_refs(
    conn: asyncpg.Connection, refs: Iterable[tuple[str, str, int]]
) -> None:
    """(child_key, ref, part) rows; existing ones are kept."""
    unique = sorted(set(refs))
    if not unique:
        return
    await conn.execute(
        "INSERT INTO child_refs (child_key, ref, part)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::int[])"
        " ON CONFLICT DO NOTHING",
        [r[0] for r in unique],
        [r[1] for r in unique],
        [r[2] for r in unique],
    )


async def children_referencing(
    conn: asyncpg.Connection, pairs: Iterable[tuple[str, int]]
) -> set[str]:
    """Children of the given partitions whose facts name the given refs: persons and
    regions through child_refs, disbursements ('d:' refs) through the disbursement's own
    fact row (migrations/006_disbursement_refs.sql)."""
    unique = sorted(set(pairs))
    if not unique:
        return set()
    paid = [p for p in unique if p[0].startswith("d:")]
    rows = await conn.fetch(
        "SELECT c.child_key FROM child_refs c"
        " JOIN unnest($1::text[], $2::int[]) AS q(ref, part)"
        " ON c.ref = q.ref AND c.part = q.part"
        " UNION"
        " SELECT f.child_key FROM facts f"
        " JOIN unnest($3::text[], $4::int[]) AS q(ref, part)"
        " ON f.ref = q.ref AND f.part = q.part"
        " WHERE f.child_key IS NOT NULL",
        [p[0] for p in unique],
        [p[1] for p in unique],
        [p[0] for p in paid],
        [p[1] for p in paid],
    )
    return {r["child_key"] for r in rows}


async def fact_heads(conn: asyncpg.Connection, event_ids: Iterable[str]) -> list[asyncpg.Record]:
    """kind, child_key, part and ref of stored facts (to resolve what a retraction touches)."""
    ids = sorted(set(event_ids))
    if not ids:
        return []
    return await conn.fetch(
        "SELECT event_id, kind, child_key, part, ref FROM facts WHERE event_id = ANY($1::text[])",
        ids,
    )


async def insert_copies(
    conn: asyncpg.Connection, copies: Iterable[tuple[str, int, str]]
) -> None:
    """(ref, part, event_id) of each non-child fact copy processed."""
    unique = sorted(set(copies))
    if not unique:
        return
    await conn.execute(
        "INSERT INTO fact_copies (ref, part, event_id, rare)"
        " SELECT r, p, e, left(r, 2) IN ('d:', 'e:')"
        " FROM unnest($1::text[], $2::int[], $3::text[]) AS t(r, p, e)"
        " ON CONFLICT DO NOTHING",
        [c[0] for c in unique],
        [c[1] for c in unique],
        [c[2] for c in unique],
    )


async def refs_of_children(
    conn: asyncpg.Connection, child_keys: Iterable[str]
) -> dict[str, tuple[int, list[str]]]:
    """child_key -> (partition, refs its facts name), without its disbursements ('d:'
    refs: reversals are kept per partition in memory, see Memory.rare)."""
    rows = await conn.fetch(
        "SELECT c.child_key, c.ref, c.part FROM child_refs c"
        " JOIN unnest($1::text[]) AS k(child_key) ON c.child_key = k.child_key"
        " AND left(c.ref, 2) <> 'd:'",
        list(child_keys),
    )
    out: dict[str, tuple[int, list[str]]] = {}
    for r in rows:
        out.setdefault(r["child_key"], (r["part"], []))[1].append(r["ref"])
    return out


async def load_facts(
    conn: asyncpg.Connection, child_keys: Iterable[str], refs: Iterable[tuple[str, int]]
) -> list[asyncpg.Record]:
    """Every fact of the children, and every fact about each (ref, partition) whose copy
    on that partition was processed, in one round trip (ref NULL: a child's own fact)."""
    unique = sorted(set(refs))
    return await conn.fetch(
        "SELECT f.event_id, f.child_key, NULL::text AS ref, NULL::int AS part, f.payload"
        " FROM facts f JOIN unnest($1::text[]) AS k(child_key)"
        " ON f.child_key = k.child_key WHERE f.child_key IS NOT NULL"
        " UNION ALL"
        " SELECT f.event_id, NULL, c.ref, c.part, f.payload FROM fact_copies c"
        " JOIN unnest($2::text[], $3::int[]) AS q(ref, part)"
        " ON c.ref = q.ref AND c.part = q.part"
        " JOIN facts f ON f.event_id = c.event_id",
        list(child_keys),
        [u[0] for u in unique],
        [u[1] for u in unique],
    )


async def rare_on(conn: asyncpg.Connection, part: int) -> list[asyncpg.Record]:
    """Every reversal and retraction whose copy on `part` was processed (corrections are
    rare, so a partition's set is loaded at once and then kept up to date in memory)."""
    return await conn.fetch(
        "SELECT c.ref, f.event_id, f.payload FROM fact_copies c JOIN facts f USING (event_id)"
        " WHERE c.part = $1 AND c.rare",
        part,
    )


# --- alerts ----------------------------------------------------------------------------


async def lock_alerts(conn: asyncpg.Connection, child_keys: Iterable[str]) -> list[asyncpg.Record]:
    """The children's alert rows, locked: a staff transition waits for this transaction
    and then fails its optimistic version check instead of being overwritten."""
    return await conn.fetch(
        # a join, not `= ANY(array)`: with tens of thousands of keys and a small table the
        # planner scans it and tests each row against the whole array (seconds per batch)
        "SELECT a.* FROM alerts a JOIN unnest($1::text[]) AS k(child_key)"
        " ON a.child_key = k.child_key ORDER BY a.alert_id FOR UPDATE OF a",
        sorted(set(child_keys)),
    )


_UPSERT_ALERT = (
    f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}, raised_at, updated_at)"
    f" VALUES ({', '.join(f'${i + 1}' for i in range(len(ALERT_COLUMNS)))},"
    f" ${len(ALERT_COLUMNS) + 1}, ${len(ALERT_COLUMNS) + 1})"
    " ON CONFLICT (alert_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = EXCLUDED.{c}" for c in ALERT_COLUMNS if c not in ("alert_id", "child_key")
    )
    + ", updated_at = EXCLUDED.updated_at"
)


async def write_alerts(
    conn: asyncpg.Connection,
    rows: Sequence[Mapping[str, Any]],
    versions: Sequence[tuple[str, int, str, dt.datetime, str, str, bytes]],
    changed_at: dt.datetime,
) -> None:
    """Upsert alert rows and append their versions (the outbox) in the caller's transaction.

    `versions` rows are (alert_id, version, status, changed_at, changed_by, reason, payload).
    """
    if not rows:
        return
    await conn.executemany(
        _UPSERT_ALERT, [(*(row[c] for c in ALERT_COLUMNS), changed_at) for row in rows]
    )
    await conn.copy_records_to_table(
        "alert_versions",
        records=versions,
        columns=[
            "alert_id", "version", "status", "changed_at", "changed_by", "change_reason",
            "payload",
        ],
    )


# --- outbox ------------------------------------------------------------------------------

#: Serialises relays across processes, so versions of one alert leave in version order.
OUTBOX_LOCK = 7_236_552


async def take_unpublished(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record] | None:
    """Oldest unpublished versions, locked; None when another relay is at work."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", OUTBOX_LOCK):
        return None
    return await conn.fetch(
        "SELECT seq, alert_id, version, payload FROM alert_versions"
        " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )


async def mark_published(conn: asyncpg.Connection, seqs: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE alert_versions SET published_at = now() WHERE seq = ANY($1::bigint[])",
        list(seqs),
    )


async def outbox_backlog(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM alert_versions WHERE published_at IS NULL")
    )
