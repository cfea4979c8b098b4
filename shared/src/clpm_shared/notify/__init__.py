"""Delivery of alert notifications from the outbox: e-mail (SMTP, STARTTLS, login) and
webhooks (JSON POST signed with HMAC-SHA256), with retries and exponential backoff."""

from clpm_shared.notify.email import EmailChannel, build_message
from clpm_shared.notify.sender import Notifier, PassStats, retry_delay
from clpm_shared.notify.webhook import SIGNATURE_HEADER, WebhookChannel, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "EmailChannel",
    "Notifier",
    "PassStats",
    "WebhookChannel",
    "build_message",
    "retry_delay",
    "sign",
    "verify",
]
