"""Source credentials: bearer tokens, stored only as SHA-256 hashes, scoped to regions and kinds.

HUMIAO_SOURCE_CREDENTIALS holds either inline JSON or the path of a TOML or JSON file
mapping the hex SHA-256 of each token to its scope:

    ["<sha256 hex of the token>"]          # TOML; JSON is the same shape
    source = "minzheng-110105"             # "*": any source name (the local stack's)
    regions = ["110105", "110106"]         # or "*"
    kinds = ["childEnrolled", "disbursement"]   # or "*"
    corrections = ["110106"]               # optional: may correct other sources' facts there

What each grants is docs/grants.md (the grant model, ingest/grants.py).

`humiao ingest hash-token` prints the hash of a token. Tokens themselves never appear in
configuration or logs.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from humiao.domain.events import ALL_KINDS
from humiao.ingest.grants import Grant

ENV_VAR = "HUMIAO_SOURCE_CREDENTIALS"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_REGION = re.compile(r"^\d{6}$")
#: A source name: what qualifies its ids on Kafka (`<source>/<id>`), so never a "/".
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: A credential and what it grants (ingest/grants.py).
SourceCredential = Grant


class CredentialsError(ValueError):
    """The credentials configuration is unusable; the message says where."""


def hash_token(token: str) -> str:
    """The hex SHA-256 of a bearer token: what configuration stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialStore:
    """Token hash -> credential. Lookups hash the presented token; no token is kept."""

    def __init__(self, by_hash: Mapping[str, SourceCredential]) -> None:
        self._by_hash = dict(by_hash)

    def __len__(self) -> int:
        return len(self._by_hash)

    def token_hashes(self) -> list[str]:
        return list(self._by_hash)

    def authenticate(self, token: str) -> SourceCredential | None:
        return self._by_hash.get(hash_token(token)) if token else None


def _scope(value: Any, where: str, what: str, check: Any) -> frozenset[str] | None:
    if value == "*":
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CredentialsError(f"{where}: {what} must be a list of strings or \"*\"")
    bad = [v for v in value if not check(v)]
    if bad:
        raise CredentialsError(f"{where}: unknown {what} {bad[:3]}")
    return frozenset(value)


def parse_credentials(document: Mapping[str, Any]) -> CredentialStore:
    """Check and load a {hash: {source, regions, kinds[, corrections]}} mapping."""
    by_hash: dict[str, SourceCredential] = {}
    for key, entry in document.items():
        where = f"credential {str(key)[:8]}…"
        if not isinstance(key, str) or not _HASH.match(key):
            raise CredentialsError(f"{where}: keys must be lowercase hex SHA-256 token hashes")
        if not isinstance(entry, Mapping):
            raise CredentialsError(f"{where}: must be a table with source, regions, kinds")
        source = entry.get("source")
        if source != "*" and (not isinstance(source, str) or not SOURCE_NAME.match(source)):
            raise CredentialsError(f"{where}: source must be \"*\" or a name of letters, "
                                   "digits, '.', '_' and '-' (64 at most)")
        corrections = _scope(entry.get("corrections", []), where, "corrections",
                             lambda r: bool(_REGION.match(r)))
        by_hash[key] = Grant(
            source=None if source == "*" else source,
            regions=_scope(entry.get("regions"), where, "regions",
                           lambda r: bool(_REGION.match(r))),
            kinds=_scope(entry.get("kinds"), where, "kinds", lambda k: k in ALL_KINDS),
            corrections=corrections or frozenset(),
            corrections_everywhere=corrections is None,
        )
    return CredentialStore(by_hash)


def load_credentials(spec: str | None) -> CredentialStore:
    """From HUMIAO_SOURCE_CREDENTIALS: inline JSON, or a .toml / .json file path."""
    if not spec or not spec.strip():
        raise CredentialsError(f"{ENV_VAR} is not set: no source could submit events")
    text = spec.strip()
    try:
        if text.startswith("{"):
            document = json.loads(text)
        else:
            path = Path(text)
            raw = path.read_text(encoding="utf-8")
            document = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
    except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise CredentialsError(f"{ENV_VAR}: cannot read credentials ({exc})") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"{ENV_VAR}: must map token hashes to credentials")
    return parse_credentials(document)
