"""E-mail notifications over SMTP with STARTTLS and login (``smtplib`` in a worker thread,
so a slow or unreachable server never blocks the event loop)."""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from clpm_shared.config import AlertSettings


class EmailNotConfiguredError(RuntimeError):
    """No SMTP server is configured (ALERT_SMTP_HOST empty)."""


def build_message(
    sender: str, to: str, subject: str, payload: dict[str, Any], idempotency_key: str
) -> EmailMessage:
    """The e-mail of one notice; its Message-ID carries the idempotency key, so a mail
    system (or reader) can recognise a repeat of the same notice."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{idempotency_key}@clpm>"
    message["X-CLPM-Idempotency-Key"] = idempotency_key
    lines = [
        payload.get("message", ""),
        "",
        f"rule: {payload.get('rule')} ({payload.get('condition')})",
        f"loop: {payload.get('loop_id') or '-'}",
        f"state: {payload.get('state')} ({payload.get('kind')})",
        f"first seen: {payload.get('first_seen')}",
        f"at: {payload.get('at')}",
        "",
        json.dumps(payload, sort_keys=True),
    ]
    message.set_content("\n".join(str(line) for line in lines))
    return message


class EmailChannel:
    """Sends notices through the configured SMTP server."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    async def send(
        self, to: str, subject: str, payload: dict[str, Any], idempotency_key: str
    ) -> None:
        """Deliver one message; raises ``smtplib.SMTPException`` / ``OSError`` on failure."""
        message = build_message(
            self.settings.alert_smtp_from, to, subject, payload, idempotency_key
        )
        await self.send_message(message)

    async def send_message(self, message: EmailMessage) -> None:
        """Deliver a message built elsewhere (e.g. a report with attachments) through the
        same server; raises as :meth:`send`."""
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        if s.alert_smtp_host is None:
            raise EmailNotConfiguredError("ALERT_SMTP_HOST is not set")
        with smtplib.SMTP(
            s.alert_smtp_host, s.alert_smtp_port, timeout=s.alert_smtp_timeout_s
        ) as smtp:
            smtp.ehlo()
            if s.alert_smtp_starttls:
                context = ssl.create_default_context(
                    cafile=str(s.alert_smtp_ca_file) if s.alert_smtp_ca_file else None
                )
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.alert_smtp_username:
                password = s.alert_smtp_password.get_secret_value() if s.alert_smtp_password else ""
                smtp.login(s.alert_smtp_username, password)
            smtp.send_message(message)
