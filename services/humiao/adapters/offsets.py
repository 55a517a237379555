"""Consumer offsets kept in PostgreSQL (`consumer_offsets`, migrations/003_verifier.sql).

Every consumer that commits its progress with its state (the verifier, the notifier)
reads, locks and saves its offsets here, inside its own transaction: the lock on the
rows of a batch's partitions is the fence against a second instance (a zombie).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import asyncpg


async def ensure_offsets(
    conn: asyncpg.Connection, group: str, topic: str, parts: Iterable[int]
) -> dict[int, int]:
    """Stored next offsets of `parts` (-1: from the beginning), creating missing rows."""
    parts = sorted(set(parts))
    await conn.execute(
        "INSERT INTO consumer_offsets (consumer_group, topic, part, next_offset)"
        " SELECT $1, $2, p, -1 FROM unnest($3::int[]) AS p ON CONFLICT DO NOTHING",
        group, topic, parts,
    )
    rows = await conn.fetch(
        "SELECT part, next_offset FROM consumer_offsets"
        " WHERE consumer_group = $1 AND topic = $2 AND part = ANY($3::int[])",
        group, topic, parts,
    )
    return {r["part"]: r["next_offset"] for r in rows}


async def lock_offsets(
    conn: asyncpg.Connection, group: str, topic: str, parts: Iterable[int]
) -> dict[int, int]:
    """Lock and read the offset rows of `parts`: the fence against a second instance."""
    rows = await conn.fetch(
        "SELECT part, next_offset FROM consumer_offsets"
        " WHERE consumer_group = $1 AND topic = $2 AND part = ANY($3::int[])"
        " ORDER BY part FOR UPDATE",
        group, topic, sorted(set(parts)),
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
        group, topic, parts, [next_offsets[p] for p in parts],
    )


async def stored_offsets(conn: asyncpg.Connection, group: str, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT part, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
        group, topic,
    )
    return {r["part"]: r["next_offset"] for r in rows}
