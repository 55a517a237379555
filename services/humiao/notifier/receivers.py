"""Receivers from the routes file to adapters: the one place that unwraps their secrets."""

from __future__ import annotations

import httpx

from humiao.adapters.notify.base import Sender
from humiao.adapters.notify.email import Email
from humiao.adapters.notify.robots import DingTalk, Feishu, WeCom
from humiao.adapters.notify.webhook import Webhook
from humiao.notifier.routes import ReceiverConfig

_ROBOTS = {"wecom": WeCom, "dingtalk": DingTalk, "feishu": Feishu}
#: Markdown bytes one message of each kind may carry (what messages are split to).
MAX_BYTES = {**{k: robot.max_bytes for k, robot in _ROBOTS.items()},
             "webhook": Webhook.max_bytes, "email": Email.max_bytes}


def _reveal(value: object) -> str | None:
    secret = getattr(value, "get_secret_value", None)
    return secret() if secret is not None else None


def build_sender(
    name: str, config: ReceiverConfig, *, client: httpx.AsyncClient, console: str = ""
) -> Sender:
    if config.kind == "email":
        return Email(
            name, host=config.smtp_host or "", port=config.smtp_port, sender=config.sender or "",
            to=config.to, tls=config.smtp_tls, username=config.username,
            password=_reveal(config.password), per_minute=config.per_minute,
            timeout=config.timeout_seconds,
        )
    url = _reveal(config.url) or ""
    if config.kind == "webhook":
        return Webhook(name, url, client=client, secret=_reveal(config.secret),
                       per_minute=config.per_minute, console=console,
                       timeout=config.timeout_seconds)
    robot = _ROBOTS[config.kind]
    return robot(name, url, client=client, secret=_reveal(config.secret),
                 per_minute=config.per_minute, timeout=config.timeout_seconds)


def build_senders(
    receivers: dict[str, ReceiverConfig], *, client: httpx.AsyncClient, console: str = ""
) -> dict[str, Sender]:
    return {
        name: build_sender(name, cfg, client=client, console=console)
        for name, cfg in receivers.items()
    }
