"""A verifier process killed with SIGKILL mid-stream and restarted loses nothing and
duplicates no alert version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from verifier_support import (
    alert_rows,
    assert_alerts_match,
    expected_drafts,
    publish_envelopes,
    read_topic,
    shuffled,
    wait_for,
)

from humiao.adapters.db import create_pool
from humiao.adapters.progress import wait_caught_up
from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings
from humiao_dev.demo.city import history as city_history

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GROUP = f"crash-verifier-{uuid.uuid4().hex[:8]}"


def start_verifier(
    kafka: KafkaSettings, dsn: str, ready_file: Path, log_file: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "HUMIAO_TOPIC_PREFIX": kafka.humiao_topic_prefix,
        "HUMIAO_PARTITIONS": str(kafka.humiao_partitions),
        "DATABASE_URL": dsn,
        "HUMIAO_VERIFIER_GROUP": GROUP,
        "HUMIAO_VERIFIER_BATCH_MAX": "150",
        "HUMIAO_VERIFIER_LINGER_MS": "5",
        "HUMIAO_VERIFIER_SESSION_TIMEOUT_MS": "6000",
        "HUMIAO_READY_FILE": str(ready_file),
        "HUMIAO_GRPC_PORT": "0",
        "HUMIAO_METRICS_PORT": "0",
    }
    ready_file.unlink(missing_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "humiao.verifier"], env=env, stdout=log, stderr=log
        )


async def committed_total(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM consumer_offsets"
                " WHERE consumer_group = $1",
                GROUP,
            )
        )
    finally:
        await conn.close()


async def test_sigkill_mid_stream_then_restart_gives_the_same_alerts_once(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    history = city_history(160, months=18, seed=9)
    ensure_topics(kafka_settings)
    await (await create_pool(database_url)).close()  # schema in place before we watch it
    total = publish_envelopes(kafka_settings, shuffled(history.envelopes, seed=2))
    ready, log = tmp_path / "ready.json", tmp_path / "verifier.log"
    proc = start_verifier(kafka_settings, database_url, ready, log)
    try:
        async def some_progress() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"verifier exited early:\n{log.read_text()[-3000:]}")
            done = await committed_total(database_url)
            return total // 5 < done < total
        await wait_for(some_progress, 60, "a few committed batches", interval=0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = await committed_total(database_url)
        assert killed_at < total, "killed too late to prove anything"

        proc = start_verifier(kafka_settings, database_url, ready, log)
        await wait_for(_exists(ready), 30, "the restarted verifier to be ready")
        assert json.loads(ready.read_text())["service"] == "verifier"
        await wait_caught_up(database_url, kafka_settings, GROUP, timeout=90)
        assert_alerts_match(
            await alert_rows(database_url), expected_drafts(history.envelopes, history.child_ids)
        )

        async def drained() -> bool:
            conn = await asyncpg.connect(database_url)
            try:
                return not await conn.fetchval(
                    "SELECT count(*) FROM alert_versions WHERE published_at IS NULL")
            finally:
                await conn.close()
        await wait_for(drained, 30, "the outbox to drain")
        conn = await asyncpg.connect(database_url)
        try:
            versions = [dict(r) for r in await conn.fetch(
                "SELECT alert_id, version, payload FROM alert_versions ORDER BY seq")]
        finally:
            await conn.close()
        by_alert: dict[str, list[int]] = defaultdict(list)
        for v in versions:
            by_alert[v["alert_id"]].append(v["version"])
        assert all(vs == list(range(1, len(vs) + 1)) for vs in by_alert.values())
        # On the wire: every version present; any repeat is the same bytes.
        seen: dict[tuple[str, int], bytes] = {}
        for rec in read_topic(kafka_settings, kafka_settings.alerts_topic):
            key = (rec.key.decode(), int(dict(rec.headers)["version"]))
            assert seen.setdefault(key, rec.value) == rec.value
        expected_wire = {(v["alert_id"], v["version"]): bytes(v["payload"]) for v in versions}
        assert {k: seen.get(k) for k in expected_wire} == expected_wire
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]


def _exists(path: Path) -> Any:
    async def check() -> bool:
        return path.exists()
    return check
