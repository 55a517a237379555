"""Staff credentials: bearer tokens mapped to a named person, a role and regions.

Tokens are never stored: only their SHA-256 (hex). Two sources, checked in order:
1. HUMIAO_STAFF_CREDENTIALS: inline JSON, or the path of a JSON or TOML file, mapping
   sha256 -> {"name": ..., "role": "viewer|investigator|supervisor",
   "regions": ["110105", ...] or "*"} (optionally nested under a "staff" key);
   suits small deployments and the local stack.
2. The `staff` table (migration 004), looked up per call, so a deactivated member
   loses access on their next call without a restart.
"""

from __future__ import annotations

import enum
import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from humiao.desk.errors import PermissionDenied, Unauthenticated

ALL_REGIONS = "*"


class Role(enum.IntEnum):
    """Ordered: each role may do everything the ones below it may."""

    VIEWER = 1
    INVESTIGATOR = 2
    SUPERVISOR = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"role must be viewer, investigator or supervisor, not {text!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Staff:
    name: str
    role: Role
    #: None: every region.
    regions: frozenset[str] | None

    def covers(self, region: str) -> bool:
        return self.regions is None or region in self.regions

    def require(self, role: Role, action: str) -> None:
        if self.role < role:
            raise PermissionDenied(
                f"{action} needs the {role.name.lower()} role; you are {self.role.name.lower()}"
            )

    def scope(self, requested: Iterable[str]) -> list[str] | None:
        """Regions a query may touch: the requested ones the caller covers (None: all)."""
        wanted = {r for r in requested if r}
        if self.regions is None:
            return sorted(wanted) if wanted else None
        return sorted(wanted & self.regions) if wanted else sorted(self.regions)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _staff_from_entry(digest: str, entry: Mapping[str, Any]) -> Staff:
    name = str(entry.get("name", "")).strip()
    if not name:
        raise ValueError(f"staff credential {digest[:8]}...: name is required")
    regions = entry.get("regions", [])
    if regions == ALL_REGIONS or (isinstance(regions, list) and ALL_REGIONS in regions):
        scope: frozenset[str] | None = None
    elif isinstance(regions, list) and all(isinstance(r, str) for r in regions):
        scope = frozenset(regions)
    else:
        raise ValueError(f'staff credential of {name}: regions must be a list of codes or "*"')
    return Staff(name=name, role=Role.parse(str(entry.get("role", ""))), regions=scope)


def parse_credentials(spec: str) -> dict[str, Staff]:
    """Read HUMIAO_STAFF_CREDENTIALS: inline JSON, or a .json / .toml file path."""
    spec = spec.strip()
    if not spec:
        return {}
    if spec.startswith("{"):
        raw: Any = json.loads(spec)
    else:
        path = Path(spec)
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if isinstance(raw, dict) and isinstance(raw.get("staff"), dict):
        raw = raw["staff"]
    if not isinstance(raw, dict):
        raise ValueError("staff credentials must map sha256 hex -> {name, role, regions}")
    found: dict[str, Staff] = {}
    for digest, entry in raw.items():
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise ValueError("staff credentials are keyed by the token's sha256 in hex")
        found[digest.lower()] = _staff_from_entry(digest, entry)
    return found


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization must be 'Bearer <token>'")
    raise Unauthenticated("missing authorization: Bearer <token>")


class StaffDirectory:
    """Who a token belongs to, and who a name is (for assignment)."""

    def __init__(self, static: Mapping[str, Staff], pool: asyncpg.Pool | None = None) -> None:
        self._static = dict(static)
        self._pool = pool

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Staff:
        digest = hash_token(bearer_token(metadata))
        staff = self._static.get(digest)
        if staff is None and self._pool is not None:
            row = await self._pool.fetchrow(
                "SELECT name, role, regions FROM staff WHERE token_sha256 = $1 AND active", digest
            )
            staff = _staff_from_row(row) if row else None
        if staff is None:
            raise Unauthenticated("unknown token")
        return staff

    async def knows(self, metadata: Sequence[tuple[str, str | bytes]]) -> bool:
        """The edge's gate: does this token belong to an active staff member? (Asked
        before the message is read; each call still authenticates to learn who.)"""
        try:
            await self.authenticate(metadata)
        except Unauthenticated:
            return False
        return True

    async def by_name(self, name: str) -> Staff | None:
        for staff in self._static.values():
            if staff.name == name:
                return staff
        if self._pool is None:
            return None
        row = await self._pool.fetchrow(
            "SELECT name, role, regions FROM staff WHERE name = $1 AND active", name
        )
        return _staff_from_row(row) if row else None


def _staff_from_row(row: asyncpg.Record) -> Staff:
    regions = list(row["regions"])
    return Staff(
        name=row["name"],
        role=Role.parse(row["role"]),
        regions=None if ALL_REGIONS in regions else frozenset(regions),
    )


async def add_staff(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    role: str,
    regions: Sequence[str],
    token: str,
) -> None:
    """Create or replace a staff member's database credential (used by setup and tests)."""
    Role.parse(role)
    await conn.execute(
        "INSERT INTO staff (name, role, regions, token_sha256) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, regions = EXCLUDED.regions,"
        " token_sha256 = EXCLUDED.token_sha256, active = true",
        name,
        role.lower(),
        list(regions),
        hash_token(token),
    )
