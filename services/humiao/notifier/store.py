"""The notifier's SQL (asyncpg). Every function takes a connection inside the caller's
transaction; times are passed in (the caller's clock), never read with now(), so tests
can run the grouping and the rate limits on an injected clock.

Consumer offsets are the verifier's table and functions (`consumer_offsets`, one row per
group, topic and partition), imported from there rather than written twice.

Lock order, the same in every transaction that takes both: group rows (sorted by key)
before pending rows, so ingest and flush never deadlock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from humiao.domain.identity import MASK_HEAD, MASK_TAIL
from humiao.domain.notify import (
    ACTIVE,
    CLOSED,
    UNACKNOWLEDGED,
    DigestFigures,
    Note,
    Route,
    first_send_at,
)

#: The masked ID, computed in the database so the whole number never reaches the notifier
#: (the same rule as humiao.domain.identity.mask_id; a test holds them equal).
MASK_SQL = (
    f"CASE WHEN length(child_id) <= {MASK_HEAD + MASK_TAIL + 4}"
    " THEN repeat('*', length(child_id))"
    f" ELSE left(child_id, {MASK_HEAD}) || repeat('*', length(child_id) - {MASK_HEAD + MASK_TAIL})"
    f" || right(child_id, {MASK_TAIL}) END"
)


async def child_masks(conn: asyncpg.Connection, alert_ids: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch(
        f"SELECT alert_id, {MASK_SQL} AS mask FROM alerts WHERE alert_id = ANY($1::text[])",
        list(alert_ids),
    )
    return {r["alert_id"]: r["mask"] for r in rows}


async def upsert_alerts(conn: asyncpg.Connection, notes: Sequence[Note]) -> set[str]:
    """Keep each alert's latest version; returns the ids whose version is new here."""
    rows = await conn.fetch(
        """
        INSERT INTO notify_alerts AS a (alert_id, version, code, status, region, period,
            amount_fen, child_mask, raised_at, status_changed_at)
        SELECT *, t.changed FROM unnest($1::text[], $2::int[], $3::text[], $4::text[],
            $5::text[], $6::text[], $7::bigint[], $8::text[], $9::timestamptz[])
            AS t(alert_id, version, code, status, region, period, amount_fen, child_mask, changed)
        ON CONFLICT (alert_id) DO UPDATE SET
            version = EXCLUDED.version, code = EXCLUDED.code, region = EXCLUDED.region,
            period = EXCLUDED.period, amount_fen = EXCLUDED.amount_fen,
            child_mask = EXCLUDED.child_mask, status = EXCLUDED.status,
            status_changed_at = CASE WHEN a.status = EXCLUDED.status THEN a.status_changed_at
                                     ELSE EXCLUDED.status_changed_at END
        WHERE a.version < EXCLUDED.version
        RETURNING alert_id
        """,
        [n.alert_id for n in notes], [n.version for n in notes], [n.code for n in notes],
        [n.status for n in notes], [n.region for n in notes], [n.period for n in notes],
        [n.amount_fen for n in notes], [n.child_mask for n in notes],
        [n.changed_at for n in notes],
    )
    return {r["alert_id"] for r in rows}


async def queue_pending(
    conn: asyncpg.Connection, now: dt.datetime, items: Sequence[tuple[Route, Note]]
) -> None:
    """Put versions in their receivers' groups; a group with nothing pending gets its
    send time (domain.notify.first_send_at)."""
    groups: dict[tuple[str, str, str], Route] = {}
    for route, note in items:
        groups.setdefault((route.receiver, note.region, note.code), route)
    keys = sorted(groups)
    rows = await conn.fetch(
        "SELECT g.receiver, g.region, g.code, g.send_at, g.last_sent_at FROM notify_groups g"
        " JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(receiver, region, code)"
        " USING (receiver, region, code) ORDER BY receiver, region, code FOR UPDATE OF g",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
    )
    existing = {(r["receiver"], r["region"], r["code"]): r for r in rows}
    starts = []
    for key in keys:
        row = existing.get(key)
        if row is not None and row["send_at"] is not None:
            continue  # already waiting: joins the group's next message
        last = row["last_sent_at"] if row is not None else None
        starts.append((*key, first_send_at(now, last, groups[key])))
    await conn.executemany(
        "INSERT INTO notify_groups (receiver, region, code, send_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (receiver, region, code) DO UPDATE SET send_at = EXCLUDED.send_at",
        starts,
    )
    await conn.executemany(
        "INSERT INTO notify_pending (receiver, alert_id, version, region, code)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (receiver, alert_id) DO UPDATE SET"
        " version = EXCLUDED.version, region = EXCLUDED.region, code = EXCLUDED.code"
        " WHERE notify_pending.version < EXCLUDED.version",
        sorted({(r.receiver, n.alert_id, n.version, n.region, n.code) for r, n in items}),
    )


async def due_groups(
    conn: asyncpg.Connection, now: dt.datetime, receivers: Sequence[str], limit: int = 200
) -> list[asyncpg.Record]:
    """Groups whose send time has come, locked (another process skips them)."""
    return list(await conn.fetch(
        "SELECT receiver, region, code FROM notify_groups WHERE send_at <= $1"
        " AND receiver = ANY($2::text[]) ORDER BY receiver, region, code"
        " LIMIT $3 FOR UPDATE SKIP LOCKED",
        now, list(receivers), limit,
    ))


async def pending_of(conn: asyncpg.Connection, receiver: str, region: str, code: str
                     ) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        """
        SELECT a.alert_id, a.version, a.code, a.status, a.region, a.period, a.amount_fen,
               a.child_mask, a.status_changed_at AS changed_at, p.version AS pending_version,
               coalesce(t.told_open, false) AS told_open, t.alert_id IS NOT NULL AS ever_told
        FROM notify_pending p JOIN notify_alerts a ON a.alert_id = p.alert_id
        LEFT JOIN notify_told t ON t.receiver = p.receiver AND t.alert_id = p.alert_id
        WHERE p.receiver = $1 AND p.region = $2 AND p.code = $3
        ORDER BY p.alert_id FOR UPDATE OF p
        """,
        receiver, region, code,
    ))


async def settle_group(
    conn: asyncpg.Connection,
    *,
    receiver: str,
    region: str,
    code: str,
    now: dt.datetime,
    consumed: Sequence[tuple[str, int]],
    told: Sequence[tuple[str, int, bool]],
    messages: Sequence[tuple[str, str]],
) -> None:
    """One group flushed: its messages queued, what the receiver is told recorded, its
    pending versions removed, its clock moved (only when something was sent)."""
    await conn.executemany(
        "INSERT INTO notify_outbox (receiver, kind, content, created_at, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $4)",
        [(receiver, kind, content, now) for kind, content in messages],
    )
    await conn.executemany(
        "INSERT INTO notify_told (receiver, alert_id, version, told_open) VALUES ($1,$2,$3,$4)"
        " ON CONFLICT (receiver, alert_id) DO UPDATE SET version = EXCLUDED.version,"
        " told_open = EXCLUDED.told_open",
        [(receiver, a, v, o) for a, v, o in told],
    )
    await conn.execute(
        "DELETE FROM notify_pending p USING unnest($2::text[], $3::int[]) AS t(alert_id, version)"
        " WHERE p.receiver = $1 AND p.alert_id = t.alert_id AND p.version = t.version",
        receiver, [a for a, _ in consumed], [v for _, v in consumed],
    )
    await conn.execute(
        "UPDATE notify_groups SET send_at = NULL, last_sent_at = CASE WHEN $5 THEN $4"
        " ELSE last_sent_at END WHERE receiver = $1 AND region = $2 AND code = $3",
        receiver, region, code, now, bool(messages),
    )


async def queue_message(
    conn: asyncpg.Connection, receiver: str, kind: str, content: str, now: dt.datetime
) -> None:
    await conn.execute(
        "INSERT INTO notify_outbox (receiver, kind, content, created_at, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $4)",
        receiver, kind, content, now,
    )


async def next_unsent(conn: asyncpg.Connection, receiver: str) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, kind, content, attempts, next_attempt_at, created_at FROM notify_outbox"
        " WHERE receiver = $1 AND sent_at IS NULL ORDER BY id LIMIT 1",
        receiver,
    )
    return record


async def mark_sent(conn: asyncpg.Connection, message_id: int, now: dt.datetime) -> None:
    await conn.execute(
        "UPDATE notify_outbox SET sent_at = $2, attempts = attempts + 1 WHERE id = $1",
        message_id, now,
    )


async def mark_failed(
    conn: asyncpg.Connection, message_id: int, retry_at: dt.datetime, error: str
) -> None:
    await conn.execute(
        "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt_at = $2,"
        " last_error = $3 WHERE id = $1",
        message_id, retry_at, error[:200],
    )


async def recent_sends(conn: asyncpg.Connection, receiver: str, count: int) -> list[dt.datetime]:
    """The receiver's last sends, oldest first (the rate window survives a restart)."""
    rows = await conn.fetch(
        "SELECT sent_at FROM notify_outbox WHERE receiver = $1 AND sent_at IS NOT NULL"
        " ORDER BY sent_at DESC LIMIT $2",
        receiver, count,
    )
    return sorted(r["sent_at"] for r in rows)


async def backlog(conn: asyncpg.Connection) -> dict[str, tuple[int, dt.datetime]]:
    rows = await conn.fetch(
        "SELECT receiver, count(*) AS n, min(created_at) AS oldest FROM notify_outbox"
        " WHERE sent_at IS NULL GROUP BY receiver"
    )
    return {r["receiver"]: (r["n"], r["oldest"]) for r in rows}


async def last_digest(conn: asyncpg.Connection, route_key: str) -> dt.date | None:
    day: dt.date | None = await conn.fetchval(
        "SELECT last_day FROM notify_digests WHERE route_key = $1 FOR UPDATE", route_key
    )
    return day


async def save_digest_day(conn: asyncpg.Connection, route_key: str, day: dt.date) -> None:
    await conn.execute(
        "INSERT INTO notify_digests (route_key, last_day) VALUES ($1, $2)"
        " ON CONFLICT (route_key) DO UPDATE SET last_day = EXCLUDED.last_day",
        route_key, day,
    )


async def digest_figures(
    conn: asyncpg.Connection, route: Route, since: dt.datetime
) -> DigestFigures:
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE status = ANY($3::text[])) AS open_alerts,
               count(*) FILTER (WHERE raised_at > $5) AS new_alerts,
               count(*) FILTER (WHERE status = ANY($4::text[]) AND status_changed_at > $5)
                   AS resolved_alerts,
               coalesce(sum(amount_fen) FILTER (WHERE status = ANY($3::text[])), 0) AS at_risk,
               min(raised_at) FILTER (WHERE status = ANY($6::text[])) AS oldest
        FROM notify_alerts
        WHERE ($1::text[] IS NULL OR region = ANY($1)) AND ($2::text[] IS NULL OR code = ANY($2))
        """,
        sorted(route.regions) if route.regions is not None else None,
        sorted(route.codes) if route.codes is not None else None,
        sorted(ACTIVE), sorted(CLOSED), since, sorted(UNACKNOWLEDGED),
    )
    assert row is not None
    return DigestFigures(row["open_alerts"], row["new_alerts"], row["resolved_alerts"],
                         int(row["at_risk"]), row["oldest"])


async def open_alerts(conn: asyncpg.Connection, route: Route) -> list[asyncpg.Record]:
    """Open alerts a route covers, from the alerts table (for `humiao notify preview`)."""
    return list(await conn.fetch(
        f"""
        SELECT alert_id, version, code, status, region, period,
               amount_at_risk_fen AS amount_fen, {MASK_SQL} AS child_mask,
               updated_at AS changed_at
        FROM alerts WHERE status = ANY($3::text[])
          AND ($1::text[] IS NULL OR region = ANY($1)) AND ($2::text[] IS NULL OR code = ANY($2))
        ORDER BY region, code, period, alert_id LIMIT 100000
        """,
        sorted(route.regions) if route.regions is not None else None,
        sorted(route.codes) if route.codes is not None else None,
        sorted(ACTIVE),
    ))
