"""`python -m humiao.desk`: the alert desk service (composition root).

Reads DATABASE_URL (required), the staff
credentials (HUMIAO_STAFF_CREDENTIALS and the `staff` table), the pseudonym key (to
turn a child's ID number into its key) and the usual service ports.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from humiao.adapters.db import create_pool
from humiao.api.desk.v1 import desk_pb2_grpc
from humiao.config import (
    DatabaseSettings,
    PrivacySettings,
    ServiceSettings,
    refuse_development_secrets,
)
from humiao.desk.api import SERVICE_NAME, AlertDeskServicer
from humiao.desk.auth import StaffDirectory, parse_credentials
from humiao.desk.metrics import CALLS, refresh_loop
from humiao.desk.settings import DeskSettings
from humiao.desk.watch import ChangeFeed
from humiao.runtime import Registration, run_grpc_service, setup_logging

log = logging.getLogger("humiao.desk")


async def database_dsn(settings: DatabaseSettings) -> str:
    return settings.required_dsn("desk")


async def serve() -> None:
    service = ServiceSettings()
    setup_logging(service.humiao_log_level)
    desk = DeskSettings()
    db = DatabaseSettings()
    credentials = desk.humiao_staff_credentials
    static = parse_credentials(credentials.get_secret_value()) if credentials else {}
    privacy = PrivacySettings()
    refuse_development_secrets(
        "desk", {"HUMIAO_PSEUDONYM_KEY": privacy.humiao_pseudonym_key.get_secret_value()},
        static.keys())
    pool = await create_pool(
        await database_dsn(db), min_size=db.humiao_db_pool_min, max_size=db.humiao_db_pool_max
    )
    feed = ChangeFeed(pool, poll_interval=desk.humiao_desk_poll_seconds)
    directory = StaffDirectory(static, pool)
    servicer = AlertDeskServicer(
        pool,
        directory,
        feed,
        pseudonym_key=privacy.secret,
        heartbeat_seconds=desk.humiao_desk_heartbeat_seconds,
        whole_id_reads_per_hour=desk.humiao_desk_whole_id_reads_per_hour,
        watch_recheck_seconds=desk.humiao_desk_watch_recheck_seconds,
    )
    log.info("staff credentials from config: %d", len(static))

    async def probe() -> bool:
        return bool(await pool.fetchval("SELECT 1") == 1)

    async def gauge(stop: asyncio.Event) -> None:
        await refresh_loop(pool, stop, desk.humiao_desk_gauge_seconds)

    async def close_pool() -> None:
        await pool.close()

    try:
        await run_grpc_service(
            "desk",
            service,
            [Registration(desk_pb2_grpc.add_AlertDeskServicer_to_server, servicer, SERVICE_NAME)],
            probe,
            known_token=directory.knows,
            calls=CALLS,
            refusal="a valid staff token is required (authorization: Bearer <token>)",
            background=[feed.run, gauge],
            on_stop=close_pool,
        )
    except BaseException:
        if not pool.is_closing():
            pool.terminate()
        raise


def main() -> None:
    try:
        asyncio.run(serve())
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"desk: cannot start: {type(exc).__name__}: {exc}") from None


if __name__ == "__main__":
    main()
