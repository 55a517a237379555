"""The notifier's settings (environment only; README "Configuration", docs/notifications.md)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_GROUP = "humiao-notifier"


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: The routes file (TOML): receivers and routes. Required by the notifier.
    humiao_notify_routes: str | None = None
    #: Base URL of the staff console; links to alerts are added when set.
    humiao_console_url: str | None = Field(default=None, max_length=500,
                                           pattern=r"^https?://[^\s?#]+$")
    #: Consumer group on the alerts topic (its offsets are stored in PostgreSQL).
    humiao_notify_group: str = DEFAULT_GROUP
    #: Time zone of each route's `digest_at`.
    humiao_notify_timezone: str = "Asia/Shanghai"
    #: Alert versions taken per transaction at most.
    humiao_notify_batch_max: int = Field(default=5000, ge=1, le=100_000)
    #: Where the notifier starts on a topic it has never read: "earliest" announces what
    #: the alerts topic still holds (days of history at a first start), "latest" only
    #: what arrives from now on.
    humiao_notify_start: Literal["earliest", "latest"] = "earliest"
    #: Consumer-group session timeout: how soon a dead member's partitions move.
    humiao_notify_session_timeout_ms: int = Field(default=10_000, ge=1000, le=300_000)

    @field_validator("humiao_notify_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name like Asia/Shanghai") from None
        return value
