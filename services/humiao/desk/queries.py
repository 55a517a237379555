"""The desk's repository: every SQL statement the desk runs, over asyncpg.

Reads filter by the caller's regions inside SQL, so a row outside them is never
fetched. Writes follow one pattern: lock the alert row, check its version and
status, update it with version + 1, append the alert_versions row (the outbox) and
the audit entry, all in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from humiao.adapters.alerts_codec import alert_version_from_row
from humiao.desk.errors import (
    Aborted,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from humiao.domain import lifecycle
from humiao.domain.alerts import AlertStatus

ALERT_COLUMNS = (
    "alert_id, code, child_key, child_id, region, period, program, subject, amount_at_risk_fen,"
    " evidence_event_ids, explanation_zh, explanation_en, status, implied, assignee, resolution,"
    " amount_recovered_fen, version, raised_at, updated_at"
)
#: Sort key -> column; alert_id breaks ties so the order is total (keyset pagination).
SORT_COLUMNS = {"raised_at": "raised_at", "amount": "amount_at_risk_fen", "period": "period"}
#: Statuses counted as work still to do (the open-alerts gauge).
OPEN_STATUSES = ("OPEN", "ACKNOWLEDGED", "REOPENED")
#: Audit actions that are whole-ID reads: each counts against the caller's hourly limit.
#: READ_*: whole ID numbers returned; LOOKUP_CHILD_ID: a search by a whole ID number
#: (a filter, a masked timeline), whose answer confirms or denies the number.
WHOLE_ID_ACTIONS = ("READ_ALERT_ID", "READ_CHILD_TIMELINE", "LOOKUP_CHILD_ID")


@dataclass(frozen=True)
class AlertQuery:
    """A validated filter. `regions` None: every region; an empty list: none at all."""

    regions: list[str] | None
    codes: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    period_from: str | None = None
    period_to: str | None = None
    child_key: str | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    assignee: str | None = None
    alert_ids: list[str] = field(default_factory=list)


class _Where:
    """Accumulates AND-ed conditions with numbered parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        names = []
        for value in values:
            self.args.append(value)
            names.append(f"${len(self.args)}")
        self.parts.append(template.format(*names))

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "true"


def _where(q: AlertQuery) -> _Where:
    w = _Where()
    if q.regions is not None:
        w.add("region = ANY({})", q.regions)
    if q.codes:
        w.add("code = ANY({})", q.codes)
    if q.statuses:
        w.add("status = ANY({})", q.statuses)
    if q.period_from:
        w.add("period >= {}", q.period_from)
    if q.period_to:
        w.add("period <= {}", q.period_to)
    if q.child_key:
        w.add("child_key = {}", q.child_key)
    if q.min_amount is not None:
        w.add("amount_at_risk_fen >= {}", q.min_amount)
    if q.max_amount is not None:
        w.add("amount_at_risk_fen <= {}", q.max_amount)
    if q.assignee:
        w.add("assignee = {}", q.assignee)
    if q.alert_ids:
        w.add("alert_id = ANY({})", q.alert_ids)
    return w


async def list_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    q: AlertQuery,
    *,
    sort: str,
    ascending: bool,
    limit: int,
    after: tuple[Any, str] | None,
) -> list[asyncpg.Record]:
    """One page in a total order (sort column, alert_id), strictly after the key `after`.

    Keyset, not OFFSET: rows inserted or removed before the key do not shift later pages.
    """
    column = SORT_COLUMNS[sort]
    w = _where(q)
    direction = "ASC" if ascending else "DESC"
    if after is not None:
        w.add(f"({column}, alert_id) {'>' if ascending else '<'} ({{}}, {{}})", *after)
    w.args.append(limit)
    sql = (
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {w.sql()}"
        f" ORDER BY {column} {direction}, alert_id {direction} LIMIT ${len(w.args)}"
    )
    return list(await conn.fetch(sql, *w.args))


async def counts(conn: asyncpg.Connection | asyncpg.Pool, q: AlertQuery) -> list[asyncpg.Record]:
    """(code, status, alerts, amount at risk) for the whole filter."""
    w = _where(q)
    return list(
        await conn.fetch(
            "SELECT code, status, count(*) AS alerts,"
            " coalesce(sum(amount_at_risk_fen), 0)::bigint AS amount"
            f" FROM alerts WHERE {w.sql()} GROUP BY code, status",
            *w.args,
        )
    )


async def fetch_alert(
    conn: asyncpg.Connection | asyncpg.Pool, alert_id: str, regions: frozenset[str] | None
) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = $1", alert_id)
    if row is None or (regions is not None and row["region"] not in regions):
        raise NotFound(f"no alert {alert_id}")
    return row


async def versions(conn: asyncpg.Connection, alert_id: str) -> list[bytes]:
    rows = await conn.fetch(
        "SELECT payload FROM alert_versions WHERE alert_id = $1 ORDER BY version, seq", alert_id
    )
    return [r["payload"] for r in rows]


async def notes(conn: asyncpg.Connection, alert_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT note_id, alert_id, author, body, created_at FROM alert_notes"
            " WHERE alert_id = $1 ORDER BY note_id",
            alert_id,
        )
    )


async def audit_of_alert(conn: asyncpg.Connection, alert_id: str) -> list[asyncpg.Record]:
    """The alert's audit trail as the desk shows it: never the ID numbers a read named."""
    return list(
        await conn.fetch(
            "SELECT audit_id, at, actor, role, action, alert_id, child_key, version, detail"
            " FROM desk_audit WHERE alert_id = $1 ORDER BY audit_id",
            alert_id,
        )
    )


async def audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    actor: str,
    role: str,
    action: str,
    alert_id: str | None = None,
    child_key: str | None = None,
    version: int | None = None,
    detail: str = "",
    whole_ids: Sequence[str] = (),
) -> None:
    """One audit row; `whole_ids` are the ID numbers a read returned or looked up."""
    await conn.execute(
        "INSERT INTO desk_audit (actor, role, action, alert_id, child_key, version, detail,"
        " whole_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        actor,
        role,
        action,
        alert_id,
        child_key,
        version,
        detail,
        sorted(set(whole_ids)),
    )


@asynccontextmanager
async def whole_id_read(
    pool: asyncpg.Pool, actor: str, per_hour: int
) -> AsyncIterator[asyncpg.Connection]:
    """The transaction of one whole-ID read by `actor`, refused (ResourceExhausted) once
    `actor` made `per_hour` of them in the last hour. The caller writes the read's audit
    row inside it, so the row is committed before anything leaves the service; the
    per-actor lock makes concurrent calls count one after the other."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 14))", actor)
        used = await conn.fetchval(
            "SELECT count(*) FROM desk_audit WHERE actor = $1 AND action = ANY($2)"
            " AND at > now() - interval '1 hour'",
            actor,
            list(WHOLE_ID_ACTIONS),
        )
        if used >= per_hour:
            raise ResourceExhausted(
                f"whole-ID reads are limited to {per_hour} an hour per staff member;"
                " try again later or use masked views"
            )
        yield conn


async def add_note(
    pool: asyncpg.Pool,
    alert_id: str,
    regions: frozenset[str] | None,
    author: str,
    role: str,
    text: str,
) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        await fetch_alert(conn, alert_id, regions)
        row = await conn.fetchrow(
            "INSERT INTO alert_notes (alert_id, author, body) VALUES ($1, $2, $3)"
            " RETURNING note_id, alert_id, author, body, created_at",
            alert_id,
            author,
            text,
        )
        await audit(
            conn,
            actor=author,
            role=role,
            action="NOTE",
            alert_id=alert_id,
            detail=f"note {row['note_id']}",
        )
        assert row is not None
        return row


Plan = Callable[[lifecycle.Current], lifecycle.Change]


async def transition(
    pool: asyncpg.Pool,
    alert_id: str,
    expected_version: int,
    regions: frozenset[str] | None,
    plan: Plan,
    *,
    actor: str,
    role: str,
    note: str | None = None,
) -> asyncpg.Record:
    """Apply one staff transition under the optimistic version check, in one transaction.

    The row lock orders concurrent writers (desk or verifier); whoever comes second
    sees a version other than the one it read and gets Aborted.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = $1 FOR UPDATE", alert_id
        )
        if row is None or (regions is not None and row["region"] not in regions):
            raise NotFound(f"no alert {alert_id}")
        if row["version"] != expected_version:
            raise Aborted(
                f"alert {alert_id} changed: it is at version {row['version']} "
                f"({row['status']}), you expected {expected_version}; read it again"
            )
        current = lifecycle.Current(AlertStatus[row["status"]], row["assignee"], row["region"])
        try:
            change = plan(current)
        except lifecycle.NotTheHolder as exc:
            raise PermissionDenied(str(exc)) from None
        except lifecycle.StepRefused as exc:
            raise FailedPrecondition(str(exc)) from None
        updated = await conn.fetchrow(
            "UPDATE alerts SET status = $3, assignee = $4, resolution = $5,"
            " amount_recovered_fen = $6, version = version + 1, updated_at = now()"
            f" WHERE alert_id = $1 AND version = $2 RETURNING {ALERT_COLUMNS}",
            alert_id,
            expected_version,
            change.status.name,
            change.assignee,
            change.resolution.name if change.resolution else None,
            change.amount_recovered_fen,
        )
        if updated is None:  # cannot happen under the row lock; kept as a guard
            raise Aborted(f"alert {alert_id} changed meanwhile; read it again")
        await _record_version(conn, updated, actor, change.reason)
        if note:
            await conn.execute(
                "INSERT INTO alert_notes (alert_id, author, body) VALUES ($1, $2, $3)",
                alert_id,
                actor,
                note,
            )
        await audit(
            conn,
            actor=actor,
            role=role,
            action=change.action,
            alert_id=alert_id,
            version=updated["version"],
            detail=change.reason,
        )
        return updated


async def _record_version(
    conn: asyncpg.Connection, updated: asyncpg.Record, actor: str, reason: str
) -> None:
    """The new version in the history (and, through the outbox, on the alerts topic)."""
    payload = alert_version_from_row(
        dict(updated), changed_at=updated["updated_at"], changed_by=actor, change_reason=reason
    )
    await conn.execute(
        "INSERT INTO alert_versions (alert_id, version, status, changed_at, changed_by,"
        " change_reason, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        updated["alert_id"], updated["version"], updated["status"], updated["updated_at"],
        actor, reason, payload.SerializeToString(),
    )


async def summary(
    conn: asyncpg.Pool, regions: list[str] | None, period_from: str | None, period_to: str | None,
    *, by_period: bool = False,
) -> list[asyncpg.Record]:
    q = AlertQuery(regions=regions, period_from=period_from, period_to=period_to)
    w = _where(q)
    period = "period" if by_period else "''::text"
    return list(
        await conn.fetch(
            f"SELECT region, code, status, {period} AS period, count(*) AS alerts,"
            " coalesce(sum(amount_at_risk_fen), 0)::bigint AS at_risk,"
            " coalesce(sum(amount_recovered_fen), 0)::bigint AS recovered"
            f" FROM alerts WHERE {w.sql()}"
            " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            *w.args,
        )
    )


async def working_times(
    conn: asyncpg.Pool, regions: list[str] | None, period_from: str | None, period_to: str | None,
) -> asyncpg.Record:
    """Median seconds from raised to the first ACKNOWLEDGED version (an assignment is
    one) and to the first RESOLVED one, over the alerts of the scope that got there."""
    w = _where(AlertQuery(regions=regions, period_from=period_from, period_to=period_to))
    row = await conn.fetchrow(
        "WITH firsts AS (SELECT a.alert_id, a.raised_at,"
        " min(v.changed_at) FILTER (WHERE v.status = 'ACKNOWLEDGED') AS acknowledged_at,"
        " min(v.changed_at) FILTER (WHERE v.status = 'RESOLVED') AS resolved_at"
        f" FROM (SELECT alert_id, raised_at FROM alerts WHERE {w.sql()}) a"
        " JOIN alert_versions v USING (alert_id) GROUP BY a.alert_id, a.raised_at)"
        " SELECT count(acknowledged_at) AS acknowledged, count(resolved_at) AS resolved,"
        " coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY"
        "   extract(epoch FROM acknowledged_at - raised_at)), 0)::bigint AS to_acknowledge,"
        " coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY"
        "   extract(epoch FROM resolved_at - raised_at)), 0)::bigint AS to_resolve"
        " FROM firsts",
        *w.args,
    )
    assert row is not None  # an aggregate always answers one row
    return row


async def open_alerts_gauge(conn: asyncpg.Pool) -> list[asyncpg.Record]:
    """One query for the open-alert gauges: alerts still to work and the fen they put at
    risk, by code, status and age since raised."""
    return list(
        await conn.fetch(
            "SELECT code, status, CASE WHEN raised_at > now() - interval '1 day' THEN 'lt_1d'"
            " WHEN raised_at > now() - interval '7 days' THEN '1d_7d'"
            " WHEN raised_at > now() - interval '30 days' THEN '7d_30d' ELSE 'ge_30d' END AS age,"
            " count(*) AS alerts, coalesce(sum(amount_at_risk_fen), 0)::bigint AS amount"
            " FROM alerts WHERE status = ANY($1) GROUP BY 1, 2, 3",
            list(OPEN_STATUSES),
        )
    )


async def facts_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, event_ids: Sequence[str]
) -> dict[str, bytes]:
    """Serialized envelopes of the given events (those the verifier has recorded), from
    the read model (migrations/010_read_model.sql), never the verifier's own tables."""
    if not event_ids:
        return {}
    rows = await conn.fetch(
        "SELECT event_id, payload FROM read_facts WHERE event_id = ANY($1)", list(event_ids)
    )
    return {r["event_id"]: r["payload"] for r in rows}


async def timeline_facts(conn: asyncpg.Connection, child_key: str) -> list[asyncpg.Record]:
    """Every fact about the child (read model `read_child_timeline`): its own, those about
    the persons and disbursements it names, and the retractions of any of them."""
    return list(
        await conn.fetch(
            "SELECT event_id, kind, about, subject, payload FROM read_child_timeline($1)",
            child_key,
        )
    )


async def alerts_of_child(conn: asyncpg.Connection, child_key: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE child_key = $1"
            " ORDER BY period, code, alert_id",
            child_key,
        )
    )
