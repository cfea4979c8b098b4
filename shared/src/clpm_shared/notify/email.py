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
    """The e-mail of one notice, or of a digest of many (``payload["alerts"]``, one line each,
    and the number not listed); its Message-ID carries the idempotency key, so a mail system
    (or reader) can recognise a repeat of the same notice."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{idempotency_key}@clpm>"
    message["X-CLPM-Idempotency-Key"] = idempotency_key
    rule = f"rule: {payload.get('rule')} ({payload.get('condition')})"
    state = f"state: {payload.get('state')} ({payload.get('kind')})"
    if payload.get("digest"):
        alerts = payload.get("alerts") or []
        more = int(payload.get("more") or 0)
        lines = [payload.get("message", ""), "", rule, state, f"at: {payload.get('at')}", ""]
        lines.extend(
            f"- {alert.get('message')} (first seen {alert.get('first_seen')})" for alert in alerts
        )
        if more:
            lines.append(f"... and {more} more")
    else:
        lines = [
            payload.get("message", ""),
            "",
            rule,
            f"loop: {payload.get('loop_id') or '-'}",
            state,
            f"first seen: {payload.get('first_seen')}",
            f"at: {payload.get('at')}",
        ]
    lines.extend(["", json.dumps(payload, sort_keys=True)])
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
