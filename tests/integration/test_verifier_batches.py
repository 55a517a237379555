"""The verifier's batch processor, batch after batch, against PostgreSQL: after every
committed batch the implied alerts are exactly what the domain core concludes from the
facts fed so far, whether a held child was re-checked by its new months (its indexed
timeline extended) or indexed again. A final state alone would miss a wrong verdict
that a later batch happened to correct."""

from __future__ import annotations

import random

import pytest
from verifier_support import alert_rows, assert_alerts_match, expected_drafts

from desk_support import VerifierDriver
from humiao.adapters.db import create_pool
from humiao.domain.events import Envelope
from humiao_dev.demo.city import history as city_history

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("order", ["recorded", "shuffled with repeats"])
async def test_every_batch_leaves_exactly_the_alerts_the_domain_implies(
    database_url: str, order: str
) -> None:
    history = city_history(30, months=10, seed=5)
    envelopes = list(history.envelopes)
    rng = random.Random(3)
    if order != "recorded":
        envelopes += rng.sample(envelopes, len(envelopes) // 8)
        rng.shuffle(envelopes)
    pool = await create_pool(database_url)
    try:
        driver = VerifierDriver(pool)
        fed: list[Envelope] = []
        at = 0
        while at < len(envelopes):
            chunk = envelopes[at : at + rng.randint(1, 80)]
            at += len(chunk)
            await driver.feed(chunk)
            fed.extend(chunk)
            rows = await alert_rows(database_url)
            assert_alerts_match(rows, expected_drafts(fed, history.child_ids))
        assert driver.processor.evaluated["new"] > 0
        assert driver.processor.evaluated["all"] > 0
    finally:
        await pool.close()
