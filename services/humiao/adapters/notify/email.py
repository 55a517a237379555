"""E-mail over SMTP (aiosmtplib): the Markdown as the plain-text body, the title as the
subject, a Message-ID stable across retries so a mail client can drop a second copy."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import aiosmtplib

from humiao.adapters.notify.base import OK, Outcome, SendResult
from humiao.domain.notify import RateLimit
from humiao.domain.notify_text import Message


class Email:
    kind = "email"
    max_bytes = 256 * 1024

    def __init__(
        self, name: str, *, host: str, port: int, sender: str, to: list[str],
        tls: str = "starttls", username: str | None = None, password: str | None = None,
        per_minute: int | None = None, timeout: float = 10.0,
    ) -> None:
        self.name = name
        self._host, self._port, self._sender, self._to = host, port, sender, list(to)
        self._tls, self._username, self._password = tls, username, password
        self._timeout = timeout
        self.limits: tuple[RateLimit, ...] = (
            (RateLimit(per_minute, dt.timedelta(minutes=1)),) if per_minute else ()
        )

    def compose(self, message: Message, message_id: int) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self._sender
        mail["To"] = ", ".join(self._to)
        domain = self._sender.rpartition("@")[2] or "humiao.invalid"
        mail["Message-ID"] = f"<humiao-{self.name}-{message_id}@{domain}>"
        mail.set_content(message.markdown)
        return mail

    async def send(self, message: Message, message_id: int) -> SendResult:
        try:
            await aiosmtplib.send(
                self.compose(message, message_id), hostname=self._host, port=self._port,
                username=self._username, password=self._password,
                use_tls=self._tls == "tls", start_tls=self._tls == "starttls",
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:  # "try again later": greylisting, rate limits
                return SendResult(Outcome.SLOW_DOWN, f"smtp-{exc.code}", 60.0)
            return SendResult(Outcome.FAILED, f"smtp-{exc.code}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(Outcome.FAILED, type(exc).__name__)
        return OK
