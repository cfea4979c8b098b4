"""Webhook notifications: a JSON POST signed with HMAC-SHA256 (RFC 2104).

The signature header reads ``t=<unix seconds>,v1=<hex>`` with
``v1 = HMAC-SHA256(secret, f"{t}.{body}")``, the scheme Stripe's webhooks use: the time
stamp inside the signed text lets a receiver refuse replays of old requests. The
``Idempotency-Key`` header is the same for every attempt of one notice.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson

from clpm_shared.config import AlertSettings

SIGNATURE_HEADER = "X-CLPM-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookRejectedError(RuntimeError):
    """The receiver answered with a status other than 2xx."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance_s``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected, header)


class WebhookChannel:
    """POSTs notices with httpx (one client, reused)."""

    def __init__(self, settings: AlertSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.alert_webhook_timeout_s)

    async def send(
        self, url: str, payload: dict[str, Any], idempotency_key: str, timestamp: int
    ) -> None:
        """Deliver one notice; raises ``httpx.HTTPError`` or :class:`WebhookRejectedError`."""
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key}
        secret = self.settings.alert_webhook_secret
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret.get_secret_value().encode(), timestamp, body)
        response = await self.client.post(url, content=body, headers=headers)
        if not response.is_success:
            raise WebhookRejectedError(f"{url} answered {response.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()
