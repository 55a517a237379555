"""The ingest gateway's own settings (the shared ones are in humiao.config); every
variable is documented in docs/configuration.md."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from humiao.adapters.publisher import PublisherOptions


class IngestSettings(BaseSettings):
    """The gateway's own knobs."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Source credentials: inline JSON or a .toml/.json file (token hashes, never tokens).
    #: A secret: it says which tokens open which doors.
    humiao_source_credentials: SecretStr | None = None
    #: Seconds one publish may wait for Kafka in all before the call is answered
    #: UNAVAILABLE.
    humiao_ingest_publish_timeout_seconds: float = Field(default=10.0, ge=0.5, le=600)

    def publisher_options(self) -> PublisherOptions:
        return PublisherOptions.with_publish_timeout(self.humiao_ingest_publish_timeout_seconds)

    @property
    def credentials_spec(self) -> str | None:
        value = self.humiao_source_credentials
        return value.get_secret_value() if value is not None else None
