"""The alert desk's own settings (the shared ones are in humiao.config); every variable
is documented in docs/configuration.md."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from humiao.desk.api import WHOLE_ID_READS_PER_HOUR


class DeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Inline JSON, or a .json/.toml file: sha256(token) -> {name, role, regions}.
    humiao_staff_credentials: SecretStr | None = None
    #: How often the live feed looks for new alert versions.
    humiao_desk_poll_seconds: float = Field(default=0.2, gt=0, le=10)
    #: A watcher with nothing to receive gets a heartbeat (with its cursor) this often.
    humiao_desk_heartbeat_seconds: float = Field(default=15.0, gt=0)
    #: How often the open-alerts gauge is recomputed (one query).
    humiao_desk_gauge_seconds: float = Field(default=30.0, gt=0)
    #: Whole-ID reads (GetAlert, GetChildTimeline, lookups by ID number) one staff member
    #: may make in any hour; past it, RESOURCE_EXHAUSTED (docs/privacy.md says why 30).
    humiao_desk_whole_id_reads_per_hour: int = Field(default=WHOLE_ID_READS_PER_HOUR, ge=1)
    #: A watcher's token and regions are checked again at most this often: a deactivated
    #: member's stream ends before it delivers anything later than that.
    humiao_desk_watch_recheck_seconds: float = Field(default=1.0, ge=0, le=60)
