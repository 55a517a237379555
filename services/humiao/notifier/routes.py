"""The routes file (TOML, named by HUMIAO_NOTIFY_ROUTES): receivers and routes.

Validated once at start, with errors that name the field and the reason. Receiver
URLs and secrets are typed as secrets: a WeCom URL carries the robot's key, a DingTalk
URL its access token, so neither is ever logged or printed.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from humiao.domain.identity import looks_like_citizen_id
from humiao.domain.labels import CODES_ZH
from humiao.domain.notify import Route, RouteError, parse_duration

#: A routes file is configuration, not data: anything bigger is a mistake or an attack.
MAX_FILE_BYTES = 256 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REGION = re.compile(r"^\d{6}$")
Kind = Literal["wecom", "dingtalk", "feishu", "webhook", "email"]


class ReceiverConfig(BaseModel):
    """One [receivers.NAME] table."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Kind
    #: The robot's or webhook's URL (carries its key or token: a secret). Not for email.
    url: SecretStr | None = None
    #: DingTalk/Feishu signing secret, or the webhook's HMAC key.
    secret: SecretStr | None = None
    #: Messages a minute at most; unset: the API's own limit (WeCom/DingTalk 20, Feishu 100).
    per_minute: int | None = Field(default=None, ge=1, le=10_000)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # e-mail only
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    def check(self, name: str) -> None:
        """Cross-field rules pydantic cannot say per field."""
        if self.kind == "email":
            missing = [f for f in ("smtp_host", "sender") if getattr(self, f) is None]
            if not self.to:
                missing.append("to")
            if missing:
                raise RouteError(f"receivers.{name}: kind email needs {', '.join(missing)}")
        elif self.url is None:
            raise RouteError(f"receivers.{name}.url: required for kind {self.kind}")


class RouteConfig(BaseModel):
    """One [[routes]] entry as written."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str
    regions: Literal["*"] | list[str] = "*"
    codes: Literal["*"] | list[str] = "*"
    group_wait: str = "30s"
    group_interval: str = "5m"
    continue_matching: bool = Field(default=False, alias="continue")
    #: Local time of the daily digest, "HH:MM"; unset: no digest.
    digest_at: str | None = None
    max_messages: int = Field(default=20, ge=1, le=1000)


class RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    receivers: dict[str, ReceiverConfig] = Field(max_length=500)
    routes: list[RouteConfig] = Field(default_factory=list, max_length=1000)


@dataclass(frozen=True)
class RoutingTable:
    """What the notifier runs with: receivers by name and routes in file order."""

    receivers: dict[str, ReceiverConfig]
    routes: tuple[Route, ...]


def _route(index: int, raw: RouteConfig, receivers: dict[str, ReceiverConfig]) -> Route:
    where = f"routes[{index}]"
    if raw.receiver not in receivers:
        raise RouteError(f"{where}.receiver: no receiver named {raw.receiver!r}")
    regions = None if raw.regions == "*" else frozenset(raw.regions)
    for region in regions or ():
        if not _REGION.match(region):
            raise RouteError(f"{where}.regions: {region!r} is not a 6-digit region code")
    codes = None if raw.codes == "*" else frozenset(raw.codes)
    for code in codes or ():
        if code not in CODES_ZH:
            raise RouteError(f"{where}.codes: {code!r} is not an alert code")
    digest_at = None
    if raw.digest_at is not None:
        try:
            digest_at = dt.time.fromisoformat(raw.digest_at)
        except ValueError:
            raise RouteError(f"{where}.digest_at: {raw.digest_at!r} is not HH:MM") from None
    return Route(
        receiver=raw.receiver, regions=regions, codes=codes,
        group_wait=parse_duration(raw.group_wait, f"{where}.group_wait"),
        group_interval=parse_duration(raw.group_interval, f"{where}.group_interval"),
        continue_matching=raw.continue_matching, digest_at=digest_at,
        max_messages=raw.max_messages,
    )


def parse_routes(text: str) -> RoutingTable:
    """Validate a routes file's text; RouteError names the field and the reason."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise RouteError(f"routes file: larger than {MAX_FILE_BYTES} bytes")
    try:
        parsed = RoutesFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise RouteError(f"routes file: not TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RouteError(f"{where}: {first['msg']}") from None
    for name, receiver in parsed.receivers.items():
        if looks_like_citizen_id(name):  # never echo it: it would reach logs
            raise RouteError("receivers: a receiver name looks like an ID number")
        if not _NAME.match(name):
            raise RouteError(f"receivers.{name[:70]!r}: a name is 1-64 letters, digits, _ . -")
        receiver.check(name)
    routes = tuple(_route(i, r, parsed.receivers) for i, r in enumerate(parsed.routes))
    return RoutingTable(dict(parsed.receivers), routes)


def load_routes(path: str | Path) -> RoutingTable:
    source = Path(path)
    if source.stat().st_size > MAX_FILE_BYTES:
        raise RouteError(f"routes file: larger than {MAX_FILE_BYTES} bytes")
    return parse_routes(source.read_text(encoding="utf-8"))
