"""Source credentials: hashed tokens from TOML, JSON or inline JSON; scope by region and kind."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from humiao.ingest.credentials import (
    CredentialsError,
    hash_token,
    load_credentials,
)

WHEN = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
TOKEN = "s3cret-token"


def test_hash_is_sha256_hex() -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        f'["{hash_token(TOKEN)}"]\nsource = "district"\nregions = ["110105"]\n'
        'kinds = ["disbursement"]\n'
    )
    store = load_credentials(str(path))
    cred = store.authenticate(TOKEN)
    assert cred is not None and cred.source == "district"
    assert cred.allows_region("110105") and not cred.allows_region("110106")
    assert cred.allows_kind("disbursement") and not cred.allows_kind("personDied")
    assert store.authenticate("other") is None and store.authenticate("") is None
    assert TOKEN not in path.read_text()


def test_json_file_and_inline_json(tmp_path: Path) -> None:
    doc = {hash_token(TOKEN): {"source": "city", "regions": "*", "kinds": "*"}}
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(doc))
    for spec in (str(path), json.dumps(doc)):
        cred = load_credentials(spec).authenticate(TOKEN)
        assert cred is not None and cred.allows_region("650000") and cred.allows_kind("x")


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"not-a-hash": {"source": "a", "regions": "*", "kinds": "*"}}, "SHA-256"),
        ({hash_token("t"): {"source": "", "regions": "*", "kinds": "*"}}, "source"),
        ({hash_token("t"): {"source": "a", "regions": ["1101"], "kinds": "*"}}, "regions"),
        ({hash_token("t"): {"source": "a", "regions": "*", "kinds": ["payment"]}}, "kinds"),
        ({hash_token("t"): {"source": "a", "regions": "110105", "kinds": "*"}}, "regions"),
    ],
)
def test_bad_configuration_is_named(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(CredentialsError, match=reason):
        load_credentials(json.dumps(doc))


def test_missing_configuration() -> None:
    with pytest.raises(CredentialsError, match="HUMIAO_SOURCE_CREDENTIALS"):
        load_credentials(None)
    with pytest.raises(CredentialsError, match="cannot read"):
        load_credentials("/nonexistent/credentials.toml")


