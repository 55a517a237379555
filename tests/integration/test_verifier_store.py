"""The verifier's PostgreSQL store (adapters/verifier_store.py) on its own: typed refs
in and out of their stored text, both reference searches in one query, and a unit of
work that rolls back whole, staging table included."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from humiao.adapters.db import create_pool
from humiao.adapters.verifier_store import PgVerifierStore
from humiao.domain.child_facts import Ref, RefKind
from humiao.verifier.ports import FactRow

pytestmark = [pytest.mark.integration]

NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
PERSON = Ref(RefKind.PERSON, "key-a")
PAYMENT = Ref(RefKind.DISBURSEMENT, "D-1")


class Boom(Exception):
    pass


def row(event_id: str, child_key: str | None, ref: Ref | None, part: int | None) -> FactRow:
    return FactRow(event_id, "disbursement", child_key, part, ref, NOW, b"payload")


async def test_refs_round_trip_and_both_searches_answer_in_one_query(database_url: str) -> None:
    pool = await create_pool(database_url)
    await pool.close()
    conn = await asyncpg.connect(database_url)
    try:
        store = PgVerifierStore(conn)
        async with store.batch() as tx:
            new = await tx.insert_facts([row("e1", "child-1", None, 0),
                                         row("e2", "child-2", PAYMENT, 0)])
            assert new == {"e1", "e2"}
            await tx.remember([("child-1", PERSON, 0), ("child-2", PAYMENT, 0)],
                              [(Ref(RefKind.EVENT, "e1"), 0, "e1")])
        async with store.batch() as tx:
            named, corrected = await tx.children_referencing([(PERSON, 0)], [(PAYMENT, 0)])
            assert (named, corrected) == ({"child-1"}, {"child-2"})
            assert await tx.children_referencing([(PERSON, 1)], []) == (set(), set())
            refs = await tx.refs_of_children(["child-1", "child-2"])
            assert refs == {"child-1": (0, [PERSON])}  # disbursements go by corrections_on
            (head,) = await tx.fact_heads(["e2"])
            assert head.ref == PAYMENT and head.child_key == "child-2"
            (correction,) = await tx.corrections_on(0)
            assert correction.ref == Ref(RefKind.EVENT, "e1")
        stored = await conn.fetchval("SELECT ref FROM facts WHERE event_id = 'e2'")
        assert stored == "d:D-1"  # the text the desk and migrations know
    finally:
        await conn.close()


async def test_a_batch_that_fails_leaves_nothing_and_the_next_one_works(
    database_url: str,
) -> None:
    pool = await create_pool(database_url)
    await pool.close()
    conn = await asyncpg.connect(database_url)
    try:
        store = PgVerifierStore(conn)
        await store.ensure_offsets("g", "t", [0])
        with pytest.raises(Boom):
            async with store.batch() as tx:
                await tx.insert_facts([row("e1", "child-1", None, 0)])
                await tx.finish([], [], NOW, ("g", "t", {0: 5}))
                raise Boom
        assert not store.staging  # its CREATE TEMP TABLE was rolled back with it
        assert await conn.fetchval("SELECT count(*) FROM facts") == 0
        assert await store.ensure_offsets("g", "t", [0]) == {0: -1}
        async with store.batch() as tx:
            assert await tx.insert_facts([row("e1", "child-1", None, 0)]) == {"e1"}
            await tx.finish([], [], NOW, ("g", "t", {0: 5}))
        assert store.staging
        async with store.batch() as tx:  # the staging table is reused, not created again
            assert await tx.insert_facts([row("e2", "child-1", None, 0)]) == {"e2"}
            assert await tx.lock_offsets("g", "t", [0]) == {0: 5}
    finally:
        await conn.close()
