"""Configuration: one typed settings object per concern, read from the environment.

Only composition roots (service `main`s, the CLI, test fixtures) build these. Every
variable is documented in README.md, section "Configuration".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Development defaults of the secrets: a service refuses to start with one of them
#: unless HUMIAO_DEVELOPMENT is true (the local stack sets it; deploy/OPERATIONS.md).
DEVELOPMENT_PSEUDONYM_KEY = "humiao-development-pseudonym-key"
DEVELOPMENT_SIGNING_KEY = "humiao-development-record-signing-key"
#: The tokens deploy/compose documents for trying it out (their hashes are refused too).
DEVELOPMENT_TOKENS = ("dev-source-token-change-me", "dev-supervisor-token-change-me")


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
    #: HMAC key ingest signs the events topic's records with and the verifier checks
    #: (adapters/record_signing.py); a secret, the same for both. Set it in production.
    humiao_record_signing_key: SecretStr = SecretStr(DEVELOPMENT_SIGNING_KEY)

    @property
    def record_signing_secret(self) -> bytes:
        return self.humiao_record_signing_key.get_secret_value().encode()

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


class KafkaSecuritySettings(BaseSettings):
    """How every Kafka client of the product authenticates and encrypts (SASL/TLS on a
    real cluster; the embedded broker speaks PLAINTEXT on 127.0.0.1)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: CA that signed the brokers' certificates (unset: the system's roots).
    kafka_ssl_cafile: Path | None = None
    #: Client certificate and key, for clusters that authenticate clients by TLS.
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        protocol = self.kafka_security_protocol
        config: dict[str, Any] = {"security_protocol": protocol}
        if protocol.startswith("SASL"):
            if not self.kafka_sasl_username or self.kafka_sasl_password is None:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                 "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
            config.update(sasl_mechanism=self.kafka_sasl_mechanism,
                          sasl_plain_username=self.kafka_sasl_username,
                          sasl_plain_password=self.kafka_sasl_password.get_secret_value())
        if protocol.endswith("SSL"):
            config.update(ssl_check_hostname=True)
            for option, path in (("ssl_cafile", self.kafka_ssl_cafile),
                                 ("ssl_certfile", self.kafka_ssl_certfile),
                                 ("ssl_keyfile", self.kafka_ssl_keyfile)):
                if path is not None:
                    config[option] = str(path)
        return config


def kafka_security() -> dict[str, Any]:
    """The Kafka client security options from the environment (KafkaSecuritySettings)."""
    return KafkaSecuritySettings().client_config()


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
    humiao_pseudonym_key: SecretStr = SecretStr(DEVELOPMENT_PSEUDONYM_KEY)

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
    #: Largest request message a service reads; larger ones are refused by the gRPC core.
    humiao_grpc_max_receive_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024,
                                               le=64 * 1024 * 1024)
    #: Calls (watch streams included) served at once; more are refused RESOURCE_EXHAUSTED.
    humiao_grpc_max_concurrent_calls: int = Field(default=100, ge=1, le=10_000)
    #: Server TLS: certificate chain and key (PEM); with a client CA, mutual TLS.
    humiao_tls_cert_file: Path | None = None
    humiao_tls_key_file: Path | None = None
    humiao_tls_client_ca_file: Path | None = None
    #: A plaintext port that serves gRPC health only (for probes that cannot speak TLS).
    humiao_grpc_health_port: int | None = Field(default=None, ge=0, le=65535)
    #: Plaintext on an address other machines reach: only behind something that encrypts
    #: (a service mesh's mTLS, a single-host Compose network).
    humiao_grpc_allow_plaintext: bool = False

    @property
    def metrics_host(self) -> str:
        return self.humiao_metrics_host or self.humiao_grpc_host


class DevelopmentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: True only on a developer's machine: the local stack, the demo and the tests set it.
    #: Without it a service refuses to start with a development secret.
    humiao_development: bool = False


def development_secrets_in_use(
    secrets: Mapping[str, str], token_hashes: Iterable[str] = ()
) -> list[str]:
    """The names of the development defaults among a service's secrets and credentials."""
    defaults = {DEVELOPMENT_PSEUDONYM_KEY, DEVELOPMENT_SIGNING_KEY}
    found = [name for name, value in secrets.items() if value in defaults]
    dev_hashes = {hashlib.sha256(t.encode()).hexdigest() for t in DEVELOPMENT_TOKENS}
    if dev_hashes & set(token_hashes):
        found.append("a credential of a documented development token (deploy/compose)")
    return found


def refuse_development_secrets(
    service: str, secrets: Mapping[str, str], token_hashes: Iterable[str] = ()
) -> None:
    """Stop a service that would run with a development secret outside development."""
    if DevelopmentSettings().humiao_development:
        return
    found = development_secrets_in_use(secrets, token_hashes)
    if found:
        raise SystemExit(
            f"humiao.{service}: refusing to start with development secrets: "
            f"{', '.join(found)}. Set real ones (deploy/OPERATIONS.md, \"Secrets a deployment "
            "must set\"), or HUMIAO_DEVELOPMENT=true on a developer's machine."
        )
