"""Configuration: one typed settings object per concern, read from the environment.

Only composition roots (service `main`s, the CLI, test fixtures) build these. Every
variable is documented in README.md, section "Configuration".
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Where the broker is and how the topics are laid out."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Unset: the local stack starts the embedded broker and fills this in.
    kafka_bootstrap_servers: str | None = None
    #: Prefix of every topic, so several deployments (or tests) share a cluster.
    humiao_topic_prefix: str = "humiao."
    #: Partitions of the events topic; the unit of verifier parallelism.
    humiao_partitions: int = Field(default=6, ge=1, le=1024)
    humiao_replication_factor: int = Field(default=1, ge=1)

    @property
    def bootstrap(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set and no local broker was started")
        return self.kafka_bootstrap_servers

    @property
    def events_topic(self) -> str:
        return f"{self.humiao_topic_prefix}events"

    @property
    def alerts_topic(self) -> str:
        return f"{self.humiao_topic_prefix}alerts"

    @property
    def deadletter_topic(self) -> str:
        return f"{self.humiao_topic_prefix}deadletter"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Required by every service; the local stack (`humiao up`, the demo, the tests) sets it.
    database_url: SecretStr | None = None
    humiao_db_pool_min: int = Field(default=1, ge=1)
    humiao_db_pool_max: int = Field(default=8, ge=1)

    def required_dsn(self, service: str) -> str:
        """The one way a service resolves its database: DATABASE_URL, or it refuses to start."""
        if self.database_url is None:
            raise SystemExit(
                f"humiao.{service}: DATABASE_URL is not set; a service needs its PostgreSQL "
                "(the local stack, `humiao up`, sets it for the services it starts)"
            )
        return self.database_url.get_secret_value()


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Key of the HMAC that turns ID numbers into pseudonymous Kafka keys. Set it in production.
    humiao_pseudonym_key: SecretStr = SecretStr("humiao-development-pseudonym-key")

    @property
    def secret(self) -> bytes:
        return self.humiao_pseudonym_key.get_secret_value().encode()


class ServiceSettings(BaseSettings):
    """Ports and shutdown of one service process."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    humiao_grpc_host: str = "127.0.0.1"
    humiao_grpc_port: int = Field(default=0, ge=0, le=65535)
    humiao_metrics_port: int = Field(default=0, ge=0, le=65535)
    #: Address the /metrics endpoint binds to; unset: the same as HUMIAO_GRPC_HOST.
    humiao_metrics_host: str | None = None
    #: Seconds in-flight calls get to finish on SIGTERM.
    humiao_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    humiao_log_level: str = "INFO"

    @property
    def metrics_host(self) -> str:
        return self.humiao_metrics_host or self.humiao_grpc_host
