"""Source credentials: bearer tokens, stored only as SHA-256 hashes, scoped to regions and kinds.

HUMIAO_SOURCE_CREDENTIALS holds either inline JSON or the path of a TOML or JSON file
mapping the hex SHA-256 of each token to its scope:

    ["<sha256 hex of the token>"]          # TOML; JSON is the same shape
    source = "minzheng-110105"
    regions = ["110105", "110106"]         # or "*"
    kinds = ["childEnrolled", "disbursement"]   # or "*"

`humiao ingest hash-token` prints the hash of a token. Tokens themselves never appear in
configuration or logs.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humiao.domain.events import ALL_KINDS, PERSON_KINDS, REGION_KINDS, Envelope

ENV_VAR = "HUMIAO_SOURCE_CREDENTIALS"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_REGION = re.compile(r"^\d{6}$")


class CredentialsError(ValueError):
    """The credentials configuration is unusable; the message says where."""


def hash_token(token: str) -> str:
    """The hex SHA-256 of a bearer token: what configuration stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceCredential:
    """What one source system may send. None means every region (or kind)."""

    source: str
    regions: frozenset[str] | None
    kinds: frozenset[str] | None

    def allows_kind(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def allows_region(self, region: str) -> bool:
        return self.regions is None or region in self.regions


def scope_region(env: Envelope) -> str | None:
    """The region an event is about, for scope checks.

    Region-wide facts, enrollments and disbursements name it; facts about a child or a
    person carry it as the 6-digit prefix of the ID number. Reversals and retractions
    name only another fact, so they have none and are scoped by kind alone.
    """
    body = env.body
    region = getattr(body, "region", None)
    if region:
        return str(region)
    if env.kind in PERSON_KINDS:
        return str(body.person_id)[:6]  # type: ignore[union-attr]
    child = env.child_id()
    if child:
        return child[:6]
    assert env.kind not in REGION_KINDS
    return None


class CredentialStore:
    """Token hash -> credential. Lookups hash the presented token; no token is kept."""

    def __init__(self, by_hash: Mapping[str, SourceCredential]) -> None:
        self._by_hash = dict(by_hash)

    def __len__(self) -> int:
        return len(self._by_hash)

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
    """Check and load a {hash: {source, regions, kinds}} mapping."""
    by_hash: dict[str, SourceCredential] = {}
    for key, entry in document.items():
        where = f"credential {str(key)[:8]}…"
        if not isinstance(key, str) or not _HASH.match(key):
            raise CredentialsError(f"{where}: keys must be lowercase hex SHA-256 token hashes")
        if not isinstance(entry, Mapping):
            raise CredentialsError(f"{where}: must be a table with source, regions, kinds")
        source = entry.get("source")
        if not isinstance(source, str) or not source.strip():
            raise CredentialsError(f"{where}: source must be a non-empty string")
        by_hash[key] = SourceCredential(
            source=source,
            regions=_scope(entry.get("regions"), where, "regions",
                           lambda r: bool(_REGION.match(r))),
            kinds=_scope(entry.get("kinds"), where, "kinds", lambda k: k in ALL_KINDS),
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
