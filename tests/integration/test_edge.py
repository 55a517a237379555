"""No open doors at the edge (issue 14): a service refuses to start with a development
secret unless told it runs on a developer's machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from hashlib import sha256

import pytest

from humiao.config import DEVELOPMENT_TOKENS, development_secrets_in_use

REAL = {"HUMIAO_PSEUDONYM_KEY": "a-real-pseudonym-key-of-this-bureau",
        "HUMIAO_RECORD_SIGNING_KEY": "a-real-signing-key-of-this-bureau"}


def start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("HUMIAO_", "KAFKA_", "DATABASE_"))}
    full.update(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9", DATABASE_URL="postgresql://x@127.0.0.1:9/x",
                HUMIAO_DEVELOPMENT="false", **env)
    return subprocess.run([sys.executable, "-m", module], env=full, capture_output=True,
                          text=True, timeout=60)


def credentials(token: str, **entry: object) -> str:
    return json.dumps({sha256(token.encode()).hexdigest(): entry})


def test_what_counts_as_a_development_secret() -> None:
    assert development_secrets_in_use(REAL) == []
    assert development_secrets_in_use(
        {"HUMIAO_PSEUDONYM_KEY": "humiao-development-pseudonym-key"}) == ["HUMIAO_PSEUDONYM_KEY"]
    found = development_secrets_in_use(REAL, [sha256(DEVELOPMENT_TOKENS[0].encode()).hexdigest()])
    assert len(found) == 1 and "development token" in found[0]


@pytest.mark.parametrize("module", ["humiao.verifier", "humiao.ingest", "humiao.desk"])
def test_a_service_refuses_the_default_keys_outside_development(module: str) -> None:
    done = start(module, HUMIAO_SOURCE_CREDENTIALS=credentials(
        "a-real-token", source="city", regions="*", kinds="*"))
    assert done.returncode != 0
    assert "refusing to start with development secrets" in done.stderr
    assert "HUMIAO_PSEUDONYM_KEY" in done.stderr


def test_ingest_refuses_the_documented_development_token() -> None:
    done = start("humiao.ingest", **REAL, HUMIAO_SOURCE_CREDENTIALS=credentials(
        DEVELOPMENT_TOKENS[0], source="dev-all-regions", regions="*", kinds="*"))
    assert done.returncode != 0 and "development token" in done.stderr


def test_the_desk_refuses_the_documented_development_token() -> None:
    done = start("humiao.desk", **REAL, HUMIAO_STAFF_CREDENTIALS=credentials(
        DEVELOPMENT_TOKENS[1], name="dev", role="supervisor", regions="*"))
    assert done.returncode != 0 and "development token" in done.stderr


def test_ingest_names_a_bad_setting_and_exits_without_a_traceback() -> None:
    done = start("humiao.ingest", **REAL, HUMIAO_INGEST_PUBLISH_TIMEOUT_SECONDS="0.1",
                 HUMIAO_SOURCE_CREDENTIALS=credentials("a-real-token", source="city",
                                                       regions="*", kinds="*"))
    assert done.returncode == 2
    assert "humiao_ingest_publish_timeout_seconds" in done.stderr.lower()
    assert "Traceback" not in done.stderr
