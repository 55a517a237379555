"""Only ingest writes the events topic: each record it publishes carries an HMAC-SHA256
over its key and value (header `humiao-signature`), with a key ingest and the verifier
share (HUMIAO_RECORD_SIGNING_KEY); the verifier dead-letters a record without a valid one
and never applies it. Kafka ACLs are the first wall (deploy/OPERATIONS.md); this one
holds when a credential of the cluster leaks (docs/grants.md)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "humiao-signature"


def signature(secret: bytes, key: bytes | None, value: bytes) -> bytes:
    """The MAC of one record: the key's length first, so key and value cannot trade bytes."""
    key = key or b""
    mac = hmac.new(secret, len(key).to_bytes(4, "big") + key, hashlib.sha256)
    mac.update(value)
    return mac.digest()


def signed_headers(secret: bytes, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
    return [(HEADER, signature(secret, key, value))]


def is_signed(secret: bytes, key: bytes | None, value: bytes,
              headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """True when the record carries exactly one valid signature."""
    found = [v for k, v in headers or () if k == HEADER]
    return len(found) == 1 and hmac.compare_digest(found[0], signature(secret, key, value))
