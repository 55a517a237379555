"""The verifier's store in PostgreSQL (humiao.verifier.ports): facts, child references,
alerts and offsets. Schema: migrations/002_alerts.sql, 003_verifier.sql and after.

Every call does one statement, or one pipeline of a few, for a whole batch (arrays
through `unnest`, COPY), never one per event. References are stored as text, the kind's
letter and the value ('p:<person key>', 'r:<region>', 'd:<disbursement>', 'e:<event>'):
that encoding lives here and nowhere else in the verifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from humiao.adapters.alerts_codec import ALERT_COLUMNS
from humiao.adapters.offsets import ensure_offsets, lock_offsets, save_offsets
from humiao.domain.child_facts import FactHead, Ref, RefKey, RefKind
from humiao.verifier.ports import FactRow, StoredFact, VersionRow

_KINDS = {k.value: k for k in RefKind}


def ref_text(ref: Ref) -> str:
    return f"{ref.kind.value}:{ref.value}"


def ref_from_text(text: str | None) -> Ref | None:
    return None if text is None else _ref(text)


def _ref(text: str) -> Ref:
    return Ref(_KINDS[text[0]], text[2:])


class PgVerifierStore:
    """The store over one connection (the consumer's own, kept while it lives)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        #: the session's staging table exists (created by a committed batch)
        self.staging = False

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[PgBatch]:
        async with self.conn.transaction():
            tx = PgBatch(self.conn, self.staging)
            yield tx
        self.staging = tx.staging  # a rolled-back CREATE TEMP TABLE is gone again

    async def ensure_offsets(self, group: str, topic: str, parts: Iterable[int]) -> dict[int, int]:
        return await ensure_offsets(self.conn, group, topic, parts)


#: The columns a batch's facts are written with (stored_at takes its default).
_FACT_COLUMNS = ("event_id", "kind", "child_key", "part", "ref", "recorded_at", "payload")

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


class PgBatch:
    """One batch's transaction (humiao.verifier.ports.BatchStore)."""

    def __init__(self, conn: asyncpg.Connection, staging: bool = False) -> None:
        self.conn = conn
        self.staging = staging

    async def lock_offsets(self, group: str, topic: str, parts: Iterable[int]) -> dict[int, int]:
        return await lock_offsets(self.conn, group, topic, parts)

    async def insert_facts(self, facts: Sequence[FactRow]) -> set[str]:
        """The rows go by COPY into a session-private staging table emptied at commit,
        then into `facts` in one INSERT ... SELECT: COPY encodes each value by its
        column's type, where array parameters cost a type test per element (measured:
        half the client CPU). Rows go in event-id order (the ORDER BY): two instances
        inserting the same broadcast facts take the unique-index locks in the same order
        and cannot deadlock."""
        if not facts:
            return set()
        conn = self.conn
        if not self.staging:  # once per session: a round trip less per batch after that
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS facts_in (event_id text, kind text,"
                " child_key text, part int, ref text, recorded_at timestamptz, payload bytea)"
                " ON COMMIT DELETE ROWS"
            )
            self.staging = True
        records = [
            (f.event_id, f.kind, f.child_key, f.part,
             None if f.ref is None else ref_text(f.ref), f.recorded_at, f.payload)
            for f in facts
        ]
        await conn.copy_records_to_table("facts_in", records=records, columns=_FACT_COLUMNS)
        rows = await conn.fetch(
            "INSERT INTO facts (event_id, kind, child_key, part, ref, recorded_at, payload)"
            " SELECT event_id, kind, child_key, part, ref, recorded_at, payload FROM facts_in"
            " ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        return {r["event_id"] for r in rows}

    async def remember(
        self, child_refs: Iterable[tuple[str, Ref, int]], copies: Iterable[tuple[Ref, int, str]]
    ) -> None:
        """Both in one statement, each set sorted (a stable lock order between instances)."""
        refs = sorted({(k, ref_text(r), p) for k, r, p in child_refs})
        cops = sorted({(ref_text(r), p, e, r.corrects) for r, p, e in copies})
        if not refs and not cops:
            return
        await self.conn.execute(
            "WITH refs AS (INSERT INTO child_refs (child_key, ref, part)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) ON CONFLICT DO NOTHING)"
            " INSERT INTO fact_copies (ref, part, event_id, rare)"
            " SELECT * FROM unnest($4::text[], $5::int[], $6::text[], $7::bool[])"
            " ON CONFLICT DO NOTHING",
            [r[0] for r in refs], [r[1] for r in refs], [r[2] for r in refs],
            [c[0] for c in cops], [c[1] for c in cops], [c[2] for c in cops],
            [c[3] for c in cops],
        )

    async def fact_heads(self, event_ids: Iterable[str]) -> list[FactHead]:
        ids = sorted(set(event_ids))
        if not ids:
            return []
        rows = await self.conn.fetch(
            "SELECT event_id, kind, child_key, part, ref FROM facts"
            " WHERE event_id = ANY($1::text[])",
            ids,
        )
        return [
            FactHead(r["event_id"], r["kind"], r["child_key"], r["part"], ref_from_text(r["ref"]))
            for r in rows
        ]

    async def children_referencing(
        self, pairs: Iterable[RefKey], rare_pairs: Iterable[RefKey]
    ) -> tuple[set[str], set[str]]:
        """Persons and regions through child_refs, disbursements through the payment's own
        fact row (migrations/006_disbursement_refs.sql); both sets in one query."""
        asked = sorted({(r, p, False) for r, p in pairs} | {(r, p, True) for r, p in rare_pairs})
        if not asked:
            return set(), set()
        paid = [a for a in asked if a[0].kind is RefKind.DISBURSEMENT]
        rows = await self.conn.fetch(
            "SELECT c.child_key, q.rare FROM child_refs c"
            " JOIN unnest($1::text[], $2::int[], $3::bool[]) AS q(ref, part, rare)"
            " ON c.ref = q.ref AND c.part = q.part"
            " UNION"
            " SELECT f.child_key, q.rare FROM facts f"
            " JOIN unnest($4::text[], $5::int[], $6::bool[]) AS q(ref, part, rare)"
            " ON f.ref = q.ref AND f.part = q.part"
            " WHERE f.child_key IS NOT NULL",
            [ref_text(a[0]) for a in asked], [a[1] for a in asked], [a[2] for a in asked],
            [ref_text(a[0]) for a in paid], [a[1] for a in paid], [a[2] for a in paid],
        )
        return ({r["child_key"] for r in rows if not r["rare"]},
                {r["child_key"] for r in rows if r["rare"]})

    async def refs_of_children(self, child_keys: Iterable[str]) -> dict[str, tuple[int, list[Ref]]]:
        """Without disbursements: reversals are kept per partition (corrections_on)."""
        rows = await self.conn.fetch(
            "SELECT c.child_key, c.ref, c.part FROM child_refs c"
            " JOIN unnest($1::text[]) AS k(child_key) ON c.child_key = k.child_key"
            " AND left(c.ref, 2) <> 'd:'",
            list(child_keys),
        )
        out: dict[str, tuple[int, list[Ref]]] = {}
        for r in rows:
            out.setdefault(r["child_key"], (r["part"], []))[1].append(_ref(r["ref"]))
        return out

    async def load_facts(
        self, child_keys: Iterable[str], refs: Iterable[RefKey]
    ) -> list[StoredFact]:
        """In one round trip (ref NULL: a child's own fact)."""
        unique = sorted({(ref_text(r), p) for r, p in refs})
        rows = await self.conn.fetch(
            "SELECT f.event_id, f.child_key, NULL::text AS ref, NULL::int AS part, f.payload"
            " FROM facts f JOIN unnest($1::text[]) AS k(child_key)"
            " ON f.child_key = k.child_key WHERE f.child_key IS NOT NULL"
            " UNION ALL"
            " SELECT f.event_id, NULL, c.ref, c.part, f.payload FROM fact_copies c"
            " JOIN unnest($2::text[], $3::int[]) AS q(ref, part)"
            " ON c.ref = q.ref AND c.part = q.part"
            " JOIN facts f ON f.event_id = c.event_id",
            list(child_keys), [u[0] for u in unique], [u[1] for u in unique],
        )
        return [
            StoredFact(r["event_id"], r["child_key"], ref_from_text(r["ref"]), r["part"],
                       r["payload"])
            for r in rows
        ]

    async def corrections_on(self, part: int) -> list[StoredFact]:
        rows = await self.conn.fetch(
            "SELECT c.ref, f.event_id, f.payload FROM fact_copies c JOIN facts f USING (event_id)"
            " WHERE c.part = $1 AND c.rare",
            part,
        )
        return [
            StoredFact(r["event_id"], None, ref_from_text(r["ref"]), part, r["payload"])
            for r in rows
        ]

    async def lock_alerts(self, child_keys: Iterable[str]) -> list[Mapping[str, Any]]:
        """A staff transition waits for this transaction, then fails its optimistic
        version check instead of being overwritten."""
        return await self.conn.fetch(
            # a join, not `= ANY(array)`: with tens of thousands of keys and a small table
            # the planner scans it and tests each row against the whole array
            "SELECT a.* FROM alerts a JOIN unnest($1::text[]) AS k(child_key)"
            " ON a.child_key = k.child_key ORDER BY a.alert_id FOR UPDATE OF a",
            sorted(set(child_keys)),
        )

    async def finish(
        self,
        rows: Sequence[Mapping[str, Any]],
        versions: Sequence[VersionRow],
        changed_at: dt.datetime,
        offsets: tuple[str, str, Mapping[int, int]],
    ) -> None:
        conn = self.conn
        if rows:
            await conn.executemany(
                _UPSERT_ALERT, [(*(row[c] for c in ALERT_COLUMNS), changed_at) for row in rows]
            )
            await conn.copy_records_to_table(
                "alert_versions",
                records=versions,
                columns=["alert_id", "version", "status", "changed_at", "changed_by",
                         "change_reason", "payload"],
            )
        await save_offsets(conn, *offsets)
