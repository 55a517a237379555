"""The console's own settings; every variable is documented in docs/configuration.md."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Where the console's HTTP server listens (the gRPC port serves health only).
    humiao_console_host: str = "127.0.0.1"
    humiao_console_port: int = Field(default=8080, ge=0, le=65535)
    #: The alert desk (host:port); TLS to it follows HUMIAO_TLS / HUMIAO_TLS_CA_FILE.
    humiao_desk_target: str = "127.0.0.1:50052"
    #: Seconds one desk call may take before the page says the desk is unavailable.
    humiao_console_desk_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: The address staff reach the console at (OIDC redirects, links in notifications).
    humiao_console_public_url: str | None = None
    #: Cookies only over HTTPS; the local stack, on plain http://127.0.0.1, turns it off.
    humiao_console_cookie_secure: bool = True
    #: A session ends after this many idle hours, and after 12 hours whatever happens.
    humiao_console_session_idle_hours: float = Field(default=2.0, gt=0, le=12)
    #: Signs the short-lived OIDC state cookie; required when OIDC is configured.
    humiao_console_secret_key: SecretStr | None = None
    #: OIDC: the issuer (its /.well-known/openid-configuration is read), client id and
    #: secret, the claim that names the person, and the map from that claim's values to
    #: the desk tokens of the staff members they are (JSON or a .json file; secret).
    humiao_oidc_issuer: str | None = None
    humiao_oidc_client_id: str | None = None
    humiao_oidc_client_secret: SecretStr | None = None
    humiao_oidc_claim: str = "preferred_username"
    humiao_console_oidc_staff: SecretStr | None = None
    #: Rows a queue export may hold (the desk is paged through, 1,000 at a time).
    humiao_console_export_max_rows: int = Field(default=10_000, ge=1, le=100_000)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.humiao_oidc_issuer)
